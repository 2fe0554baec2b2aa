//! The request and response shapes of the fetch job routes, and how rows become them.

use crate::state::AppState;
use callaudit_db::fetch_jobs::{FetchDayRow, FetchJobRow};
use callaudit_domain::fetch_job::{FetchDayStatus, FetchJobStatus};
use chrono::{DateTime, NaiveDate, Utc};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object};
use uuid::Uuid;

/// Request to fetch the CRM's fiches of a date range.
#[derive(Debug, Object)]
pub struct ProgressiveFetchRequest {
    /// First day, `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// Last day, `YYYY-MM-DD` (included; at most three years after `from`).
    pub to: NaiveDate,
    /// Only fiches of these groups (`groupe`, exact names); absent or empty: all. Every
    /// sale found is stored as a partial fiche; details are fetched for the selected ones.
    pub groupes: Option<Vec<String>>,
    /// Fetch details again even when cached (at most once per
    /// `FICHE_FORCE_REFRESH_COOLDOWN_MS` per fiche). Default false.
    pub force_refresh: Option<bool>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum FetchJobStatusView {
    /// Stored, workflow starting.
    Pending,
    /// The workflow runs (first run or a retry).
    Running,
    /// Every day fetched.
    Completed,
    /// Ended with some days failed (`failed_days`; `POST …/retry` redoes them).
    Partial,
    /// Every day failed, or the workflow failed or was stopped (`error`).
    Failed,
}

impl From<FetchJobStatus> for FetchJobStatusView {
    fn from(s: FetchJobStatus) -> Self {
        match s {
            FetchJobStatus::Pending => Self::Pending,
            FetchJobStatus::Running => Self::Running,
            FetchJobStatus::Completed => Self::Completed,
            FetchJobStatus::Partial => Self::Partial,
            FetchJobStatus::Failed => Self::Failed,
        }
    }
}

/// Where a day of a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum FetchDayStatusView {
    /// Waiting for (or being fetched by) its attempt.
    Pending,
    /// Being fetched.
    Running,
    /// Fetched.
    Completed,
    /// Failed after its retries (`error`).
    Failed,
}

impl From<FetchDayStatus> for FetchDayStatusView {
    fn from(s: FetchDayStatus) -> Self {
        match s {
            FetchDayStatus::Pending => Self::Pending,
            FetchDayStatus::Running => Self::Running,
            FetchDayStatus::Completed => Self::Completed,
            FetchDayStatus::Failed => Self::Failed,
        }
    }
}

/// One day of a job.
#[derive(Debug, Object)]
pub struct FetchDayView {
    /// The day.
    pub day: NaiveDate,
    /// Where it stands.
    pub status: FetchDayStatusView,
    /// The attempt that last ran it.
    pub attempt: i32,
    /// Sales with calls found (matching `groupes`).
    pub fiches_found: i32,
    /// Their details stored.
    pub fiches_fetched: i32,
    /// Detail fetches that failed.
    pub fiches_failed: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<FetchDayRow> for FetchDayView {
    fn from(d: FetchDayRow) -> Self {
        Self {
            day: d.day,
            status: d.status.into(),
            attempt: d.attempt,
            fiches_found: d.fiches_found,
            fiches_fetched: d.fiches_fetched,
            fiches_failed: d.fiches_failed,
            error: d.error,
            completed_at: d.completed_at,
        }
    }
}

/// Links of a job.
#[derive(Debug, Object)]
pub struct FetchJobLinks {
    /// The job.
    pub job: String,
    /// Its event stream (SSE).
    pub events: String,
    /// Redo its failed days.
    pub retry: String,
    /// Its workflow in the Temporal UI.
    pub temporal_ui: String,
}

/// A progressive fetch job.
#[derive(Debug, Object)]
pub struct FetchJobView {
    /// Id.
    pub id: Uuid,
    /// `fiche-fetch-job:{id}` (each attempt is a run of it).
    pub workflow_id: String,
    /// Where the job stands, derived from its row and its workflow: a workflow that ended
    /// without finalising the row is reconciled (see `repaired`) before this is answered.
    pub status: FetchJobStatusView,
    /// The status of its workflow's latest run in Temporal (`running`, `completed`,
    /// `failed`, `terminated`, `timed_out`, `canceled`, `not_found`), when Temporal was
    /// asked and answered.
    pub workflow_status: Option<String>,
    /// Set when the row disagreed with the workflow and was repaired by this read: what
    /// was found and done.
    pub repaired: Option<String>,
    /// Current attempt (1; 2… after retries).
    pub attempt: i32,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Groups selected (empty: all).
    pub groupes: Vec<String>,
    /// Details fetched again even when cached.
    pub force_refresh: bool,
    /// Days of the range.
    pub days_total: i32,
    /// Days fetched.
    pub days_done: i32,
    /// Days failed (listed in `failed_days`).
    pub days_failed: i32,
    /// Sales with calls found (matching `groupes`).
    pub fiches_found: i32,
    /// Fiche details stored.
    pub fiches_fetched: i32,
    /// Detail fetches that failed.
    pub fiches_failed: i32,
    /// The days that failed, in order.
    pub failed_days: Vec<NaiveDate>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// First started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last attempt ended at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Every day with its counts (`GET /api/fiches/jobs/{id}` only).
    pub days: Option<Vec<FetchDayView>>,
    /// Where to look next.
    pub links: FetchJobLinks,
}

/// A page of jobs.
#[derive(Debug, Object)]
pub struct FetchJobPage {
    /// Newest first (stored statuses; `GET /api/fiches/jobs/{id}` derives one job's).
    pub items: Vec<FetchJobView>,
    /// All jobs.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Offset.
    pub offset: i64,
}

/// `POST /api/fiches/progressive-fetch` and `POST /api/fiches/jobs/{id}/retry` answer.
#[derive(ApiResponse)]
pub enum FetchJobAccepted {
    /// Accepted: the job's workflow is started; follow it on its stream.
    #[oai(status = 202)]
    Accepted(Json<FetchJobView>),
}

/// What reading a job learnt from its workflow.
#[derive(Debug, Clone, Default)]
pub(crate) struct Derived {
    /// Temporal's status of the latest run.
    pub(crate) workflow_status: Option<String>,
    /// What was repaired.
    pub(crate) repaired: Option<String>,
}

/// The view of `row` (without its days).
pub(crate) fn view(
    state: &AppState,
    row: FetchJobRow,
    failed_days: Vec<NaiveDate>,
    derived: Derived,
) -> FetchJobView {
    let id = row.id;
    FetchJobView {
        links: FetchJobLinks {
            job: format!("/api/fiches/jobs/{id}"),
            events: format!("/api/fiches/jobs/{id}/events"),
            retry: format!("/api/fiches/jobs/{id}/retry"),
            temporal_ui: state.temporal.settings.ui_link(&row.workflow_id),
        },
        groupes: row.groupes(),
        id,
        workflow_id: row.workflow_id,
        status: row.status.into(),
        workflow_status: derived.workflow_status,
        repaired: derived.repaired,
        attempt: row.attempt,
        from: row.date_from,
        to: row.date_to,
        force_refresh: row.force_refresh,
        days_total: row.days_total,
        days_done: row.days_done,
        days_failed: row.days_failed,
        fiches_found: row.fiches_found,
        fiches_fetched: row.fiches_fetched,
        fiches_failed: row.fiches_failed,
        failed_days,
        error: row.error,
        created_at: row.created_at,
        started_at: row.started_at,
        updated_at: row.updated_at,
        completed_at: row.completed_at,
        days: None,
    }
}
