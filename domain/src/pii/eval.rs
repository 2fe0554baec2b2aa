//! Measuring the detector on a labelled set: per kind, true and false positives, false
//! negatives, recall and precision, against the targets of issue 13 (recall ≥ 99 % for
//! the checksum-validated IBAN, card and NIR, ≥ 95 % for phone, e-mail and birth date;
//! precision ≥ 95 % for all).
//!
//! A case is one JSON line: `{"id": "…", "text": "…", "pii": [{"kind": "IBAN", "text":
//! "FR76 …"}]}` where each expected `text` is the exact substring of the utterance (the
//! n-th expected of one substring is its n-th occurrence). A finding matches an expected
//! one when the kinds are equal and the spans overlap; each is matched at most once.
//! The committed set is [`EMBEDDED_SETS`] (`domain/data/`).

use serde::Deserialize;

use super::{Finding, PiiKind, detect};

/// The committed labelled sets: hand-written utterances, and those of the generator
/// `domain/data/gen_pii_fr.py`.
pub const EMBEDDED_SETS: &[(&str, &str)] = &[
    ("pii-fr.jsonl", include_str!("../../data/pii-fr.jsonl")),
    (
        "pii-fr-generated.jsonl",
        include_str!("../../data/pii-fr-generated.jsonl"),
    ),
];

/// An expected finding, as labelled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Expected {
    /// Its kind.
    pub kind: PiiKind,
    /// The exact substring of the case's text.
    pub text: String,
}

/// One labelled utterance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Case {
    /// A short id ("h042").
    pub id: String,
    /// The utterance, as a transcript would hold it.
    pub text: String,
    /// What it contains (empty: nothing personal).
    #[serde(default)]
    pub pii: Vec<Expected>,
}

/// A labelled set that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A line is not a case.
    #[error("{source_name} line {line}: {message}")]
    BadLine {
        /// The file.
        source_name: String,
        /// Its 1-based line.
        line: usize,
        /// Why.
        message: String,
    },
}

/// The cases of a JSON-lines text (blank lines skipped). Every expected substring must
/// occur in its case's text as often as it is expected.
pub fn parse_cases(source_name: &str, jsonl: &str) -> Result<Vec<Case>, EvalError> {
    let mut cases = Vec::new();
    for (n, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::BadLine {
            source_name: source_name.to_string(),
            line: n + 1,
            message,
        };
        let case: Case = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        expected_spans(&case).map_err(bad)?;
        cases.push(case);
    }
    Ok(cases)
}

/// Every case of the committed sets.
pub fn embedded_cases() -> Result<Vec<Case>, EvalError> {
    let mut all = Vec::new();
    for (name, text) in EMBEDDED_SETS {
        all.extend(parse_cases(name, text)?);
    }
    Ok(all)
}

/// The byte spans of a case's expected findings: the n-th expected of one substring is
/// its n-th occurrence.
fn expected_spans(case: &Case) -> Result<Vec<(PiiKind, usize, usize)>, String> {
    let mut next_from: Vec<(&str, usize)> = Vec::new();
    let mut out = Vec::new();
    for e in &case.pii {
        let from = next_from
            .iter()
            .find(|(t, _)| *t == e.text)
            .map_or(0, |(_, at)| *at);
        let Some(at) = case.text.get(from..).and_then(|rest| rest.find(&e.text)) else {
            return Err(format!(
                "case {}: {:?} does not occur (again) in the text",
                case.id, e.text
            ));
        };
        if e.text.is_empty() {
            return Err(format!("case {}: empty expected text", case.id));
        }
        let start = from + at;
        let end = start + e.text.len();
        next_from.retain(|(t, _)| *t != e.text);
        next_from.push((&e.text, end));
        out.push((e.kind, start, end));
    }
    Ok(out)
}

/// The figures of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindFigures {
    /// The kind.
    pub kind: PiiKind,
    /// Cases expecting at least one finding of this kind.
    pub cases: usize,
    /// Expected findings found.
    pub true_positives: usize,
    /// Findings not expected.
    pub false_positives: usize,
    /// Expected findings missed.
    pub false_negatives: usize,
}

/// What a kind must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Minimum recall, in [0, 1].
    pub recall: f64,
    /// Minimum precision, in [0, 1].
    pub precision: f64,
}

/// The target of a kind: recall 0.99 for checksum-validated kinds, 0.95 otherwise;
/// precision 0.95.
pub fn target(kind: PiiKind) -> Target {
    let recall = match kind {
        PiiKind::Iban | PiiKind::Card | PiiKind::Nir => 0.99,
        PiiKind::Phone | PiiKind::Email | PiiKind::BirthDate => 0.95,
    };
    Target {
        recall,
        precision: 0.95,
    }
}

