//! The indexed search: the windows the exhaustive search (`matching::search_exhaustive`)
//! finds, without scoring every window of the recording.
//!
//! - Windows at least as similar as a threshold `t` are within `k` edits of the quote,
//!   `k` bounded by `t` and the quote's length ([`max_distance`]); they are found from
//!   the recording's char q-gram postings ([`anchored`]). First by counting (the q-gram
//!   lemma, [`counted_firsts`]): such a window holds at least `m − q + 1 − qk` of the
//!   quote's q-grams near their offsets, so only start tokens whose diagonal buckets
//!   count that many are candidates — with 4-grams, else 2-grams (short quotes, lower
//!   thresholds). Else by pigeonhole ([`pigeonhole_firsts`]): `k + 1` disjoint 4-grams,
//!   the rarest, one of which such a window holds intact. Around each run of candidate
//!   start tokens one semi-global pass bounds the windows; those it leaves within `k`
//!   are scored with the bit-parallel distance. So the cost follows the quote's rarer
//!   grams, not the recording's length. Anchors too weak (over their postings budget,
//!   or a quote too short) fall back to the scan below, which is exact too.
//! - The accepted windows and `figures_differ` are the anchors' at the accept
//!   threshold. The best window below it is needed only for some verdicts (CLOSE,
//!   NOT_FOUND, WRONG_RECORDING's reason: see [`best_of`]): a quote stating a figure
//!   the recording never states has none; a floor (the best window the anchors scored)
//!   high enough to bound the distance gives it from anchors at the floor; else it is
//!   found as the exhaustive search finds it ([`scan`]): bounds of every window from
//!   one bit-parallel pass ([`Pattern::min_distances`]: four segments read side by
//!   side), restricted to the windows around the quote's first figure when it has one,
//!   a floor from the windows ending where the bound is lowest, and branch and bound:
//!   start tokens scored most promising first, each raising the floor that drops the
//!   rest.
//!
//! All give the exhaustive search's results exactly, ties included (equivalence tests
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

/// Length of the short grams of [`counted_firsts`], for short quotes and low
/// thresholds.
const PAIR: usize = 2;

