//! Bit-parallel edit distance (Myers 1999, in Hyyrö's multi-block form): the same
//! Levenshtein distances as [`crate::text::levenshtein`] and `min_distance_by_end`, 64
//! rows of the dynamic-programming column at a time, so that scanning a recording costs
//! a few word operations per character instead of one cell per quote character.
//!
//! Characters are compared as codes of the recording's alphabet (see
//! `RecordingIndex::codes`); a quote character absent from the recording matches nothing.

use std::collections::HashMap;

/// Segments of a long text read side by side by [`Pattern::min_distances`].
const STREAMS: usize = 4;

/// A quote compiled for one recording's alphabet.
pub(super) struct Pattern {
    /// Quote length in chars (> 0).
    m: usize,
    /// 64-row blocks.
    blocks: usize,
    /// `peq[code * blocks + b]`: the rows of block `b` whose quote char is `code`.
    peq: Vec<u64>,
    /// The bit of the quote's last row in the last block.
    last_bit: u64,
}

/// How the first row of the dynamic-programming table starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `D[0][e] = e`: the distance between the quote and the text read so far.
    Global,
    /// `D[0][e] = 0`: the smallest distance between the quote and any substring of the
    /// text read so far ending at `e` (Sellers' semi-global alignment).
    SemiGlobal,
}

impl Pattern {
    /// Compiles `quote` (non-empty) for an alphabet of `alphabet_len` codes, `code_of`
    /// giving each char's code when the recording has it.
    pub(super) fn new(quote: &[char], alphabet: &HashMap<char, u32>, alphabet_len: usize) -> Self {
        let m = quote.len().max(1);
        let blocks = m.div_ceil(64);
        let mut peq = vec![0u64; alphabet_len.max(1) * blocks];
        for (i, c) in quote.iter().enumerate() {
            if let Some(&code) = alphabet.get(c) {
                peq[code as usize * blocks + i / 64] |= 1u64 << (i % 64);
            }
        }
        Self {
            m,
            blocks,
            peq,
            last_bit: 1u64 << ((m - 1) % 64),
        }
    }

    /// Quote length in chars.
    pub(super) fn len(&self) -> usize {
        self.m
    }

    /// Reads `text` (codes), calling `visit(e, d)` after each char with `e` the number
    /// of chars read and `d = D[m][e]` for `mode`; stops early when `visit` returns false.
    pub(super) fn scan(
        &self,
        text: &[u32],
        mode: Mode,
        mut visit: impl FnMut(usize, usize) -> bool,
    ) {
        let blocks = self.blocks;
        // Vertical deltas of each block: +1 everywhere at the start (D[i][0] = i). On the
        // stack for quotes of up to 512 chars: this runs once per candidate window.
        let (mut pv_stack, mut mv_stack) = ([!0u64; 8], [0u64; 8]);
        let (mut pv_heap, mut mv_heap) = (Vec::new(), Vec::new());
        let (pv, mv): (&mut [u64], &mut [u64]) = if blocks <= 8 {
            (&mut pv_stack[..blocks], &mut mv_stack[..blocks])
        } else {
            pv_heap.resize(blocks, !0u64);
            mv_heap.resize(blocks, 0u64);
            (&mut pv_heap[..], &mut mv_heap[..])
        };
        let mut score = self.m as i64;
        let top_hin = match mode {
            Mode::Global => 1,
            Mode::SemiGlobal => 0,
        };
        for (i, &code) in text.iter().enumerate() {
            let base = code as usize * blocks;
            let mut hin = top_hin;
            for b in 0..blocks {
                let eq = self.peq.get(base + b).copied().unwrap_or(0);
                let high = if b + 1 == blocks {
                    self.last_bit
                } else {
                    1u64 << 63
                };
                hin = advance_block(&mut pv[b], &mut mv[b], eq, hin, high);
            }
            score += i64::from(hin);
            if !visit(i + 1, usize::try_from(score).unwrap_or(0)) {
                return;
            }
        }
    }

    /// `out[e]` = the smallest edit distance between the quote and any substring of
    /// `text` ending at char `e`, for `e` in `0..=text.len()` (as `min_distance_by_end`).
    /// The reference of the segmented forms, in the tests.
    #[cfg(test)]
    pub(super) fn min_distance_by_end(&self, text: &[u32]) -> Vec<usize> {
        let mut out = Vec::with_capacity(text.len() + 1);
        out.push(self.m);
        self.scan(text, Mode::SemiGlobal, |_, d| {
            out.push(d);
            true
        });
        out
    }

    /// [`Pattern::min_distance_by_end`] as `u32`s, faster on long texts: the text is cut
    /// into [`STREAMS`] segments read side by side (independent dependency chains, so
    /// the processor overlaps them). A segment's reading starts `2m + 2` chars early: the
    /// best substring ending anywhere is at most `2m` chars long (a longer one is more
    /// than `m` edits away, the empty one `m`), so from there on its values are exact.
    pub(super) fn min_distances(&self, text: &[u32]) -> Vec<u32> {
        let n = text.len();
        let overlap = 2 * self.m + 2;
        let seg = n.div_ceil(STREAMS);
        let mut out = vec![0u32; n + 1];
        out[0] = u32::try_from(self.m).unwrap_or(u32::MAX);
        if seg < 2 * overlap || self.blocks > 2 {
            self.scan(text, Mode::SemiGlobal, |read, d| {
                out[read] = u32::try_from(d).unwrap_or(u32::MAX);
                true
            });
        } else if self.blocks == 1 {
            self.streams::<1>(text, &mut out, seg, overlap);
        } else {
            self.streams::<2>(text, &mut out, seg, overlap);
        }
        out
    }

