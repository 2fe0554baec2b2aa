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

/// Replaces, anywhere in `value`, the personal data the detector finds in the string
/// values of [`ERASED_KEYS`] by typed placeholders (`[TELEPHONE_1]`, …) from `redactor`
/// (one per fiche, so a value keeps its placeholder); returns how many strings changed.
/// What retention leaves of the citations of an audit whose transcripts went.
pub fn redact_texts(value: &mut Value, redactor: &mut crate::pii::Redactor) -> usize {
    match value {
        Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if ERASED_KEYS.contains(&k.as_str())
                    && let Value::String(s) = v
                {
                    let redacted = redactor.redact(s).text;
                    if redacted != *s {
                        *s = redacted;
                        n += 1;
                    }
                } else {
                    n += redact_texts(v, redactor);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(|v| redact_texts(v, redactor)).sum(),
        _ => 0,
    }
}

crate::status::named_enum! {
    /// What is redacted (`PII_REDACTION`).
    PiiRedaction {
        /// Nothing: the LLM reads the calls as they were said.
        Off = "off",
        /// Every text sent to the LLM (audit and rerun prompts in both modes, transcript
        /// tools' results, chat) carries typed placeholders instead of personal data; what
        /// is stored stays as it was said.
        Prompts = "prompts",
        /// As `prompts`, and transcripts are stored redacted (the original is not kept).
        Stored = "stored",
    }
}

impl PiiRedaction {
    /// Whether prompts are redacted.
    pub fn prompts(self) -> bool {
        self != Self::Off
    }
}

/// The transcripts with their personal data replaced by `redactor`'s placeholders (one
/// redactor per fiche, fed the transcripts in recording order, so a value keeps its
/// placeholder across recordings and steps). A datum said over several words becomes one
/// placeholder word carrying the first word's start, the last one's end and speaker; the
/// words it covered are left empty (utterances skip them). Citations of the redacted text
/// are gated against these transcripts: a quote that says the value again is no match.
pub fn redact_transcripts(
    transcripts: &[crate::transcript::Transcript],
    redactor: &mut crate::pii::Redactor,
) -> Vec<crate::transcript::Transcript> {
    transcripts
        .iter()
        .map(|t| {
            let mut joined = String::new();
            let mut spans = Vec::with_capacity(t.words.len());
            for w in &t.words {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                let start = joined.len();
                joined.push_str(&w.text);
                spans.push((start, joined.len()));
            }
            let redacted = redactor.redact(&joined);
            let mut words = t.words.clone();
            for (finding, placeholder) in &redacted.findings {
                let covered: Vec<usize> = spans
                    .iter()
                    .enumerate()
                    .filter(|(_, (s, e))| *s < finding.end && finding.start < *e)
                    .map(|(i, _)| i)
                    .collect();
                let (Some(&first), Some(&last)) = (covered.first(), covered.last()) else {
                    continue;
                };
                let (fs, _) = spans[first];
                let (ls, le) = spans[last];
                let before = &joined[fs..finding.start.max(fs)];
                let after = &joined[finding.end.min(le).max(ls)..le];
                let end_s = words[last].end_s;
                words[first].text = format!("{before}{placeholder}{after}");
                words[first].end_s = end_s;
                for w in &mut words[first + 1..=last] {
                    w.text.clear();
                }
            }
            crate::transcript::Transcript {
                recording_id: t.recording_id.clone(),
                language: t.language.clone(),
                text: redactor.redact(&t.text).text,
                words,
            }
        })
        .collect()
}

/// How long personal data is kept (`RETENTION_DAYS_*`; None: forever). The input of
/// `RetentionWorkflow`, set on its Temporal Schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionLimits {
    /// Days a completed transcript is kept.
    pub transcripts_days: Option<u32>,
    /// Days a chat message is kept.
    pub chat_days: Option<u32>,
    /// Days a recording's audio URL is kept.
    pub audio_urls_days: Option<u32>,
}

impl RetentionLimits {
    /// Whether any limit is set (else no schedule runs).
    pub fn any(&self) -> bool {
        self.transcripts_days.is_some()
            || self.chat_days.is_some()
            || self.audio_urls_days.is_some()
    }
}

