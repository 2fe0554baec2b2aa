//! Evidence gating: every PRESENT/PARTIEL claim must be backed by a quote that really
//! occurs in the cited recording (tolerating small ASR differences), said by the cited
//! speaker around the cited time. Claims without a verified quote are downgraded.
//!
//! Matching works on [`normalize`]d text. The recording's words are turned into a token
//! sequence (each token remembers its word, hence its time and speaker); the quote is
//! compared, character by character, with every window of the quote's token count ±2.
//! A semi-global edit-distance pass gives a cheap upper bound on each window's
//! similarity, so exact Levenshtein ratios are only computed for windows that can matter:
//! the result is the same as scoring every window, in O(recording chars × quote chars).

use serde::{Deserialize, Serialize};

use crate::analysis::{Citation, ControlPointStatus, ControlPointVerdict, StepAnalysis};
use crate::text::{levenshtein, normalize};
use crate::transcript::{Transcript, join_words};

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
    /// The quote is not in the cited recording but occurs in another one.
    WrongRecording,
    /// The quote is empty (or only punctuation).
    Empty,
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
        }
    }

    /// Whether this verdict counts as "close" when downgrading an unverified claim
    /// (CLOSE, WRONG_SPEAKER and WRONG_TIME do; WRONG_RECORDING does not).
    pub fn is_close(self) -> bool {
        matches!(self, Self::Close | Self::WrongSpeaker | Self::WrongTime)
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
/// In order: an empty quote → EMPTY; an unknown `recording_id` → UNKNOWN_RECORDING; a
/// quote found in the cited recording (a window of the quote's token count ±2 with
/// similarity ≥ `accept_similarity`) → VERIFIED if some such occurrence has the cited
/// speaker as majority speaker and starts within `time_tolerance_s` of the cited time
/// (each only when given and checkable), else WRONG_SPEAKER / WRONG_TIME; otherwise a
/// quote found in another recording → WRONG_RECORDING; otherwise a best similarity
/// ≥ `close_similarity` → CLOSE; else NOT_FOUND.
pub fn check_citation(
    c: &Citation,
    transcripts: &[Transcript],
    opts: &GatingOptions,
) -> CitationCheck {
    let indexes: Vec<RecordingIndex<'_>> = transcripts.iter().map(RecordingIndex::new).collect();
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
        transcripts.iter().map(RecordingIndex::new).collect()
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
            transcripts.iter().map(RecordingIndex::new).collect();
        gate_point_with_indexes(&mut point, &indexes, &opts.sanitized());
    }
    point
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

/// One normalised token of a recording, as a char range of [`RecordingIndex::chars`].
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    /// Index into the transcript's words; `None` when built from the plain text.
    word: Option<usize>,
}

/// A recording's normalised token sequence, built once per gating run.
struct RecordingIndex<'a> {
    transcript: &'a Transcript,
    /// Normalised tokens joined by single spaces.
    chars: Vec<char>,
    tokens: Vec<Token>,
}

impl<'a> RecordingIndex<'a> {
    fn new(transcript: &'a Transcript) -> Self {
        let mut index = Self {
            transcript,
            chars: Vec::new(),
            tokens: Vec::new(),
        };
        for (i, word) in transcript.words.iter().enumerate() {
            index.push_tokens(&normalize(&word.text), Some(i));
        }
        if index.tokens.is_empty() {
            // No usable words: fall back to the plain text (no times, no speakers).
            index.push_tokens(&normalize(&transcript.text), None);
        }
        index
    }

    fn push_tokens(&mut self, normalized: &str, word: Option<usize>) {
        for token in normalized.split(' ').filter(|t| !t.is_empty()) {
            if !self.chars.is_empty() {
                self.chars.push(' ');
            }
            let start = self.chars.len();
            self.chars.extend(token.chars());
            self.tokens.push(Token {
                start,
                end: self.chars.len(),
                word,
            });
        }
    }

    fn recording_id(&self) -> &str {
        &self.transcript.recording_id
    }

