//! Transcripts indexed once, for every step of an audit: a worker gates each step of a
//! fiche against the same transcripts, so it keeps their index ([`TranscriptIndex`]:
//! the gating's normalised tokens, figures and anchors, and the transcript tools'
//! utterances) in a small cache ([`TranscriptIndexCache`]) instead of rebuilding it for
//! each step. An entry is found by the transcripts' content, compared in full: a
//! re-transcribed or differently redacted fiche is another entry, never a stale one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::matching::RecordingIndex;
use super::{
    CitationCheck, GatingOptions, check_with_indexes, gate_point_with_indexes, needs_checks,
};
use crate::analysis::{Citation, ControlPointVerdict, StepAnalysis};
use crate::transcript::Transcript;
use crate::transcript_tools::TranscriptTools;

/// The transcripts of a fiche, indexed for evidence gating and the transcript tools.
pub struct TranscriptIndex {
    transcripts: Vec<Arc<Transcript>>,
    recordings: Vec<RecordingIndex<'static>>,
    tools: OnceLock<TranscriptTools>,
}

impl std::fmt::Debug for TranscriptIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptIndex")
            .field("recordings", &self.recordings.len())
            .field(
                "tokens",
                &self
                    .recordings
                    .iter()
                    .map(|r| r.tokens.len())
                    .sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

impl TranscriptIndex {
    /// Indexes `transcripts` (copied: the index owns them).
    pub fn new(transcripts: &[Transcript]) -> Self {
        let transcripts: Vec<Arc<Transcript>> = transcripts.iter().cloned().map(Arc::new).collect();
        let recordings = transcripts
            .iter()
            .map(|t| RecordingIndex::shared(Arc::clone(t)).with_anchors())
            .collect();
        Self {
            transcripts,
            recordings,
            tools: OnceLock::new(),
        }
    }

    /// An index without anchors, whose searches score every window of the recording as
    /// gating did before the index: the reference the indexed search is tested and
    /// benchmarked against (`callaudit gate-bench`). Same verdicts, much slower.
    pub fn exhaustive(transcripts: &[Transcript]) -> Self {
        let transcripts: Vec<Arc<Transcript>> = transcripts.iter().cloned().map(Arc::new).collect();
        let recordings = transcripts
            .iter()
            .map(|t| RecordingIndex::shared(Arc::clone(t)))
            .collect();
        Self {
            transcripts,
            recordings,
            tools: OnceLock::new(),
        }
    }

    /// Whether this indexes exactly `transcripts`.
    pub fn indexes(&self, transcripts: &[Transcript]) -> bool {
        self.transcripts.len() == transcripts.len()
            && self
                .transcripts
                .iter()
                .zip(transcripts)
                .all(|(a, b)| a.words.len() == b.words.len() && a.text.len() == b.text.len())
            && self
                .transcripts
                .iter()
                .zip(transcripts)
                .all(|(a, b)| **a == *b)
    }

    /// The transcript tools over the same transcripts (built on first use).
    pub fn tools(&self) -> &TranscriptTools {
        self.tools
            .get_or_init(|| TranscriptTools::new_shared(&self.transcripts))
    }
}

/// [`super::check_citation`] against an index.
pub fn check_citation_indexed(
    c: &Citation,
    index: &TranscriptIndex,
    opts: &GatingOptions,
) -> CitationCheck {
    check_with_indexes(c, &index.recordings, &opts.sanitized())
}

/// [`super::gate_step`] against an index.
pub fn gate_step_indexed(
    analysis: StepAnalysis,
    index: &TranscriptIndex,
    opts: &GatingOptions,
) -> StepAnalysis {
    let mut analysis = analysis;
    let opts = opts.sanitized();
    for point in &mut analysis.points_controle {
        gate_point_with_indexes(point, &index.recordings, &opts);
    }
    analysis
}

/// [`super::gate_point`] against an index.
pub fn gate_point_indexed(
    point: ControlPointVerdict,
    index: &TranscriptIndex,
    opts: &GatingOptions,
) -> ControlPointVerdict {
    let mut point = point;
    if needs_checks(&point) {
        gate_point_with_indexes(&mut point, &index.recordings, &opts.sanitized());
    }
    point
}

/// The last few [`TranscriptIndex`]es built, most recently used kept (an LRU).
#[derive(Debug)]
pub struct TranscriptIndexCache {
    capacity: usize,
    /// Least recently used first.
    entries: Mutex<Vec<Arc<TranscriptIndex>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TranscriptIndexCache {
    /// A cache of at most `capacity` indexes (at least one).
    pub const fn new(capacity: usize) -> Self {
        Self {
            capacity: if capacity == 0 { 1 } else { capacity },
            entries: Mutex::new(Vec::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The index of `transcripts`: the cached one when it indexes exactly these,
    /// otherwise a new one (built outside the lock), cached in place of the least
    /// recently used.
    pub fn get(&self, transcripts: &[Transcript]) -> Arc<TranscriptIndex> {
        let lock = || self.entries.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut entries = lock();
            if let Some(pos) = entries.iter().position(|e| e.indexes(transcripts)) {
                let entry = entries.remove(pos);
                entries.push(Arc::clone(&entry));
                self.hits.fetch_add(1, Ordering::Relaxed);
                return entry;
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let built = Arc::new(TranscriptIndex::new(transcripts));
        let mut entries = lock();
        // Another step of the same fiche may have built it meanwhile: keep one.
        entries.retain(|e| !e.indexes(transcripts));
        entries.push(Arc::clone(&built));
        while entries.len() > self.capacity {
            entries.remove(0);
        }
        built
    }

    /// `(hits, misses)` since the cache was created.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Indexes held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether no index is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
