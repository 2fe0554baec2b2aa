//! The indexed search: the windows the exhaustive search (`matching::search_exhaustive`)
//! finds, without scoring every window of the recording.
//!
//! - Accepted windows (similarity ≥ the accept threshold) are found from anchors. A
//!   window that similar is within `k` edits of the quote, `k` bounded by the threshold
//!   and the quote's length ([`max_distance`]). Cut `k + 1` disjoint char 4-grams out of
//!   the quote: `k` edits break at most `k` of them, so every such window holds one of
//!   them intact, starting within `k` chars of where it sits in the quote (pigeonhole).
//!   The 4-grams are chosen to be the rarest in the recording (fewest postings, see
//!   [`choose_pieces`]); only the windows starting near a posting are scored, with the
//!   bit-parallel distance. So the cost follows the rare parts of the quote, not the
//!   recording's length. Weak anchors — a quote of common words whose rarest choice
//!   still has more than [`MAX_ANCHOR_POSTINGS`] postings, a quote too short to cut
//!   `k + 1` grams from — fall back to the scan below, which is exact too.
//! - The best window below the threshold (needed only when nothing is accepted: it
//!   tells CLOSE from NOT_FOUND and says how close) has no such bound — a similarity of
//!   0.6 allows two edits in three chars — so it is found as the exhaustive search finds
//!   it, window by window in the same order, with the bit-parallel semi-global pass
//!   instead of the char by char one and a heap instead of sorting every window.
//!
//! Both give the exhaustive search's results exactly, ties included (equivalence tests
//! in `tests`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::matching::{RecordingIndex, SearchResult, Window, non_overlapping};
use super::myers::{Mode, Pattern};

/// Length of the anchors, in chars.
const GRAM: usize = 4;

/// Postings of the chosen anchors above which the recording is scanned instead.
pub(super) const MAX_ANCHOR_POSTINGS: usize = 4096;

/// The key of a 4-gram of codes (None for a code past 16 bits: not indexed).
fn gram_key(codes: &[u32]) -> Option<u64> {
    let mut key = 0u64;
    for &c in codes {
        if c >= 1 << 16 {
            return None;
        }
        key = (key << 16) | u64::from(c);
    }
    Some(key)
}

/// Where each 4-gram of `codes` starts.
pub(super) fn gram_postings(codes: &[u32]) -> HashMap<u64, Vec<u32>> {
    let mut out: HashMap<u64, Vec<u32>> = HashMap::new();
    for (p, gram) in codes.windows(GRAM).enumerate() {
        if let (Some(key), Ok(p)) = (gram_key(gram), u32::try_from(p)) {
            out.entry(key).or_default().push(p);
        }
    }
    out
}

/// Similarity of a window of `width` chars at edit distance `d` from a quote of `m`
/// chars, computed as the exhaustive search computes it.
fn similarity(d: usize, width: usize, m: usize) -> f64 {
    (1.0 - d as f64 / width.max(m) as f64).clamp(0.0, 1.0)
}

/// The largest edit distance of a window whose similarity to a quote of `m` chars
/// reaches `threshold`; None when the threshold is too low to bound it usefully.
pub(super) fn max_distance(m: usize, threshold: f64) -> Option<usize> {
    if threshold.is_nan() || threshold < 0.3 || m == 0 {
        return None;
    }
    // Wider windows than m / threshold are at least (width - m) edits away: too far.
    let cap = (m as f64 / threshold).ceil() as usize + 2;
    let mut k = 0;
    for width in 0..=cap {
        let lower = width.abs_diff(m);
        let mut d = ((1.0 - threshold) * width.max(m) as f64).floor() as usize + 1;
        while d > 0 && similarity(d, width, m) < threshold {
            d -= 1;
        }
        if d >= lower && similarity(d, width, m) >= threshold {
            k = k.max(d);
        }
    }
    Some(k)
}

/// Offsets of `pieces` disjoint 4-grams of the quote with the fewest postings in all
/// (`costs[j]`: postings of the gram at offset `j`, None when it cannot be looked up);
/// None when there is no such choice or it costs more than [`MAX_ANCHOR_POSTINGS`].
fn choose_pieces(costs: &[Option<usize>], pieces: usize, m: usize) -> Option<Vec<usize>> {
    const INF: usize = usize::MAX / 4;
    let width = pieces + 1;
    // best[i * width + c]: the cheapest c grams inside quote[..i].
    let mut best = vec![INF; (m + 1) * width];
    let mut took = vec![false; (m + 1) * width];
    for i in 0..=m {
        best[i * width] = 0;
    }
    for i in 1..=m {
        for c in 1..=pieces {
            let mut b = best[(i - 1) * width + c];
            let mut t = false;
            if i >= GRAM
                && let Some(Some(cost)) = costs.get(i - GRAM)
            {
                let previous = best[(i - GRAM) * width + c - 1];
                if previous < INF && previous + cost < b {
                    b = previous + cost;
                    t = true;
                }
            }
            best[i * width + c] = b;
            took[i * width + c] = t;
        }
    }
    if best[m * width + pieces] > MAX_ANCHOR_POSTINGS {
        return None;
    }
    let (mut i, mut c) = (m, pieces);
    let mut out = Vec::with_capacity(pieces);
    while c > 0 {
        if took[i * width + c] {
            out.push(i - GRAM);
            i -= GRAM;
            c -= 1;
        } else {
            i -= 1;
        }
    }
    Some(out)
}

