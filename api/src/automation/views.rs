//! The request and response shapes of the automation routes.

use super::*;

/// Which fiches a run selects.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase")]
pub struct FicheSelectionBody {
    /// Days of sales before the run's day, that day excluded (1 to 366; default 1:
    /// yesterday's sales).
    #[oai(default = "one")]
    pub days_back: u32,
    /// Groupes kept (empty: all).
    #[oai(default)]
    pub groupes: Vec<String>,
    /// Only fiches with no completed audit.
    #[oai(default)]
    pub only_unaudited: bool,
    /// Only fiches with at least one recording (applied after their details are fetched).
    #[oai(default)]
    pub only_with_recordings: bool,
    /// Fiches with more recordings are ignored, with the reason (default:
    /// `AUTOMATION_MAX_RECORDINGS_PER_FICHE`).
    pub max_recordings_per_fiche: Option<u32>,
    /// Audits in transcript-tools mode (`use_rlm`).
    #[oai(default)]
    pub use_rlm: bool,
    /// Most fiches a run audits.
    pub limit: Option<u32>,
}

fn one() -> u32 {
    1
}

/// How a run behaves.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase")]
pub struct ControlsBody {
    /// Fiches already transcribed are not transcribed again.
    #[oai(default)]
    pub skip_if_transcribed: bool,
    /// A failed fiche does not fail the run.
    #[oai(default)]
    pub continue_on_error: bool,
    /// Failed transcriptions and audits are dispatched again.
    #[oai(default)]
    pub retry_failed: bool,
    /// How many times, with `retryFailed` (0 to 10).
    #[oai(default)]
    pub max_retries: u32,
}

/// Who hears of a run.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase")]
pub struct NotificationsBody {
    /// Webhook receiving the run's events: https, public addresses only (http and local
    /// addresses only for origins in `WEBHOOK_ALLOWED_ORIGINS`), no credentials.
    pub webhook_url: Option<String>,
    /// E-mail recipients of the run's summary (plain text and HTML, sent over SMTP when
    /// `SMTP_*` is set): bare `local@domain` addresses, at most 20.
    #[oai(default)]
    pub emails: Vec<String>,
    /// Realtime (Pusher) events on.
    #[oai(default)]
    pub realtime: bool,
}

/// A schedule as written.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AutomationScheduleBody {
    /// Name.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Free text.
    #[oai(default)]
    pub description: String,
    /// When it runs: a cron expression as Temporal reads it (`0 6 * * MON-FRI`,
    /// `@every 1h`, …).
    #[oai(validator(min_length = 1, max_length = 200))]
    pub cron: String,
    /// IANA time zone the cron is read in (default `Europe/Paris`).
    pub timezone: Option<String>,
    /// Runs on its cron (default true); false pauses its Temporal Schedule.
    #[oai(default = "yes")]
    pub enabled: bool,
    /// Audit configuration of its audits.
    pub audit_config_id: Uuid,
    /// Which fiches a run selects.
    #[oai(default)]
    pub fiche_selection: FicheSelectionBody,
    /// How a run behaves.
    #[oai(default)]
    pub controls: ControlsBody,
    /// Who hears of a run.
    #[oai(default)]
    pub notifications: NotificationsBody,
}

fn yes() -> bool {
    true
}

/// A stored schedule.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AutomationScheduleView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Cron expression.
    pub cron: String,
    /// IANA time zone.
    pub timezone: String,
    /// Runs on its cron.
    pub enabled: bool,
    /// Audit configuration.
    pub audit_config_id: Option<Uuid>,
    /// Which fiches a run selects.
    pub fiche_selection: serde_json::Value,
    /// How a run behaves.
    pub controls: serde_json::Value,
    /// Who hears of a run.
    pub notifications: serde_json::Value,
    /// Its Temporal Schedule (`automation:{id}`).
    pub temporal_schedule_id: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The webhook signing secret: shown once, in the creation answer, never again.
    /// Receivers check `X-Callaudit-Signature` = `sha256=` + hex HMAC-SHA256 of
    /// `{X-Callaudit-Timestamp}.{body}` under it.
    #[oai(skip_serializing_if_is_none)]
    pub webhook_secret: Option<String>,
}

/// A page of schedules.
#[derive(Debug, Clone, Object)]
pub struct AutomationSchedulePage {
    /// Schedules, newest first.
    pub items: Vec<AutomationScheduleView>,
    /// How many there are.
    pub total: i64,
    /// Page size asked.
    pub limit: i64,
    /// Skipped.
    pub offset: i64,
}

