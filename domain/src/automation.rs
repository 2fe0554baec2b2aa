//! Automations: schedules that audit the sales of a date window on a cron, each mirrored
//! as a Temporal Schedule, and the shapes the api stores for them (`ficheSelection`,
//! controls, notifications, in the seed's names).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Workflow type a schedule's action starts.
pub const AUTOMATION_RUN_WORKFLOW: &str = "AutomationRunWorkflow";

/// How far back a missed fire is still run (the Temporal Schedule's catch-up window):
/// a fire missed while Temporal was down longer than this is skipped.
pub const CATCHUP_WINDOW_SECS: u64 = 10 * 60;

/// Time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";

/// The Temporal Schedule id of schedule `schedule_id`.
pub fn temporal_schedule_id(schedule_id: &str) -> String {
    format!("automation:{schedule_id}")
}

/// The workflow id prefix of a schedule's runs (Temporal appends the scheduled time:
/// `automation:{schedule_id}:{scheduled_at}`).
pub fn run_workflow_prefix(schedule_id: &str) -> String {
    format!("automation:{schedule_id}")
}

/// Input of every run a schedule starts: the schedule; the rest is read from its row
/// when the run starts, so an update applies from the next run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationRunInput {
    /// `automation_schedules.id`.
    pub schedule_id: String,
}

/// Which fiches a run selects (stored as `automation_schedules.fiche_selection`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FicheSelection {
    /// Days of sales before the run's day, the run's day excluded (1 = yesterday).
    pub days_back: u32,
    /// Groupes kept (empty: all).
    pub groupes: Vec<String>,
    /// Only fiches with no completed audit.
    pub only_unaudited: bool,
    /// Only fiches with at least one recording (applied after details are fetched).
    pub only_with_recordings: bool,
    /// Fiches with more recordings are ignored (none: `AUTOMATION_MAX_RECORDINGS_PER_FICHE`).
    pub max_recordings_per_fiche: Option<u32>,
    /// Audits run in transcript-tools mode (`use_rlm`).
    pub use_rlm: bool,
    /// Most fiches a run audits (none: no limit).
    pub limit: Option<u32>,
}

/// How a run behaves (stored as `automation_schedules.options`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Controls {
    /// Fiches already transcribed are not transcribed again.
    pub skip_if_transcribed: bool,
    /// A failed fiche does not fail the run.
    pub continue_on_error: bool,
    /// Failed transcriptions and audits are dispatched again.
    pub retry_failed: bool,
    /// How many times (with `retry_failed`).
    pub max_retries: u32,
}

/// Who hears of a run (stored as `automation_schedules.notifications`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Notifications {
    /// Webhook receiving the run's events (SSRF-guarded).
    pub webhook_url: Option<String>,
    /// E-mail recipients of the run's summary.
    pub emails: Vec<String>,
    /// Realtime (Pusher) events on.
    pub realtime: bool,
}

/// Steps each audit of a run analyses at once.
pub const RUN_STEP_PARALLELISM: u32 = 3;
/// Audits a run has going at once (its batch's window).
pub const RUN_AUDIT_WINDOW: u32 = 5;
/// Days a run fetches at once, and the detail fetches of each day at once.
pub const RUN_DAY_WINDOW: u32 = 5;

/// The time a run was scheduled for, from its workflow id: Temporal names a scheduled
/// run `{prefix}-{RFC 3339 time}`; `None` for any other id.
pub fn scheduled_at_of(workflow_id: &str, schedule_id: &str) -> Option<DateTime<Utc>> {
    let rest = workflow_id.strip_prefix(&run_workflow_prefix(schedule_id))?;
    let stamp = rest.strip_prefix('-')?;
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The `DayFetchWorkflow` child of run `workflow_id` for `day`.
pub fn day_child_id(workflow_id: &str, day: NaiveDate) -> String {
    format!("{workflow_id}:day:{day}")
}

/// Event topic of a run.
pub fn run_topic(run_id: &str) -> String {
    format!("automation-run:{run_id}")
}

/// `automation.start_run`: records the run (once per schedule and scheduled time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRunInput {
    /// The schedule.
    pub schedule_id: String,
    /// The run's workflow id.
    pub workflow_id: String,
    /// When it was scheduled for (or started, for a run not started by the schedule).
    pub scheduled_at: DateTime<Utc>,
}

