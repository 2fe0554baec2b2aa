//! The events of callaudit's streams, as one typed enum: each knows its type name (the
//! SSE `event:`), its topic (the stream it belongs to), its dedupe key (so an activity
//! retried after publishing stores it once) and its JSON payload. Producers build these;
//! nothing spells an event type as a string elsewhere.

use crate::analysis::{Conformite, ControlPointStatus, Niveau};
use crate::rerun::RerunKind;
use crate::scoring::AuditSummary;
use crate::workflow_io::ids;
use serde_json::{Value, json};

/// What every stream event is, whatever its family (audits; batches, fetch jobs and
/// automation runs add theirs): its type (the SSE `event:`), its topic (the stream), a
/// dedupe key (one per fact: publishing it twice stores it once) and its JSON payload.
pub trait DomainEvent {
    /// The event type, e.g. `audit.step.completed`.
    fn kind(&self) -> &'static str;
    /// The stream it belongs to, e.g. `audit:{id}`.
    fn topic(&self) -> String;
    /// One key per fact.
    fn dedupe_key(&self) -> String;
    /// The payload (ids and small summaries, never a transcript or a secret).
    fn payload(&self) -> Value;
}

impl DomainEvent for AuditEvent {
    fn kind(&self) -> &'static str {
        AuditEvent::kind(self)
    }
    fn topic(&self) -> String {
        AuditEvent::topic(self)
    }
    fn dedupe_key(&self) -> String {
        AuditEvent::dedupe_key(self)
    }
    fn payload(&self) -> Value {
        AuditEvent::payload(self)
    }
}

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
    /// `audit.rerun.started`: a step or control-point rerun was accepted (opens work on a
    /// finished audit's stream until its completion or failure).
    RerunStarted {
        /// Audit id.
        audit_id: String,
        /// What is analysed again.
        rerun: RerunRef,
        /// Who asked.
        by: String,
    },
    /// `audit.rerun.completed`: the rerun was applied; the new step score and audit summary.
    RerunCompleted {
        /// Audit id.
        audit_id: String,
        /// What was analysed again.
        rerun: RerunRef,
        /// The step's new score.
        step_score: f64,
        /// The step's new verdict.
        step_conforme: Conformite,
        /// The audit's new summary.
        summary: AuditSummary,
    },
    /// `audit.rerun.failed`: the rerun failed; nothing was changed.
    RerunFailed {
        /// Audit id.
        audit_id: String,
        /// What was to be analysed again.
        rerun: RerunRef,
        /// Reason.
        error: String,
    },
    /// `audit.reviewed`: a human verdict was set on (or withdrawn from) a control point;
    /// the step's new score and the audit's new summary.
    Reviewed {
        /// Audit id.
        audit_id: String,
        /// What changed.
        change: ReviewChange,
        /// The step's new score.
        step_score: f64,
        /// The step's new verdict.
        step_conforme: Conformite,
        /// The audit's new summary.
        summary: AuditSummary,
    },
}

/// A review set or withdrawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewChange {
    /// Step position.
    pub position: i32,
    /// Control point index.
    pub control_point_index: i32,
    /// The AI verdict (unchanged).
    pub ai_statut: ControlPointStatus,
    /// The human verdict now (None: withdrawn).
    pub human_statut: Option<ControlPointStatus>,
    /// Who.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Which rerun an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct RerunRef {
    /// `audit_reruns.id`.
    pub rerun_id: String,
    /// Its workflow id.
    pub workflow_id: String,
    /// Step or control point.
    pub kind: RerunKind,
    /// Step position.
    pub position: i32,
    /// Control point index (control-point reruns).
    pub control_point_index: Option<i32>,
}

impl RerunRef {
    fn json(&self) -> Value {
        json!({
            "rerun_id": self.rerun_id,
            "workflow_id": self.workflow_id,
            "kind": self.kind,
            "position": self.position,
            "control_point_index": self.control_point_index,
        })
    }
}