/// Where each `q`-gram (`q` ≤ 4) of `codes` starts.
pub(super) fn gram_postings(codes: &[u32], q: usize) -> HashMap<u64, Vec<u32>> {
    let mut out: HashMap<u64, Vec<u32>> = HashMap::new();
    for (p, gram) in codes.windows(q).enumerate() {
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
/// None when there is no such choice or it costs more than `budget`.
fn choose_pieces(
    costs: &[Option<usize>],
    pieces: usize,
    m: usize,
    budget: usize,
) -> Option<Vec<usize>> {
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
    if best[m * width + pieces] > budget {
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

/// `out[t - lo]`: the smallest edit distance between the quote and a substring of the
/// recording starting at or after token `lo`'s start and ending at token `t`'s end, for
/// `t` in `lo..=last` — a lower bound of the distance of every window from `lo` on that
/// ends there (one semi-global pass over the range).
fn ends_distances(
    index: &RecordingIndex<'_>,
    pattern: &Pattern,
    lo: usize,
    last: usize,
) -> Vec<u32> {
    let base = index.tokens[lo].start;
    let end = index.tokens[last].end;
    let mut out = Vec::with_capacity(last + 1 - lo);
    let mut t = lo;
    pattern.scan(&index.codes[base..end], Mode::SemiGlobal, |read, d| {
        while t <= last && index.tokens[t].end - base == read {
            out.push(u32::try_from(d).unwrap_or(u32::MAX));
            t += 1;
        }
        true
    });
    out
}

/// A window scored exactly, whether it states the quote's figures, and the exhaustive
/// search's bound of its similarity when already known (see [`upper_bound`]).
#[derive(Clone, Copy)]
struct Scored {
    window: Window,
    figures: bool,
    upper: Option<f64>,
}

/// A quote as one recording's search needs it.
struct Query<'a, 'i> {
    index: &'a RecordingIndex<'i>,
    quote: &'a [char],
    pattern: &'a Pattern,
    figures: &'a [String],
    token_count: usize,
    min_len: usize,
    max_len: usize,
}

impl<'a, 'i> Query<'a, 'i> {
    fn new(
        index: &'a RecordingIndex<'i>,
        quote: &'a [char],
        pattern: &'a Pattern,
        figures: &'a [String],
        token_count: usize,
    ) -> Self {
        Self {
            index,
            quote,
            pattern,
            figures,
            token_count,
            min_len: token_count.saturating_sub(2).max(1),
            max_len: token_count + 2,
        }
    }

    fn m(&self) -> usize {
        self.pattern.len()
    }

    fn upper(&self, c: &Scored) -> f64 {
        c.upper
            .unwrap_or_else(|| upper_bound(self.index, self.pattern, &c.window))
    }

    /// The exhaustive search's choice among windows it keeps the first of: the most
    /// similar, the first examined among equals.
    fn first_most_similar<'c>(
        &self,
        candidates: impl Iterator<Item = &'c Scored>,
    ) -> Option<Window> {
        let mut top: Vec<&Scored> = Vec::new();
        for c in candidates {
            match top
                .first()
                .map(|t| c.window.similarity.total_cmp(&t.window.similarity))
            {
                None | Some(Ordering::Greater) => {
                    top.clear();
                    top.push(c);
                }
                Some(Ordering::Equal) => top.push(c),
                Some(Ordering::Less) => {}
            }
        }
        if top.len() <= 1 {
            return top.first().map(|c| c.window);
        }
        top.iter()
            .map(|c| (self.upper(c), c.window))
            .min_by(|a, b| {
                examined_before(
                    (a.0, a.1.first, a.1.len),
                    (b.0, b.1.first, b.1.len),
                    self.token_count,
                )
            })
            .map(|(_, w)| w)
    }

    /// The accepted windows among `scored`, as the exhaustive search returns them.
    fn accepted(&self, scored: &[Scored], accept: f64) -> Vec<Window> {
        let mut keyed: Vec<(f64, Window)> = scored
            .iter()
            .filter(|c| c.figures && c.window.similarity >= accept)
            .map(|c| (self.upper(c), c.window))
            .collect();
        keyed.sort_by(|a, b| {
            examined_before(
                (a.0, a.1.first, a.1.len),
                (b.0, b.1.first, b.1.len),
                self.token_count,
            )
        });
        non_overlapping(
            keyed.into_iter().map(|(_, w)| w).collect(),
            self.token_count,
            self.index.tokens.len(),
        )
    }
}

/// The postings of each `q`-gram of the quote (None for a gram that cannot be looked
/// up; empty for one with a char the recording never has).
fn quote_postings<'p>(
    index: &RecordingIndex<'_>,
    quote: &[char],
    grams: &'p HashMap<u64, Vec<u32>>,
    q: usize,
) -> Vec<Option<&'p [u32]>> {
    quote
        .windows(q)
        .map(|gram| {
            let mut codes = [0u32; GRAM];
            for (slot, c) in codes.iter_mut().zip(gram) {
                match index.alphabet.get(c) {
                    Some(&code) => *slot = code,
                    // A char the recording never has: the gram occurs nowhere.
                    None => return Some(&[][..]),
                }
            }
            gram_key(&codes[..q]).map(|key| grams.get(&key).map_or(&[][..], Vec::as_slice))
        })
        .collect()
}

/// Postings the q-gram count of [`counted_firsts`] may go through.
const COUNT_POSTINGS: usize = 32_768;

/// The start tokens of every window within `k` edits of the quote, by the q-gram lemma:
/// such a window holds at least `m − q + 1 − qk` of the quote's `q`-grams (an edit
/// breaks at most `q`), each at its offset in the quote shifted by at most `k`. The postings of
/// the rarest grams (up to [`COUNT_POSTINGS`], a gram left out lowering the count
/// needed by one) are counted by diagonal (text position − quote offset) in buckets of
/// `k + 1`: a window starting at `s` has all its grams' diagonals within `s ± k`, so in
/// the bucket of `s` or the two beside it. None when the count needed is under two (the
/// pieces of [`pigeonhole_firsts`] then bound better).
fn counted_firsts(
    index: &RecordingIndex<'_>,
    postings: &[Option<&[u32]>],
    q: usize,
    m: usize,
    k: usize,
) -> Option<Vec<usize>> {
    let grams = m.checked_sub(q - 1)?;
    let mut need = grams.checked_sub(q * k)?;
    let mut order: Vec<usize> = (0..postings.len()).collect();
    order.sort_by_key(|&j| postings[j].map_or(usize::MAX, <[u32]>::len));
    let mut total = 0;
    let mut used: Vec<usize> = Vec::new();
    for j in order {
        match postings[j] {
            Some(p) if total + p.len() <= COUNT_POSTINGS => {
                total += p.len();
                used.push(j);
            }
            _ => need = need.checked_sub(1)?,
        }
    }
    if need < 2 {
        return None;
    }
    let width = k + 1;
    // Diagonals shifted by m (≥ 0); one spare bucket on each side.
    let buckets = (index.codes.len() + m) / width + 3;
    let mut count = vec![0u32; buckets];
    for &j in &used {
        for &p in postings[j].unwrap_or_default() {
            count[(p as usize + m - j) / width + 1] += 1;
        }
    }
    let need = u32::try_from(need).unwrap_or(u32::MAX);
    let n = index.tokens.len();
    let mut firsts: Vec<usize> = Vec::new();
    for b in 1..buckets - 1 {
        if count[b - 1] + count[b] + count[b + 1] < need {
            continue;
        }
        // Starts s with (s + m) / width == b - 1.
        let Some(lo) = ((b - 1) * width)
            .checked_sub(m)
            .or(((b - 1) * width + width > m).then_some(0))
        else {
            continue;
        };
        let hi = (b * width).saturating_sub(m);
        let mut t = index.tokens.partition_point(|tok| tok.start < lo);
        while t < n && index.tokens[t].start < hi {
            if firsts.last() != Some(&t) {
                firsts.push(t);
            }
            t += 1;
        }
    }
    Some(firsts)
}

/// The start tokens of every window within `k` edits of the quote, by pigeonhole: `k +
/// 1` disjoint 4-grams of the quote with the fewest postings in all (at most `budget`,
/// else None); one of them is intact in such a window, which starts within `k` chars of
/// its posting minus its offset.
fn pigeonhole_firsts(
    index: &RecordingIndex<'_>,
    postings: &[Option<&[u32]>],
    m: usize,
    k: usize,
    budget: usize,
) -> Option<Vec<usize>> {
    let n = index.tokens.len();
    if (k + 1) * GRAM > m {
        return None;
    }
    let costs: Vec<Option<usize>> = postings.iter().map(|p| p.map(<[u32]>::len)).collect();
    let chosen = choose_pieces(&costs, k + 1, m, budget)?;
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
    Some(firsts)
}

/// Windows found from anchors.
struct Anchored {
    /// Every window whose similarity reaches the threshold.
    windows: Vec<Scored>,
    /// The highest similarity of a window scored on the way that states the quote's
    /// figures (-1 when none): a lower bound of the best.
    floor: f64,
}

/// Every window of similarity ≥ `threshold`, from the anchors: `k` (the distance the
/// threshold allows) + 1 disjoint 4-grams of the quote with the fewest postings (at most
/// `budget`); around each run of start tokens near a posting, one semi-global pass
/// bounds the windows, and those it leaves within `k` are scored. None when the anchors
/// are too weak (or not built).
fn anchored(
    q: &Query<'_, '_>,
    threshold: f64,
    budget: usize,
    max_firsts: usize,
) -> Option<Anchored> {
    let index = q.index;
    let grams = index.grams.as_ref()?;
    let n = index.tokens.len();
    let m = q.m();
    let k = max_distance(m, threshold)?;
    if n == 0 {
        return None;
    }
    let postings = quote_postings(index, q.quote, grams, GRAM);
    let pairs = index
        .pairs
        .as_ref()
        .map(|p| quote_postings(index, q.quote, p, PAIR));
    let firsts = match counted_firsts(index, &postings, GRAM, m, k) {
        Some(firsts) => firsts,
        None => match pairs.and_then(|p| counted_firsts(index, &p, PAIR, m, k)) {
            Some(firsts) => firsts,
            None => pigeonhole_firsts(index, &postings, m, k, budget)?,
        },
    };
    if firsts.len() > max_firsts {
        return None;
    }

    let mut out = Anchored {
        windows: Vec::new(),
        floor: -1.0,
    };
    let mut targets: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < firsts.len() {
        // A run of consecutive start tokens: one semi-global pass bounds all its windows.
        let mut j = i;
        while j + 1 < firsts.len() && firsts[j + 1] == firsts[j] + 1 {
            j += 1;
        }
        let (lo, hi) = (firsts[i], firsts[j]);
        i = j + 1;
        let last = (hi + q.max_len - 1).min(n - 1);
        let by_end = ends_distances(index, q.pattern, lo, last);
        for first in lo..=hi {
            let start = index.tokens[first].start;
            // (width, len) of the windows from `first` that can be within k edits.
            targets.clear();
            for len in q.min_len..=q.max_len {
                let Some(tok) = index.tokens.get(first + len - 1) else {
                    break;
                };
                let width = tok.end - start;
                let diff = width.abs_diff(m);
                if diff <= k && (by_end[first + len - 1 - lo] as usize).max(diff) <= k {
                    targets.push((width, len));
                }
            }
            let Some(&(max_width, _)) = targets.last() else {
                continue;
            };
            let mut next = 0;
            q.pattern.scan(
                &index.codes[start..start + max_width],
                Mode::Global,
                |read, d| {
                    while let Some(&(width, len)) = targets.get(next).filter(|t| t.0 == read) {
                        let window = Window {
                            first,
                            len,
                            similarity: similarity(d, width, m),
                        };
                        let figures = index.window_figures_match_fast(&window, q.figures);
                        if figures {
                            out.floor = out.floor.max(window.similarity);
                        }
                        if window.similarity >= threshold {
                            out.windows.push(Scored {
                                window,
                                figures,
                                upper: None,
                            });
                        }
                        next += 1;
                    }
                    next < targets.len()
                },
            );
        }
    }
    Some(out)
}

/// The accepted windows of `quote` in `index`, exactly as the exhaustive search returns
/// them (non-overlapping, in its order), from the anchors; None when the anchors are too
/// weak (or not built) and the recording must be scanned. (The search itself goes
/// through the counting anchors; the tests compare this form with them.)
#[cfg(test)]
pub(super) fn find_accepted(
    index: &RecordingIndex<'_>,
    quote: &[char],
    pattern: &Pattern,
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
) -> Option<Vec<Window>> {
    if index.tokens.is_empty() || quote.is_empty() {
        return Some(Vec::new());
    }
    let q = Query::new(index, quote, pattern, quote_figures, token_count);
    let found = anchored(&q, accept, MAX_ANCHOR_POSTINGS, usize::MAX)?;
    Some(q.accepted(&found.windows, accept))
}

/// Windows with the highest bounds scored first, for a lower bound of the best.
const SEED_WINDOWS: usize = 32;

/// Slack of the scan's pruning comparisons (which are made without the division of the
/// exact bound): a window is kept unless it is clearly below, never dropped for a
/// rounding.
const SLACK: f64 = 1e-6;

/// The windows the scan must score: for the accepted windows and `figures_differ`
/// (`for_accept`), every window bounded at or above the threshold; for the best
/// (`for_best`), every figure-matching window bounded at or above a lower bound of the
/// best (`floor`, raised by the windows ending where the bound is lowest, by the
/// [`SEED_WINDOWS`] figure-matching windows with the highest bounds, then by each start
/// token scored, most promising first).
///
/// The bounds come from one semi-global pass: over the whole recording (`ranges` None),
/// the exhaustive search's bounds — then, when they leave more than one start token in
/// [`SPLIT_WHEN`], the closer bounds of [`split_bounds`] too; over each range of start
/// tokens otherwise, from the range's first token on (a bound of the windows starting
/// there too). A window left out is bounded below the floor (or the threshold): less
/// similar than the best, so neither it nor tied with it.
fn scan(
    q: &Query<'_, '_>,
    accept: f64,
    floor: f64,
    ranges: Option<&[(usize, usize)]>,
    for_accept: bool,
    for_best: bool,
) -> Vec<Scored> {
    let index = q.index;
    let n = index.tokens.len();
    let m = q.m();
    let mut scored: Vec<Scored> = Vec::new();
    if n == 0 || index.codes.is_empty() {
        return scored;
    }
    let mut parts: Vec<Part> = match ranges {
        None => {
            let by_end = q.pattern.min_distances(&index.codes);
            vec![Part {
                lo: 0,
                hi: n - 1,
                bounds: Bounds::Ends(index.tokens.iter().map(|t| by_end[t.end]).collect()),
            }]
        }
        Some(ranges) => ranges
            .iter()
            .map(|&(lo, hi)| {
                let last = (hi + q.max_len - 1).min(n - 1);
                Part {
                    lo,
                    hi,
                    bounds: Bounds::Ends(ends_distances(index, q.pattern, lo, last)),
                }
            })
            .collect(),
    };
    let mut floor = floor;
    if for_best {
        floor = floor.max(end_seed_floor(q, &parts));
    }
    // What a window's bound must reach to be kept: the floor for the best, the
    // threshold for the accepted windows.
    let mut reach = if for_best { floor } else { f64::INFINITY };
    if for_accept {
        reach = reach.min(accept);
    }
    let mut marks = mark(q, &parts, accept, for_accept, for_best, reach);
    if for_best {
        floor = floor.max(marks.seed_floor(q));
        if ranges.is_none() && marks.kept(floor) * SPLIT_WHEN > n {
            if let (Some(part), Some(split)) = (parts.first_mut(), split_bounds(q)) {
                let Bounds::Ends(by_end) =
                    std::mem::replace(&mut part.bounds, Bounds::Ends(Vec::new()))
                else {
                    unreachable!("the whole recording's bounds are by end")
                };
                part.bounds = Bounds::Both(by_end, split.0, split.1);
            }
            let mut reach = floor;
            if for_accept {
                reach = reach.min(accept);
            }
            marks = mark(q, &parts, accept, for_accept, for_best, reach);
            floor = floor.max(marks.seed_floor(q));
        }
    }
    let floor_keep = 1.0 - floor;

    // Branch and bound: the start tokens kept, the most promising first; scoring them
    // raises the floor, which drops the ones left below it.
    let lens = q.max_len - q.min_len + 1;
    let mut kept: Vec<(u64, u64, usize, bool)> = Vec::new();
    let mut at = 0;
    for part in &parts {
        for first in part.lo..=part.hi {
            let (accept_hit, (lower, w)) = (marks.needs_accept[at], marks.best_bound[at]);
            at += 1;
            let floor_hit = for_best && w > 0 && lower as f64 <= floor_keep * w as f64 + SLACK;
            if accept_hit || floor_hit {
                kept.push((lower, w.max(1), first, accept_hit));
            }
        }
    }
    kept.sort_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)).then(a.2.cmp(&b.2)));
    let mut floor_keep = floor_keep;
    let mut ends: Vec<usize> = Vec::with_capacity(lens);
    for &(lower, w, first, accept_hit) in &kept {
        let floor_hit = for_best && lower as f64 <= floor_keep * w as f64 + SLACK;
        if !accept_hit && !floor_hit {
            continue;
        }
        let start = index.tokens[first].start;
        ends.clear();
        for len in q.min_len..=q.max_len {
            let Some(tok) = index.tokens.get(first + len - 1) else {
                break;
            };
            ends.push(tok.end - start);
        }
        let Some(&max_width) = ends.last() else {
            continue;
        };
        let mut next = 0;
        let mut top = -1.0f64;
        q.pattern.scan(
            &index.codes[start..start + max_width],
            Mode::Global,
            |read, d| {
                while next < ends.len() && ends[next] == read {
                    let window = Window {
                        first,
                        len: q.min_len + next,
                        similarity: similarity(d, read, m),
                    };
                    let figures = index.window_figures_match_fast(&window, q.figures);
                    if figures {
                        top = top.max(window.similarity);
                    }
                    scored.push(Scored {
                        window,
                        figures,
                        upper: None,
                    });
                    next += 1;
                }
                next < ends.len()
            },
        );
        if for_best {
            floor_keep = floor_keep.min(1.0 - top);
        }
    }
    scored
}

