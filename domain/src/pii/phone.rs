//! Telephone numbers. French ones: ten digits starting with 0 and a digit from 1 to 9
//! ("06 12 34 56 78", "06.12.34.56.78", "0612345678", "zéro six douze trente-quatre…"),
//! or +33 / 0033 / "plus trente-trois" and nine digits (a "(0)" after the code is
//! dropped). International ones: "+" or "00" then a country code (E.164 codes are
//! prefix-free: 1 and 7, a list of two-digit codes, three digits otherwise) and the
//! national number at the length that country uses (any 6 to 12 digits for countries
//! not listed, at most 15 digits in all). The value is E.164: "+33612345678".
//!
//! A telephone number starts a number (it is not the tail of a longer one) unless a
//! comma or another telephone number just before sets it apart. Ten digits that follow "commande", "référence", "dossier", "contrat", "facture",
//! "colis", "suivi", "police", "transaction"… are that reference, not a telephone.

use super::tokens::{Item, ItemKind, continues_number, named_as_reference, run_after};
use super::{Finding, PiiKind};

/// Two-digit country calling codes (every other code that is not 1 or 7 has three).
const TWO_DIGIT_CODES: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// National number lengths (without the trunk 0) of the countries callers name most.
const NATIONAL_LENGTHS: &[(&str, usize, usize)] = &[
    ("1", 10, 10),
    ("33", 9, 9),
    ("32", 8, 9),
    ("34", 9, 9),
    ("41", 9, 9),
    ("44", 9, 10),
    ("49", 6, 13),
    ("39", 6, 11),
    ("31", 9, 9),
    ("351", 9, 9),
    ("352", 6, 11),
    ("212", 9, 9),
    ("213", 8, 9),
    ("216", 8, 8),
];

/// The country code at the start of `digits`, when enough digits are there to tell.
fn country_code(digits: &str) -> Option<&str> {
    let first = digits.get(..1)?;
    if first == "1" || first == "7" {
        return Some(first);
    }
    let two = digits.get(..2)?;
    if TWO_DIGIT_CODES.contains(&two) {
        return Some(two);
    }
    digits.get(..3)
}

/// The national lengths allowed after `code`.
fn national_lengths(code: &str) -> (usize, usize) {
    NATIONAL_LENGTHS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or((6, 15 - code.len()), |(_, min, max)| (*min, *max))
}

/// How the number at item `i` is introduced: by "+" (its byte offset) or the word
/// "plus" (that item's start).
fn plus_sign(items: &[Item], i: usize) -> Option<usize> {
    let gap = items[i].gap_text.as_str();
    if gap.trim_end().ends_with('+') {
        return Some(items[i].gap.0 + gap.trim_end().len() - 1);
    }
    let previous = items.get(i.checked_sub(1)?)?;
    (previous.kind == ItemKind::Word && previous.text == "plus" && items[i].joined)
        .then_some(previous.start)
}

/// The telephone number starting at item `i`, and its last item. `after_phone`: a
/// telephone number ends just before it ("06 12 34 56 78 06 12 34 56 78").
fn phone_at(items: &[Item], i: usize, after_phone: bool) -> Option<(Finding, usize)> {
    // Not the tail of a longer number ("1 89 06 75 116 001 74" holds no telephone),
    // unless a comma or a telephone just before set it apart.
    let fresh = !continues_number(items, i) || after_phone || items[i].gap_has(',');
    if items[i].kind != ItemKind::Number || !fresh {
        return None;
    }
    let plus = plus_sign(items, i);
    let mut digits = String::new();
    let mut best: Option<(String, usize)> = None;
    for j in std::iter::once(i).chain(run_after(items, i)) {
        if items[j].kind != ItemKind::Number {
            break;
        }
        digits.push_str(&items[j].text);
        let international = match plus {
            Some(_) => Some(digits.as_str()),
            None => digits.strip_prefix("00"),
        };
        match international {
            Some(number) => {
                if let Some(e164) = international_number(number) {
                    best = Some((e164, j));
                }
                if number.len() > 16 {
                    break;
                }
            }
            None => {
                let b = digits.as_bytes();
                if b[0] != b'0' || b.get(1).is_some_and(|d| *d == b'0') {
                    return None;
                }
                if digits.len() == 10 {
                    best = Some((format!("+33{}", &digits[1..]), j));
                    break;
                }
                if digits.len() > 10 {
                    break;
                }
            }
        }
    }
    let (value, last) = best?;
    if plus.is_none() && !digits.starts_with("00") && named_as_reference(items, i) {
        return None;
    }
    let finding = Finding {
        kind: PiiKind::Phone,
        start: plus.unwrap_or(items[i].start),
        end: items[last].end,
        value,
    };
    Some((finding, last))
}

/// `number` (the digits after "+" or "00") as E.164 when its length fits its country.
fn international_number(number: &str) -> Option<String> {
    let code = country_code(number)?;
    let mut national = &number[code.len()..];
    // "+33 (0)6 12 …": the trunk 0 is not dialled from abroad.
    if code != "39" && national.len() > 1 && national.starts_with('0') {
        national = &national[1..];
    }
    let (min, max) = national_lengths(code);
    let fits = (min..=max).contains(&national.len()) && code.len() + national.len() <= 15;
    let first_ok = national
        .bytes()
        .next()
        .is_some_and(|d| d != b'0' || code == "39");
    (fits && first_ok).then(|| format!("+{code}{national}"))
}

/// Every telephone number of the items, in order.
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_phone = false;
    while i < items.len() {
        match phone_at(items, i, after_phone) {
            Some((finding, last)) => {
                out.push(finding);
                i = last + 1;
                after_phone = true;
            }
            None => {
                i += 1;
                after_phone = false;
            }
        }
    }
    out
}
