//! IBANs (ISO 13616): a country code, two check digits and the national account number,
//! at the exact length of that country, whose mod-97 check holds. Read from items, so
//! "FR76 3000 6000 …", "fr76-3000-…", "F R 7 6 3 0 …", "F. R. soixante-seize trente…" and
//! letters spelled inside the account number ("N W B K") all count.

use super::tokens::{Item, ItemKind, run_after};
use super::{Finding, PiiKind};

/// IBAN length by country (the ISO 13616 registry, plus a few countries that publish
/// one without being registered).
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("DZ", 26),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MA", 28),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SN", 28),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The IBAN length of a country code, when it has IBANs.
fn length_of(country: &str) -> Option<usize> {
    LENGTHS
        .iter()
        .find(|(code, _)| *code == country)
        .map(|(_, len)| *len)
}

/// Whether `iban` (capitals and digits, no spaces) passes the ISO 7064 mod-97-10 check:
/// the first four characters moved to the end, letters as 10…35, the number mod 97 is 1.
pub(super) fn mod97_ok(iban: &str) -> bool {
    if iban.len() < 5 || !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = iban.split_at(4);
    let mut rest: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = c.to_digit(36).unwrap_or(0);
        rest = if value >= 10 {
            (rest * 100 + value) % 97
        } else {
            (rest * 10 + value) % 97
        };
    }
    rest == 1
}

/// What an item adds to an IBAN being read, `so_far` characters in.
fn chars_of(item: &Item, so_far: usize) -> Option<&str> {
    match item.kind {
        ItemKind::Number | ItemKind::Letter | ItemKind::Alnum => Some(&item.text),
        // "fr 76 …": a country code written as a lower-case word.
        ItemKind::Word
            if so_far == 0
                && item.text.len() == 2
                && item.text.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            Some(&item.text)
        }
        _ => None,
    }
}

/// The IBAN starting at item `i`, and its last item.
fn iban_at(items: &[Item], i: usize) -> Option<(Finding, usize)> {
    let mut iban = String::new();
    let mut expected = usize::MAX;
    for j in std::iter::once(i).chain(run_after(items, i)) {
        let chars = chars_of(&items[j], iban.len())?;
        iban.push_str(&chars.to_ascii_uppercase());
        if iban.len() >= 2 && expected == usize::MAX {
            let country = iban.get(..2)?;
            if !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return None;
            }
            expected = length_of(country)?;
        }
        if iban.len() >= 4 && !iban[2..4].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if iban.len() == expected {
            return mod97_ok(&iban).then(|| {
                let finding = Finding {
                    kind: PiiKind::Iban,
                    start: items[i].start,
                    end: items[j].end,
                    value: iban,
                };
                (finding, j)
            });
        }
        if iban.len() > expected {
            return None;
        }
    }
    None
}

/// Every IBAN of the items, in order.
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match iban_at(items, i) {
            Some((finding, last)) => {
                out.push(finding);
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}
