//! Automations: schedules that audit the sales of a date window on a cron, each mirrored
//! as a Temporal Schedule, and the shapes the api stores for them (`ficheSelection`,
//! controls, notifications, in the seed's names).

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
}
