//! French social security numbers (NIR): 13 characters and a 2-digit key equal to
//! 97 − (the 13-digit number mod 97). The first digit is the sex (1 or 2, 3, 4, 7, 8 for
//! provisional numbers), then the year and month of birth (month 01–12, or 20–42 and
//! 50–99 when unknown), the department (01–99, or 2A / 2B for Corsica, computed as 19 and
//! 18), the commune and the birth order. Written in one block or in groups
//! ("1 89 06 75 116 001 42"), read in words ("un, quatre-vingt-neuf, zéro six…"), with
//! "deux A" for Corsica and "clé" before the key.

use super::tokens::{Item, ItemKind, run_after};
use super::{Finding, PiiKind};

/// Whether `nir` (15 characters: digits, or 2A/2B as department) is a valid NIR.
pub(super) fn nir_ok(nir: &str) -> bool {
    let b = nir.as_bytes();
    if b.len() != 15 || !matches!(b[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
        return false;
    }
    let department = &nir[5..7];
    let (body, corsica) = match department {
        "2A" => (format!("{}19{}", &nir[..5], &nir[7..13]), true),
        "2B" => (format!("{}18{}", &nir[..5], &nir[7..13]), true),
        _ => (nir[..13].to_string(), false),
    };
    if !body.bytes().all(|c| c.is_ascii_digit()) || !nir[13..].bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let month: u32 = nir[3..5].parse().unwrap_or(0);
    let month_ok = matches!(month, 1..=12 | 20..=42 | 50..=99);
    if !month_ok || (!corsica && department == "00") {
        return false;
    }
    let Ok(number) = body.parse::<u64>() else {
        return false;
    };
    let key: u64 = nir[13..].parse().unwrap_or(0);
    key == 97 - number % 97
}

/// What an item adds to a NIR being read, `so_far` characters in (`last` the character
/// before it).
fn chars_of(item: &Item, so_far: usize, last: Option<char>) -> Option<&str> {
    match item.kind {
        ItemKind::Number => Some(&item.text),
        ItemKind::Alnum if so_far == 5 && matches!(item.text.as_str(), "2A" | "2B") => {
            Some(&item.text)
        }
        // "deux A": the letter of the Corsican department after its "2".
        ItemKind::Letter
            if so_far == 6 && last == Some('2') && matches!(item.text.as_str(), "A" | "B") =>
        {
            Some(&item.text)
        }
        // "… zéro zéro un, clé quarante-deux".
        ItemKind::Word if so_far == 13 && matches!(item.text.as_str(), "cle" | "clef") => Some(""),
        _ => None,
    }
}

/// The NIR starting at item `i`, and its last item.
fn nir_at(items: &[Item], i: usize) -> Option<(Finding, usize)> {
    if items[i].kind != ItemKind::Number {
        return None;
    }
    let mut nir = String::new();
    for j in std::iter::once(i).chain(run_after(items, i)) {
        let chars = chars_of(&items[j], nir.len(), nir.chars().last())?;
        nir.push_str(chars);
        if nir.len() >= 15 {
            return (nir.len() == 15 && nir_ok(&nir)).then(|| {
                let finding = Finding {
                    kind: PiiKind::Nir,
                    start: items[i].start,
                    end: items[j].end,
                    value: nir,
                };
                (finding, j)
            });
        }
    }
    None
}

/// Every NIR of the items, in order.
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match nir_at(items, i) {
            Some((finding, last)) => {
                out.push(finding);
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}
