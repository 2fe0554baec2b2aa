//! Personal data in French sales calls: a deterministic detector and a redactor that
//! puts typed placeholders (`[IBAN_1]`, `[TELEPHONE_2]`) in place of the data, the same
//! placeholder for the same value throughout a fiche.
//!
//! [`detect`] reads the text as tokens (runs of letters and digits with their byte
//! offsets) grouped into items: a number in digits, a number said in words
//! ("quatre-vingt-neuf" is 89, "zéro" its own 0, so "zéro six douze" is 0, 6, 12), a
//! spelled letter ("F", "erre", "F comme François"), a code ("FR76", "2A"), a word, a
//! hesitation. Items follow one another *in a number* when only spaces, dashes, brackets
//! and one dot or comma separate them ("06.12", "06, 12", "F. R."); a full stop and a
//! space, any other punctuation, or a word ends it (a hesitation "euh" does not). So
//! what speech-to-text writes for a number read out — digit by digit, in pairs, in
//! groups, in words — reads as the same digits. Each family then finds its candidates:
//!
//! - [`PiiKind::Iban`] (`iban`): country code, check digits and account at the exact
//!   length of that country, mod-97 valid;
//! - [`PiiKind::Nir`] (`nir`): 13 characters and the key 97 − (number mod 97), sex, month
//!   and department plausible, Corsica's 2A / 2B;
//! - [`PiiKind::Card`] (`card`): 13 to 19 digits starting with 2 to 6, Luhn valid (the
//!   longest such number from where it starts);
//! - [`PiiKind::Email`] (`email`): written or spoken ("arobase", "point", "tiret bas");
//! - [`PiiKind::Phone`] (`phone`): French ten digits from 0, +33 / 0033, international
//!   "+" or "00" with a country code; not ten digits named as a reference;
//! - [`PiiKind::BirthDate`] (`date`): a date under a birth word, or a full date of 1900
//!   to 2010 that no other event claims (the rule is in that module).
//!
//! Candidates that overlap are settled in that order: checksums first (a NIR or an IBAN
//! also has runs of digits that look like a phone), then the rest. Findings never overlap
//! and come in text order.
//!
//! [`Redactor`] numbers placeholders per kind in order of first appearance; feed it every
//! text of one fiche (each transcript, each prompt) so a value read out twice, or in two
//! forms ("06 12 34 56 78" and "+33 6 12 34 56 78" share the value `+33612345678`),
//! keeps one placeholder. [`eval`] measures the detector on the labelled set
//! `domain/data/pii-fr*.jsonl` (`callaudit pii-eval` prints it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod card;
mod date;
mod email;
pub mod eval;
mod iban;
mod nir;
mod phone;
mod tokens;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiKind {
    /// A bank account number (IBAN).
    Iban,
    /// A payment card number.
    Card,
    /// A telephone number.
    Phone,
    /// An e-mail address.
    Email,
    /// A birth date.
    BirthDate,
    /// A French social security number (NIR).
    Nir,
}

impl PiiKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [PiiKind; 6] = [
        Self::Iban,
        Self::Card,
        Self::Nir,
        Self::Phone,
        Self::Email,
        Self::BirthDate,
    ];

    /// The JSON name (`"IBAN"`, `"CARD"`, `"PHONE"`, `"EMAIL"`, `"BIRTH_DATE"`, `"NIR"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iban => "IBAN",
            Self::Card => "CARD",
            Self::Phone => "PHONE",
            Self::Email => "EMAIL",
            Self::BirthDate => "BIRTH_DATE",
            Self::Nir => "NIR",
        }
    }

    /// The label of its placeholders, in French like the calls: `IBAN`, `CARTE`,
    /// `TELEPHONE`, `EMAIL`, `DATE_NAISSANCE`, `NIR`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Iban => "IBAN",
            Self::Card => "CARTE",
            Self::Phone => "TELEPHONE",
            Self::Email => "EMAIL",
            Self::BirthDate => "DATE_NAISSANCE",
            Self::Nir => "NIR",
        }
    }

    /// The kind of a JSON name ([`PiiKind::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for PiiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Personal data found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is.
    pub kind: PiiKind,
    /// Byte offset of its first character in the text.
    pub start: usize,
    /// Byte offset just past its last character (exclusive).
    pub end: usize,
    /// The normalised value: the IBAN in capitals without spaces, the card's and the
    /// NIR's digits, the phone as E.164 (`+33612345678`), the address in lower case, the
    /// date as `YYYY-MM-DD` (`--MM-DD` without year).
    pub value: String,
}

