//! Evidence gating: every PRESENT/PARTIEL claim must be backed by a quote that really
//! occurs in the cited recording (tolerating small ASR differences), said by the cited
//! speaker around the cited time. Claims without a verified quote are downgraded.
//!
//! Matching works on [`normalize`]d text. The recording's words are turned into a token
//! sequence (each token remembers its word, hence its time and speaker); the quote is
//! compared, character by character, with every window of the quote's token count ±2.
//! The result is the same as scoring every window (`matching::search_exhaustive`, kept
//! as the reference), found faster (`indexed`): accepted windows from char q-gram
//! anchors, the best one below the threshold — computed only for the verdicts that
//! report it — from anchors or by a bit-parallel scan (`myers`). A
//! worker keeps each fiche's index for all the steps of an audit ([`TranscriptIndex`],
//! [`TranscriptIndexCache`]).
//!
//! ASR tolerance covers letters, never figures: a window counts only when it states the
//! quote's figures (digits and French number words, see `figures`) in the same order, so
//! "39 euros" in the call never verifies a quote of "29 euros". A quote of one word is
//! not evidence (it occurs almost anywhere), and neither is a quote that is empty once
//! normalised.
//!
//! Before gating, [`cover_control_points`] lines the model's answer up with the step's
//! control points, so that each counts exactly once.

use serde::{Deserialize, Serialize};

use crate::analysis::{Citation, ControlPointStatus, ControlPointVerdict, StepAnalysis};
use crate::text::normalize;

mod cache;
mod coverage;
mod figures;
mod indexed;
mod matching;
mod myers;
pub mod synthetic;
use crate::transcript::Transcript;
pub use cache::{
    TranscriptIndex, TranscriptIndexCache, check_citation_indexed, gate_point_indexed,
    gate_step_indexed,
};
pub use coverage::{NOT_ASSESSED_REASON, cover_control_points};
use matching::{RecordingIndex, Window};

/// Outcome of checking one citation against the transcripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CitationVerdict {
    /// The quote occurs in the cited recording, with matching speaker and time.
    Verified,
    /// Only an approximate match exists in the cited recording.
    Close,
    /// Nothing resembling the quote exists in the cited recording (or elsewhere).
    NotFound,
    /// The quote occurs, but is said by another speaker than the cited one.
    WrongSpeaker,
    /// The quote occurs, but too far from the cited time.
    WrongTime,
    /// The cited recording is not among the transcripts.
    UnknownRecording,
    /// The quote is not in the cited recording but occurs in another one of the fiche.
    WrongRecording,
    /// The quote is empty (or only punctuation).
    Empty,
    /// The quote is a single word once normalised: not evidence.
    TooShort,
    /// The quote's text is found in the cited recording, but with other figures.
    FiguresDiffer,
}

impl CitationVerdict {
    /// The JSON name (`"VERIFIED"`, `"CLOSE"`, `"NOT_FOUND"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "VERIFIED",
            Self::Close => "CLOSE",
            Self::NotFound => "NOT_FOUND",
            Self::WrongSpeaker => "WRONG_SPEAKER",
            Self::WrongTime => "WRONG_TIME",
            Self::UnknownRecording => "UNKNOWN_RECORDING",
            Self::WrongRecording => "WRONG_RECORDING",
            Self::Empty => "EMPTY",
            Self::TooShort => "TOO_SHORT",
            Self::FiguresDiffer => "FIGURES_DIFFER",
        }
    }

    /// Whether this verdict counts as "close" when downgrading an unverified claim: the
    /// words were said, only not where or by whom the citation says (CLOSE,
    /// WRONG_SPEAKER, WRONG_TIME, and WRONG_RECORDING: found verbatim in another
    /// recording of the same fiche). A quote with other figures (FIGURES_DIFFER) states
    /// something else, so it is not close; nor is a one-word one (TOO_SHORT).
    pub fn is_close(self) -> bool {
        matches!(
            self,
            Self::Close | Self::WrongSpeaker | Self::WrongTime | Self::WrongRecording
        )
    }
}

