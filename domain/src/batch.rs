//! Batch audits: one audit per fiche of a list (or of a selection of the cached fiches),
//! run by `BatchAuditWorkflow` (`batch:{batch_id}`) as `AuditWorkflow` children in a
//! bounded sliding window, with the batch's state kept explicitly — counts of pending,
//! running, completed, failed and cancelled items — and updated as each child finishes.
//!
//! This module holds what is pure about it: the statuses, the counts and how they move,
//! the limits of a request, fiche-id validation, the batch's events and the inputs and
//! outputs of its workflow and activities (ids and counts only: the fiche list lives in
//! `audit_batch_items`, read a page at a time).

use crate::events::{DomainEvent, StreamEnd};
use crate::status::named_enum;
use crate::workflow_io::ids;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Most fiche ids one request may list.
pub const MAX_FICHE_IDS: usize = 1000;
/// Most fiches a date-range selection may match.
pub const MAX_SELECTED_FICHES: usize = 5000;
/// Longest date-range selection, in days (both ends included).
pub const MAX_SELECTION_DAYS: i64 = 366;
/// Audits a batch runs at once unless the request or `BATCH_AUDIT_WINDOW` says otherwise.
pub const DEFAULT_WINDOW: u32 = 5;
/// Largest window a request may ask for.
pub const MAX_WINDOW: u32 = 50;
/// Children one run of `BatchAuditWorkflow` starts before it continues as new
/// (`BATCH_CONTINUE_AS_NEW_AFTER`): about 15 history events per child, so 200 children
/// keep a run near 3,000 events, far below Temporal's limits.
pub const DEFAULT_CONTINUE_AS_NEW_AFTER: u32 = 200;

named_enum! {
    /// Where a batch stands (`audit_batches.status`).
    BatchStatus {
        /// Stored, workflow starting.
        Pending = "pending",
        /// Its audits run.
        Running = "running",
        /// Every item completed.
        Completed = "completed",
        /// Every item ended, some failed (or their audit was cancelled on its own).
        Partial = "partial",
        /// The batch itself failed (its items not started are cancelled).
        Failed = "failed",
        /// Cancelled on request: finished audits kept, the items not started cancelled.
        Cancelled = "cancelled",
    }
}

impl BatchStatus {
    /// Whether the batch has reached an end state.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

named_enum! {
    /// Where one fiche of a batch stands (`audit_batch_items.status`).
    BatchItemStatus {
        /// Not started.
        Pending = "pending",
        /// Its audit is created and its `AuditWorkflow` runs.
        Running = "running",
        /// Its audit completed.
        Completed = "completed",
        /// Its audit failed.
        Failed = "failed",
        /// Never started (the batch was cancelled or failed first), or its audit was
        /// cancelled.
        Cancelled = "cancelled",
    }
}

impl BatchItemStatus {
    /// Whether the item has reached an end state.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// How many items of a batch are where: the explicit state of a batch, kept in
/// `audit_batches` and by the workflow, moved by [`BatchCounts::start`] and
/// [`BatchCounts::finish`] only. `pending + running + completed + failed + cancelled`
/// is always `total`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchCounts {
    /// Items (distinct fiches).
    pub total: u32,
    /// Not started.
    pub pending: u32,
    /// Audit running.
    pub running: u32,
    /// Audit completed.
    pub completed: u32,
    /// Audit failed.
    pub failed: u32,
    /// Never started, or audit cancelled.
    pub cancelled: u32,
}

impl BatchCounts {
    /// A batch of `total` items, none started.
    pub fn new(total: u32) -> Self {
        Self {
            total,
            pending: total,
            ..Self::default()
        }
    }

    /// Items that have ended.
    pub fn finished(&self) -> u32 {
        self.completed + self.failed + self.cancelled
    }

    /// One pending item started.
    pub fn start(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        self.running += 1;
    }

    /// One running item ended as `status` (a non-terminal status changes nothing).
    pub fn finish(&mut self, status: BatchItemStatus) {
        let slot = match status {
            BatchItemStatus::Completed => &mut self.completed,
            BatchItemStatus::Failed => &mut self.failed,
            BatchItemStatus::Cancelled => &mut self.cancelled,
            BatchItemStatus::Pending | BatchItemStatus::Running => return,
        };
        *slot += 1;
        self.running = self.running.saturating_sub(1);
    }