    fn streams<const B: usize>(&self, text: &[u32], out: &mut [u32], seg: usize, overlap: usize) {
        let n = text.len();
        let len = seg + overlap;
        // Stream 0 reads [0, len), exact throughout; stream i (0 < i < last) reads from
        // i·seg − overlap, exact from i·seg; the last one ends at n, exact from n − seg.
        let mut starts = [0usize; STREAMS];
        for (i, s) in starts.iter_mut().enumerate().skip(1) {
            *s = if i + 1 == STREAMS {
                n - len
            } else {
                i * seg - overlap
            };
        }
        let mut high = [1u64 << 63; B];
        high[B - 1] = self.last_bit;
        let mut pv = [[!0u64; B]; STREAMS];
        let mut mv = [[0u64; B]; STREAMS];
        let mut score = [i64::try_from(self.m).unwrap_or(i64::MAX); STREAMS];
        for t in 0..len {
            for i in 0..STREAMS {
                let p = starts[i] + t;
                let base = text[p] as usize * B;
                let mut hin = 0;
                for b in 0..B {
                    let eq = self.peq.get(base + b).copied().unwrap_or(0);
                    hin = advance_block(&mut pv[i][b], &mut mv[i][b], eq, hin, high[b]);
                }
                score[i] += i64::from(hin);
                if i == 0 || t >= overlap {
                    out[p + 1] = u32::try_from(score[i]).unwrap_or(0);
                }
            }
        }
    }

    /// The Levenshtein distance between the quote and `text`.
    pub(super) fn distance(&self, text: &[u32]) -> usize {
        let mut last = self.m;
        self.scan(text, Mode::Global, |_, d| {
            last = d;
            true
        });
        last
    }
}

/// One column step of one block; returns the horizontal delta leaving its bottom row
/// (`high`), given the one entering its top (`hin`, in {-1, 0, +1}).
#[inline]
fn advance_block(pv: &mut u64, mv: &mut u64, eq: u64, hin: i32, high: u64) -> i32 {
    let (p, m) = (*pv, *mv);
    let hin_neg = u64::from(hin < 0);
    let hin_pos = u64::from(hin > 0);
    let xv = eq | m;
    let eq = eq | hin_neg;
    let xh = ((eq & p).wrapping_add(p) ^ p) | eq;
    let mut ph = m | !(xh | p);
    let mut mh = p & xh;
    let hout = i32::from(ph & high != 0) - i32::from(mh & high != 0);
    ph = (ph << 1) | hin_pos;
    mh = (mh << 1) | hin_neg;
    *pv = mh | !(xv | ph);
    *mv = ph & xv;
    hout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::levenshtein;

    fn encode(text: &[char], alphabet: &mut HashMap<char, u32>) -> Vec<u32> {
        text.iter()
            .map(|c| {
                let next = alphabet.len() as u32;
                *alphabet.entry(*c).or_insert(next)
            })
            .collect()
    }

    /// A deterministic pseudo-random generator (xorshift), for reproducible cases.
    fn rng(seed: u64) -> impl FnMut(usize) -> usize {
        let mut s = seed | 1;
        move |n| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n as u64) as usize
        }
    }

    #[test]
    fn side_by_side_streams_give_the_single_pass_distances() {
        let letters: Vec<char> = "abcdefgh ij".chars().collect();
        let mut next = rng(11);
        let text: Vec<char> = (0..6000).map(|_| letters[next(letters.len())]).collect();
        let mut alphabet = HashMap::new();
        let codes = encode(&text, &mut alphabet);
        for m in [1, 2, 7, 31, 63, 64, 65, 100, 127, 128, 129, 300] {
            // Quotes taken from the text (so with close matches) and random ones.
            for from_text in [true, false] {
                let quote: Vec<char> = if from_text {
                    text[1000..1000 + m].to_vec()
                } else {
                    (0..m).map(|_| letters[next(letters.len())]).collect()
                };
                let pattern = Pattern::new(&quote, &alphabet, alphabet.len());
                for n in [0, 10, 700, 2000, 6000] {
                    let fast: Vec<usize> = pattern
                        .min_distances(&codes[..n])
                        .into_iter()
                        .map(|d| d as usize)
                        .collect();
                    assert_eq!(
                        fast,
                        pattern.min_distance_by_end(&codes[..n]),
                        "m {m}, n {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn distances_equal_the_dynamic_programming_ones_across_block_sizes() {
        let letters: Vec<char> = "abcde éz".chars().collect();
        let mut next = rng(7);
        for case in 0..300 {
            let m = 1 + next(if case % 3 == 0 { 200 } else { 70 });
            // Long texts too, for the side-by-side streams of `min_distances`.
            let n = if case % 5 == 0 {
                600 + next(2400)
            } else {
                next(260)
            };
            let quote: Vec<char> = (0..m).map(|_| letters[next(letters.len())]).collect();
            let text: Vec<char> = (0..n).map(|_| letters[next(letters.len())]).collect();
            let mut alphabet = HashMap::new();
            // Leave the quote's last letter out of the alphabet sometimes: it then
            // matches nothing, as a char the recording never has.
            let codes = encode(&text, &mut alphabet);
            let pattern = Pattern::new(&quote, &alphabet, alphabet.len());
            assert_eq!(
                pattern.distance(&codes),
                levenshtein(&quote, &text),
                "case {case}"
            );
            let by_end = super::super::matching::min_distance_by_end(&quote, &text);
            assert_eq!(pattern.min_distance_by_end(&codes), by_end, "case {case}");
            let fast: Vec<usize> = pattern
                .min_distances(&codes)
                .into_iter()
                .map(|d| d as usize)
                .collect();
            assert_eq!(fast, by_end, "case {case}");
        }
    }
}
