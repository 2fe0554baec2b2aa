//! Inputs and outputs of callaudit's workflows and activities. They travel through
//! Temporal history, so they carry ids and small summaries only — never a transcript or
//! a prompt (2 MB payload cap; activities read the big things from Postgres by id).

use crate::analysis::{Conformite, ControlPointStatus};
use crate::scoring::AuditSummary;
use crate::status::AuditPhase;
use serde::{Deserialize, Serialize};

/// Deterministic workflow ids (they show in the Temporal UI and de-duplicate starts).
pub mod ids {
    /// `audit:{audit_id}`.
    pub fn audit(audit_id: &str) -> String {
        format!("audit:{audit_id}")
    }
    /// `audit:{audit_id}:step:{position}`.
    pub fn audit_step(audit_id: &str, position: i32) -> String {
        format!("audit:{audit_id}:step:{position}")
    }
    /// `transcribe:{recording_id}`.
    pub fn transcription(recording_id: &str) -> String {
        format!("transcribe:{recording_id}")
    }
    /// `fiche-fetch-job:{job_id}`: a progressive fetch job's `ProgressiveFetchWorkflow`
    /// (every attempt is a new run of it; long ranges continue as new under it).
    pub fn fetch_job(job_id: &str) -> String {
        format!("fiche-fetch-job:{job_id}")
    }
    /// `fiche-fetch-job:{job_id}:day:{YYYY-MM-DD}`: the `DayFetchWorkflow` of one day of
    /// a job's first attempt; a retry (attempt n ≥ 2) adds `:retry:{n}` so its children
    /// never collide with the first ones.
    pub fn fetch_day(job_id: &str, day: chrono::NaiveDate, attempt: u32) -> String {
        let day = day.format("%Y-%m-%d");
        if attempt <= 1 {
            format!("fiche-fetch-job:{job_id}:day:{day}")
        } else {
            format!("fiche-fetch-job:{job_id}:day:{day}:retry:{attempt}")
        }
    }
    /// Event topic of a progressive fetch job.
    pub fn fetch_job_topic(job_id: &str) -> String {
        format!("fetch-job:{job_id}")
    }
    /// `audit:{audit_id}:rerun-step:{position}:{n}`: the n-th rerun of a step (n ≥ 1).
    pub fn rerun_step(audit_id: &str, position: i32, n: i32) -> String {
        format!("audit:{audit_id}:rerun-step:{position}:{n}")
    }
    /// `audit:{audit_id}:rerun-cp:{position}:{index}:{n}`: the n-th rerun of a control
    /// point (n ≥ 1).
    pub fn rerun_control_point(audit_id: &str, position: i32, index: i32, n: i32) -> String {
        format!("audit:{audit_id}:rerun-cp:{position}:{index}:{n}")
    }
    /// Event topic of an audit.
    pub fn audit_topic(audit_id: &str) -> String {
        format!("audit:{audit_id}")
    }
    /// `batch:{batch_id}`: a batch audit's `BatchAuditWorkflow`.
    pub fn batch(batch_id: &str) -> String {
        format!("batch:{batch_id}")
    }
    /// Event topic of a batch audit.
    pub fn batch_topic(batch_id: &str) -> String {
        format!("batch:{batch_id}")
    }
}

/// Input of `AuditWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditWorkflowInput {
    /// The audit row (created by the api before starting the workflow).
    pub audit_id: String,
    /// Fiche audited.
    pub fiche_id: String,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Steps analysed at once.
    pub step_parallelism: u32,
}

/// Progress of an audit (the `progress` query).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditProgress {
    /// Where the audit stands (`starting`, `fiche`, `transcription`, `analysis`,
    /// `finalizing`, `completed`, `failed` on the wire).
    pub phase: AuditPhase,
    /// Recordings of the fiche.
    pub recordings_total: u32,
    /// Recordings transcribed.
    pub recordings_done: u32,
    /// Steps of the configuration.
    pub steps_total: u32,
    /// Steps stored.
    pub steps_done: u32,
}

/// Reference to an audit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRef {
    /// Audit id.
    pub audit_id: String,
}

/// What `audit.start` returns: the steps to analyse.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditPlan {
    /// Step positions of the configuration, ascending.
    pub step_positions: Vec<i32>,
}

/// Input of `fiche.ensure_details`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnsureFicheInput {
    /// Fiche id.
    pub fiche_id: String,
    /// Refetch even when cached (honoured at most once per cooldown).
    pub force_refresh: bool,
}

/// A recording of a fiche and whether it already has a completed transcription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordingRef {
    /// Recording id.
    pub recording_id: String,
    /// Transcribed already.
    pub transcribed: bool,
}

/// What `fiche.ensure_details` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FicheRecordings {
    /// Fiche id.
    pub fiche_id: String,
    /// Its recordings in CRM order.
    pub recordings: Vec<RecordingRef>,
    /// Whether details came from the CRM now (false: cache).
    pub fetched: bool,
}

/// Input of `TranscriptionWorkflow` and `transcription.transcribe`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TranscribeInput {
    /// Recording id.
    pub recording_id: String,
}

/// Output of a transcription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TranscribeOutput {
    /// Recording id.
    pub recording_id: String,
    /// Words stored.
    pub word_count: u32,
    /// True when a completed transcription already existed (nothing sent upstream).
    pub reused: bool,
}

/// Input of `AuditStepWorkflow` and `audit.analyze_step`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnalyzeStepInput {
    /// Audit id.
    pub audit_id: String,
    /// Step position in the configuration.
    pub position: i32,
    /// Transcript-tools mode.
    pub use_rlm: bool,
}

/// Outcome of one step (small; the full analysis is in `audit_step_results`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepOutcome {
    /// Step position.
    pub position: i32,
    /// Step score.
    pub score: f64,
    /// Verdict.
    pub conforme: Conformite,
    /// True when the row already existed (retry or replay: no LLM call made).
    pub reused: bool,
}

/// Input of `audit.fail`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditFailure {
    /// Audit id.
    pub audit_id: String,
    /// Why (no secrets: errors are sanitised before they reach a workflow).
    pub error: String,
}

/// Output of `AuditWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditWorkflowOutput {
    /// Audit id.
    pub audit_id: String,
    /// The compliance summary.
    pub summary: AuditSummary,
    /// Steps stored.
    pub steps: u32,
}

/// Input of `AuditRerunWorkflow`: the rerun row the api stored (kind, target, mode and
/// instructions are read from it by id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerunWorkflowInput {
    /// `audit_reruns.id`.
    pub rerun_id: String,
    /// Audit rerun.
    pub audit_id: String,
}

/// Input of `rerun.analyze`, `rerun.apply`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerunActivityInput {
    /// `audit_reruns.id`.
    pub rerun_id: String,
}

/// What `rerun.analyze` returns (the analysis itself stays on the rerun row).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerunAnalyzed {
    /// The gated status of each control point analysed (one for a control-point rerun).
    pub statuts: Vec<ControlPointStatus>,
    /// True when the analysis was stored already (retry or replay: no LLM call made).
    pub reused: bool,
}

/// Output of `rerun.apply` and `AuditRerunWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerunOutcome {
    /// `audit_reruns.id`.
    pub rerun_id: String,
    /// The step's new score.
    pub step_score: f64,
    /// Its verdict.
    pub step_conforme: Conformite,
    /// The audit's new summary.
    pub summary: AuditSummary,
}

/// Input of `rerun.fail`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerunFailure {
    /// `audit_reruns.id`.
    pub rerun_id: String,
    /// Why (sanitised).
    pub error: String,
}