    /// Every pending item cancelled (a cancelled or failed batch starts nothing more).
    pub fn cancel_pending(&mut self) {
        self.cancelled += self.pending;
        self.pending = 0;
    }

    /// The status of a batch that ran to its end with these counts: completed when
    /// every item completed, partial otherwise.
    pub fn end_status(&self) -> BatchStatus {
        if self.completed == self.total {
            BatchStatus::Completed
        } else {
            BatchStatus::Partial
        }
    }

    fn json(&self) -> Value {
        json!({
            "total": self.total,
            "pending": self.pending,
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
        })
    }
}

/// Whether `id` is a fiche id as `POST /api/audits/run` accepts it: 1 to 100 letters,
/// digits, `_`, `.` or `-`, with at least one letter or digit.
pub fn is_valid_fiche_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id.bytes().any(|b| b.is_ascii_alphanumeric())
}

/// The fiche ids of a request, each checked by [`is_valid_fiche_id`], duplicates
/// collapsed to their first occurrence (order kept); the error names what is wrong.
pub fn collapse_fiche_ids(ids: &[String]) -> Result<Vec<String>, String> {
    if ids.is_empty() {
        return Err("fiche_ids must list at least one fiche".into());
    }
    if ids.len() > MAX_FICHE_IDS {
        return Err(format!(
            "fiche_ids lists {} fiches; at most {MAX_FICHE_IDS} per batch (use a date \
             range for more)",
            ids.len()
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !is_valid_fiche_id(id) {
            return Err(format!(
                "fiche_ids contains {id:?}: a fiche id is 1 to 100 letters, digits, `_`, \
                 `.` or `-`, not those signs alone"
            ));
        }
        if seen.insert(id.as_str()) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// The events of a batch's stream (`batch:{id}`).
#[derive(Debug, Clone, PartialEq)]
pub enum BatchEvent {
    /// `batch.started`: the workflow began; how many items and how many at once.
    Started {
        /// Batch id.
        batch_id: String,
        /// Items.
        total: u32,
        /// Audits at once.
        window: u32,
    },
    /// `batch.progress`: one item's audit ended; the counts after it.
    Progress {
        /// Batch id.
        batch_id: String,
        /// The item (1-based, in request order).
        position: i32,
        /// Its fiche.
        fiche_id: String,
        /// Its audit.
        audit_id: String,
        /// How it ended.
        item_status: BatchItemStatus,
        /// The batch's counts after it.
        counts: BatchCounts,
    },
    /// `batch.completed`: every item ended (terminal); `status` completed or partial.
    Completed {
        /// Batch id.
        batch_id: String,
        /// Completed, or partial when some item did not complete.
        status: BatchStatus,
        /// Final counts.
        counts: BatchCounts,
    },
    /// `batch.cancelled`: cancelled on request once the running audits finished; the
    /// items not started are cancelled (terminal).
    Cancelled {
        /// Batch id.
        batch_id: String,
        /// Who asked.
        by: String,
        /// Final counts.
        counts: BatchCounts,
    },
    /// `batch.failed`: the batch itself failed (terminal).
    Failed {
        /// Batch id.
        batch_id: String,
        /// Reason.
        error: String,
        /// Counts when it failed.
        counts: BatchCounts,
    },
}

/// Type names that end a batch's stream.
pub const BATCH_TERMINAL: &[&str] = &[
    BatchEvent::COMPLETED,
    BatchEvent::CANCELLED,
    BatchEvent::FAILED,
];

/// A batch's stream ends with its first terminal event.
pub const BATCH_STREAM_END: StreamEnd = StreamEnd::at(BATCH_TERMINAL);

impl BatchEvent {
    /// `batch.started`.
    pub const STARTED: &'static str = "batch.started";
    /// `batch.progress`.
    pub const PROGRESS: &'static str = "batch.progress";
    /// `batch.completed`.
    pub const COMPLETED: &'static str = "batch.completed";
    /// `batch.cancelled`.
    pub const CANCELLED: &'static str = "batch.cancelled";
    /// `batch.failed`.
    pub const FAILED: &'static str = "batch.failed";

    fn batch_id(&self) -> &str {
        match self {
            Self::Started { batch_id, .. }
            | Self::Progress { batch_id, .. }
            | Self::Completed { batch_id, .. }
            | Self::Cancelled { batch_id, .. }
            | Self::Failed { batch_id, .. } => batch_id,
        }
    }
}

impl DomainEvent for BatchEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Started { .. } => Self::STARTED,
            Self::Progress { .. } => Self::PROGRESS,
            Self::Completed { .. } => Self::COMPLETED,
            Self::Cancelled { .. } => Self::CANCELLED,
            Self::Failed { .. } => Self::FAILED,
        }
    }

    fn topic(&self) -> String {
        ids::batch_topic(self.batch_id())
    }

    fn dedupe_key(&self) -> String {
        let id = self.batch_id();
        match self {
            Self::Started { .. } => format!("batch:{id}:started"),
            Self::Progress { position, .. } => format!("batch:{id}:item:{position}"),
            Self::Completed { .. } => format!("batch:{id}:completed"),
            Self::Cancelled { .. } => format!("batch:{id}:cancelled"),
            Self::Failed { .. } => format!("batch:{id}:failed"),
        }
    }

    fn payload(&self) -> Value {
        match self {
            Self::Started {
                batch_id,
                total,
                window,
            } => json!({"batch_id": batch_id, "total": total, "window": window}),
            Self::Progress {
                batch_id,
                position,
                fiche_id,
                audit_id,
                item_status,
                counts,
            } => json!({
                "batch_id": batch_id,
                "item": {"position": position, "fiche_id": fiche_id, "audit_id": audit_id, "status": item_status},
                "counts": counts.json(),
            }),
            Self::Completed {
                batch_id,
                status,
                counts,
            } => json!({"batch_id": batch_id, "status": status, "counts": counts.json()}),
            Self::Cancelled {
                batch_id,
                by,
                counts,
            } => json!({"batch_id": batch_id, "by": by, "counts": counts.json()}),
            Self::Failed {
                batch_id,
                error,
                counts,
            } => json!({"batch_id": batch_id, "error": error, "counts": counts.json()}),
        }
    }
}

/// Input of `BatchAuditWorkflow`. A run that continues as new carries where it stopped
/// (`cursor`, `counts`, `run`); the first run has `counts: None`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchWorkflowInput {
    /// The batch row (stored with its items by the api before the workflow starts).
    pub batch_id: String,
    /// Transcript-tools mode of every audit.
    pub use_rlm: bool,
    /// Audits at once.
    pub window: u32,
    /// Steps each audit analyses at once.
    pub step_parallelism: u32,
    /// Children one run starts before it continues as new.
    pub continue_as_new_after: u32,
    /// Items with a position above this one remain (0: from the start).
    #[serde(default)]
    pub cursor: i32,
    /// The counts so far (None on the first run, before `batch.start`).
    #[serde(default)]
    pub counts: Option<BatchCounts>,
    /// Runs before this one (continue-as-new).
    #[serde(default)]
    pub run: u32,
}