/// Type names that end an audit's run (its stream ends once one is sent and no rerun
/// is open: see [`AUDIT_STREAM_END`]).
pub const AUDIT_TERMINAL: &[&str] = &[
    AuditEvent::COMPLETED,
    AuditEvent::FAILED,
    AuditEvent::CANCELLED,
];

/// When an audit's stream ends: after its run's end, once every rerun it opened has
/// completed or failed.
pub const AUDIT_STREAM_END: StreamEnd = StreamEnd {
    terminal: AUDIT_TERMINAL,
    opens: &[AuditEvent::RERUN_STARTED],
    closes: &[AuditEvent::RERUN_COMPLETED, AuditEvent::RERUN_FAILED],
};

/// When a stream of a topic is settled, so a stream following it may end: one of
/// `terminal` has been stored, and as many `closes` as `opens` (work opened on the
/// topic after its end, such as reruns of a finished audit, each closed once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    /// Types that end the topic's main run.
    pub terminal: &'static [&'static str],
    /// Types that open more work on the topic.
    pub opens: &'static [&'static str],
    /// Types that close such work.
    pub closes: &'static [&'static str],
}

impl StreamEnd {
    /// A topic that ends with its first terminal event (nothing reopens it).
    pub const fn at(terminal: &'static [&'static str]) -> Self {
        Self {
            terminal,
            opens: &[],
            closes: &[],
        }
    }

    /// Every type this rule counts.
    pub fn counted_kinds(&self) -> Vec<&'static str> {
        self.terminal
            .iter()
            .chain(self.opens)
            .chain(self.closes)
            .copied()
            .collect()
    }

    /// Adds one event of type `kind` to `tally`.
    pub fn count(&self, tally: &mut StreamTally, kind: &str) {
        self.count_n(tally, kind, 1);
    }

    /// Adds `n` events of type `kind` to `tally`.
    pub fn count_n(&self, tally: &mut StreamTally, kind: &str, n: u64) {
        if self.terminal.contains(&kind) {
            tally.terminal += n;
        }
        if self.opens.contains(&kind) {
            tally.opened += n;
        }
        if self.closes.contains(&kind) {
            tally.closed += n;
        }
    }
}

/// What a stream has counted of a topic's events so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamTally {
    /// Terminal events.
    pub terminal: u64,
    /// Opening events.
    pub opened: u64,
    /// Closing events.
    pub closed: u64,
}

