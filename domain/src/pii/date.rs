//! Birth dates. A date is a day and a month, and maybe a year, written
//! ("14/06/1989", "14-06-89", "14.06.1989", "1989-06-14") or said ("le 14 juin 1989",
//! "quatorze juin mille neuf cent quatre-vingt-neuf", "le 1er mars 75", "premier avril").
//! Not every date is a birth date; the rule, from the nearest context word before the
//! date (within twelve items, stopping at an earlier month name):
//! 1. a birth word ("né", "née", "naissance", "anniversaire") makes any date a birth
//!    date, a day and month without year included ("née le quatorze juin");
//! 2. a word of another event ("contrat", "effet", "démarre", "début", "prélèvement",
//!    "échéance", "souscrite", "rendez-vous", "livraison", "depuis", "à partir", …, by
//!    stem) makes it not one;
//! 3. with neither, and no word of another event within four items after it ("le 14
//!    juin 1989 on a signé"), a full date (day, month and year) whose year is 1900 to 2010 is a
//!    birth date (a sales call has few other dates that old); a date without year, or of
//!    a later year ("le contrat démarre le 1er décembre", "le 15 janvier 2025"), is not.
//!
//! Digits separated by spaces only ("14 06 1989") count under rule 1 only. A two-digit
//! year is 20yy up to 15, 19yy above. The value is `YYYY-MM-DD`, or `--MM-DD` without
//! year.

use super::tokens::{Item, ItemKind};
use super::{Finding, PiiKind};

/// Months by name and common abbreviation (normalised).
const MONTHS: &[(&str, u32)] = &[
    ("janvier", 1),
    ("janv", 1),
    ("fevrier", 2),
    ("fev", 2),
    ("fevr", 2),
    ("mars", 3),
    ("avril", 4),
    ("avr", 4),
    ("mai", 5),
    ("juin", 6),
    ("juillet", 7),
    ("juil", 7),
    ("aout", 8),
    ("septembre", 9),
    ("sept", 9),
    ("octobre", 10),
    ("oct", 10),
    ("novembre", 11),
    ("nov", 11),
    ("decembre", 12),
    ("dec", 12),
];

/// Words that say a birth: rule 1.
const BIRTH_WORDS: &[&str] = &["nee", "nees", "naissance", "naissances", "anniversaire"];

/// Words of other dated events: rule 2. An entry ending in `*` is a stem ("souscri*"
/// covers "souscrit", "souscrite", "souscription").
const OTHER_EVENT_WORDS: &[&str] = &[
    "effet",
    "contrat*",
    "demarr*",
    "debut*",
    "commenc*",
    "souscri*",
    "signature",
    "signe",
    "signee",
    "signez",
    "echeanc*",
    "prelev*",
    "resili*",
    "rendez",
    "rdv",
    "rappel*",
    "livr*",
    "command*",
    "factur*",
    "depuis",
    "partir",
    "jusqu",
    "jusque",
    "expir*",
    "valable",
    "valide",
    "paiement*",
    "paye",
    "payee",
    "versement*",
    "envoi",
    "envoye*",
    "courrier*",
    "adhesion",
    "activ*",
    "fin",
    "termin*",
    "terme",
    "renouvel*",
    "deces",
    "decede*",
    "mariage",
    "maries",
    "mariee",
    "mariees",
    "marier",
    "pacs*",
    "embauch*",
    "demenag*",
    "install*",
    "intervention",
    "visite",
    "arret*",
    "emission",
    "recu",
    "recue",
    "ouvert*",
    "inscri*",
    "abonne*",
];

/// Whether a normalised word is one of `words` (exact, or by stem).
fn among(word: &str, words: &[&str]) -> bool {
    words.iter().any(|w| match w.strip_suffix('*') {
        Some(stem) => word.starts_with(stem),
        None => word == *w,
    })
}

/// The month of an item.
fn month_of(item: &Item) -> Option<u32> {
    let name = match item.kind {
        ItemKind::Word => item.text.as_str(),
        // "sept" is also seven.
        ItemKind::Number if item.raw_lower == "sept" => "sept",
        _ => return None,
    };
    MONTHS.iter().find(|(m, _)| *m == name).map(|(_, n)| *n)
}

/// The day of an item: 1 to 31 in digits or words, "1er", "premier".
fn day_of(item: &Item) -> Option<u32> {
    match item.kind {
        ItemKind::Number if item.text.len() <= 2 => {
            item.text.parse().ok().filter(|d| (1..=31).contains(d))
        }
        ItemKind::Alnum if matches!(item.text.as_str(), "1ER" | "1ERE") => Some(1),
        ItemKind::Word if matches!(item.text.as_str(), "premier" | "premiere") => Some(1),
        _ => None,
    }
}

/// The year of a number item: four digits 1900–2099, or two digits.
fn year_of(item: &Item) -> Option<i32> {
    if item.kind != ItemKind::Number {
        return None;
    }
    let value: i32 = item.text.parse().ok()?;
    match (item.text.len(), value) {
        (4, 1900..=2099) => Some(value),
        (1..=2, 0..=15) => Some(2000 + value),
        (1..=2, 16..=99) => Some(1900 + value),
        _ => None,
    }
}