/// Above one start token in this many left by the bounds by end, the scan adds the
/// split bounds.
const SPLIT_WHEN: usize = 16;

/// Start tokens `lo..=hi` with their windows' bounds.
struct Part {
    lo: usize,
    hi: usize,
    bounds: Bounds,
}

/// What the bounds say of each start token of a scan, in order.
struct Marks {
    /// Whether a window is bounded at or above the accept threshold.
    needs_accept: Vec<bool>,
    /// The highest bound of a figure-matching window, as (lower bound of the distance,
    /// width or quote length); width 0 when none.
    best_bound: Vec<(u64, u64)>,
    /// The figure-matching windows with the highest bounds: (distance bound, width,
    /// first, len).
    seeds: Vec<(u64, u64, usize, usize)>,
    /// The seed with the lowest bound, once there are [`SEED_WINDOWS`].
    worst: usize,
}

impl Marks {
    /// The start tokens a floor leaves to score.
    fn kept(&self, floor: f64) -> usize {
        let keep = 1.0 - floor;
        self.needs_accept
            .iter()
            .zip(&self.best_bound)
            .filter(|(a, (lower, w))| **a || (*w > 0 && *lower as f64 <= keep * *w as f64 + SLACK))
            .count()
    }

    /// The best similarity among the seeds (-1 without any).
    fn seed_floor(&self, q: &Query<'_, '_>) -> f64 {
        let mut floor = -1.0f64;
        for &(_, _, first, len) in &self.seeds {
            let w = Window {
                first,
                len,
                similarity: 0.0,
            };
            let (start, end) = q.index.window_char_range(&w);
            floor = floor.max(similarity(
                q.pattern.distance(&q.index.codes[start..end]),
                end - start,
                q.m(),
            ));
        }
        floor
    }
}

