//! The request and response shapes of the batch routes, and how rows become them.

use crate::audits::{AuditStatusView, NiveauView};
use crate::state::AppState;
use callaudit_db::batches::{BatchItemRow, BatchRow};
use callaudit_domain::batch::{BatchCounts, BatchItemStatus, BatchStatus};
use chrono::{DateTime, NaiveDate, Utc};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object};
use uuid::Uuid;

/// Request to audit many fiches with one configuration: either `fiche_ids`, or a sale-date
/// range (`from`, `to`, optionally `groupes`, `only_unaudited`, `only_with_recordings`)
/// over the fiches cached in Postgres.
#[derive(Debug, Object)]
pub struct StartBatchRequest {
    /// Audit configuration every audit applies (as it is now: later edits change none of
    /// the batch's audits).
    pub audit_config_id: Uuid,
    /// Transcript-tools mode for every audit (default false; `useRlm` is accepted too).
    pub use_rlm: Option<bool>,
    /// Alias of `use_rlm` (seed compatibility).
    #[oai(rename = "useRlm")]
    pub use_rlm_camel: Option<bool>,
    /// The fiches to audit: 1 to 1,000 ids, each 1 to 100 letters, digits, `_`, `.` or
    /// `-` (as `POST /api/audits/run` accepts them); duplicates count once, in the order
    /// of their first occurrence. Not with `from`/`to`.
    pub fiche_ids: Option<Vec<String>>,
    /// First sale day of a selection (`YYYY-MM-DD`, Europe/Paris), with `to`: the cached
    /// fiches sold from `from` to `to` included (at most 366 days, 5,000 fiches), by sale
    /// time. Fetch days not cached yet first (`POST /api/fiches/progressive-fetch`).
    pub from: Option<NaiveDate>,
    /// Last sale day of a selection, included.
    pub to: Option<NaiveDate>,
    /// Only fiches of these groupes (1 to 50 names; omitted: any groupe).
    pub groupes: Option<Vec<String>>,
    /// Only fiches with no pending, running or completed audit with this configuration
    /// (default false).
    pub only_unaudited: Option<bool>,
    /// Only fiches with at least one recording (default false).
    pub only_with_recordings: Option<bool>,
    /// Audits run at once, 1 to 50 (default `BATCH_AUDIT_WINDOW`, 5).
    #[oai(validator(minimum(value = "1"), maximum(value = "50")))]
    pub window: Option<u32>,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BatchStatusView {
    /// Stored, workflow starting.
    Pending,
    /// Its audits run.
    Running,
    /// Every item completed.
    Completed,
    /// Every item ended, some did not complete.
    Partial,
    /// The batch itself failed; its items not started are cancelled.
    Failed,
    /// Cancelled on request: finished audits kept, items not started cancelled.
    Cancelled,
}

impl From<BatchStatus> for BatchStatusView {
    fn from(s: BatchStatus) -> Self {
        match s {
            BatchStatus::Pending => Self::Pending,
            BatchStatus::Running => Self::Running,
            BatchStatus::Completed => Self::Completed,
            BatchStatus::Partial => Self::Partial,
            BatchStatus::Failed => Self::Failed,
            BatchStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Where one fiche of a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum BatchItemStatusView {
    /// Not started.
    Pending,
    /// Its audit runs.
    Running,
    /// Its audit completed.
    Completed,
    /// Its audit failed.
    Failed,
    /// Never started (the batch was cancelled or failed first), or its audit was
    /// cancelled.
    Cancelled,
}

impl From<BatchItemStatus> for BatchItemStatusView {
    fn from(s: BatchItemStatus) -> Self {
        match s {
            BatchItemStatus::Pending => Self::Pending,
            BatchItemStatus::Running => Self::Running,
            BatchItemStatus::Completed => Self::Completed,
            BatchItemStatus::Failed => Self::Failed,
            BatchItemStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// How many items of a batch are where (they add up to `total`).
#[derive(Debug, Object)]
pub struct BatchCountsView {
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

impl From<BatchCounts> for BatchCountsView {
    fn from(c: BatchCounts) -> Self {
        Self {
            total: c.total,
            pending: c.pending,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
        }
    }
}

/// Links of a batch.
#[derive(Debug, Object)]
pub struct BatchLinks {
    /// The batch: state and audits.
    pub batch: String,
    /// Its event stream (SSE).
    pub events: String,
    /// Cancelling it.
    pub cancel: String,
    /// The run in the Temporal UI.
    pub temporal_ui: String,
}

/// One fiche of a batch and its audit.
#[derive(Debug, Object)]
pub struct BatchItemView {
    /// Position (1-based, request order).
    pub position: i32,
    /// Fiche.
    pub fiche_id: String,
    /// Where it stands.
    pub status: BatchItemStatusView,
    /// Its audit (`GET /api/audits/{audit_id}`), once started.
    pub audit_id: Option<Uuid>,
    /// Its audit's status.
    pub audit_status: Option<AuditStatusView>,
    /// Its audit's score, once completed.
    pub score: Option<f64>,
    /// Its audit's niveau, once completed.
    pub niveau: Option<NiveauView>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<BatchItemRow> for BatchItemView {
    fn from(r: BatchItemRow) -> Self {
        Self {
            position: r.position,
            fiche_id: r.fiche_id,
            status: r.status.into(),
            audit_id: r.audit_id,
            audit_status: r.audit_status.map(Into::into),
            score: r.score,
            niveau: r.niveau.map(Into::into),
            error: r.error,
            started_at: r.started_at,
            completed_at: r.completed_at,
        }
    }
}

/// A batch audit.
#[derive(Debug, Object)]
pub struct BatchView {
    /// Id.
    pub id: Uuid,
    /// Workflow id (`batch:{id}`).
    pub workflow_id: String,
    /// Where it stands.
    pub status: BatchStatusView,
    /// Configuration every audit applies.
    pub audit_config_id: Uuid,
    /// The configuration's version (its last update when the batch was created).
    pub config_version: Option<DateTime<Utc>>,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Audits run at once.
    pub window: i32,
    /// Counts by status.
    pub counts: BatchCountsView,
    /// The date-range selection it was made from (`from`, `to`, `groupes`,
    /// `only_unaudited`, `only_with_recordings`); none for a list of fiche ids.
    pub selection: Option<serde_json::Value>,
    /// Runs of its workflow so far: more than one when it continued as new.
    pub workflow_runs: i32,
    /// Who asked to cancel it, once someone did (it becomes `cancelled` when its running
    /// audits have finished).
    pub cancel_requested_by: Option<String>,
    /// When.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Its workflow began at.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its fiches by position with their audits so far (`GET /api/audits/batch/{id}`
    /// only, paged by `items_limit` / `items_offset`; empty in lists).
    pub items: Vec<BatchItemView>,
    /// Where to look next.
    pub links: BatchLinks,
}

/// Builds the view of `row` with `items`.
pub(super) fn view(state: &AppState, row: BatchRow, items: Vec<BatchItemRow>) -> BatchView {
    BatchView {
        links: links(state, row.id, &row.workflow_id),
        counts: row.counts().into(),
        id: row.id,
        workflow_id: row.workflow_id,
        status: row.status.into(),
        audit_config_id: row.audit_config_id,
        config_version: row.config_version,
        use_rlm: row.use_rlm,
        window: row.window_size,
        selection: row.selection,
        workflow_runs: row.runs,
        cancel_requested_by: row.cancel_requested_by,
        cancel_requested_at: row.cancel_requested_at,
        error: row.error,
        created_at: row.created_at,
        started_at: row.started_at,
        completed_at: row.completed_at,
        items: items.into_iter().map(Into::into).collect(),
    }
}

pub(super) fn links(state: &AppState, id: Uuid, workflow_id: &str) -> BatchLinks {
    BatchLinks {
        batch: format!("/api/audits/batch/{id}"),
        events: format!("/api/audits/batch/{id}/events"),
        cancel: format!("/api/audits/batch/{id}/cancel"),
        temporal_ui: state.temporal.settings.ui_link(workflow_id),
    }
}

/// Accepted batch.
#[derive(Debug, Object)]
pub struct BatchAccepted {
    /// Batch id.
    pub batch_id: Uuid,
    /// Workflow id (`batch:{batch_id}`).
    pub workflow_id: String,
    /// `pending` (or, for a repeated idempotent request, where the batch stands).
    pub status: BatchStatusView,
    /// Items (distinct fiches).
    pub total: i32,
    /// Audits run at once.
    pub window: i32,
    /// Where to look next.
    pub links: BatchLinks,
}

/// `POST /api/audits/batch` answer.
#[derive(ApiResponse)]
pub enum StartBatchResponse {
    /// Accepted: the batch's workflow is started.
    #[oai(status = 202)]
    Accepted(Json<BatchAccepted>),
}

/// `POST /api/audits/batch/{id}/cancel` answer.
#[derive(ApiResponse)]
pub enum CancelBatchResponse {
    /// Accepted: no audit starts from now on; the batch is recorded `cancelled`, with its
    /// counts, once its running audits have finished (`batch.cancelled` on its stream).
    #[oai(status = 202)]
    Accepted(Json<BatchView>),
}

/// A page of batches.
#[derive(Debug, Object)]
pub struct BatchPage {
    /// Newest first (without items).
    pub items: Vec<BatchView>,
    /// Batches in all.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Offset.
    pub offset: i64,
}