    /// Distinct word indices covered by a window, in order.
    fn window_words(&self, w: &Window) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for token in self.tokens.iter().skip(w.first).take(w.len) {
            if let Some(word) = token.word
                && out.last() != Some(&word)
            {
                out.push(word);
            }
        }
        out
    }

    /// Start time of a window's first word, when known.
    fn window_start_s(&self, w: &Window) -> Option<f64> {
        let word = self.tokens.get(w.first)?.word?;
        let start = self.transcript.words.get(word)?.start_s;
        start.is_finite().then_some(start)
    }

    /// The transcript's own words for a window (or the normalised tokens without words).
    fn window_text(&self, w: &Window) -> String {
        let words = self.window_words(w);
        if words.is_empty() {
            let (start, end) = self.window_char_range(w);
            return self
                .chars
                .get(start..end)
                .map(|cs| cs.iter().collect())
                .unwrap_or_default();
        }
        join_words(
            words
                .iter()
                .filter_map(|&i| self.transcript.words.get(i))
                .map(|w| w.text.as_str()),
        )
    }

    fn window_char_range(&self, w: &Window) -> (usize, usize) {
        match (
            self.tokens.get(w.first),
            self.tokens.get(w.first + w.len.saturating_sub(1)),
        ) {
            (Some(first), Some(last)) => (first.start, last.end),
            _ => (0, 0),
        }
    }

    /// Speaker counts over a window's distinct words, as `(normalised label, original
    /// label, count)` in order of first appearance; empty when no word carries a speaker.
    fn window_speakers(&self, w: &Window) -> Vec<(String, String, usize)> {
        let mut counts: Vec<(String, String, usize)> = Vec::new();
        for i in self.window_words(w) {
            let Some(label) = self
                .transcript
                .words
                .get(i)
                .and_then(|w| w.speaker.as_deref())
            else {
                continue;
            };
            let key = normalize(label);
            if key.is_empty() {
                continue;
            }
            match counts.iter_mut().find(|(k, _, _)| *k == key) {
                Some(entry) => entry.2 += 1,
                None => counts.push((key, label.trim().to_string(), 1)),
            }
        }
        counts
    }
}

/// A window of `len` tokens starting at token `first`, with its exact similarity.
#[derive(Debug, Clone, Copy)]
struct Window {
    first: usize,
    len: usize,
    similarity: f64,
}

/// Windows found for a quote in one recording.
struct SearchResult {
    /// The most similar window (earliest on ties).
    best: Option<Window>,
    /// Occurrences: the windows with similarity ≥ the accept threshold, keeping only the
    /// most similar of overlapping ones, most similar first.
    accepted: Vec<Window>,
}

/// `out[e]` = the smallest edit distance between `quote` and any substring of `text`
/// ending at char `e` (Sellers' semi-global alignment), for `e` in `0..=text.len()`.
fn min_distance_by_end(quote: &[char], text: &[char]) -> Vec<usize> {
    let m = quote.len();
    let mut col: Vec<usize> = (0..=m).collect();
    let mut out = Vec::with_capacity(text.len() + 1);
    out.push(m);
    for &tc in text {
        // col[j] holds the previous column; `diag` is previous col[j - 1].
        let mut diag = col[0];
        col[0] = 0;
        for j in 1..=m {
            let up = col[j];
            let substitution = diag + usize::from(quote[j - 1] != tc);
            let value = substitution.min(up + 1).min(col[j - 1] + 1);
            diag = up;
            col[j] = value;
        }
        out.push(col[m]);
    }
    out
}

/// Finds the windows of `index` (token counts `token_count` ± 2) most similar to `quote`.
fn search(
    index: &RecordingIndex<'_>,
    quote: &[char],
    token_count: usize,
    accept: f64,
) -> SearchResult {
    let mut result = SearchResult {
        best: None,
        accepted: Vec::new(),
    };
    let n = index.tokens.len();
    let m = quote.len();
    if n == 0 || m == 0 {
        return result;
    }
    let by_end = min_distance_by_end(quote, &index.chars);
    let min_len = token_count.saturating_sub(2).max(1);
    let max_len = token_count + 2;

    // Upper bound of each window's similarity: its edit distance is at least the best
    // distance of any substring ending where it ends, and at least the length difference.
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for first in 0..n {
        for len in min_len..=max_len {
            let Some(last) = index.tokens.get(first + len - 1) else {
                break;
            };
            let start = index.tokens[first].start;
            let width = last.end - start;
            let lower_bound = by_end
                .get(last.end)
                .copied()
                .unwrap_or(0)
                .max(width.abs_diff(m));
            let upper = 1.0 - lower_bound as f64 / width.max(m) as f64;
            candidates.push((upper, first, len));
        }
    }
    candidates.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.abs_diff(token_count).cmp(&b.2.abs_diff(token_count)))
    });

    for (upper, first, len) in candidates {
        let best_so_far = result.best.map_or(-1.0, |b| b.similarity);
        if upper < accept && upper <= best_so_far {
            // Sorted by decreasing bound: no later window can be accepted or beat the best.
            break;
        }
        let window = Window {
            first,
            len,
            similarity: 0.0,
        };
        let (start, end) = index.window_char_range(&window);
        let Some(text) = index.chars.get(start..end) else {
            continue;
        };
        let distance = levenshtein(quote, text);
        let similarity = (1.0 - distance as f64 / text.len().max(m) as f64).clamp(0.0, 1.0);
        let window = Window {
            similarity,
            ..window
        };
        if similarity >= accept {
            result.accepted.push(window);
        }
        if similarity > best_so_far {
            result.best = Some(window);
        }
    }
    result.accepted = non_overlapping(result.accepted, token_count, n);
    result
}

