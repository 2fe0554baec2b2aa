//! Finding a quote in a recording: the recording's normalised token sequence and the
//! bounded edit-distance search over its windows (see the module doc of `evidence`).

use std::collections::HashMap;
use std::sync::Arc;

use super::figures::{FigureToken, ends_phrase, figures};
use crate::text::{levenshtein, normalize};
use crate::transcript::{Transcript, join_words};

/// One normalised token of a recording, as a char range of [`RecordingIndex::chars`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub(super) start: usize,
    pub(super) end: usize,
    /// Index into the transcript's words; `None` when built from the plain text.
    pub(super) word: Option<usize>,
}

/// The transcript an index reads: borrowed for one gating run, shared when cached.
pub(super) enum TranscriptRef<'a> {
    Borrowed(&'a Transcript),
    Shared(Arc<Transcript>),
}

impl std::ops::Deref for TranscriptRef<'_> {
    type Target = Transcript;
    fn deref(&self) -> &Transcript {
        match self {
            Self::Borrowed(t) => t,
            Self::Shared(t) => t,
        }
    }
}

/// A recording's normalised token sequence, built once per gating run (or once per
/// worker and transcript, see `EvidenceIndex`).
pub(super) struct RecordingIndex<'a> {
    pub(super) transcript: TranscriptRef<'a>,
    /// Normalised tokens joined by single spaces.
    pub(super) chars: Vec<char>,
    pub(super) tokens: Vec<Token>,
    /// Each token's end, as in `tokens` (contiguous, for the scan's bounds).
    pub(super) token_ends: Vec<u32>,
    /// The recording's figures (see `figures`), in order.
    figures: Vec<String>,
    /// For each token, the index in `figures` of the figure it belongs to.
    token_figure: Vec<Option<usize>>,
    /// `figure_prefix[t]`: how many of the tokens before `t` belong to a figure.
    figure_prefix: Vec<u32>,
    /// `next_figure[t]`: the first token from `t` on that belongs to a figure (the token
    /// count when none), for `t` in `0..=tokens.len()`.
    pub(super) next_figure: Vec<usize>,
    /// Each char of `chars` as its code in `alphabet` (for the bit-parallel search).
    pub(super) codes: Vec<u32>,
    /// The distinct chars of `chars`, numbered in order of first appearance.
    pub(super) alphabet: HashMap<char, u32>,
    /// Anchors: where each char 4-gram of `chars` starts (see `indexed`); None until
    /// [`RecordingIndex::with_anchors`].
    pub(super) grams: Option<HashMap<u64, Vec<u32>>>,
    /// The same for char 2-grams (the q-gram count of short quotes and low thresholds).
    pub(super) pairs: Option<HashMap<u64, Vec<u32>>>,
    /// `codes` reversed (for the scan's bounds from the start of windows); empty until
    /// [`RecordingIndex::with_anchors`].
    pub(super) reversed: Vec<u32>,
}

impl<'a> RecordingIndex<'a> {
    pub(super) fn new(transcript: &'a Transcript) -> Self {
        Self::build(TranscriptRef::Borrowed(transcript))
    }

    /// [`RecordingIndex::new`] with its anchors, for the indexed search.
    pub(super) fn anchored(transcript: &'a Transcript) -> Self {
        Self::new(transcript).with_anchors()
    }