/// The order in which the exhaustive search examines windows `(upper bound, first,
/// len)`: highest bound first, then earliest, then closest to the quote's token count,
/// then shortest (its sort is stable over windows generated by first then length).
fn examined_before(a: (f64, usize, usize), b: (f64, usize, usize), token_count: usize) -> Ordering {
    b.0.total_cmp(&a.0)
        .then(a.1.cmp(&b.1))
        .then(a.2.abs_diff(token_count).cmp(&b.2.abs_diff(token_count)))
        .then(a.2.cmp(&b.2))
}

/// The exhaustive search's upper bound of a window's similarity, computed locally: the
/// best substring ending where the window ends is at most `2m` chars long (longer ones
/// are more than `m` edits away, the empty one is `m`).
fn upper_bound(index: &RecordingIndex<'_>, pattern: &Pattern, w: &Window) -> f64 {
    let m = pattern.len();
    let (start, end) = index.window_char_range(w);
    let from = end.saturating_sub(2 * m + 2);
    let mut by_end = m;
    pattern.scan(&index.codes[from..end], Mode::SemiGlobal, |_, d| {
        by_end = d;
        true
    });
    let width = end - start;
    1.0 - by_end.max(width.abs_diff(m)) as f64 / width.max(m) as f64
}

/// The accepted windows of `quote` in `index`, exactly as the exhaustive search returns
/// them (non-overlapping, in its order), from the anchors; None when the anchors are too
/// weak (or not built) and the recording must be scanned.
pub(super) fn find_accepted(
    index: &RecordingIndex<'_>,
    quote: &[char],
    pattern: &Pattern,
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> Option<Vec<Window>> {
    let grams = index.grams.as_ref()?;
    let n = index.tokens.len();
    let m = quote.len();
    if n == 0 || m == 0 {
        return Some(Vec::new());
    }
    let k = max_distance(m, accept)?;
    if (k + 1) * GRAM > m {
        return None;
    }
    let postings: Vec<Option<&[u32]>> = quote
        .windows(GRAM)
        .map(|gram| {
            let mut codes = [0u32; GRAM];
            for (slot, c) in codes.iter_mut().zip(gram) {
                match index.alphabet.get(c) {
                    Some(&code) => *slot = code,
                    // A char the recording never has: the gram occurs nowhere.
                    None => return Some(&[][..]),
                }
            }
            gram_key(&codes).map(|key| grams.get(&key).map_or(&[][..], Vec::as_slice))
        })
        .collect();
    let costs: Vec<Option<usize>> = postings.iter().map(|p| p.map(<[u32]>::len)).collect();
    let chosen = choose_pieces(&costs, k + 1, m)?;

    // Windows holding the gram at quote offset j intact start within k chars of p - j.
    let mut firsts: Vec<usize> = Vec::new();
    for &j in &chosen {
        for &p in postings[j].unwrap_or_default() {
            let p = p as usize;
            let lo = p.saturating_sub(j + k);
            let Some(hi) = (p + k).checked_sub(j) else {
                continue;
            };
            let mut t = index.tokens.partition_point(|tok| tok.start < lo);
            while t < n && index.tokens[t].start <= hi {
                firsts.push(t);
                t += 1;
            }
        }
    }
    firsts.sort_unstable();
    firsts.dedup();

    let min_len = token_count.saturating_sub(2).max(1);
    let max_len = token_count + 2;
    let mut accepted: Vec<Window> = Vec::new();
    let mut targets: Vec<(usize, usize)> = Vec::new();
    for first in firsts {
        let start = index.tokens[first].start;
        // (width, len) of the windows from `first` that can be within k edits.
        targets.clear();
        for len in min_len..=max_len {
            let Some(last) = index.tokens.get(first + len - 1) else {
                break;
            };
            let width = last.end - start;
            if width.abs_diff(m) <= k {
                targets.push((width, len));
            }
        }
        let Some(&(max_width, _)) = targets.last() else {
            continue;
        };
        let mut next = 0;
        pattern.scan(
            &index.codes[start..start + max_width],
            Mode::Global,
            |read, d| {
                while let Some(&(width, len)) = targets.get(next).filter(|t| t.0 == read) {
                    let w = Window {
                        first,
                        len,
                        similarity: similarity(d, width, m),
                    };
                    if w.similarity >= accept && index.window_figures_match(&w, quote_figures) {
                        accepted.push(w);
                    }
                    next += 1;
                }
                next < targets.len()
            },
        );
    }
    let mut keyed: Vec<(f64, Window)> = accepted
        .into_iter()
        .map(|w| (upper_bound(index, pattern, &w), w))
        .collect();
    keyed.sort_by(|a, b| {
        examined_before(
            (a.0, a.1.first, a.1.len),
            (b.0, b.1.first, b.1.len),
            token_count,
        )
    });
    Some(non_overlapping(
        keyed.into_iter().map(|(_, w)| w).collect(),
        token_count,
        n,
    ))
}

/// A window waiting in the scan's heap: the greatest is the one the exhaustive search
/// examines first.
struct Pending {
    upper: f64,
    first: usize,
    len: usize,
    token_count: usize,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        examined_before(
            (other.upper, other.first, other.len),
            (self.upper, self.first, self.len),
            self.token_count,
        )
    }
}

