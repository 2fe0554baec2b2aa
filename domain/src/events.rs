//! The events of callaudit's streams, as one typed enum: each knows its type name (the
//! SSE `event:`), its topic (the stream it belongs to), its dedupe key (so an activity
//! retried after publishing stores it once) and its JSON payload. Producers build these;
//! nothing spells an event type as a string elsewhere.

use crate::analysis::{Conformite, Niveau};
use crate::workflow_io::ids;
use serde_json::{Value, json};

/// Every event kind, with its payload fields.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEvent {
    /// `audit.started`: the workflow began; how many steps it will analyse.
    Started {
        /// Audit id.
        audit_id: String,
        /// Fiche audited.
        fiche_id: String,
        /// Steps of the configuration.
        steps_total: usize,
    },
    /// `audit.step.completed`: one step stored.
    StepCompleted {
        /// Audit id.
        audit_id: String,
        /// Step position.
        position: i32,
        /// Step name.
        name: String,
        /// Step score.
        score: f64,
        /// Step verdict.
        conforme: Conformite,
    },
    /// `audit.completed`: the summary is recorded (terminal).
    Completed {
        /// Audit id.
        audit_id: String,
        /// Score, 0–100.
        score: f64,
        /// Level.
        niveau: Niveau,
        /// A critical step failed.
        critical: bool,
    },
    /// `audit.failed`: the failure is recorded with its root cause (terminal).
    Failed {
        /// Audit id.
        audit_id: String,
        /// Reason.
        error: String,
    },
    /// `audit.cancelled`: cancelled on request (terminal).
    Cancelled {
        /// Audit id.
        audit_id: String,
        /// Who asked.
        by: String,
    },
}

/// Type names that end an audit's stream.
pub const AUDIT_TERMINAL: &[&str] = &[
    AuditEvent::COMPLETED,
    AuditEvent::FAILED,
    AuditEvent::CANCELLED,
];

impl AuditEvent {
    /// `audit.started`.
    pub const STARTED: &'static str = "audit.started";
    /// `audit.step.completed`.
    pub const STEP_COMPLETED: &'static str = "audit.step.completed";
    /// `audit.completed`.
    pub const COMPLETED: &'static str = "audit.completed";
    /// `audit.failed`.
    pub const FAILED: &'static str = "audit.failed";
    /// `audit.cancelled`.
    pub const CANCELLED: &'static str = "audit.cancelled";

    fn audit_id(&self) -> &str {
        match self {
            Self::Started { audit_id, .. }
            | Self::StepCompleted { audit_id, .. }
            | Self::Completed { audit_id, .. }
            | Self::Failed { audit_id, .. }
            | Self::Cancelled { audit_id, .. } => audit_id,
        }
    }

    /// The event type (SSE `event:`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Started { .. } => Self::STARTED,
            Self::StepCompleted { .. } => Self::STEP_COMPLETED,
            Self::Completed { .. } => Self::COMPLETED,
            Self::Failed { .. } => Self::FAILED,
            Self::Cancelled { .. } => Self::CANCELLED,
        }
    }

    /// The stream it belongs to (`audit:{id}`).
    pub fn topic(&self) -> String {
        ids::audit_topic(self.audit_id())
    }

    /// One key per fact: publishing the same fact twice stores it once.
    pub fn dedupe_key(&self) -> String {
        let id = self.audit_id();
        match self {
            Self::Started { .. } => format!("audit:{id}:started"),
            Self::StepCompleted { position, .. } => format!("audit:{id}:step:{position}"),
            Self::Completed { .. } => format!("audit:{id}:completed"),
            Self::Failed { .. } => format!("audit:{id}:failed"),
            Self::Cancelled { .. } => format!("audit:{id}:cancelled"),
        }
    }

    /// The JSON payload (ids and small summaries, never a transcript).
    pub fn payload(&self) -> Value {
        match self {
            Self::Started {
                audit_id,
                fiche_id,
                steps_total,
            } => json!({"audit_id": audit_id, "fiche_id": fiche_id, "steps_total": steps_total}),
            Self::StepCompleted {
                audit_id,
                position,
                name,
                score,
                conforme,
            } => {
                json!({"audit_id": audit_id, "position": position, "name": name, "score": score, "conforme": conforme})
            }
            Self::Completed {
                audit_id,
                score,
                niveau,
                critical,
            } => {
                json!({"audit_id": audit_id, "score": score, "niveau": niveau, "critical": critical})
            }
            Self::Failed { audit_id, error } => json!({"audit_id": audit_id, "error": error}),
            Self::Cancelled { audit_id, by } => json!({"audit_id": audit_id, "by": by}),
        }
    }

    /// Whether the event ends its stream.
    pub fn is_terminal(&self) -> bool {
        AUDIT_TERMINAL.contains(&self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fact_has_one_dedupe_key_and_its_audit_topic() {
        let step = AuditEvent::StepCompleted {
            audit_id: "a1".into(),
            position: 3,
            name: "Accueil".into(),
            score: 1.5,
            conforme: Conformite::Partiel,
        };
        assert_eq!(step.kind(), "audit.step.completed");
        assert_eq!(step.topic(), "audit:a1");
        assert_eq!(step.dedupe_key(), "audit:a1:step:3");
        assert_eq!(step.payload()["conforme"], "PARTIEL");
        assert!(!step.is_terminal());
        let done = AuditEvent::Completed {
            audit_id: "a1".into(),
            score: 80.0,
            niveau: Niveau::Bon,
            critical: false,
        };
        assert_eq!(done.dedupe_key(), "audit:a1:completed");
        assert_eq!(done.payload()["niveau"], "BON");
        assert!(done.is_terminal());
    }
}