/// A run started now.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct RunTriggered {
    /// The schedule.
    pub schedule_id: Uuid,
    /// Its Temporal Schedule, whose recent actions name the run's workflow.
    pub temporal_schedule_id: String,
}

/// A run of a schedule.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AutomationRunView {
    /// Id (its audits are the batch with this id: `GET /api/audits/batch/{id}`).
    pub id: Uuid,
    /// Its schedule.
    pub schedule_id: Uuid,
    /// The time it was scheduled for (its start, when run now).
    pub scheduled_at: DateTime<Utc>,
    /// `running`, `completed`, `partial` (audits failed under `continueOnError`) or
    /// `failed`.
    pub status: String,
    /// Its `AutomationRunWorkflow`.
    pub workflow_id: String,
    /// `selected`, `ignored` (with reasons), `ignoredCount`, `transcribed`, `audited`,
    /// `failed`, `fetch` (days, daysFailed, found, fetched, fetchFailed), `batchId`,
    /// `durations.totalMs`.
    pub result_summary: serde_json::Value,
    /// Fiches left out, with their reasons.
    pub ignored_fiches: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    /// Started at.
    pub started_at: DateTime<Utc>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its webhook deliveries (in the run's own read only).
    pub webhook_deliveries: Vec<WebhookDeliveryView>,
    /// Its e-mail summary to the schedule's addresses (in the run's own read only; none
    /// when the schedule names no address or the run has not ended).
    pub email_delivery: Option<EmailDeliveryView>,
}

/// The e-mail summary of a run (one message to all the schedule's addresses).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct EmailDeliveryView {
    /// Who it was addressed to.
    pub recipients: Vec<String>,
    /// `sent`, `failed` (its last attempt: a refusal is not retried, a transient failure
    /// is, 4 attempts in all) or `skipped` (SMTP is not configured).
    pub status: String,
    /// Attempts made (0 when skipped).
    pub attempts: i32,
    /// The SMTP server's answer to the message, when sent.
    pub smtp_response: Option<String>,
    /// Why the last attempt failed, or why it was skipped.
    pub error: Option<String>,
    /// Last attempt at.
    pub updated_at: DateTime<Utc>,
}

/// One webhook delivery of a run's event.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookDeliveryView {
    /// The event (`automation/started`, `automation/completed`, `automation/failed`).
    pub event: String,
    /// Where it was sent.
    pub url: String,
    /// `delivered`, `failed` (its last attempt; retried with backoff, 5 attempts in all)
    /// or `refused` (by the SSRF guard: nothing sent).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The receiver's last HTTP status.
    pub response_status: Option<i32>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Last attempt at.
    pub updated_at: DateTime<Utc>,
}

/// A page of runs.
#[derive(Debug, Clone, Object)]
pub struct AutomationRunPage {
    /// Runs, newest scheduled first.
    pub items: Vec<AutomationRunView>,
    /// How many there are.
    pub total: i64,
    /// Page size asked.
    pub limit: i64,
    /// Skipped.
    pub offset: i64,
}

pub(super) fn run_view(r: RunRow) -> AutomationRunView {
    AutomationRunView {
        id: r.id,
        schedule_id: r.schedule_id,
        scheduled_at: r.scheduled_at,
        status: r.status,
        workflow_id: r.workflow_id,
        result_summary: r.result_summary,
        ignored_fiches: r.ignored_fiches,
        error: r.error,
        started_at: r.started_at,
        completed_at: r.completed_at,
        webhook_deliveries: vec![],
        email_delivery: None,
    }
}

/// Creation answer.
#[derive(ApiResponse)]
pub enum ScheduleCreated {
    /// Stored and mirrored in Temporal.
    #[oai(status = 201)]
    Created(Json<AutomationScheduleView>),
}

/// Deletion answer.
#[derive(ApiResponse)]
pub enum ScheduleDeleted {
    /// Deleted, with its Temporal Schedule and its runs' rows.
    #[oai(status = 204)]
    NoContent,
}

/// Run-now answer.
#[derive(ApiResponse)]
pub enum RunAccepted {
    /// The Temporal Schedule was triggered: the run starts now, or when the run still
    /// going ends (one trigger waits at most, further ones while it waits are dropped).
    #[oai(status = 202)]
    Accepted(Json<RunTriggered>),
}