impl KindFigures {
    /// TP / (TP + FN); 1 when nothing was expected.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// TP / (TP + FP); 1 when nothing was found.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Whether recall and precision reach [`target`].
    pub fn passes(&self) -> bool {
        let t = target(self.kind);
        self.recall() >= t.recall && self.precision() >= t.precision
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// A finding that should not be, or an expected one that was missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    /// The case.
    pub case_id: String,
    /// The kind.
    pub kind: PiiKind,
    /// True: found but not expected; false: expected but missed.
    pub false_positive: bool,
    /// The substring concerned.
    pub text: String,
}

/// The evaluation of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Cases evaluated.
    pub cases: usize,
    /// Cases expecting nothing.
    pub negative_cases: usize,
    /// Per kind, in [`PiiKind::ALL`] order.
    pub kinds: Vec<KindFigures>,
    /// Every mistake, in case order.
    pub mistakes: Vec<Mistake>,
}

impl Report {
    /// Whether every kind reaches its target.
    pub fn passes(&self) -> bool {
        self.kinds.iter().all(KindFigures::passes)
    }
}

/// Runs [`detect`] on every case and counts, per kind, findings matching an expected
/// one (same kind, overlapping spans, one-to-one), the others, and the misses. Cases
/// whose expected texts do not occur count as misses.
pub fn evaluate(cases: &[Case]) -> Report {
    let mut kinds: Vec<KindFigures> = PiiKind::ALL
        .into_iter()
        .map(|kind| KindFigures {
            kind,
            cases: 0,
            true_positives: 0,
            false_positives: 0,
            false_negatives: 0,
        })
        .collect();
    let mut mistakes = Vec::new();
    for case in cases {
        let expected = expected_spans(case).unwrap_or_default();
        let found = detect(&case.text);
        let mut matched = vec![false; found.len()];
        for figures in &mut kinds {
            if expected.iter().any(|(k, _, _)| *k == figures.kind) {
                figures.cases += 1;
            }
        }
        for &(kind, start, end) in &expected {
            let figures = kinds.iter_mut().find(|f| f.kind == kind);
            let hit = found
                .iter()
                .enumerate()
                .position(|(n, f): (usize, &Finding)| {
                    !matched[n] && f.kind == kind && f.start < end && start < f.end
                });
            let Some(figures) = figures else { continue };
            match hit {
                Some(n) => {
                    matched[n] = true;
                    figures.true_positives += 1;
                }
                None => {
                    figures.false_negatives += 1;
                    mistakes.push(Mistake {
                        case_id: case.id.clone(),
                        kind,
                        false_positive: false,
                        text: case.text[start..end].to_string(),
                    });
                }
            }
        }
        for (n, f) in found.iter().enumerate() {
            if matched[n] {
                continue;
            }
            if let Some(figures) = kinds.iter_mut().find(|k| k.kind == f.kind) {
                figures.false_positives += 1;
            }
            mistakes.push(Mistake {
                case_id: case.id.clone(),
                kind: f.kind,
                false_positive: true,
                text: case.text[f.start..f.end].to_string(),
            });
        }
    }
    Report {
        cases: cases.len(),
        negative_cases: cases.iter().filter(|c| c.pii.is_empty()).count(),
        kinds,
        mistakes,
    }
}

impl Report {
    /// The figures as a table: per kind, cases, TP, FP, FN, recall, precision, the
    /// targets and PASS/FAIL.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} cases ({} without personal data)\n\n{:<11} {:>5} {:>4} {:>4} {:>4} {:>8} {:>9}  {:<22} {}\n",
            self.cases,
            self.negative_cases,
            "kind",
            "cases",
            "TP",
            "FP",
            "FN",
            "recall",
            "precision",
            "target (recall, prec.)",
            "result"
        );
        for k in &self.kinds {
            let t = target(k.kind);
            out.push_str(&format!(
                "{:<11} {:>5} {:>4} {:>4} {:>4} {:>7.1}% {:>8.1}%  ≥ {:>3.0}%, ≥ {:>3.0}%{:<9} {}\n",
                k.kind.as_str(),
                k.cases,
                k.true_positives,
                k.false_positives,
                k.false_negatives,
                100.0 * k.recall(),
                100.0 * k.precision(),
                100.0 * t.recall,
                100.0 * t.precision,
                "",
                if k.passes() { "PASS" } else { "FAIL" }
            ));
        }
        out
    }

    /// One line per mistake: case, kind, FP or FN, the text concerned.
    pub fn mistakes_list(&self) -> String {
        self.mistakes
            .iter()
            .map(|m| {
                format!(
                    "{:<6} {:<10} {} {:?}\n",
                    m.case_id,
                    m.kind.as_str(),
                    if m.false_positive { "FP" } else { "FN" },
                    m.text
                )
            })
            .collect()
    }
}