/// The personal data of `text`: non-overlapping, in text order.
pub fn detect(text: &str) -> Vec<Finding> {
    let tokens = tokens::tokenize(text);
    let items = tokens::items(text, &tokens);
    // In order of precedence when candidates overlap.
    let candidates = [
        iban::find(&items),
        nir::find(&items),
        card::find(&items),
        email::find(&items),
        phone::find(&items),
        date::find(&items),
    ];
    let mut kept: Vec<Finding> = Vec::new();
    for candidate in candidates.into_iter().flatten() {
        let overlaps = kept
            .iter()
            .any(|k| k.start < candidate.end && candidate.start < k.end);
        if !overlaps {
            kept.push(candidate);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

/// A text with its personal data replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redacted {
    /// The text with placeholders.
    pub text: String,
    /// What was replaced (offsets in the original text) and by which placeholder.
    pub findings: Vec<(Finding, String)>,
}

/// Replaces personal data by typed placeholders, consistently across the texts of one
/// fiche: the same kind and normalised value always get the same `[LABEL_n]`, numbered
/// per kind from 1 in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    by_value: BTreeMap<(PiiKind, String), String>,
    counts: BTreeMap<PiiKind, usize>,
    /// (placeholder, value) in order of first appearance.
    order: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder of a finding, allotting the next number of its kind when its
    /// value is new.
    pub fn placeholder(&mut self, finding: &Finding) -> String {
        let key = (finding.kind, finding.value.clone());
        if let Some(existing) = self.by_value.get(&key) {
            return existing.clone();
        }
        let n = self.counts.entry(finding.kind).or_default();
        *n += 1;
        let placeholder = format!("[{}_{}]", finding.kind.label(), n);
        self.by_value.insert(key, placeholder.clone());
        self.order
            .push((placeholder.clone(), finding.value.clone()));
        placeholder
    }

    /// `text` with each personal datum ([`detect`]) replaced by its placeholder.
    pub fn redact(&mut self, text: &str) -> Redacted {
        let mut out = String::with_capacity(text.len());
        let mut findings = Vec::new();
        let mut at = 0;
        for finding in detect(text) {
            let placeholder = self.placeholder(&finding);
            out.push_str(&text[at..finding.start]);
            out.push_str(&placeholder);
            at = finding.end;
            findings.push((finding, placeholder));
        }
        out.push_str(&text[at..]);
        Redacted {
            text: out,
            findings,
        }
    }

    /// Every placeholder given so far and the value it stands for, in order of first
    /// appearance.
    pub fn placeholders(&self) -> Vec<(&str, &str)> {
        self.order
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .collect()
    }

    /// The value a placeholder stands for.
    pub fn value_of(&self, placeholder: &str) -> Option<&str> {
        self.order
            .iter()
            .find(|(p, _)| p == placeholder)
            .map(|(_, v)| v.as_str())
    }
}

/// Words that join the parts of a value read out ("point", "arobase", "tiret"): left
/// out when [`contains_known_value`] compares.
const JOINING_WORDS: &[&str] = &[
    "point",
    "arobase",
    "arrobase",
    "arobas",
    "tiret",
    "underscore",
    "bas",
    "plus",
];

/// The text as one run of letters and digits: case and accents folded, numbers in
/// words as digits, separators and joining words left out.
fn compact(text: &str) -> String {
    let tokens = tokens::tokenize(text);
    tokens::items(text, &tokens)
        .into_iter()
        .filter(|it| !JOINING_WORDS.contains(&it.text.as_str()))
        .map(|it| it.text.to_lowercase())
        .collect()
}

/// Whether `text` still holds one of `values` (personal data known to be in the
/// source), however it is written: digits compared without separators, number words
/// read as digits, case and accents ignored, "point"/"arobase" as the signs. A French
/// phone number also matches in its +33 form; a `YYYY-MM-DD` date also as `DDMMYYYY`.
/// For tests that assert no personal value leaks.
pub fn contains_known_value(text: &str, values: &[&str]) -> bool {
    let haystack = compact(text);
    values.iter().any(|value| {
        let needle = compact(value);
        let mut forms = vec![needle.clone()];
        if needle.len() == 10
            && needle.starts_with('0')
            && needle.bytes().all(|b| b.is_ascii_digit())
        {
            forms.push(format!("33{}", &needle[1..]));
        }
        if let [y, m, d] = value.split('-').collect::<Vec<_>>()[..]
            && y.len() == 4
            && m.len() == 2
            && d.len() == 2
        {
            forms.push(format!("{d}{m}{y}"));
        }
        !needle.is_empty() && forms.iter().any(|f| haystack.contains(f.as_str()))
    })
}

#[cfg(test)]
mod tests;