/// What a scan wants of the bounds.
#[derive(Clone, Copy)]
struct Want {
    /// `1 − accept`, when the accepted windows are wanted.
    accept_keep: Option<f64>,
    for_best: bool,
}

/// Bounds every window of the parts (see [`Marks`]).
fn mark(
    q: &Query<'_, '_>,
    parts: &[Part],
    accept: f64,
    for_accept: bool,
    for_best: bool,
    reach: f64,
) -> Marks {
    let total: usize = parts.iter().map(|p| p.hi + 1 - p.lo).sum();
    let mut marks = Marks {
        needs_accept: Vec::with_capacity(total),
        best_bound: Vec::with_capacity(total),
        seeds: Vec::with_capacity(SEED_WINDOWS),
        worst: 0,
    };
    let want = Want {
        accept_keep: for_accept.then(|| (1.0 - accept).max(0.0)),
        for_best,
    };
    for part in parts {
        let viable = viable_ends(q, part, reach);
        match &part.bounds {
            Bounds::Ends(by_end) => {
                mark_part(q, part, want, &viable, &mut marks, |_, last| {
                    by_end[last] as usize
                });
            }
            Bounds::Both(by_end, from_start, half) => {
                mark_part(q, part, want, &viable, &mut marks, |first, last| {
                    by_end[last].max(from_start[first] + half[last]) as usize
                });
            }
        }
    }
    marks
}