    /// An index sharing its transcript, for caching.
    pub(super) fn shared(transcript: Arc<Transcript>) -> RecordingIndex<'static> {
        RecordingIndex::build(TranscriptRef::Shared(transcript))
    }

    fn build(transcript: TranscriptRef<'a>) -> Self {
        let mut chars: Vec<char> = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        // Whether a phrase boundary precedes each token: figures in words never run
        // across punctuation or from one speaker to the next.
        let mut boundaries: Vec<bool> = Vec::new();
        let mut pending = false;
        let mut speaker: Option<&str> = None;
        for (i, word) in transcript.words.iter().enumerate() {
            let label = word.speaker_label();
            pending |= speaker.is_some_and(|s| s != label);
            speaker = Some(label);
            let normalized = normalize(&word.text);
            if push_tokens(
                &mut chars,
                &mut tokens,
                &normalized,
                Some(i),
                pending,
                &mut boundaries,
            ) {
                pending = false;
            }
            pending |= ends_phrase(&word.text);
        }
        if tokens.is_empty() {
            // No usable words: fall back to the plain text (no times, no speakers).
            boundaries.clear();
            let mut pending = false;
            for piece in transcript.text.split_whitespace() {
                let normalized = normalize(piece);
                if push_tokens(
                    &mut chars,
                    &mut tokens,
                    &normalized,
                    None,
                    pending,
                    &mut boundaries,
                ) {
                    pending = false;
                }
                pending |= ends_phrase(piece);
            }
        }
        let mut alphabet: HashMap<char, u32> = HashMap::new();
        let codes: Vec<u32> = chars
            .iter()
            .map(|c| {
                let next = u32::try_from(alphabet.len()).unwrap_or(u32::MAX);
                *alphabet.entry(*c).or_insert(next)
            })
            .collect();
        let mut index = Self {
            transcript,
            chars,
            token_ends: tokens
                .iter()
                .map(|t| u32::try_from(t.end).unwrap_or(u32::MAX))
                .collect(),
            tokens,
            figures: Vec::new(),
            token_figure: Vec::new(),
            figure_prefix: Vec::new(),
            next_figure: Vec::new(),
            codes,
            alphabet,
            grams: None,
            pairs: None,
            reversed: Vec::new(),
        };
        let texts: Vec<String> = index
            .tokens
            .iter()
            .map(|t| index.chars[t.start..t.end].iter().collect())
            .collect();
        let tokens: Vec<FigureToken<'_>> = texts
            .iter()
            .zip(&boundaries)
            .map(|(text, &boundary)| FigureToken { text, boundary })
            .collect();
        index.token_figure = vec![None; index.tokens.len()];
        for (k, figure) in figures(&tokens).into_iter().enumerate() {
            for slot in index
                .token_figure
                .iter_mut()
                .take(figure.last + 1)
                .skip(figure.first)
            {
                *slot = Some(k);
            }
            index.figures.push(figure.value);
        }
        let mut count = 0u32;
        index.figure_prefix = std::iter::once(0)
            .chain(index.token_figure.iter().map(|f| {
                count += u32::from(f.is_some());
                count
            }))
            .collect();
        let n = index.tokens.len();
        index.next_figure = vec![n; n + 1];
        for t in (0..n).rev() {
            index.next_figure[t] = if index.token_figure[t].is_some() {
                t
            } else {
                index.next_figure[t + 1]
            };
        }
        index
    }

    /// Builds the anchors of the indexed search (`indexed::find_accepted`).
    pub(super) fn with_anchors(mut self) -> Self {
        self.grams = Some(super::indexed::gram_postings(&self.codes, 4));
        self.pairs = Some(super::indexed::gram_postings(&self.codes, 2));
        self.reversed = self.codes.iter().rev().copied().collect();
        self
    }

    pub(super) fn recording_id(&self) -> &str {
        &self.transcript.recording_id
    }

    /// Distinct word indices covered by a window, in order.
    pub(super) fn window_words(&self, w: &Window) -> Vec<usize> {
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
    pub(super) fn window_start_s(&self, w: &Window) -> Option<f64> {
        let word = self.tokens.get(w.first)?.word?;
        let start = self.transcript.words.get(word)?.start_s;
        start.is_finite().then_some(start)
    }

    /// The transcript's own words for a window (or the normalised tokens without words).
    pub(super) fn window_text(&self, w: &Window) -> String {
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

    pub(super) fn window_char_range(&self, w: &Window) -> (usize, usize) {
        match (
            self.tokens.get(w.first),
            self.tokens.get(w.first + w.len.saturating_sub(1)),
        ) {
            (Some(first), Some(last)) => (first.start, last.end),
            _ => (0, 0),
        }
    }

    /// The figures of the recording that a window touches, in order: a figure the window
    /// only partly covers counts whole ("neuf euros" in "vingt-neuf euros" touches 29).
    pub(super) fn window_figures(&self, w: &Window) -> Vec<&str> {
        let mut out: Vec<usize> = Vec::new();
        for figure in self.token_figure.iter().skip(w.first).take(w.len).flatten() {
            if out.last() != Some(figure) {
                out.push(*figure);
            }
        }
        out.into_iter().map(|f| self.figures[f].as_str()).collect()
    }

    /// Whether a window states exactly the quote's figures, in the same order.
    pub(super) fn window_figures_match(&self, w: &Window, quote_figures: &[String]) -> bool {
        // Called for every candidate window: no allocation.
        let mut expected = quote_figures.iter();
        let mut previous: Option<usize> = None;
        for &figure in self.token_figure.iter().skip(w.first).take(w.len).flatten() {
            if previous == Some(figure) {
                continue;
            }
            previous = Some(figure);
            if expected.next() != Some(&self.figures[figure]) {
                return false;
            }
        }
        expected.next().is_none()
    }

    /// [`RecordingIndex::window_figures_match`], in constant time for a quote without
    /// figures (the window must then touch none).
    pub(super) fn window_figures_match_fast(&self, w: &Window, quote_figures: &[String]) -> bool {
        if quote_figures.is_empty() {
            return match (
                self.figure_prefix.get(w.first),
                self.figure_prefix.get(w.first + w.len),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => self.window_figures_match(w, quote_figures),
            };
        }
        self.window_figures_match(w, quote_figures)
    }

    /// Whether some figure of the recording has this value.
    pub(super) fn has_figure(&self, value: &str) -> bool {
        self.figures.iter().any(|f| f == value)
    }

    /// The tokens belonging to a figure of this value, in order.
    pub(super) fn figure_tokens<'s>(&'s self, value: &'s str) -> impl Iterator<Item = usize> + 's {
        self.token_figure
            .iter()
            .enumerate()
            .filter_map(move |(t, f)| f.filter(|&f| self.figures[f] == value).map(|_| t))
    }

    /// Speaker counts over a window's distinct words, as `(normalised label, original
    /// label, count)` in order of first appearance; empty when no word carries a speaker.
    pub(super) fn window_speakers(&self, w: &Window) -> Vec<(String, String, usize)> {
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

/// Appends the tokens of one word (or piece of text), the first one preceded by a
/// phrase boundary when `boundary`; true when some token was added.
fn push_tokens(
    chars: &mut Vec<char>,
    tokens: &mut Vec<Token>,
    normalized: &str,
    word: Option<usize>,
    boundary: bool,
    boundaries: &mut Vec<bool>,
) -> bool {
    let before = tokens.len();
    for token in normalized.split(' ').filter(|t| !t.is_empty()) {
        boundaries.push(boundary && tokens.len() == before);
        if !chars.is_empty() {
            chars.push(' ');
        }
        let start = chars.len();
        chars.extend(token.chars());
        tokens.push(Token {
            start,
            end: chars.len(),
            word,
        });
    }
    tokens.len() > before
}

/// A window of `len` tokens starting at token `first`, with its exact similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Window {
    pub(super) first: usize,
    pub(super) len: usize,
    pub(super) similarity: f64,
}

/// Windows found for a quote in one recording.
pub(super) struct SearchResult {
    /// The most similar window (earliest on ties).
    pub(super) best: Option<Window>,
    /// Occurrences: the windows with similarity ≥ the accept threshold, keeping only the
    /// most similar of overlapping ones, most similar first.
    pub(super) accepted: Vec<Window>,
    /// The most similar window with similarity ≥ the accept threshold whose figures
    /// differ from the quote's, when there is one.
    pub(super) figures_differ: Option<Window>,
    /// A lower bound of `best`'s similarity found on the way, when `best` was not asked
    /// for (`indexed::best_of` starts from it); None when unknown.
    pub(super) floor: Option<f64>,
}

/// `out[e]` = the smallest edit distance between `quote` and any substring of `text`
/// ending at char `e` (Sellers' semi-global alignment), for `e` in `0..=text.len()`.
pub(super) fn min_distance_by_end(quote: &[char], text: &[char]) -> Vec<usize> {
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

/// Finds the windows of `index` (token counts `token_count` ± 2) most similar to `quote`,
/// by scoring every window: the search as it was before the indexed one
/// (`indexed::search`), kept as the reference the indexed one is tested and benchmarked
/// against.
///
/// Only windows stating the quote's figures (`quote_figures`) can be the best or
/// accepted: figures are exact, whatever the similarity. The most similar window that
/// would have been accepted but for its figures is kept apart, to say so.
pub(super) fn search_exhaustive(
    index: &RecordingIndex<'_>,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> SearchResult {
    let mut result = SearchResult {
        best: None,
        accepted: Vec::new(),
        figures_differ: None,
        floor: None,
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
        let figures_match = index.window_figures_match(&window, quote_figures);
        if !figures_match && upper < accept {
            // Can be neither accepted, nor the best, nor an accepted-but-for-figures one.
            continue;
        }
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
        if !figures_match {
            let differ_so_far = result.figures_differ.map_or(-1.0, |w| w.similarity);
            if similarity >= accept && similarity > differ_so_far {
                result.figures_differ = Some(window);
            }
            continue;
        }
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
pub(super) fn non_overlapping(
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
