//! Payment card numbers: 13 to 19 digits passing the Luhn check, starting with 2 to 6
//! (the digits card networks issue from: Mastercard 2 and 5, Amex and Diners 3, Visa 4,
//! Discover, UnionPay and Maestro 6), written in groups ("4970 1012 3456 7890"), in one
//! block, or read digit by digit or in pairs in words. A long number that fails Luhn (an
//! order number, a contract reference) is not a card. A card number starts a number (it
//! is not the tail of a longer one, though a group of four after a comma starts afresh)
//! and is 16 digits (by far the most common length), or else ends where the number
//! ends: in a long number, some shorter run of digits passes Luhn by chance. A number named as a reference
//! ("commande", "contrat", "SIRET"…, as for telephones) is not a card.

use super::tokens::{Item, ItemKind, continues_number, named_as_reference, run_after};
use super::{Finding, PiiKind};

/// Whether `digits` passes the Luhn check (every second digit from the right doubled).
pub(super) fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// The card number starting at item `i`, and its last item.
fn card_at(items: &[Item], i: usize) -> Option<(Finding, usize)> {
    let first = &items[i];
    // "… qui commence par 2, 2221 2854 …": a group of four after a comma starts afresh.
    let fresh = !continues_number(items, i) || (first.text.len() == 4 && first.gap_has(','));
    if first.kind != ItemKind::Number || !matches!(first.text.as_bytes()[0], b'2'..=b'6') || !fresh
    {
        return None;
    }
    let run: Vec<usize> = std::iter::once(i)
        .chain(run_after(items, i))
        .take_while(|j| items[*j].kind == ItemKind::Number)
        .collect();
    let mut digits = String::new();
    let mut sixteen = None;
    let mut longest = None;
    for (n, &j) in run.iter().enumerate() {
        digits.push_str(&items[j].text);
        if digits.len() > 19 {
            break;
        }
        if digits.len() < 13 || !luhn_ok(&digits) {
            continue;
        }
        if digits.len() == 16 {
            sixteen = Some((digits.clone(), j));
        } else if n + 1 == run.len() {
            longest = Some((digits.clone(), j));
        }
    }
    let (value, last) = sixteen.or(longest)?;
    if named_as_reference(items, i) {
        return None;
    }
    let finding = Finding {
        kind: PiiKind::Card,
        start: items[i].start,
        end: items[last].end,
        value,
    };
    Some((finding, last))
}

/// Every card number of the items, in order.
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match card_at(items, i) {
            Some((finding, last)) => {
                out.push(finding);
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}