/// Input of `retention.purge`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionRun {
    /// The run's workflow id (its event's dedupe key).
    pub run: String,
    /// The limits.
    pub limits: RetentionLimits,
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
    fn retention_redacts_the_personal_values_of_citations_and_keeps_the_rest() {
        let mut step = json!({"points_controle": [{
            "statut": "PRESENT",
            "citations": [{"quote": "mon numéro c'est le 06 45 78 12 90", "recording_id": "R1"}],
            "commentaire": "Le conseiller confirme le numéro"
        }]});
        let mut redactor = crate::pii::Redactor::new();
        assert_eq!(redact_texts(&mut step, &mut redactor), 1);
        let quote = step["points_controle"][0]["citations"][0]["quote"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(quote.contains("[TELEPHONE_1]"), "{quote}");
        assert!(!quote.contains("45 78"), "{quote}");
        assert_eq!(
            step["points_controle"][0]["commentaire"],
            "Le conseiller confirme le numéro"
        );
        assert!(!RetentionLimits::default().any());
    }

    fn word(text: &str, start_s: f64, speaker: &str) -> crate::transcript::Word {
        crate::transcript::Word {
            text: text.into(),
            start_s,
            end_s: start_s + 0.4,
            speaker: Some(speaker.into()),
        }
    }

    #[test]
    fn a_transcript_is_redacted_word_by_word_with_one_placeholder_per_value_across_recordings() {
        use crate::transcript::Transcript;
        let said = |id: &str, words: &[&str]| Transcript {
            recording_id: id.into(),
            language: Some("fr".into()),
            text: words.join(" "),
            words: words
                .iter()
                .enumerate()
                .map(|(i, w)| word(w, i as f64, "speaker_1"))
                .collect(),
        };
        let one = said(
            "R1",
            &[
                "Mon", "numéro", "c'est", "le", "06", "12", "34", "56", "78,", "merci.",
            ],
        );
        let two = said("R2", &["Je", "répète", ":", "06", "12", "34", "56", "78."]);
        let mut r = crate::pii::Redactor::new();
        let out = redact_transcripts(&[one, two], &mut r);
        let texts = |t: &Transcript| -> Vec<String> {
            t.utterances().into_iter().map(|u| u.text).collect()
        };
        assert_eq!(
            texts(&out[0]),
            ["Mon numéro c'est le [TELEPHONE_1], merci."]
        );
        assert_eq!(texts(&out[1]), ["Je répète : [TELEPHONE_1]."]);
        assert_eq!(out[0].text, "Mon numéro c'est le [TELEPHONE_1], merci.");
        // The placeholder spans the words it replaced.
        let placeholder = &out[0].words[4];
        assert_eq!(placeholder.start_s, 4.0);
        assert!((placeholder.end_s - 8.4).abs() < 1e-9);
        assert_eq!(r.value_of("[TELEPHONE_1]"), Some("+33612345678"));
        assert!(!PiiRedaction::Off.prompts());
        assert_eq!("prompts".parse::<PiiRedaction>(), Ok(PiiRedaction::Prompts));
    }

    #[test]
    fn a_quote_of_the_redacted_text_verifies_and_one_that_says_the_value_again_does_not() {
        use crate::analysis::Citation;
        use crate::evidence::{CitationVerdict, GatingOptions, check_citation};
        use crate::transcript::Transcript;
        let words = "Je confirme votre numéro de téléphone le 06 98 76 54 32 c'est bien ça ?";
        let t = Transcript {
            recording_id: "R1".into(),
            language: None,
            text: words.into(),
            words: words
                .split(' ')
                .enumerate()
                .map(|(i, w)| word(w, i as f64, "speaker_0"))
                .collect(),
        };
        let seen = redact_transcripts(&[t], &mut crate::pii::Redactor::new());
        let quote = |q: &str| Citation {
            quote: q.into(),
            recording_id: "R1".into(),
            start_s: None,
            speaker: None,
        };
        let opts = GatingOptions::default();
        let placeholder = check_citation(
            &quote("votre numéro de téléphone le [TELEPHONE_1] c'est bien ça"),
            &seen,
            &opts,
        );
        assert_eq!(
            placeholder.verdict,
            CitationVerdict::Verified,
            "{placeholder:?}"
        );
        let reinvented = check_citation(
            &quote("votre numéro de téléphone le 06 98 76 54 32 c'est bien ça"),
            &seen,
            &opts,
        );
        assert_ne!(
            reinvented.verdict,
            CitationVerdict::Verified,
            "{reinvented:?}"
        );
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