/// Where a batch stands (the `progress` query).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchProgress {
    /// Counts.
    pub counts: BatchCounts,
    /// Last item position started.
    pub cursor: i32,
    /// Runs before this one.
    pub run: u32,
    /// Who asked to cancel, once someone did.
    pub cancel_requested_by: Option<String>,
}

/// Output of `BatchAuditWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchWorkflowOutput {
    /// Batch id.
    pub batch_id: String,
    /// How it ended.
    pub status: BatchStatus,
    /// Final counts.
    pub counts: BatchCounts,
    /// Runs it took (1 + continue-as-new count).
    pub runs: u32,
}

/// Reference to a batch (`batch.start`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchRef {
    /// Batch id.
    pub batch_id: String,
}

/// What `batch.start` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchPlan {
    /// Items.
    pub total: u32,
}

/// Input of `batch.next_items`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NextItemsInput {
    /// Batch id.
    pub batch_id: String,
    /// Items with a position above this one.
    pub after: i32,
    /// At most this many.
    pub limit: u32,
    /// The asking run (0 for the first; recorded as the batch's run count).
    pub run: u32,
}

/// One item to audit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchItemRef {
    /// Position (1-based, in request order).
    pub position: i32,
    /// Fiche.
    pub fiche_id: String,
}

/// What `batch.next_items` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NextItems {
    /// Pending items after the cursor, by position.
    pub items: Vec<BatchItemRef>,
    /// Who asked to cancel, when the request is recorded on the row (a cancellation that
    /// reached the row but not the run, e.g. between two runs, is honoured here).
    pub cancel_requested_by: Option<String>,
}

/// Input of `batch.start_item`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchItemInput {
    /// Batch id.
    pub batch_id: String,
    /// Item position.
    pub position: i32,
}