impl std::fmt::Display for CitationVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of checking one citation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitationCheck {
    /// The quote as cited.
    pub quote: String,
    /// The recording as cited.
    pub recording_id: String,
    /// The outcome.
    pub verdict: CitationVerdict,
    /// Similarity in `[0, 1]` of the best (or retained) matching window; 0 when no
    /// search was made.
    pub similarity: f64,
    /// Transcript words of the retained matching window, when there is one.
    #[serde(default)]
    pub matched_text: Option<String>,
    /// Start time (seconds) of the retained matching window, when known.
    #[serde(default)]
    pub matched_start_s: Option<f64>,
    /// Short English explanation.
    pub reason: String,
}

/// Thresholds for evidence gating.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GatingOptions {
    /// Minimum window similarity for a quote to count as found (default 0.85).
    pub accept_similarity: f64,
    /// Minimum best similarity for a quote to count as close (default 0.6).
    pub close_similarity: f64,
    /// Maximum distance in seconds between cited and matched start times (default 15).
    pub time_tolerance_s: f64,
}

impl Default for GatingOptions {
    fn default() -> Self {
        Self {
            accept_similarity: 0.85,
            close_similarity: 0.6,
            time_tolerance_s: 15.0,
        }
    }
}

impl GatingOptions {
    /// Options with every non-finite value replaced by its default and the similarity
    /// thresholds clamped to `[0, 1]`, the tolerance to `≥ 0`.
    fn sanitized(&self) -> Self {
        let d = Self::default();
        let pick = |v: f64, default: f64| if v.is_finite() { v } else { default };
        Self {
            accept_similarity: pick(self.accept_similarity, d.accept_similarity).clamp(0.0, 1.0),
            close_similarity: pick(self.close_similarity, d.close_similarity).clamp(0.0, 1.0),
            time_tolerance_s: pick(self.time_tolerance_s, d.time_tolerance_s).max(0.0),
        }
    }
}

/// Checks one citation against the transcripts of the fiche.
///
/// In order: an empty quote → EMPTY; a quote of one word → TOO_SHORT; an unknown
/// `recording_id` → UNKNOWN_RECORDING; a quote found in the cited recording (a window of
/// the quote's token count ±2 with similarity ≥ `accept_similarity` and the quote's
/// figures) → VERIFIED if some such occurrence has the cited speaker as majority speaker
/// and starts within `time_tolerance_s` of the cited time (each only when given and
/// checkable), else WRONG_SPEAKER / WRONG_TIME; otherwise a quote found in another
/// recording → WRONG_RECORDING; otherwise a window that would be found but for its
/// figures → FIGURES_DIFFER; otherwise a best similarity (among windows with the quote's
/// figures) ≥ `close_similarity` → CLOSE; else NOT_FOUND.
///
/// Words are counted on the normalised quote, an elided article or pronoun belonging to
/// the next word: "Oui !" and "d'accord" are one word, "oui merci" two.
pub fn check_citation(
    c: &Citation,
    transcripts: &[Transcript],
    opts: &GatingOptions,
) -> CitationCheck {
    let indexes: Vec<RecordingIndex<'_>> =
        transcripts.iter().map(RecordingIndex::anchored).collect();
    check_with_indexes(c, &indexes, &opts.sanitized())
}

/// Gates one step analysis: every PRESENT/PARTIEL point gets one [`CitationCheck`] per
/// citation. With at least one VERIFIED citation the status stands; otherwise the point
/// is marked `evidence_unverified` with a reason and downgraded — PRESENT → PARTIEL if
/// some citation is close (see [`CitationVerdict::is_close`]) else ABSENT; PARTIEL stays
/// PARTIEL if some citation is close, else ABSENT — and `claimed_statut` records the
/// original status when it changed. ABSENT and NON_APPLICABLE points pass unchanged.
/// Gating never upgrades; recompute the step score with [`crate::scoring::score_step`].
pub fn gate_step(
    analysis: StepAnalysis,
    transcripts: &[Transcript],
    opts: &GatingOptions,
) -> StepAnalysis {
    let mut analysis = analysis;
    let opts = opts.sanitized();
    let needs_checks = analysis.points_controle.iter().any(|p| {
        matches!(
            p.statut,
            ControlPointStatus::Present | ControlPointStatus::Partiel
        )
    });
    let indexes: Vec<RecordingIndex<'_>> = if needs_checks {
        transcripts.iter().map(RecordingIndex::anchored).collect()
    } else {
        Vec::new()
    };
    for point in &mut analysis.points_controle {
        gate_point_with_indexes(point, &indexes, &opts);
    }
    analysis
}