/// Whether day/month/year make a real date.
fn valid(day: u32, month: u32, year: Option<i32>) -> bool {
    let leap = year.is_none_or(|y| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// A date found in the items.
#[derive(Debug, Clone, Copy)]
struct DateAt {
    first: usize,
    last: usize,
    day: u32,
    month: u32,
    year: Option<i32>,
    /// Digits separated by spaces only: a birth date only under a birth word.
    spaced: bool,
}

/// The separator written between items `i - 1` and `i`, when it is a date's.
fn date_separator(items: &[Item], i: usize) -> Option<&str> {
    let gap = items.get(i)?.gap_text.as_str();
    matches!(gap, "/" | "-" | ".").then_some(gap)
}

/// A date written in digits at item `i`: dd/mm/yyyy, dd-mm-yy, yyyy-mm-dd, dd mm yyyy.
fn numeric_at(items: &[Item], i: usize) -> Option<DateAt> {
    let [a, b, c] = [items.get(i)?, items.get(i + 1)?, items.get(i + 2)?];
    if [a, b, c].iter().any(|it| it.kind != ItemKind::Number) {
        return None;
    }
    let (sep1, sep2) = (date_separator(items, i + 1), date_separator(items, i + 2));
    let spaced = [b, c]
        .iter()
        .all(|it| it.gap_text.chars().all(char::is_whitespace) && !it.gap_text.is_empty());
    if !(spaced || (sep1.is_some() && sep1 == sep2)) {
        return None;
    }
    // "06.12.34.56.78" is not a date followed by digits.
    let continues = items.get(i + 3).is_some_and(|d| {
        d.kind == ItemKind::Number && (spaced || date_separator(items, i + 3) == sep1)
    });
    if continues
        || (i > 0 && items[i - 1].kind == ItemKind::Number && date_separator(items, i).is_some())
    {
        return None;
    }
    let number = |it: &Item| it.text.parse::<u32>().ok();
    let (day, month, year) = if a.text.len() == 4 && !spaced {
        (number(c)?, number(b)?, year_of(a)?)
    } else if a.text.len() <= 2 && b.text.len() <= 2 {
        (number(a)?, number(b)?, year_of(c)?)
    } else {
        return None;
    };
    if spaced && (a.text.len() != 2 || b.text.len() != 2 || c.text.len() != 4) {
        return None;
    }
    valid(day, month, Some(year)).then_some(DateAt {
        first: i,
        last: i + 2,
        day,
        month,
        year: Some(year),
        spaced,
    })
}

/// A date with the month in words at item `i`: day, month, and maybe a year.
fn named_at(items: &[Item], i: usize) -> Option<DateAt> {
    let day = day_of(&items[i])?;
    let month_item = items.get(i + 1)?;
    let month = month_of(month_item)?;
    let year_item = items.get(i + 2).filter(|it| it.joined);
    let year = year_item.and_then(year_of);
    let last = if year.is_some() { i + 2 } else { i + 1 };
    valid(day, month, year).then_some(DateAt {
        first: i,
        last,
        day,
        month,
        year,
        spaced: false,
    })
}

/// What the words before item `i` say about a date there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Birth,
    OtherEvent,
    None,
}

/// The nearest context word before item `i` (rules 1 and 2).
fn context_before(items: &[Item], i: usize) -> Context {
    for it in items[i.saturating_sub(12)..i].iter().rev() {
        if month_of(it).is_some() {
            return Context::None;
        }
        if it.kind != ItemKind::Word {
            continue;
        }
        if BIRTH_WORDS.contains(&it.text.as_str()) || matches!(it.raw_lower.as_str(), "né" | "nés")
        {
            return Context::Birth;
        }
        // "marié" (accented: "Marie" is a name).
        if among(&it.text, OTHER_EVENT_WORDS) || it.raw_lower == "marié" {
            return Context::OtherEvent;
        }
    }
    Context::None
}

/// Whether a word of another event follows the date closely ("le 14 juin 1989 on a
/// signé"): within four items, before any other month name.
fn other_event_after(items: &[Item], last: usize) -> bool {
    items
        .iter()
        .skip(last + 1)
        .take(4)
        .take_while(|it| month_of(it).is_none())
        .any(|it| {
            it.kind == ItemKind::Word
                && (among(&it.text, OTHER_EVENT_WORDS) || it.raw_lower == "marié")
        })
}

/// Every birth date of the items, in order (see the module doc for the rule).
pub(super) fn find(items: &[Item]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let Some(date) = numeric_at(items, i).or_else(|| named_at(items, i)) else {
            i += 1;
            continue;
        };
        let birth = match context_before(items, date.first) {
            Context::Birth => true,
            Context::OtherEvent => false,
            Context::None if other_event_after(items, date.last) => false,
            Context::None => !date.spaced && date.year.is_some_and(|y| (1900..=2010).contains(&y)),
        };
        if birth {
            let value = match date.year {
                Some(y) => format!("{y:04}-{:02}-{:02}", date.month, date.day),
                None => format!("--{:02}-{:02}", date.month, date.day),
            };
            out.push(Finding {
                kind: PiiKind::BirthDate,
                start: items[date.first].start,
                end: items[date.last].end,
                value,
            });
        }
        i = date.last + 1;
    }
    out
}