/// What `batch.start_item` returns: the item's audit, created once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StartedItem {
    /// The audit row (its workflow is `audit:{audit_id}`).
    pub audit_id: String,
    /// Its fiche.
    pub fiche_id: String,
    /// True when the audit existed already (a retried activity): nothing created.
    pub reused: bool,
}

/// Input of `batch.finish_item`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishItemInput {
    /// Batch id.
    pub batch_id: String,
    /// Item position.
    pub position: i32,
    /// Its audit.
    pub audit_id: String,
    /// Why its `AuditWorkflow` failed (None: it completed).
    pub error: Option<String>,
}

/// What `batch.finish_item` returns: how the item ended (read from its audit's row).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishedItem {
    /// Completed, failed or cancelled.
    pub status: BatchItemStatus,
}

/// Input of `batch.finish`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishBatchInput {
    /// Batch id.
    pub batch_id: String,
    /// Who cancelled it (None: it ran to its end).
    pub cancelled_by: Option<String>,
}

/// Input of `batch.fail`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchFailure {
    /// Batch id.
    pub batch_id: String,
    /// Why (sanitised).
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_move_from_pending_through_running_to_an_end_and_always_add_up() {
        let mut c = BatchCounts::new(3);
        c.start();
        c.start();
        assert_eq!((c.pending, c.running), (1, 2));
        c.finish(BatchItemStatus::Completed);
        c.finish(BatchItemStatus::Failed);
        c.finish(BatchItemStatus::Running);
        assert_eq!((c.running, c.completed, c.failed), (0, 1, 1));
        assert_eq!(c.end_status(), BatchStatus::Partial);
        c.cancel_pending();
        assert_eq!((c.pending, c.cancelled, c.finished()), (0, 1, 3));
        let sum = c.pending + c.running + c.completed + c.failed + c.cancelled;
        assert_eq!(sum, c.total);
        let mut all = BatchCounts::new(1);
        all.start();
        all.finish(BatchItemStatus::Completed);
        assert_eq!(all.end_status(), BatchStatus::Completed);
    }

    #[test]
    fn fiche_ids_are_checked_like_single_audits_and_duplicates_collapse_in_order() {
        assert!(is_valid_fiche_id("FICHE-1001"));
        assert!(is_valid_fiche_id("a.b_c"));
        for bad in ["", "..", "-_.", "FICHE 1", "FICHE/1", &"x".repeat(101)] {
            assert!(!is_valid_fiche_id(bad), "{bad:?}");
        }
        let ids = ["B", "A", "B", "C", "A"].map(String::from);
        assert_eq!(collapse_fiche_ids(&ids).unwrap(), ["B", "A", "C"]);
        assert!(
            collapse_fiche_ids(&[])
                .unwrap_err()
                .contains("at least one")
        );
        let e = collapse_fiche_ids(&["ok".into(), "no way".into()]).unwrap_err();
        assert!(e.contains("\"no way\""), "{e}");
        let many: Vec<String> = (0..=MAX_FICHE_IDS).map(|i| format!("F{i}")).collect();
        assert!(
            collapse_fiche_ids(&many)
                .unwrap_err()
                .contains("at most 1000")
        );
    }

    #[test]
    fn each_batch_fact_has_one_dedupe_key_on_the_batch_topic() {
        let mut counts = BatchCounts::new(2);
        counts.start();
        counts.finish(BatchItemStatus::Completed);
        let p = BatchEvent::Progress {
            batch_id: "b1".into(),
            position: 1,
            fiche_id: "FICHE-1001".into(),
            audit_id: "a1".into(),
            item_status: BatchItemStatus::Completed,
            counts,
        };
        assert_eq!(p.kind(), "batch.progress");
        assert_eq!(p.topic(), "batch:b1");
        assert_eq!(p.dedupe_key(), "batch:b1:item:1");
        let payload = p.payload();
        assert_eq!(payload["counts"]["completed"], 1);
        assert_eq!(payload["counts"]["pending"], 1);
        assert_eq!(payload["item"]["status"], "completed");
        let done = BatchEvent::Completed {
            batch_id: "b1".into(),
            status: BatchStatus::Partial,
            counts,
        };
        assert_eq!(done.dedupe_key(), "batch:b1:completed");
        assert_eq!(done.payload()["status"], "partial");
        assert!(BATCH_TERMINAL.contains(&done.kind()));
        assert!(!BATCH_TERMINAL.contains(&p.kind()));
    }
}