/// Gates a single control point, as [`gate_step`] does for each of its points (for
/// control-point reruns).
pub fn gate_point(
    point: ControlPointVerdict,
    transcripts: &[Transcript],
    opts: &GatingOptions,
) -> ControlPointVerdict {
    let mut point = point;
    if matches!(
        point.statut,
        ControlPointStatus::Present | ControlPointStatus::Partiel
    ) {
        let indexes: Vec<RecordingIndex<'_>> =
            transcripts.iter().map(RecordingIndex::anchored).collect();
        gate_point_with_indexes(&mut point, &indexes, &opts.sanitized());
    }
    point
}

/// Whether gating checks a point's citations (PRESENT and PARTIEL claims).
fn needs_checks(point: &ControlPointVerdict) -> bool {
    matches!(
        point.statut,
        ControlPointStatus::Present | ControlPointStatus::Partiel
    )
}

/// At most this many check reasons are listed in an `evidence_reason`.
const MAX_REASONS_LISTED: usize = 3;

fn gate_point_with_indexes(
    point: &mut ControlPointVerdict,
    indexes: &[RecordingIndex<'_>],
    opts: &GatingOptions,
) {
    let claimed = point.statut;
    if !matches!(
        claimed,
        ControlPointStatus::Present | ControlPointStatus::Partiel
    ) {
        return;
    }
    let checks: Vec<CitationCheck> = point
        .citations
        .iter()
        .map(|c| check_with_indexes(c, indexes, opts))
        .collect();
    let verified = checks
        .iter()
        .any(|c| c.verdict == CitationVerdict::Verified);
    if verified {
        point.evidence_unverified = false;
        point.evidence_reason = None;
        point.claimed_statut = None;
    } else {
        let any_close = checks.iter().any(|c| c.verdict.is_close());
        let gated = if any_close {
            ControlPointStatus::Partiel
        } else {
            ControlPointStatus::Absent
        };
        point.evidence_unverified = true;
        point.evidence_reason = Some(summarize_checks(&checks));
        if gated != claimed {
            // Keep an earlier original claim when re-gating an already gated point.
            point.claimed_statut = Some(point.claimed_statut.unwrap_or(claimed));
            point.statut = gated;
        }
    }
    point.citation_checks = checks;
}

fn summarize_checks(checks: &[CitationCheck]) -> String {
    if checks.is_empty() {
        return "no citation".to_string();
    }
    let listed: Vec<&str> = checks
        .iter()
        .take(MAX_REASONS_LISTED)
        .map(|c| c.reason.as_str())
        .collect();
    let mut reason = format!(
        "no verified citation ({} checked): {}",
        checks.len(),
        listed.join("; ")
    );
    if checks.len() > MAX_REASONS_LISTED {
        reason.push_str(&format!("; and {} more", checks.len() - MAX_REASONS_LISTED));
    }
    reason
}

/// Formats a similarity for a reason, rounded down so it never reads as a threshold it
/// did not reach.
fn fmt_similarity(s: f64) -> String {
    format!("{:.2}", (s * 100.0).floor() / 100.0)
}

/// Shortens an identifier for use in a reason.
fn short(id: &str) -> String {
    const MAX: usize = 80;
    if id.chars().count() <= MAX {
        id.to_string()
    } else {
        let mut s: String = id.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// Elided articles and pronouns ("l'", "d'", "qu'"…): normalised, they are tokens of
/// their own, but they belong to the next word.
const ELIDED: &[&str] = &[
    "c", "d", "j", "l", "m", "n", "s", "t", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu", "presqu",
    "quelqu", "aujourd",
];

/// Words of a normalised quote, elided articles and pronouns not counted on their own.
fn word_count(normalized: &str) -> usize {
    normalized
        .split(' ')
        .filter(|t| !t.is_empty() && !ELIDED.contains(t))
        .count()
}

/// The search of one quote in one recording: the indexed one when the index has its
/// anchors, else the exhaustive one (the reference, see `check_citation_exhaustive`).
/// The indexed one leaves `best` out (see [`best_in`]).
fn search_in(
    index: &RecordingIndex<'_>,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> matching::SearchResult {
    if index.grams.is_some() {
        indexed::search(index, quote, quote_figures, token_count, accept, false)
    } else {
        matching::search_exhaustive(index, quote, quote_figures, token_count, accept)
    }
}

/// The `best` of a [`search_in`] that accepted nothing: computed only when a verdict
/// needs it (WRONG_RECORDING's reason, CLOSE, NOT_FOUND), the costliest part.
fn best_in(
    index: &RecordingIndex<'_>,
    found: &matching::SearchResult,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> Option<Window> {
    if index.grams.is_some() {
        indexed::best_of(index, quote, quote_figures, token_count, accept, found)
    } else {
        found.best
    }
}

/// How one accepted occurrence fares against the citation's speaker and time.
struct Occurrence {
    window: Window,
    speaker_ok: bool,
    majority_speaker: Option<String>,
    start_s: Option<f64>,
    time_ok: bool,
}

fn check_with_indexes(
    c: &Citation,
    indexes: &[RecordingIndex<'_>],
    opts: &GatingOptions,
) -> CitationCheck {
    let mut check = CitationCheck {
        quote: c.quote.clone(),
        recording_id: c.recording_id.clone(),
        verdict: CitationVerdict::Empty,
        similarity: 0.0,
        matched_text: None,
        matched_start_s: None,
        reason: String::new(),
    };
    let quote_norm = normalize(&c.quote);
    if quote_norm.is_empty() {
        check.reason = "empty quote".to_string();
        return check;
    }
    if word_count(&quote_norm) < 2 {
        check.verdict = CitationVerdict::TooShort;
        check.reason = "a one-word quote is not evidence".to_string();
        return check;
    }
    let cited_id = c.recording_id.trim();
    let Some(named) = indexes
        .iter()
        .find(|ix| ix.recording_id().trim() == cited_id)
    else {
        check.verdict = CitationVerdict::UnknownRecording;
        check.reason = format!("recording {} is not among the transcripts", short(cited_id));
        return check;
    };
    let quote: Vec<char> = quote_norm.chars().collect();
    let quote_figures = figures::quote_figures(&c.quote);
    let token_count = quote_norm.split(' ').count();
    let found = search_in(
        named,
        &quote,
        &quote_figures,
        token_count,
        opts.accept_similarity,
    );

    if !found.accepted.is_empty() {
        let cited_speaker = c
            .speaker
            .as_deref()
            .map(normalize)
            .filter(|s| !s.is_empty());
        let cited_time = c.start_s.filter(|t| t.is_finite());
        let occurrences: Vec<Occurrence> = found
            .accepted
            .iter()
            .map(|w| {
                let speakers = named.window_speakers(w);
                let top = speakers.iter().map(|(_, _, n)| *n).max().unwrap_or(0);
                let majority_speaker = speakers
                    .iter()
                    .find(|(_, _, n)| *n == top)
                    .map(|(_, label, _)| label.clone());
                let speaker_ok = match &cited_speaker {
                    // Ties: the cited speaker only needs to be among the most frequent.
                    Some(cited) if !speakers.is_empty() => {
                        speakers.iter().any(|(key, _, n)| key == cited && *n == top)
                    }
                    _ => true,
                };
                let start_s = named.window_start_s(w);
                let time_ok = match (cited_time, start_s) {
                    (Some(cited), Some(start)) => (start - cited).abs() <= opts.time_tolerance_s,
                    _ => true,
                };
                Occurrence {
                    window: *w,
                    speaker_ok,
                    majority_speaker,
                    start_s,
                    time_ok,
                }
            })
            .collect();

        let distance = |o: &Occurrence| match (cited_time, o.start_s) {
            (Some(cited), Some(start)) => (start - cited).abs(),
            _ => 0.0,
        };
        // Occurrences are most similar first; among equally similar ones prefer the
        // closest to the cited time.
        let closest = |a: &&Occurrence, b: &&Occurrence| {
            b.window
                .similarity
                .total_cmp(&a.window.similarity)
                .then(distance(a).total_cmp(&distance(b)))
        };
        let (verdict, chosen) = if let Some(o) = occurrences
            .iter()
            .filter(|o| o.speaker_ok && o.time_ok)
            .min_by(closest)
        {
            (CitationVerdict::Verified, o)
        } else if let Some(o) = occurrences
            .iter()
            .filter(|o| o.speaker_ok)
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        {
            (CitationVerdict::WrongTime, o)
        } else if let Some(o) = occurrences.first() {
            (CitationVerdict::WrongSpeaker, o)
        } else {
            // Unreachable: `accepted` is non-empty.
            check.verdict = CitationVerdict::NotFound;
            check.reason = format!("quote not found in recording {}", short(cited_id));
            return check;
        };
        check.verdict = verdict;
        check.similarity = chosen.window.similarity;
        check.matched_text = Some(named.window_text(&chosen.window));
        check.matched_start_s = chosen.start_s;
        let at = chosen
            .start_s
            .map(|t| format!(" at {t:.1}s"))
            .unwrap_or_default();
        check.reason = match verdict {
            CitationVerdict::Verified => format!(
                "quote found in recording {}{at} (similarity {})",
                short(cited_id),
                fmt_similarity(chosen.window.similarity)
            ),
            CitationVerdict::WrongTime => format!(
                "quote found in recording {}{at}, more than {}s from the cited {:.1}s",
                short(cited_id),
                opts.time_tolerance_s,
                cited_time.unwrap_or_default()
            ),
            _ => format!(
                "quote found in recording {}{at} but spoken by {}, not {}",
                short(cited_id),
                short(
                    chosen
                        .majority_speaker
                        .as_deref()
                        .unwrap_or("another speaker")
                ),
                short(c.speaker.as_deref().map(str::trim).unwrap_or_default())
            ),
        };
        return check;
    }

    let best = std::cell::OnceCell::new();
    let best_window = || {
        *best.get_or_init(|| {
            best_in(
                named,
                &found,
                &quote,
                &quote_figures,
                token_count,
                opts.accept_similarity,
            )
        })
    };
    let best_similarity = || best_window().map_or(0.0, |b| b.similarity);
    for other in indexes
        .iter()
        .filter(|ix| ix.recording_id().trim() != cited_id)
    {
        let elsewhere = search_in(
            other,
            &quote,
            &quote_figures,
            token_count,
            opts.accept_similarity,
        );
        if let Some(w) = elsewhere.accepted.first() {
            check.verdict = CitationVerdict::WrongRecording;
            check.similarity = w.similarity;
            check.matched_text = Some(other.window_text(w));
            check.matched_start_s = other.window_start_s(w);
            let at = check
                .matched_start_s
                .map(|t| format!(" at {t:.1}s"))
                .unwrap_or_default();
            check.reason = format!(
                "quote not found in recording {} (best similarity {}) but found in recording {}{at}, another recording of the fiche",
                short(cited_id),
                fmt_similarity(best_similarity()),
                short(other.recording_id())
            );
            return check;
        }
    }

    if let Some(w) = found.figures_differ {
        check.verdict = CitationVerdict::FiguresDiffer;
        check.similarity = w.similarity;
        check.matched_text = Some(named.window_text(&w));
        check.matched_start_s = named.window_start_s(&w);
        let at = check
            .matched_start_s
            .map(|t| format!(" at {t:.1}s"))
            .unwrap_or_default();
        let list = |figures: &[&str]| {
            if figures.is_empty() {
                "none".to_string()
            } else {
                figures.join(", ")
            }
        };
        let quoted: Vec<&str> = quote_figures.iter().map(String::as_str).collect();
        check.reason = format!(
            "quote found in recording {}{at} but with other figures (transcript: {}; quote: {})",
            short(cited_id),
            list(&named.window_figures(&w)),
            list(&quoted)
        );
        return check;
    }

    check.similarity = best_similarity();
    if let Some(best) = best_window().filter(|b| b.similarity >= opts.close_similarity) {
        check.verdict = CitationVerdict::Close;
        check.matched_text = Some(named.window_text(&best));
        check.matched_start_s = named.window_start_s(&best);
        check.reason = format!(
            "quote only approximately found in recording {} (similarity {})",
            short(cited_id),
            fmt_similarity(best.similarity)
        );
    } else {
        check.verdict = CitationVerdict::NotFound;
        check.reason = format!(
            "quote not found in recording {} (best similarity {})",
            short(cited_id),
            fmt_similarity(best_similarity())
        );
    }
    check
}

#[cfg(test)]
mod tests;