impl StreamTally {
    /// Whether the topic is settled: ended, and every opened piece of work closed.
    pub fn settled(&self) -> bool {
        self.terminal > 0 && self.closed >= self.opened
    }
}

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
    /// `audit.rerun.started`.
    pub const RERUN_STARTED: &'static str = "audit.rerun.started";
    /// `audit.rerun.completed`.
    pub const RERUN_COMPLETED: &'static str = "audit.rerun.completed";
    /// `audit.rerun.failed`.
    pub const RERUN_FAILED: &'static str = "audit.rerun.failed";
    /// `audit.reviewed`.
    pub const REVIEWED: &'static str = "audit.reviewed";

    fn audit_id(&self) -> &str {
        match self {
            Self::Started { audit_id, .. }
            | Self::StepCompleted { audit_id, .. }
            | Self::Completed { audit_id, .. }
            | Self::Failed { audit_id, .. }
            | Self::Cancelled { audit_id, .. }
            | Self::RerunStarted { audit_id, .. }
            | Self::RerunCompleted { audit_id, .. }
            | Self::RerunFailed { audit_id, .. }
            | Self::Reviewed { audit_id, .. } => audit_id,
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
            Self::RerunStarted { .. } => Self::RERUN_STARTED,
            Self::RerunCompleted { .. } => Self::RERUN_COMPLETED,
            Self::RerunFailed { .. } => Self::RERUN_FAILED,
            Self::Reviewed { .. } => Self::REVIEWED,
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
            Self::RerunStarted { rerun, .. } => {
                format!("audit:{id}:rerun:{}:started", rerun.rerun_id)
            }
            Self::RerunCompleted { rerun, .. } => {
                format!("audit:{id}:rerun:{}:completed", rerun.rerun_id)
            }
            Self::RerunFailed { rerun, .. } => {
                format!("audit:{id}:rerun:{}:failed", rerun.rerun_id)
            }
            Self::Reviewed { change, .. } => format!(
                "audit:{id}:review:{}:{}:{}",
                change.position, change.control_point_index, change.at
            ),
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
            Self::RerunStarted {
                audit_id,
                rerun,
                by,
            } => json!({"audit_id": audit_id, "rerun": rerun.json(), "by": by}),
            Self::RerunCompleted {
                audit_id,
                rerun,
                step_score,
                step_conforme,
                summary,
            } => json!({
                "audit_id": audit_id,
                "rerun": rerun.json(),
                "step": {"position": rerun.position, "score": step_score, "conforme": step_conforme},
                "audit": {"score": summary.score, "niveau": summary.niveau, "critical": summary.critical},
            }),
            Self::RerunFailed {
                audit_id,
                rerun,
                error,
            } => json!({"audit_id": audit_id, "rerun": rerun.json(), "error": error}),
            Self::Reviewed {
                audit_id,
                change,
                step_score,
                step_conforme,
                summary,
            } => json!({
                "audit_id": audit_id,
                "review": {
                    "position": change.position,
                    "control_point_index": change.control_point_index,
                    "ai_statut": change.ai_statut,
                    "human_statut": change.human_statut,
                    "by": change.by,
                    "at": change.at,
                },
                "step": {"position": change.position, "score": step_score, "conforme": step_conforme},
                "audit": {"score": summary.score, "niveau": summary.niveau, "critical": summary.critical},
            }),
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
    fn an_audit_stream_is_settled_after_its_end_once_every_rerun_closed() {
        let mut t = StreamTally::default();
        let end = AUDIT_STREAM_END;
        end.count(&mut t, AuditEvent::STARTED);
        end.count(&mut t, AuditEvent::STEP_COMPLETED);
        assert!(!t.settled(), "running");
        end.count(&mut t, AuditEvent::COMPLETED);
        assert!(t.settled(), "completed, no rerun");
        end.count(&mut t, AuditEvent::RERUN_STARTED);
        end.count(&mut t, AuditEvent::RERUN_STARTED);
        end.count(&mut t, AuditEvent::RERUN_COMPLETED);
        assert!(!t.settled(), "one rerun still open");
        end.count(&mut t, AuditEvent::RERUN_FAILED);
        assert!(t.settled(), "both reruns closed");
        let mut once = StreamTally::default();
        StreamEnd::at(AUDIT_TERMINAL).count(&mut once, AuditEvent::RERUN_STARTED);
        assert!(!once.settled());
    }

    #[test]
    fn a_rerun_event_carries_the_new_step_score_and_audit_summary() {
        let rerun = RerunRef {
            rerun_id: "r9".into(),
            workflow_id: "audit:a1:rerun-cp:2:1:1".into(),
            kind: RerunKind::ControlPoint,
            position: 2,
            control_point_index: Some(1),
        };
        let done = AuditEvent::RerunCompleted {
            audit_id: "a1".into(),
            rerun,
            step_score: 7.5,
            step_conforme: Conformite::Partiel,
            summary: AuditSummary {
                score: 81.2,
                niveau: Niveau::Bon,
                critical: false,
            },
        };
        assert_eq!(done.kind(), "audit.rerun.completed");
        assert_eq!(done.topic(), "audit:a1");
        assert_eq!(done.dedupe_key(), "audit:a1:rerun:r9:completed");
        let p = done.payload();
        assert_eq!(p["rerun"]["kind"], "control_point");
        assert_eq!(p["rerun"]["control_point_index"], 1);
        assert_eq!(p["step"]["score"], 7.5);
        assert_eq!(p["audit"]["niveau"], "BON");
        assert!(!done.is_terminal());
    }

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
