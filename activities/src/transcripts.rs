//! The transcripts a step reads, cached per worker. Each step of an audit (and each
//! rerun) reads its fiche's transcripts; they were loaded and parsed again every time:
//! per step four queries, the words as JSON from Postgres, parsed twice. Now one query
//! names each recording's stored transcript (its recording and when it was stored: a
//! stored transcript is never changed in place, see
//! `callaudit_db::transcriptions::versions_of_fiche`), and only those this worker has
//! not kept are loaded, in one more query.

use callaudit_db::transcriptions::{self, TranscriptVersion};
use callaudit_domain::transcript::{Transcript, Word};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use temporalio_common::ActivityError;

use crate::state::{WorkerActivities, retryable};

/// Bytes of transcripts kept per worker (text and words, estimated): a few hundred
/// short calls, or a handful of 5-hour ones.
const BUDGET_BYTES: usize = 32 << 20;

static TRANSCRIPTS: TranscriptCache = TranscriptCache::new(BUDGET_BYTES);

type Key = (String, DateTime<Utc>);

struct Entry {
    key: Key,
    transcript: Arc<Transcript>,
    bytes: usize,
}

/// Transcripts by (recording, stored at), least recently used first, within a budget of
/// bytes.
pub(crate) struct TranscriptCache {
    budget: usize,
    entries: Mutex<Vec<Entry>>,
}

/// The memory `t` holds, estimated.
fn bytes_of(t: &Transcript) -> usize {
    t.text.len()
        + t.words
            .iter()
            .map(|w| {
                std::mem::size_of::<Word>()
                    + w.text.len()
                    + w.speaker.as_ref().map_or(0, String::len)
            })
            .sum::<usize>()
}

impl TranscriptCache {
    /// An empty cache of `budget` bytes.
    pub(crate) const fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The transcript kept under `key`, now the most recently used.
    pub(crate) fn get(
        &self,
        recording_id: &str,
        stored_at: DateTime<Utc>,
    ) -> Option<Arc<Transcript>> {
        let mut entries = self.lock();
        let i = entries
            .iter()
            .position(|e| e.key.1 == stored_at && e.key.0 == recording_id)?;
        let entry = entries.remove(i);
        let t = entry.transcript.clone();
        entries.push(entry);
        Some(t)
    }

    /// Keeps `transcript` under `key`, dropping the least recently used past the budget
    /// (one larger than the budget is not kept).
    pub(crate) fn put(
        &self,
        recording_id: &str,
        stored_at: DateTime<Utc>,
        transcript: Arc<Transcript>,
    ) {
        let bytes = bytes_of(&transcript);
        if bytes > self.budget {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|e| !(e.key.1 == stored_at && e.key.0 == recording_id));
        let mut total: usize = entries.iter().map(|e| e.bytes).sum::<usize>() + bytes;
        while total > self.budget && !entries.is_empty() {
            total -= entries.remove(0).bytes;
        }
        entries.push(Entry {
            key: (recording_id.to_string(), stored_at),
            transcript,
            bytes,
        });
    }

    /// How many transcripts are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn not_yet(recording_id: &str) -> ActivityError {
    retryable(format!("recording {recording_id} is not transcribed yet"))
}

impl WorkerActivities {
    /// The fiche's transcripts in recording order; retryable until all are stored.
    pub(crate) async fn load_transcripts(
        &self,
        fiche_id: &str,
    ) -> Result<Vec<Transcript>, ActivityError> {
        let mut conn = self.conn().await?;
        transcripts_with(&mut conn, fiche_id).await
    }
}

/// [`WorkerActivities::load_transcripts`] on a connection the caller holds.
pub(crate) async fn transcripts_with(
    conn: &mut callaudit_db::AsyncPgConnection,
    fiche_id: &str,
) -> Result<Vec<Transcript>, ActivityError> {
    let versions = transcriptions::versions_of_fiche(conn, fiche_id)
        .await
        .map_err(retryable)?;
    let mut found: Vec<Option<Arc<Transcript>>> = Vec::with_capacity(versions.len());
    let mut missing: Vec<&str> = Vec::new();
    for v in &versions {
        let TranscriptVersion {
            recording_id,
            transcribed,
            completed_at,
        } = v;
        if !transcribed {
            return Err(not_yet(recording_id));
        }
        let kept = completed_at.and_then(|at| TRANSCRIPTS.get(recording_id, at));
        if kept.is_none() {
            missing.push(recording_id);
        }
        found.push(kept);
    }
    if !missing.is_empty() {
        let rows = transcriptions::completed_of(conn, &missing)
            .await
            .map_err(retryable)?;
        for (recording_id, stored_at, t) in rows {
            let transcript = Arc::new(Transcript {
                recording_id: recording_id.clone(),
                language: t.language,
                text: t.text.unwrap_or_default(),
                words: t
                    .words
                    .and_then(|w| serde_json::from_value(w).ok())
                    .unwrap_or_default(),
            });
            let Some(i) = versions.iter().position(|v| v.recording_id == recording_id) else {
                continue;
            };
            // Kept only when it is the version named above (not one stored since).
            if let Some(at) = stored_at
                && versions[i].completed_at == Some(at)
            {
                TRANSCRIPTS.put(&recording_id, at, transcript.clone());
            }
            found[i] = Some(transcript);
        }
    }
    versions
        .iter()
        .zip(found)
        .map(|(v, t)| {
            t.map(|t| Transcript::clone(&t))
                .ok_or_else(|| not_yet(&v.recording_id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(id: &str, words: usize) -> Arc<Transcript> {
        Arc::new(Transcript {
            recording_id: id.into(),
            language: None,
            text: "mot ".repeat(words),
            words: (0..words)
                .map(|i| Word {
                    text: "mot".into(),
                    start_s: i as f64,
                    end_s: i as f64 + 0.5,
                    speaker: None,
                })
                .collect(),
        })
    }

    #[test]
    fn a_transcript_is_found_by_its_recording_and_stored_time_only() {
        let cache = TranscriptCache::new(1 << 20);
        let at = DateTime::from_timestamp(1_700_000_000, 123_000).unwrap();
        cache.put("REC-1", at, transcript("REC-1", 3));
        assert_eq!(cache.get("REC-1", at).unwrap().words.len(), 3);
        assert!(cache.get("REC-2", at).is_none());
        let later = DateTime::from_timestamp(1_700_000_000, 124_000).unwrap();
        assert!(
            cache.get("REC-1", later).is_none(),
            "another stored version"
        );
    }

    #[test]
    fn the_least_recently_used_go_first_past_the_budget() {
        let one = bytes_of(&transcript("REC-0", 100));
        let cache = TranscriptCache::new(one * 3);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for id in ["REC-0", "REC-1", "REC-2"] {
            cache.put(id, at, transcript(id, 100));
        }
        assert!(cache.get("REC-0", at).is_some(), "REC-1 is now the oldest");
        cache.put("REC-3", at, transcript("REC-3", 100));
        assert_eq!(cache.len(), 3);
        assert!(cache.get("REC-1", at).is_none());
        for id in ["REC-0", "REC-2", "REC-3"] {
            assert!(cache.get(id, at).is_some(), "{id}");
        }
        // Larger than the whole budget: not kept, nothing dropped for it.
        cache.put("REC-4", at, transcript("REC-4", 1000));
        assert!(cache.get("REC-4", at).is_none());
        assert_eq!(cache.len(), 3);
    }
}
