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
//!   it, with the bit-parallel semi-global pass for the bounds, and only the windows a
//!   first lower bound of the best leaves possible scored ([`search_scan`]).
//!
//! Both give the exhaustive search's results exactly, ties included (equivalence tests
//! in `tests`).

use std::cmp::Ordering;
use std::collections::HashMap;

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

/// Windows with the highest bounds scored first, for a lower bound of the best.
const SEED_WINDOWS: usize = 32;

/// The exhaustive search's results, from what they are rather than window by window.
/// It examines windows in [`examined_before`] order and stops once no window left can
/// be accepted or beat the best, so: its best is the most similar figure-matching window
/// (the first examined among equals), its accepted windows all the figure-matching ones
/// at or above the threshold (in examination order), its `figures_differ` the most
/// similar other one at or above it (the first examined among equals).
///
/// Here the bit-parallel semi-global pass bounds every window; the best of the
/// [`SEED_WINDOWS`] windows with the highest bounds is a lower bound of the best; only
/// the start tokens with a window bounded at or above it (figure-matching) or above the
/// threshold are scored, all their windows in one bit-parallel pass. A window bounded
/// below that lower bound is less similar than the best, so cannot be it.
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
    let lens = max_len - min_len + 1;
    // upper[first * lens + (len - min_len)]; -inf past the last token.
    let mut upper = vec![f64::NEG_INFINITY; n * lens];
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
            upper[first * lens + len - min_len] = 1.0 - lower_bound as f64 / width.max(m) as f64;
        }
    }
    let window_at = |i: usize| Window {
        first: i / lens,
        len: min_len + i % lens,
        similarity: 0.0,
    };
    let exact = |w: &Window| {
        let (start, end) = index.window_char_range(w);
        similarity(pattern.distance(&index.codes[start..end]), end - start, m)
    };

    let mut seeds: Vec<usize> = (0..upper.len())
        .filter(|&i| upper[i] > f64::NEG_INFINITY)
        .collect();
    let t = SEED_WINDOWS.min(seeds.len());
    if t > 0 && t < seeds.len() {
        seeds.select_nth_unstable_by(t - 1, |&a, &b| upper[b].total_cmp(&upper[a]));
    }
    let mut floor = -1.0f64;
    for &i in &seeds[..t] {
        let w = window_at(i);
        if index.window_figures_match(&w, quote_figures) {
            floor = floor.max(exact(&w));
        }
    }

    // (upper bound, scored window, figures match)
    let mut scored: Vec<(f64, Window, bool)> = Vec::new();
    let mut matches: Vec<bool> = vec![false; lens];
    for first in 0..n {
        let mut needed = false;
        let mut count = 0;
        for li in 0..lens {
            let u = upper[first * lens + li];
            if u == f64::NEG_INFINITY {
                break;
            }
            count = li + 1;
            let w = window_at(first * lens + li);
            matches[li] = index.window_figures_match(&w, quote_figures);
            needed |= u >= accept || (matches[li] && u >= floor);
        }
        if !needed {
            continue;
        }
        let start = index.tokens[first].start;
        let ends: Vec<usize> = (0..count)
            .map(|li| index.tokens[first + min_len + li - 1].end - start)
            .collect();
        let mut next = 0;
        pattern.scan(
            &index.codes[start..start + ends[count - 1]],
            Mode::Global,
            |read, d| {
                while next < count && ends[next] == read {
                    let w = Window {
                        first,
                        len: min_len + next,
                        similarity: similarity(d, read, m),
                    };
                    scored.push((upper[first * lens + next], w, matches[next]));
                    next += 1;
                }
                next < count
            },
        );
    }

    let earlier = |a: &(f64, Window, bool), b: &(f64, Window, bool)| {
        examined_before(
            (a.0, a.1.first, a.1.len),
            (b.0, b.1.first, b.1.len),
            token_count,
        )
    };
    // The most similar, the first examined among equals.
    let most_similar = |keep: &dyn Fn(&(f64, Window, bool)) -> bool| {
        scored
            .iter()
            .filter(|c| keep(c))
            .min_by(|a, b| {
                b.1.similarity
                    .total_cmp(&a.1.similarity)
                    .then(earlier(a, b))
            })
            .map(|c| c.1)
    };
    result.best = most_similar(&|c| c.2);
    result.figures_differ = most_similar(&|c| !c.2 && c.1.similarity >= accept);
    let mut accepted: Vec<&(f64, Window, bool)> = scored
        .iter()
        .filter(|c| c.2 && c.1.similarity >= accept)
        .collect();
    accepted.sort_by(|a, b| earlier(a, b));
    result.accepted = non_overlapping(accepted.into_iter().map(|c| c.1).collect(), token_count, n);
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