/// `out[i]`: how many of the part's tokens before its `i`-th (from its first token) end
/// where a window's bound can reach `reach`: whose bound by end is at most `1 − reach`
/// of the widest window ending there (or the quote). The others end no window worth
/// bounding.
fn viable_ends(q: &Query<'_, '_>, part: &Part, reach: f64) -> Vec<u32> {
    let index = q.index;
    let m = q.m();
    let n = index.tokens.len();
    let last = (part.hi + q.max_len - 1).min(n - 1);
    let by_end = match &part.bounds {
        Bounds::Ends(by_end) | Bounds::Both(by_end, _, _) => by_end,
    };
    let keep = 1.0 - reach;
    let mut out = Vec::with_capacity(last + 2 - part.lo);
    let mut count = 0u32;
    out.push(0);
    for t in part.lo..=last {
        let first = t.saturating_sub(q.max_len - 1).max(part.lo);
        let widest = (index.token_ends[t] as usize - index.tokens[first].start).max(m);
        count += u32::from(by_end[t - part.lo] as f64 <= keep * widest as f64 + SLACK);
        out.push(count);
    }
    out
}

/// The best similarity of a figure-matching window among those ending where the bound
/// by end is lowest (a first floor, before the bounds' seeds; -1 without any).
fn end_seed_floor(q: &Query<'_, '_>, parts: &[Part]) -> f64 {
    const ENDS: usize = 8;
    let index = q.index;
    let mut floor = -1.0f64;
    for part in parts {
        let by_end = match &part.bounds {
            Bounds::Ends(by_end) | Bounds::Both(by_end, _, _) => by_end,
        };
        let Some(&lowest) = by_end.iter().min() else {
            continue;
        };
        let mut picked = 0;
        for (i, &d) in by_end.iter().enumerate() {
            if d > lowest + 1 || picked == ENDS {
                continue;
            }
            picked += 1;
            let last = part.lo + i;
            for len in q.min_len..=q.max_len {
                let Some(first) = (last + 1).checked_sub(len) else {
                    break;
                };
                let w = Window {
                    first,
                    len,
                    similarity: 0.0,
                };
                if !index.window_figures_match_fast(&w, q.figures) {
                    continue;
                }
                let (start, end) = index.window_char_range(&w);
                floor = floor.max(similarity(
                    q.pattern.distance(&index.codes[start..end]),
                    end - start,
                    q.m(),
                ));
            }
        }
    }
    floor
}