/// What a run does, read from its schedule when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlan {
    /// `automation_runs.id` (also its batch's id).
    pub run_id: String,
    /// Sale days of the window, in the schedule's time zone.
    pub days: Vec<NaiveDate>,
    /// Groupes selected (empty: all).
    pub groupes: Vec<String>,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// `continueOnError`.
    pub continue_on_error: bool,
    /// `retryFailed`.
    #[serde(default)]
    pub retry_failed: bool,
    /// `maxRetries`.
    #[serde(default)]
    pub max_retries: u32,
    /// `skipIfTranscribed`.
    #[serde(default)]
    pub skip_if_transcribed: bool,
}

/// `automation.retry_failed` input: a new batch of the fiches whose audit failed in
/// batch `failed_batch_id`, as retry `round` of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryInput {
    /// The run.
    pub run_id: String,
    /// The batch whose failed audits are dispatched again.
    pub failed_batch_id: String,
    /// 1 for the first retry.
    pub round: u32,
}

/// `automation.select_fiches` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectInput {
    /// The run.
    pub run_id: String,
}

/// A fiche a run leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredFiche {
    /// Fiche id.
    pub fiche_id: String,
    /// Why.
    pub reason: String,
}

/// What a run audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSelection {
    /// The batch holding the audits (None: nothing to audit).
    pub batch_id: Option<String>,
    /// Fiches audited.
    pub selected: u32,
    /// Fiches left out with their reasons.
    pub ignored: Vec<IgnoredFiche>,
    /// How the transcription phase went (None: it did not run — nothing selected, or a
    /// run recorded before the phase existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<TranscriptionTotals>,
}

/// Recordings a run's transcription phase has being transcribed at once.
pub const RUN_TRANSCRIPTION_WINDOW: u32 = 10;

/// `automation.transcription_plan` input: the run and its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionPlanInput {
    /// The run.
    pub run_id: String,
    /// Its batch (the selected fiches).
    pub batch_id: String,
    /// `skipIfTranscribed`: a fiche whose every recording is transcribed is skipped.
    pub skip_if_transcribed: bool,
}

/// One selected fiche in the transcription phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FicheToTranscribe {
    /// Fiche id.
    pub fiche_id: String,
    /// Recordings a `TranscriptionWorkflow` is started for (empty: the fiche is skipped —
    /// it has no recording, or every one is transcribed and `skipIfTranscribed` is on).
    pub recordings: Vec<String>,
}

/// `automation.settle_transcriptions` input: the fiches whose transcription failed are
/// taken out of the run's (not yet started) batch; without `continueOnError` the batch
/// is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleTranscriptionsInput {
    /// The run.
    pub run_id: String,
    /// Its batch.
    pub batch_id: String,
    /// Fiches whose transcription failed.
    pub failed: Vec<String>,
    /// `continueOnError`: the other fiches are audited.
    pub go_on: bool,
}

/// A fiche whose transcription failed, and the first error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTranscription {
    /// Fiche id.
    pub fiche_id: String,
    /// The error of its first failed recording (last round).
    pub error: String,
}

/// How a run's transcription phase went (fiches, then recordings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionTotals {
    /// Fiches whose every dispatched recording has its transcript.
    pub transcribed: u32,
    /// Fiches skipped (no recording, or all transcribed with `skipIfTranscribed`).
    pub skipped: u32,
    /// Fiches with a recording whose transcription failed (after the retries).
    pub failed: Vec<FailedTranscription>,
    /// Recordings sent to speech-to-text in this phase.
    pub recordings_sent: u32,
    /// Recordings whose stored transcript was reused (transcribed before or meanwhile).
    pub recordings_reused: u32,
    /// Retry rounds run for failed transcriptions (`retryFailed`).
    pub retries: u32,
    /// Duration of the phase, in ms (workflow time).
    pub duration_ms: u64,
}

/// How the selection's fetch went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchTotals {
    /// Days searched.
    pub days: u32,
    /// Days whose search failed.
    pub days_failed: u32,
    /// Sales found (matching the groupes).
    pub found: u32,
    /// Details stored.
    pub fetched: u32,
    /// Detail fetches failed.
    pub fetch_failed: u32,
}

/// `automation.finish_run` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishRunInput {
    /// The run.
    pub run_id: String,
    /// The fetch.
    pub fetch: FetchTotals,
    /// What was selected (None when the run failed before).
    pub selection: Option<RunSelection>,
    /// The audits' counts: (completed over every round, failed in the last round)
    /// (None: no batch ran).
    pub audits: Option<(u32, u32)>,
    /// Retry rounds run (`retryFailed`).
    #[serde(default)]
    pub retries: u32,
    /// The run's own failure.
    pub error: Option<String>,
}

