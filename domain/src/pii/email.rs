//! E-mail addresses, written ("jean.dupont@gmail.com") or as speech-to-text writes them
//! ("jean point dupont arobase gmail point com", "j tiret bas dupont at orange point fr").
//! An address is a local part, "@" ("arobase", "arrobase", "at"), and a domain of at
//! least two labels joined by dots ("point") whose last label is 2 to 6 letters. Parts
//! are joined by written ".", "-", "_" (no space around) or the spoken "point", "tiret",
//! "tiret bas", "tiret du six", "tiret du huit", "underscore"; without a joining word,
//! the local part is the one word before "@". The value is lower case, accents folded.

use super::tokens::{Item, ItemKind};
use super::{Finding, PiiKind};

/// A joining sign of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Dot,
    Dash,
    Underscore,
    At,
    /// Nothing: digits said after a word ("durand quatre-vingt-neuf" is "durand89").
    Glue,
}

impl Link {
    fn sign(self) -> &'static str {
        match self {
            Self::Dot => ".",
            Self::Dash => "-",
            Self::Underscore => "_",
            Self::At => "@",
            Self::Glue => "",
        }
    }
}

/// A spoken joining sign starting at item `i`, and how many items it takes.
fn spoken_link(items: &[Item], i: usize) -> Option<(Link, usize)> {
    let word = |k: usize| {
        items
            .get(k)
            .filter(|it| matches!(it.kind, ItemKind::Word | ItemKind::Number))
            .map(|it| it.text.as_str())
    };
    match word(i)? {
        "point" => Some((Link::Dot, 1)),
        "arobase" | "arrobase" | "arobas" | "arrobas" | "arobaz" | "at" => Some((Link::At, 1)),
        "underscore" | "souligne" => Some((Link::Underscore, 1)),
        "tiret" => match (word(i + 1), word(i + 2)) {
            (Some("bas"), _) => Some((Link::Underscore, 2)),
            (Some("du"), Some("6")) => Some((Link::Dash, 3)),
            (Some("du"), Some("8")) => Some((Link::Underscore, 3)),
            _ => Some((Link::Dash, 1)),
        },
        _ => None,
    }
}

/// A written joining sign in the text before item `i` ("." "-" "_" without spaces, "@").
fn written_link(item: &Item) -> Option<Link> {
    match item.gap_text.as_str() {
        "." => Some(Link::Dot),
        "-" => Some(Link::Dash),
        "_" => Some(Link::Underscore),
        gap if gap.trim() == "@" => Some(Link::At),
        _ => None,
    }
}

/// Whether item `i` can be a part of an address (a word, a number, a letter, a code;
/// not a joining word).
fn is_part(items: &[Item], i: usize) -> bool {
    items.get(i).is_some_and(|it| {
        matches!(
            it.kind,
            ItemKind::Word | ItemKind::Number | ItemKind::Letter | ItemKind::Alnum
        ) && spoken_link(items, i).is_none()
    })
}

/// The link after part `i`: its kind and the index of the next part.
fn link_after(items: &[Item], i: usize) -> Option<(Link, usize)> {
    if let Some(next) = items.get(i + 1)
        && let Some(link) = written_link(next)
    {
        return Some((link, i + 1));
    }
    let (link, len) = spoken_link(items, i + 1)?;
    Some((link, i + 1 + len))
}

/// The address whose "@" follows part `at_part`: its first and last parts and value.
fn address(items: &[Item], at_part: usize, domain_first: usize) -> Option<Finding> {
    // Domain: labels joined by dots (or dashes inside a label), the last one a TLD.
    let mut domain = items[domain_first].text.clone();
    let mut last = domain_first;
    let mut best: Option<(String, usize)> = None;
    while let Some((link, next)) = link_after(items, last) {
        if !matches!(link, Link::Dot | Link::Dash) || !is_part(items, next) {
            break;
        }
        domain.push_str(link.sign());
        domain.push_str(&items[next].text);
        last = next;
        let label = &items[next].text;
        let tld = link == Link::Dot
            && (2..=6).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphabetic());
        if tld {
            best = Some((domain.clone(), last));
        }
    }
    let (domain, last) = best?;
    // Local part: backwards over parts joined by dots, dashes, underscores.
    let mut first = at_part;
    let mut local = items[at_part].text.clone();
    while let Some((link, previous)) = link_before(items, first) {
        if link == Link::At {
            break;
        }
        local = format!("{}{}{}", items[previous].text, link.sign(), local);
        first = previous;
    }
    Some(Finding {
        kind: PiiKind::Email,
        start: items[first].start,
        end: items[last].end,
        value: format!("{}@{}", local.to_lowercase(), domain.to_lowercase()),
    })
}

/// The link before part `i` and the part before it.
fn link_before(items: &[Item], i: usize) -> Option<(Link, usize)> {
    if let Some(link) = written_link(&items[i])
        && i > 0
        && is_part(items, i - 1)
    {
        return Some((link, i - 1));
    }
    let glued = items[i].kind == ItemKind::Number
        && i > 0
        && matches!(
            items[i - 1].kind,
            ItemKind::Word | ItemKind::Letter | ItemKind::Alnum
        )
        && is_part(items, i - 1)
        && items[i].gap_text.as_str().chars().all(char::is_whitespace);
    if glued {
        return Some((Link::Glue, i - 1));
    }
    (1..=3).find_map(|len| {
        let start = i.checked_sub(len)?;
        let (link, taken) = spoken_link(items, start)?;
        let previous = start.checked_sub(1)?;
        (taken == len && is_part(items, previous)).then_some((link, previous))
    })
}

/// Every e-mail address of the items, in order.
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for i in 0..items.len() {
        if !is_part(items, i) {
            continue;
        }
        let Some((Link::At, domain_first)) = link_after(items, i) else {
            continue;
        };
        if !is_part(items, domain_first) {
            continue;
        }
        if let Some(found) = address(items, i, domain_first)
            && out
                .last()
                .is_none_or(|previous| previous.end <= found.start)
        {
            out.push(found);
        }
    }
    out
}