/// [`mark`] for one part, `bound(first, last)` (relative to the part's first token)
/// bounding the distance of its windows.
fn mark_part(
    q: &Query<'_, '_>,
    part: &Part,
    want: Want,
    viable: &[u32],
    marks: &mut Marks,
    bound: impl Fn(usize, usize) -> usize,
) {
    let index = q.index;
    let m = q.m();
    let n = index.tokens.len();
    let ends = &index.token_ends;
    // Without figures, a window matches when it ends before the next figure.
    let plain = q.figures.is_empty() && index.next_figure.len() == n + 1;
    let lo = part.lo;
    for first in lo..=part.hi {
        // No window from here ends where its bound can reach: nothing to bound.
        let (a, b) = (
            (first + q.min_len - 1 - lo).min(viable.len() - 1),
            (first + q.max_len - lo).min(viable.len() - 1),
        );
        if viable[b] == viable[a] {
            marks.needs_accept.push(false);
            marks.best_bound.push((1, 0));
            continue;
        }
        let start = index.tokens[first].start;
        let limit = if plain { index.next_figure[first] } else { n };
        let mut accept_hit = false;
        let mut best = (1u64, 0u64, 0usize);
        let last_len = q.max_len.min(n - first);
        for len in q.min_len..=last_len {
            let last = first + len - 1;
            let width = ends[last] as usize - start;
            let lower = bound(first - lo, last - lo).max(width.abs_diff(m)) as u64;
            let w = width.max(m) as u64;
            if let Some(keep) = want.accept_keep
                && lower as f64 <= keep * w as f64 + SLACK
            {
                accept_hit = true;
            }
            // Only a start's most promising figure-matching window matters here.
            if !want.for_best || (best.1 > 0 && lower * best.1 >= best.0 * w) {
                continue;
            }
            let figures = if plain {
                last < limit
            } else {
                index.window_figures_match(
                    &Window {
                        first,
                        len,
                        similarity: 0.0,
                    },
                    q.figures,
                )
            };
            if figures {
                best = (lower, w, len);
            }
        }
        if best.1 > 0 {
            let (lower, w, len) = best;
            let worst = marks.worst;
            let seeds = &mut marks.seeds;
            if seeds.len() < SEED_WINDOWS {
                seeds.push((lower, w, first, len));
                if seeds.len() == SEED_WINDOWS {
                    marks.worst = worst_seed(seeds);
                }
            } else if lower * seeds[worst].1 < seeds[worst].0 * w {
                seeds[worst] = (lower, w, first, len);
                marks.worst = worst_seed(seeds);
            }
        }
        marks.needs_accept.push(accept_hit);
        marks.best_bound.push((best.0, best.1));
    }
}