/// How a run ended (output of `AutomationRunWorkflow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The run.
    pub run_id: String,
    /// `completed`, `partial` or `failed`.
    pub status: String,
    /// The stored summary.
    pub summary: serde_json::Value,
}

/// `automation.notify_webhook` input: one event of a run, for its schedule's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyInput {
    /// The run.
    pub run_id: String,
    /// The event's kind (`automation/started`…).
    pub event: String,
    /// The JSON body sent.
    pub payload: serde_json::Value,
}

/// The events of a run (topic [`run_topic`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AutomationEvent {
    /// `automation/started`: the run was recorded; the days of its window.
    Started {
        /// The run.
        run_id: String,
        /// Its schedule.
        schedule_id: String,
        /// When it was scheduled for.
        scheduled_at: DateTime<Utc>,
        /// Days of its window.
        days: u32,
    },
    /// `automation/completed`: the run ended `completed` or `partial`.
    Completed {
        /// The run.
        run_id: String,
        /// Its schedule.
        schedule_id: String,
        /// `completed` or `partial`.
        status: String,
        /// The summary.
        summary: serde_json::Value,
    },
    /// `automation/failed`: the run failed.
    Failed {
        /// The run.
        run_id: String,
        /// Its schedule.
        schedule_id: String,
        /// Why.
        error: String,
        /// The summary so far.
        summary: serde_json::Value,
    },
}

/// Terminal kinds of a run's stream.
pub const RUN_TERMINAL_KINDS: &[&str] = &["automation/completed", "automation/failed"];

/// A run's stream ends with its first terminal event.
pub const RUN_STREAM_END: crate::events::StreamEnd =
    crate::events::StreamEnd::at(RUN_TERMINAL_KINDS);

impl crate::events::DomainEvent for AutomationEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Started { .. } => "automation/started",
            Self::Completed { .. } => "automation/completed",
            Self::Failed { .. } => "automation/failed",
        }
    }
    fn topic(&self) -> String {
        match self {
            Self::Started { run_id, .. }
            | Self::Completed { run_id, .. }
            | Self::Failed { run_id, .. } => run_topic(run_id),
        }
    }
    fn dedupe_key(&self) -> String {
        match self {
            Self::Started { run_id, .. } => format!("automation-run:{run_id}:started"),
            Self::Completed { run_id, .. } | Self::Failed { run_id, .. } => {
                format!("automation-run:{run_id}:end")
            }
        }
    }
    fn payload(&self) -> serde_json::Value {
        match self {
            Self::Started {
                run_id,
                schedule_id,
                scheduled_at,
                days,
            } => serde_json::json!({
                "run_id": run_id, "schedule_id": schedule_id,
                "scheduled_at": scheduled_at, "days": days
            }),
            Self::Completed {
                run_id,
                schedule_id,
                status,
                summary,
            } => serde_json::json!({
                "run_id": run_id, "schedule_id": schedule_id, "status": status, "summary": summary
            }),
            Self::Failed {
                run_id,
                schedule_id,
                error,
                summary,
            } => serde_json::json!({
                "run_id": run_id, "schedule_id": schedule_id, "status": "failed",
                "error": error, "summary": summary
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_camel_case_names() {
        assert_eq!(temporal_schedule_id("s1"), "automation:s1");
        let sel: FicheSelection = serde_json::from_value(serde_json::json!({
            "groupes": ["MDP"], "onlyUnaudited": true, "maxRecordingsPerFiche": 2, "useRlm": true
        }))
        .unwrap();
        assert_eq!(sel.groupes, vec!["MDP"]);
        assert!(sel.only_unaudited && sel.use_rlm && !sel.only_with_recordings);
        assert_eq!(sel.max_recordings_per_fiche, Some(2));
    }

    #[test]
    fn a_scheduled_run_names_its_time() {
        assert_eq!(
            scheduled_at_of("automation:s1-2026-12-04T04:30:00Z", "s1").map(|t| t.to_rfc3339()),
            Some("2026-12-04T04:30:00+00:00".to_string())
        );
        assert_eq!(scheduled_at_of("automation:s1", "s1"), None);
        assert_eq!(
            scheduled_at_of("automation:s2-2026-12-04T04:30:00Z", "s1"),
            None
        );
    }
}