/// The exhaustive search, window for window and in the same order, made fast: the
/// bit-parallel semi-global pass for the bounds, a heap instead of sorting every window
/// (only the windows examined before the stop are taken out), bit-parallel distances.
pub(super) fn search_scan(
    index: &RecordingIndex<'_>,
    pattern: &Pattern,
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> SearchResult {
    let mut result = SearchResult {
        best: None,
        accepted: Vec::new(),
        figures_differ: None,
    };
    let n = index.tokens.len();
    let m = pattern.len();
    if n == 0 || index.codes.is_empty() {
        return result;
    }
    let by_end = pattern.min_distance_by_end(&index.codes);
    let min_len = token_count.saturating_sub(2).max(1);
    let max_len = token_count + 2;
    let mut pending: Vec<Pending> = Vec::with_capacity(n * (max_len - min_len + 1));
    for first in 0..n {
        let start = index.tokens[first].start;
        for len in min_len..=max_len {
            let Some(last) = index.tokens.get(first + len - 1) else {
                break;
            };
            let width = last.end - start;
            let lower_bound = by_end
                .get(last.end)
                .copied()
                .unwrap_or(0)
                .max(width.abs_diff(m));
            pending.push(Pending {
                upper: 1.0 - lower_bound as f64 / width.max(m) as f64,
                first,
                len,
                token_count,
            });
        }
    }
    let mut heap = BinaryHeap::from(pending);
    while let Some(Pending {
        upper, first, len, ..
    }) = heap.pop()
    {
        let best_so_far = result.best.map_or(-1.0, |b| b.similarity);
        if upper < accept && upper <= best_so_far {
            break;
        }
        let window = Window {
            first,
            len,
            similarity: 0.0,
        };
        let figures_match = index.window_figures_match(&window, quote_figures);
        if !figures_match && upper < accept {
            continue;
        }
        let (start, end) = index.window_char_range(&window);
        let Some(text) = index.codes.get(start..end) else {
            continue;
        };
        let window = Window {
            similarity: similarity(pattern.distance(text), text.len(), m),
            ..window
        };
        if !figures_match {
            let differ_so_far = result.figures_differ.map_or(-1.0, |w| w.similarity);
            if window.similarity >= accept && window.similarity > differ_so_far {
                result.figures_differ = Some(window);
            }
            continue;
        }
        if window.similarity >= accept {
            result.accepted.push(window);
        }
        if window.similarity > best_so_far {
            result.best = Some(window);
        }
    }
    result.accepted = non_overlapping(result.accepted, token_count, n);
    result
}

/// Searches `quote` in `index` as the gating needs it: the accepted windows always;
/// `best` and `figures_differ` (as `search_exhaustive` gives them) only when nothing is
/// accepted and `need_best` — otherwise they are None.
pub(super) fn search(
    index: &RecordingIndex<'_>,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
    need_best: bool,
) -> SearchResult {
    if quote.is_empty() || index.tokens.is_empty() {
        return SearchResult {
            best: None,
            accepted: Vec::new(),
            figures_differ: None,
        };
    }
    let pattern = Pattern::new(quote, &index.alphabet, index.alphabet.len());
    if let Some(accepted) =
        find_accepted(index, quote, &pattern, quote_figures, token_count, accept)
        && (!accepted.is_empty() || !need_best)
    {
        return SearchResult {
            best: None,
            accepted,
            figures_differ: None,
        };
    }
    let mut found = search_scan(index, &pattern, quote_figures, token_count, accept);
    if !found.accepted.is_empty() {
        found.best = None;
        found.figures_differ = None;
    }
    found
}