/// Lower bounds of the windows' distances, by first and last token (relative to a
/// part's first token).
enum Bounds {
    /// The distance of the best substring from the part's start ending at each token.
    Ends(Vec<u32>),
    /// That, and for a quote split in two halves: the distance of the best substring
    /// starting at each token's start to the first half, and of the best one ending at
    /// each token's end to the second half (see [`split_bounds`]).
    Both(Vec<u32>, Vec<u32>, Vec<u32>),
}

/// The split bounds of every window of the recording. Any alignment of the quote with
/// a window crosses the middle row of the table at some char: its cost is at least the
/// first half's best alignment with a substring starting where the window starts, plus
/// the second half's with one ending where it ends. Two semi-global passes (the first
/// half's over the reversed recording), each with half the quote. None for a quote of
/// one char.
fn split_bounds(q: &Query<'_, '_>) -> Option<(Vec<u32>, Vec<u32>)> {
    let index = q.index;
    let m = q.m();
    let quote = q.quote;
    if m < 2 || quote.len() != m || index.reversed.len() != index.codes.len() {
        return None;
    }
    let h = m / 2;
    let second = Pattern::new(&quote[h..], &index.alphabet, index.alphabet.len());
    let first: Vec<char> = quote[..h].iter().rev().copied().collect();
    let first = Pattern::new(&first, &index.alphabet, index.alphabet.len());
    let by_end = second.min_distances(&index.codes);
    // Read backwards: after `r` chars, the best substring ends (reversed) at n − r.
    let from_end = first.min_distances(&index.reversed);
    let n = index.codes.len();
    Some((
        index.tokens.iter().map(|t| from_end[n - t.start]).collect(),
        index.tokens.iter().map(|t| by_end[t.end]).collect(),
    ))
}

/// The seed with the highest ratio of distance bound to width (the lowest bound).
fn worst_seed(seeds: &[(u64, u64, usize, usize)]) -> usize {
    let mut worst = 0;
    for (i, s) in seeds.iter().enumerate() {
        if s.0 * seeds[worst].1 > seeds[worst].0 * s.1 {
            worst = i;
        }
    }
    worst
}

/// Recordings' share of chars whose count the anchors of a best window may have in
/// postings before the recording is scanned instead (one in 64).
const FLOOR_POSTINGS_SHARE: usize = 64;