/// Keeps, among overlapping accepted windows, only the best one (most similar, then
/// closest to the quote's token count, then earliest), so that each occurrence of the
/// quote is judged on its best alignment — a window shifted by one word must not pass a
/// time or speaker check the real occurrence fails.
fn non_overlapping(
    mut windows: Vec<Window>,
    token_count: usize,
    token_total: usize,
) -> Vec<Window> {
    windows.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(
                a.len
                    .abs_diff(token_count)
                    .cmp(&b.len.abs_diff(token_count)),
            )
            .then(a.first.cmp(&b.first))
    });
    let mut covered = vec![false; token_total];
    let mut kept = Vec::new();
    for w in windows {
        let Some(range) = covered.get_mut(w.first..w.first + w.len) else {
            continue;
        };
        if range.iter().any(|&c| c) {
            continue;
        }
        range.iter_mut().for_each(|c| *c = true);
        kept.push(w);
    }
    kept
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
    let token_count = quote_norm.split(' ').count();
    let found = search(named, &quote, token_count, opts.accept_similarity);

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

    let best_similarity = found.best.map_or(0.0, |b| b.similarity);
    for other in indexes
        .iter()
        .filter(|ix| ix.recording_id().trim() != cited_id)
    {
        let elsewhere = search(other, &quote, token_count, opts.accept_similarity);
        if let Some(w) = elsewhere.accepted.first() {
            check.verdict = CitationVerdict::WrongRecording;
            check.similarity = w.similarity;
            check.matched_text = Some(other.window_text(w));
            check.matched_start_s = other.window_start_s(w);
            check.reason = format!(
                "quote not found in recording {} (best similarity {}) but found in recording {}",
                short(cited_id),
                fmt_similarity(best_similarity),
                short(other.recording_id())
            );
            return check;
        }
    }

    check.similarity = best_similarity;
    if let Some(best) = found.best.filter(|b| b.similarity >= opts.close_similarity) {
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
            fmt_similarity(best_similarity)
        );
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Conformite;
    use crate::scoring::score_step;
    use crate::transcript::Word;

    /// Builds a transcript from `(speaker, start_s, sentence)` turns, 0.4 s per word.
    fn transcript(recording_id: &str, turns: &[(&str, f64, &str)]) -> Transcript {
        let mut words = Vec::new();
        for (speaker, start, sentence) in turns {
            for (i, w) in sentence.split_whitespace().enumerate() {
                let start_s = start + 0.4 * i as f64;
                words.push(Word {
                    text: w.to_string(),
                    start_s,
                    end_s: start_s + 0.35,
                    speaker: Some(speaker.to_string()),
                });
            }
        }
        let text = join_words(words.iter().map(|w| w.text.as_str()));
        Transcript {
            recording_id: recording_id.to_string(),
            language: Some("fr".into()),
            text,
            words,
        }
    }

    fn call_1() -> Transcript {
        transcript(
            "rec-1",
            &[
                (
                    "speaker_0",
                    0.0,
                    "Bonjour, je suis Marc de la société Assurup, je vous appelle au sujet de votre mutuelle santé.",
                ),
                ("speaker_1", 8.0, "Oui, bonjour."),
                (
                    "speaker_0",
                    10.0,
                    "Cet appel est enregistré pour des raisons de qualité. Est-ce que vous êtes d'accord ?",
                ),
                ("speaker_1", 18.0, "Daccord, pas de souci."),
                (
                    "speaker_0",
                    21.0,
                    "Alors la cotisation mensuel est de 29,90 € et je vous envoie le contrat par mail.",
                ),
                ("speaker_1", 30.0, "Oui."),
                (
                    "speaker_0",
                    31.0,
                    "Vous pouvez résilier à tout moment, sans frais.",
                ),
                ("speaker_1", 36.0, "Très bien, merci. Oui."),
            ],
        )
    }

    fn call_2() -> Transcript {
        transcript(
            "rec-2",
            &[
                (
                    "speaker_0",
                    0.0,
                    "Bonjour madame, c'est encore Marc d'Assurup.",
                ),
                (
                    "speaker_0",
                    4.0,
                    "Je vous confirme la résiliation de votre ancien contrat auprès de votre banque.",
                ),
                ("speaker_1", 12.0, "Parfait, merci beaucoup."),
            ],
        )
    }

    fn fiche() -> Vec<Transcript> {
        vec![call_1(), call_2()]
    }

    fn cite(
        quote: &str,
        recording_id: &str,
        start_s: Option<f64>,
        speaker: Option<&str>,
    ) -> Citation {
        Citation {
            quote: quote.to_string(),
            recording_id: recording_id.to_string(),
            start_s,
            speaker: speaker.map(str::to_string),
        }
    }

    fn check(c: Citation) -> CitationCheck {
        check_citation(&c, &fiche(), &GatingOptions::default())
    }

    fn claim(
        index: usize,
        statut: ControlPointStatus,
        citations: Vec<Citation>,
    ) -> ControlPointVerdict {
        ControlPointVerdict {
            index,
            point: format!("Point de contrôle n°{index}"),
            statut,
            commentaire: "Selon l'analyse.".into(),
            citations,
            evidence_unverified: false,
            evidence_reason: None,
            claimed_statut: None,
            citation_checks: vec![],
        }
    }

    fn gate_one(point: ControlPointVerdict) -> ControlPointVerdict {
        let analysis = StepAnalysis {
            points_controle: vec![point],
            commentaire: String::new(),
        };
        let mut gated = gate_step(analysis, &fiche(), &GatingOptions::default());
        gated.points_controle.remove(0)
    }

    const FABRICATED: &str =
        "Je vous garantis un remboursement intégral de vos lunettes dès demain";
    const PARAPHRASE: &str = "je vais vous envoyer le contrat par mail";

    #[test]
    fn an_exact_quote_is_verified_with_its_time_and_text() {
        let r = check(cite(
            "je vous envoie le contrat par mail",
            "rec-1",
            Some(27.0),
            Some("speaker_0"),
        ));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert_eq!(r.similarity, 1.0);
        assert_eq!(
            r.matched_text.as_deref(),
            Some("je vous envoie le contrat par mail.")
        );
        let start = r.matched_start_s.unwrap_or(f64::NAN);
        // "je" is the 10th word of the turn starting at 21 s.
        assert!((start - (21.0 + 0.4 * 9.0)).abs() < 1e-9, "start {start}");
        assert!(r.reason.contains("rec-1"));
    }

    #[test]
    fn a_quote_with_missing_accents_is_verified() {
        let r = check(cite("Marc de la societe Assurup", "rec-1", None, None));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert_eq!(r.similarity, 1.0);
        let r = check(cite("tres bien merci", "rec-1", None, Some("speaker_1")));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    }

    #[test]
    fn a_quote_with_different_punctuation_and_case_is_verified() {
        let r = check(cite(
            "CET APPEL EST ENREGISTRÉ pour des raisons de qualité... Est ce que vous êtes d’accord?",
            "rec-1",
            Some(10.0),
            Some("speaker_0"),
        ));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert_eq!(r.similarity, 1.0);
    }

    #[test]
    fn an_asr_near_miss_is_verified() {
        // The transcript says "mensuel" (ASR dropped "le"): one-letter difference.
        let r = check(cite(
            "la cotisation mensuelle est de 29,90 €",
            "rec-1",
            None,
            Some("speaker_0"),
        ));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert!(
            r.similarity < 1.0 && r.similarity >= 0.85,
            "similarity {}",
            r.similarity
        );
        // "d'accord" quoted, "Daccord" transcribed.
        let r = check(cite(
            "D'accord, pas de souci.",
            "rec-1",
            Some(18.0),
            Some("speaker_1"),
        ));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert_eq!(r.matched_text.as_deref(), Some("Daccord, pas de souci."));
    }

    #[test]
    fn a_quote_with_an_extra_small_word_is_verified() {
        let r = check(cite(
            "Vous pouvez donc résilier à tout moment",
            "rec-1",
            Some(31.0),
            None,
        ));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert!(r.similarity >= 0.85 && r.similarity < 1.0);
    }

    #[test]
    fn a_totally_fabricated_quote_is_not_found() {
        let r = check(cite(FABRICATED, "rec-1", None, Some("speaker_0")));
        assert_eq!(r.verdict, CitationVerdict::NotFound, "{}", r.reason);
        assert!(r.similarity < 0.6);
        assert!(
            r.reason
                .starts_with("quote not found in recording rec-1 (best similarity 0."),
            "{}",
            r.reason
        );
        assert_eq!(r.matched_text, None);
    }

    #[test]
    fn a_close_paraphrase_is_close() {
        let r = check(cite(PARAPHRASE, "rec-1", None, Some("speaker_0")));
        assert_eq!(r.verdict, CitationVerdict::Close, "{}", r.reason);
        assert!(
            r.similarity >= 0.6 && r.similarity < 0.85,
            "similarity {}",
            r.similarity
        );
        assert!(
            r.matched_text
                .as_deref()
                .is_some_and(|t| t.contains("envoie le contrat"))
        );
    }

    #[test]
    fn a_quote_from_the_other_speaker_is_wrong_speaker() {
        let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_0")));
        assert_eq!(r.verdict, CitationVerdict::WrongSpeaker, "{}", r.reason);
        assert!(
            r.reason.contains("spoken by speaker_1, not speaker_0"),
            "{}",
            r.reason
        );
        let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("Speaker_1")));
        assert_eq!(
            r.verdict,
            CitationVerdict::Verified,
            "speaker labels compare normalised: {}",
            r.reason
        );
    }

    #[test]
    fn a_quote_cited_far_from_its_time_is_wrong_time() {
        let r = check(cite(
            "je vous envoie le contrat par mail",
            "rec-1",
            Some(300.0),
            Some("speaker_0"),
        ));
        assert_eq!(r.verdict, CitationVerdict::WrongTime, "{}", r.reason);
        assert!(r.reason.contains("300.0s"), "{}", r.reason);
        // The quote starts at 24.6 s; 39.0 is within 15 s, 40.0 is not.
        let r = check(cite(
            "je vous envoie le contrat par mail",
            "rec-1",
            Some(39.0),
            None,
        ));
        assert_eq!(
            r.verdict,
            CitationVerdict::Verified,
            "within the tolerance: {}",
            r.reason
        );
        let r = check(cite(
            "je vous envoie le contrat par mail",
            "rec-1",
            Some(40.0),
            None,
        ));
        assert_eq!(r.verdict, CitationVerdict::WrongTime, "{}", r.reason);
    }

    #[test]
    fn a_repeated_quote_is_verified_against_the_occurrence_matching_speaker_and_time() {
        // "Oui." is said by speaker_1 at 30 s and in "Très bien, merci. Oui." around 37 s.
        let r = check(cite("Oui", "rec-1", Some(37.0), Some("speaker_1")));
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert!(
            r.matched_start_s.is_some_and(|t| t > 36.0),
            "{:?}",
            r.matched_start_s
        );
        let r = check(cite("Oui", "rec-1", Some(30.0), Some("speaker_1")));
        assert_eq!(r.verdict, CitationVerdict::Verified);
        assert_eq!(r.matched_start_s, Some(30.0));
        let r = check(cite("Oui", "rec-1", Some(200.0), Some("speaker_1")));
        assert_eq!(r.verdict, CitationVerdict::WrongTime);
    }

    #[test]
    fn a_quote_from_another_recording_is_wrong_recording() {
        let r = check(cite(
            "Je vous confirme la résiliation de votre ancien contrat",
            "rec-1",
            None,
            None,
        ));
        assert_eq!(r.verdict, CitationVerdict::WrongRecording, "{}", r.reason);
        assert!(r.reason.contains("rec-2"), "{}", r.reason);
        assert_eq!(r.recording_id, "rec-1");
        assert_eq!(r.matched_start_s, Some(4.0));
    }

    #[test]
    fn a_citation_of_an_unknown_recording_is_unknown_recording() {
        let r = check(cite(
            "je vous envoie le contrat par mail",
            "rec-404",
            None,
            None,
        ));
        assert_eq!(r.verdict, CitationVerdict::UnknownRecording);
        assert!(r.reason.contains("rec-404"));
        let r = check_citation(
            &cite("Oui", "rec-1", None, None),
            &[],
            &GatingOptions::default(),
        );
        assert_eq!(r.verdict, CitationVerdict::UnknownRecording);
    }

    #[test]
    fn an_empty_quote_is_empty() {
        for quote in ["", "   ", "… ?!"] {
            let r = check(cite(quote, "rec-1", None, None));
            assert_eq!(r.verdict, CitationVerdict::Empty, "{quote:?}");
            assert_eq!(r.similarity, 0.0);
        }
    }

    #[test]
    fn a_transcript_without_words_is_searched_by_its_text() {
        let t = Transcript {
            recording_id: "rec-txt".into(),
            language: None,
            text: "Bonjour, je vous appelle pour votre contrat d'assurance habitation.".into(),
            words: vec![],
        };
        let r = check_citation(
            &cite(
                "votre contrat d'assurance habitation",
                "rec-txt",
                Some(500.0),
                Some("speaker_0"),
            ),
            std::slice::from_ref(&t),
            &GatingOptions::default(),
        );
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
        assert_eq!(r.matched_start_s, None);
        assert_eq!(
            r.matched_text.as_deref(),
            Some("votre contrat d assurance habitation")
        );
    }

    #[test]
    fn window_search_agrees_with_brute_force() {
        let t = call_1();
        let index = RecordingIndex::new(&t);
        for quote in [
            PARAPHRASE,
            FABRICATED,
            "oui merci",
            "la cotisation mensuelle",
            "enregistre pour raisons",
        ] {
            let q: Vec<char> = normalize(quote).chars().collect();
            let k = normalize(quote).split(' ').count();
            let found = search(&index, &q, k, 0.85);
            let mut brute: f64 = 0.0;
            for first in 0..index.tokens.len() {
                for len in k.saturating_sub(2).max(1)..=k + 2 {
                    let w = Window {
                        first,
                        len,
                        similarity: 0.0,
                    };
                    if first + len > index.tokens.len() {
                        continue;
                    }
                    let (s, e) = index.window_char_range(&w);
                    brute = brute.max(crate::text::similarity_chars(&q, &index.chars[s..e]));
                }
            }
            let best = found.best.map_or(0.0, |b| b.similarity);
            assert!((best - brute).abs() < 1e-12, "{quote}: {best} vs {brute}");
        }
    }

    #[test]
    fn a_long_transcript_is_checked_quickly() {
        let filler = "alors euh oui donc je regarde votre dossier et je vois que tout est en ordre pour le moment";
        let mut turns: Vec<(&str, f64, &str)> = Vec::new();
        for i in 0..550 {
            let speaker = if i % 2 == 0 { "speaker_0" } else { "speaker_1" };
            turns.push((speaker, i as f64 * 8.0, filler));
        }
        turns.push((
            "speaker_0",
            4400.0,
            "Je vous confirme que le contrat prend effet le premier du mois.",
        ));
        let t = transcript("rec-long", &turns);
        assert!(t.words.len() > 10_000);
        let started = std::time::Instant::now();
        let ok = check_citation(
            &cite(
                "le contrat prend effet le premier du mois",
                "rec-long",
                Some(4402.0),
                Some("speaker_0"),
            ),
            std::slice::from_ref(&t),
            &GatingOptions::default(),
        );
        let ko = check_citation(
            &cite(FABRICATED, "rec-long", None, None),
            std::slice::from_ref(&t),
            &GatingOptions::default(),
        );
        assert_eq!(ok.verdict, CitationVerdict::Verified, "{}", ok.reason);
        assert_eq!(ko.verdict, CitationVerdict::NotFound, "{}", ko.reason);
        assert!(
            started.elapsed().as_secs() < 20,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_present_claim_with_a_verified_citation_stays_present() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![
                cite(FABRICATED, "rec-1", None, None),
                cite(
                    "Cet appel est enregistré",
                    "rec-1",
                    Some(10.0),
                    Some("speaker_0"),
                ),
            ],
        ));
        assert_eq!(p.statut, ControlPointStatus::Present);
        assert!(!p.evidence_unverified);
        assert_eq!(p.evidence_reason, None);
        assert_eq!(p.claimed_statut, None);
        assert_eq!(p.citation_checks.len(), 2);
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::NotFound);
        assert_eq!(p.citation_checks[1].verdict, CitationVerdict::Verified);
    }

    #[test]
    fn a_present_claim_with_a_fabricated_quote_becomes_absent() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite(FABRICATED, "rec-1", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert!(p.evidence_unverified);
        assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
        let reason = p.evidence_reason.unwrap_or_default();
        assert!(
            reason.contains("quote not found in recording rec-1"),
            "{reason}"
        );
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::NotFound);
    }

    #[test]
    fn a_present_claim_with_a_close_paraphrase_becomes_partiel() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite(PARAPHRASE, "rec-1", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Partiel);
        assert!(p.evidence_unverified);
        assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::Close);
    }

    #[test]
    fn wrong_speaker_and_wrong_time_count_as_close() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite("Oui, bonjour.", "rec-1", None, Some("speaker_0"))],
        ));
        assert_eq!(p.statut, ControlPointStatus::Partiel);
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::WrongSpeaker);
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite(
                "Vous pouvez résilier à tout moment",
                "rec-1",
                Some(400.0),
                None,
            )],
        ));
        assert_eq!(p.statut, ControlPointStatus::Partiel);
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::WrongTime);
    }

    #[test]
    fn a_present_claim_citing_the_wrong_recording_becomes_absent() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite(
                "Je vous confirme la résiliation de votre ancien contrat",
                "rec-1",
                None,
                None,
            )],
        ));
        assert_eq!(
            p.citation_checks[0].verdict,
            CitationVerdict::WrongRecording
        );
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert!(p.evidence_reason.unwrap_or_default().contains("rec-2"));
    }

    #[test]
    fn a_present_claim_citing_an_unknown_recording_becomes_absent() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite("Oui, bonjour.", "rec-9", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert_eq!(
            p.citation_checks[0].verdict,
            CitationVerdict::UnknownRecording
        );
        assert!(p.evidence_unverified);
    }

    #[test]
    fn a_present_claim_without_citation_becomes_absent() {
        let p = gate_one(claim(0, ControlPointStatus::Present, vec![]));
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert!(p.evidence_unverified);
        assert_eq!(p.evidence_reason.as_deref(), Some("no citation"));
        assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
        assert!(p.citation_checks.is_empty());
    }

    #[test]
    fn a_claim_with_only_an_empty_quote_becomes_absent() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Present,
            vec![cite("  ", "rec-1", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert_eq!(p.citation_checks[0].verdict, CitationVerdict::Empty);
    }

    #[test]
    fn a_partiel_claim_with_a_close_citation_stays_partiel_but_unverified() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Partiel,
            vec![cite(PARAPHRASE, "rec-1", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Partiel);
        assert!(p.evidence_unverified);
        assert!(p.evidence_reason.is_some());
        assert_eq!(
            p.claimed_statut, None,
            "status unchanged, so no claimed_statut"
        );
    }

    #[test]
    fn a_partiel_claim_without_close_citation_becomes_absent() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Partiel,
            vec![cite(FABRICATED, "rec-1", None, None)],
        ));
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert_eq!(p.claimed_statut, Some(ControlPointStatus::Partiel));
    }

    #[test]
    fn a_partiel_claim_with_a_verified_citation_stays_partiel() {
        let p = gate_one(claim(
            0,
            ControlPointStatus::Partiel,
            vec![cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_1"))],
        ));
        assert_eq!(
            p.statut,
            ControlPointStatus::Partiel,
            "gating never upgrades"
        );
        assert!(!p.evidence_unverified);
    }

    #[test]
    fn non_applicable_claims_are_untouched() {
        let original = claim(
            0,
            ControlPointStatus::NonApplicable,
            vec![cite(FABRICATED, "rec-404", None, None)],
        );
        assert_eq!(gate_one(original.clone()), original);
    }

    #[test]
    fn absent_claims_are_untouched() {
        let original = claim(
            0,
            ControlPointStatus::Absent,
            vec![cite(FABRICATED, "rec-1", None, None)],
        );
        assert_eq!(gate_one(original.clone()), original);
        let bare = claim(1, ControlPointStatus::Absent, vec![]);
        assert_eq!(gate_one(bare.clone()), bare);
    }

    #[test]
    fn gating_twice_gives_the_same_result() {
        let analysis = StepAnalysis {
            points_controle: vec![
                claim(
                    0,
                    ControlPointStatus::Present,
                    vec![cite(PARAPHRASE, "rec-1", None, None)],
                ),
                claim(
                    1,
                    ControlPointStatus::Present,
                    vec![cite(FABRICATED, "rec-1", None, None)],
                ),
                claim(
                    2,
                    ControlPointStatus::Present,
                    vec![cite("Oui, bonjour.", "rec-1", None, None)],
                ),
            ],
            commentaire: "Étape de présentation.".into(),
        };
        let once = gate_step(analysis, &fiche(), &GatingOptions::default());
        let twice = gate_step(once.clone(), &fiche(), &GatingOptions::default());
        assert_eq!(once, twice);
        assert_eq!(
            twice.points_controle[0].claimed_statut,
            Some(ControlPointStatus::Present)
        );
    }

    #[test]
    fn gate_point_gates_a_single_control_point() {
        let p = gate_point(
            claim(
                4,
                ControlPointStatus::Present,
                vec![cite(FABRICATED, "rec-2", None, None)],
            ),
            &fiche(),
            &GatingOptions::default(),
        );
        assert_eq!(p.statut, ControlPointStatus::Absent);
        assert_eq!(p.index, 4);
    }

    #[test]
    fn gated_step_then_score_step_gives_the_expected_verdict() {
        let analysis = StepAnalysis {
            points_controle: vec![
                // Verified: stays PRESENT.
                claim(
                    0,
                    ControlPointStatus::Present,
                    vec![cite(
                        "Cet appel est enregistré",
                        "rec-1",
                        Some(10.0),
                        Some("speaker_0"),
                    )],
                ),
                // Fabricated: PRESENT → ABSENT.
                claim(
                    1,
                    ControlPointStatus::Present,
                    vec![cite(FABRICATED, "rec-1", None, None)],
                ),
                // Paraphrase: PRESENT → PARTIEL.
                claim(
                    2,
                    ControlPointStatus::Present,
                    vec![cite(PARAPHRASE, "rec-1", Some(25.0), None)],
                ),
                // Untouched.
                claim(3, ControlPointStatus::NonApplicable, vec![]),
            ],
            commentaire: "Étape de présentation.".into(),
        };
        let claimed = score_step(10.0, &analysis.points_controle);
        assert_eq!(claimed.conforme, Conformite::Conforme);
        let gated = gate_step(analysis, &fiche(), &GatingOptions::default());
        let statuses: Vec<ControlPointStatus> =
            gated.points_controle.iter().map(|p| p.statut).collect();
        assert_eq!(
            statuses,
            vec![
                ControlPointStatus::Present,
                ControlPointStatus::Absent,
                ControlPointStatus::Partiel,
                ControlPointStatus::NonApplicable
            ]
        );
        let score = score_step(10.0, &gated.points_controle);
        assert!(
            (score.score - 5.0).abs() < 1e-12,
            "(1 + 0.5) / 3 × 10, got {}",
            score.score
        );
        assert_eq!(score.conforme, Conformite::Partiel);
        assert_eq!(gated.commentaire, "Étape de présentation.");
    }

    #[test]
    fn non_finite_options_fall_back_to_defaults() {
        let opts = GatingOptions {
            accept_similarity: f64::NAN,
            close_similarity: f64::INFINITY,
            time_tolerance_s: -5.0,
        };
        let r = check_citation(
            &cite("Oui, bonjour.", "rec-1", Some(8.0), None),
            &fiche(),
            &opts,
        );
        assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    }

    #[test]
    fn citation_check_serializes_with_screaming_snake_case_verdicts() {
        for (verdict, name) in [
            (CitationVerdict::Verified, "VERIFIED"),
            (CitationVerdict::Close, "CLOSE"),
            (CitationVerdict::NotFound, "NOT_FOUND"),
            (CitationVerdict::WrongSpeaker, "WRONG_SPEAKER"),
            (CitationVerdict::WrongTime, "WRONG_TIME"),
            (CitationVerdict::UnknownRecording, "UNKNOWN_RECORDING"),
            (CitationVerdict::WrongRecording, "WRONG_RECORDING"),
            (CitationVerdict::Empty, "EMPTY"),
        ] {
            assert_eq!(
                serde_json::to_value(verdict).ok(),
                Some(serde_json::Value::String(name.into()))
            );
            assert_eq!(verdict.as_str(), name);
        }
        let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_1")));
        let value = serde_json::to_value(&r).expect("serializable");
        for key in [
            "quote",
            "recording_id",
            "verdict",
            "similarity",
            "matched_text",
            "matched_start_s",
            "reason",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["verdict"], "VERIFIED");
        let back: CitationCheck = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, r);
        let minimal: CitationCheck = serde_json::from_str(
            r#"{"quote":"oui","recording_id":"rec-1","verdict":"NOT_FOUND","similarity":0.2,"reason":"quote not found"}"#,
        )
        .expect("optional fields default");
        assert_eq!(minimal.matched_text, None);
        assert_eq!(minimal.matched_start_s, None);
    }

    #[test]
    fn default_gating_options_match_the_design() {
        let d = GatingOptions::default();
        assert_eq!(
            (d.accept_similarity, d.close_similarity, d.time_tolerance_s),
            (0.85, 0.6, 15.0)
        );
    }
}
