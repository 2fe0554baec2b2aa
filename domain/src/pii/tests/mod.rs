//! Personal data detection and redaction, told as sentences.

use super::*;

mod card;
mod date;
mod email;
mod evaluation;
mod iban;
mod nir;
mod phone;
mod redaction;

/// The findings of `text` as (kind, exact substring, value).
fn found(text: &str) -> Vec<(PiiKind, &str, String)> {
    detect(text)
        .into_iter()
        .map(|f| (f.kind, &text[f.start..f.end], f.value))
        .collect()
}

/// The findings of one kind of `text`, as (substring, value).
fn found_of(kind: PiiKind, text: &str) -> Vec<(&str, String)> {
    found(text)
        .into_iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, s, v)| (s, v))
        .collect()
}

/// The one finding of `kind` in `text`, as (substring, value); panics otherwise.
fn only(kind: PiiKind, text: &str) -> (&str, String) {
    let all = found(text);
    assert_eq!(all.len(), 1, "{text:?}: {all:?}");
    let (k, s, v) = all.into_iter().next().unwrap();
    assert_eq!(k, kind, "{text:?}");
    (s, v)
}

/// Whether `text` has no finding at all.
fn nothing_in(text: &str) -> bool {
    let all = found(text);
    assert!(all.is_empty(), "{text:?}: {all:?}");
    true
}