/// The share of the start tokens (one in 16) above which a best window's anchors give
/// up for the scan: scoring around that many costs more than the scan's bounds.
const FLOOR_FIRSTS_SHARE: usize = 16;

/// The start tokens of the windows touching an occurrence of the quote's first figure
/// (the only ones that can state its figures), as merged ranges; None without figures
/// or when they cover half the recording (then it is scanned whole).
fn figure_ranges(q: &Query<'_, '_>) -> Option<Vec<(usize, usize)>> {
    let first = q.figures.first()?;
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for t in q.index.figure_tokens(first) {
        let lo = t.saturating_sub(q.max_len - 1);
        match ranges.last_mut() {
            Some(last) if lo <= last.1 + 1 => last.1 = t,
            _ => ranges.push((lo, t)),
        }
    }
    let covered: usize = ranges.iter().map(|(lo, hi)| hi + 1 - lo).sum();
    (covered * 2 <= q.index.tokens.len()).then_some(ranges)
}

/// The exhaustive search's `best` when nothing is accepted, `floor` being a lower bound
/// of its similarity when known (the anchors' best, see [`Anchored::floor`]).
fn best(q: &Query<'_, '_>, accept: f64, floor: Option<f64>) -> Option<Window> {
    // A figure the recording never states: no window states the quote's figures.
    if q.figures.iter().any(|f| !q.index.has_figure(f)) {
        return None;
    }
    let floor = match floor {
        Some(floor) => floor,
        None => anchored(q, accept, MAX_ANCHOR_POSTINGS, usize::MAX).map_or(-1.0, |a| a.floor),
    };
    // Every window at least as similar as the floor, hence the best, from anchors.
    let budget = (q.index.codes.len() / FLOOR_POSTINGS_SHARE).min(MAX_ANCHOR_POSTINGS);
    if floor > 0.0
        && let Some(found) = anchored(q, floor, budget, q.index.tokens.len() / FLOOR_FIRSTS_SHARE)
    {
        return q.first_most_similar(found.windows.iter().filter(|c| c.figures));
    }
    let ranges = figure_ranges(q);
    let scored = scan(q, accept, floor, ranges.as_deref(), false, true);
    q.first_most_similar(scored.iter().filter(|c| c.figures))
}

/// Searches `quote` in `index` as the gating needs it: the accepted windows always;
/// when nothing is accepted, `figures_differ` (as `search_exhaustive` gives it), and
/// `best` when `need_best` (else None, see [`best_of`]). Both are None when something
/// is accepted.
pub(super) fn search(
    index: &RecordingIndex<'_>,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
    need_best: bool,
) -> SearchResult {
    let mut result = SearchResult {
        best: None,
        accepted: Vec::new(),
        figures_differ: None,
        floor: None,
    };
    if quote.is_empty() || index.tokens.is_empty() {
        return result;
    }
    let pattern = Pattern::new(quote, &index.alphabet, index.alphabet.len());
    let q = Query::new(index, quote, &pattern, quote_figures, token_count);
    let Some(found) = anchored(&q, accept, MAX_ANCHOR_POSTINGS, usize::MAX) else {
        let scored = scan(&q, accept, -1.0, None, true, need_best);
        result.accepted = q.accepted(&scored, accept);
        if result.accepted.is_empty() {
            result.figures_differ = q.first_most_similar(
                scored
                    .iter()
                    .filter(|c| !c.figures && c.window.similarity >= accept),
            );
            if need_best {
                result.best = q.first_most_similar(scored.iter().filter(|c| c.figures));
            }
        }
        return result;
    };
    result.accepted = q.accepted(&found.windows, accept);
    if result.accepted.is_empty() {
        result.figures_differ = q.first_most_similar(found.windows.iter().filter(|c| !c.figures));
        result.floor = Some(found.floor);
        if need_best {
            result.best = best(&q, accept, result.floor);
        }
    }
    result
}

/// The `best` of a [`search`] made without it (`found`, nothing accepted).
pub(super) fn best_of(
    index: &RecordingIndex<'_>,
    quote: &[char],
    quote_figures: &[String],
    token_count: usize,
    accept: f64,
    found: &SearchResult,
) -> Option<Window> {
    if found.best.is_some() || quote.is_empty() || index.tokens.is_empty() {
        return found.best;
    }
    let pattern = Pattern::new(quote, &index.alphabet, index.alphabet.len());
    let q = Query::new(index, quote, &pattern, quote_figures, token_count);
    best(&q, accept, found.floor)
}
