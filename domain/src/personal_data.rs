//! Personal data kept out of what stays: erasing a fiche's personal data keeps its audits'
//! scores and verdicts but not the words that could name or reach a person — quotes,
//! matched transcript text, free-text comments, reviewers' hints — and the events that
//! announce purges and erasures.

use serde_json::{Value, json};

/// What replaces an erased text.
pub const ERASED: &str = "[effacé]";

/// Keys of a stored step result (`raw_result`, a rerun's proposal, a history entry) whose
/// string values may carry what a person said: replaced by [`ERASED`] on erasure.
pub const ERASED_KEYS: &[&str] = &[
    "quote",
    "matched_text",
    "commentaire",
    "comment",
    "evidence_reason",
    "reason",
    "instructions",
];

/// Replaces, anywhere in `value`, the string values of [`ERASED_KEYS`] by [`ERASED`];
/// statuses, scores, indexes, ids and the configuration's own wording stay. Returns how
/// many strings it replaced (0 on a second run: it is idempotent).
pub fn erase_texts(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if ERASED_KEYS.contains(&k.as_str())
                    && let Value::String(s) = v
                {
                    if s != ERASED && !s.is_empty() {
                        *s = ERASED.to_string();
                        n += 1;
                    }
                } else {
                    n += erase_texts(v);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(erase_texts).sum(),
        _ => 0,
    }
}

/// Stream topic of personal-data events.
pub const TOPIC: &str = "personal_data";

/// Counts of what one erasure or purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    /// Transcripts deleted.
    pub transcripts: u64,
    /// Audio URLs cleared.
    pub audio_urls: u64,
    /// Chat messages deleted.
    pub chat_messages: u64,
    /// Stored step results (and reruns) whose texts were erased.
    pub step_results: u64,
    /// Fiches whose client details were cleared.
    pub fiches: u64,
}

/// Events of the personal-data stream.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonalDataEvent {
    /// `personal_data.erased`: a fiche's personal data was erased on request.
    Erased {
        /// The fiche.
        fiche_id: String,
        /// Who asked.
        by: String,
        /// When (RFC 3339).
        at: String,
        /// What went.
        removed: Removed,
    },
    /// `personal_data.purged`: a retention run purged what was older than its limits.
    Purged {
        /// The run (its workflow id).
        run: String,
        /// What went.
        removed: Removed,
    },
}

impl crate::events::DomainEvent for PersonalDataEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Erased { .. } => "personal_data.erased",
            Self::Purged { .. } => "personal_data.purged",
        }
    }
    fn topic(&self) -> String {
        TOPIC.to_string()
    }
    fn dedupe_key(&self) -> String {
        match self {
            Self::Erased { fiche_id, at, .. } => format!("personal_data:erased:{fiche_id}:{at}"),
            Self::Purged { run, .. } => format!("personal_data:purged:{run}"),
        }
    }
    fn payload(&self) -> Value {
        match self {
            Self::Erased {
                fiche_id,
                by,
                at,
                removed,
            } => json!({"fiche_id": fiche_id, "by": by, "at": at, "removed": removed}),
            Self::Purged { run, removed } => json!({"run": run, "removed": removed}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_keeps_verdicts_and_scores_and_replaces_what_was_said() {
        let mut step = json!({
            "points_controle": [{
                "index": 0, "point": "Le conseiller se présente", "statut": "PRESENT",
                "commentaire": "Il dit « Roger Girard, 06 45 78 12 90 »",
                "citations": [{"quote": "je suis Roger Girard", "recording_id": "R1", "start_s": 3.5}],
                "citation_checks": [{"quote": "je suis Roger Girard", "matched_text": "je suis roger girard", "verdict": "VERIFIED", "similarity": 1.0, "reason": "quote found"}],
                "review": {"statut": "PARTIEL", "comment": "Roger a hésité", "by": "qa@x", "at": "t"}
            }],
            "commentaire": "Roger Girard",
            "rerun_history": [{"kind": "review", "previous": null, "new": {"comment": "Roger"}, "instructions": "écoute Roger"}]
        });
        assert_eq!(erase_texts(&mut step), 9);
        let p = &step["points_controle"][0];
        assert_eq!(p["statut"], "PRESENT");
        assert_eq!(p["point"], "Le conseiller se présente");
        assert_eq!(p["citations"][0]["quote"], ERASED);
        assert_eq!(p["citations"][0]["recording_id"], "R1");
        assert_eq!(p["citation_checks"][0]["verdict"], "VERIFIED");
        assert_eq!(p["review"]["statut"], "PARTIEL");
        assert_eq!(p["review"]["comment"], ERASED);
        assert_eq!(step["rerun_history"][0]["new"]["comment"], ERASED);
        assert!(!step.to_string().contains("Roger"));
        assert_eq!(erase_texts(&mut step), 0, "idempotent");
    }

    #[test]
    fn each_erasure_and_purge_is_one_event_of_the_personal_data_stream() {
        use crate::events::DomainEvent;
        let e = PersonalDataEvent::Erased {
            fiche_id: "F1".into(),
            by: "admin@x".into(),
            at: "2026-12-04T10:00:00Z".into(),
            removed: Removed {
                transcripts: 2,
                ..Default::default()
            },
        };
        assert_eq!(e.kind(), "personal_data.erased");
        assert_eq!(e.topic(), "personal_data");
        assert_eq!(e.payload()["removed"]["transcripts"], 2);
        let p = PersonalDataEvent::Purged {
            run: "retention:1".into(),
            removed: Removed::default(),
        };
        assert_eq!(p.dedupe_key(), "personal_data:purged:retention:1");
    }
}
