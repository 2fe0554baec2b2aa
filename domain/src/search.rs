//! Search attributes every workflow carries, so operators find runs in the Temporal UI
//! (`FicheId = "FICHE-1001"` finds an audit and its children). The names are registered
//! in the namespace (`temporal-dev/temporal-start.sh`, README "Running it for real").

use temporalio_common::search_attributes::{
    SearchAttributeKey, SearchAttributeUpdate, SearchAttributes,
};

/// `FicheId` (Keyword): the fiche a run works on.
pub const FICHE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("FicheId");
/// `AuditId` (Keyword): the audit a run belongs to.
pub const AUDIT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("AuditId");
/// `RunKind` (Keyword): what the run is ([`RunKind`]).
pub const RUN_KIND: SearchAttributeKey<String> = SearchAttributeKey::keyword("RunKind");
/// `JobId` (Keyword): the progressive fetch job a run belongs to.
pub const JOB_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("JobId");
/// `BatchId` (Keyword): the batch audit a run belongs to.
pub const BATCH_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("BatchId");
/// `ScheduleId` (Keyword): the automation schedule a run belongs to.
pub const SCHEDULE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ScheduleId");

/// What a workflow run is, as `RunKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `AuditWorkflow`.
    Audit,
    /// `AuditStepWorkflow`.
    Step,
    /// `TranscriptionWorkflow`.
    Transcription,
    /// `ProgressiveFetchWorkflow`.
    FetchJob,
    /// `DayFetchWorkflow`.
    FetchDay,
    /// `AuditRerunWorkflow`.
    Rerun,
    /// `RetentionWorkflow`.
    Retention,
    /// `BatchAuditWorkflow`.
    Batch,
    /// `AutomationRunWorkflow`.
    Automation,
}

impl RunKind {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Step => "step",
            Self::Transcription => "transcription",
            Self::FetchJob => "fetch_job",
            Self::FetchDay => "fetch_day",
            Self::Rerun => "rerun",
            Self::Retention => "retention",
            Self::Batch => "batch",
            Self::Automation => "automation",
        }
    }
}

/// The search attributes of a run of an audit of `fiche_id`.
pub fn of_audit_run(fiche_id: &str, audit_id: &str, kind: RunKind) -> SearchAttributes {
    SearchAttributes::new([
        FICHE_ID.value_set(fiche_id.to_string()),
        AUDIT_ID.value_set(audit_id.to_string()),
        RUN_KIND.value_set(kind.as_str().to_string()),
    ])
}

/// The search attributes of a batch's `BatchAuditWorkflow` (`RunKind = "batch"`).
pub fn of_batch(batch_id: &str) -> SearchAttributes {
    SearchAttributes::new([
        BATCH_ID.value_set(batch_id.to_string()),
        RUN_KIND.value_set(RunKind::Batch.as_str().to_string()),
    ])
}

/// The search attributes of the `AuditWorkflow` of one fiche of batch `batch_id`: those of
/// any audit run ([`of_audit_run`], `RunKind = "audit"`) plus `BatchId`.
pub fn of_batch_audit(fiche_id: &str, audit_id: &str, batch_id: &str) -> SearchAttributes {
    SearchAttributes::new([
        FICHE_ID.value_set(fiche_id.to_string()),
        AUDIT_ID.value_set(audit_id.to_string()),
        RUN_KIND.value_set(RunKind::Audit.as_str().to_string()),
        BATCH_ID.value_set(batch_id.to_string()),
    ])
}

/// The search attributes of a run of progressive fetch job `job_id` (`RunKind =
/// "fetch_job"` for its `ProgressiveFetchWorkflow`, `"fetch_day"` for each day).
pub fn of_fetch_job(job_id: &str, kind: RunKind) -> SearchAttributes {
    SearchAttributes::new([
        JOB_ID.value_set(job_id.to_string()),
        RUN_KIND.value_set(kind.as_str().to_string()),
    ])
}

/// The search attributes an `AutomationRunWorkflow` sets on itself (schedules give
/// none): `ScheduleId`, `RunKind = "automation"`.
pub fn automation_run_updates(schedule_id: &str) -> Vec<SearchAttributeUpdate> {
    vec![
        SCHEDULE_ID.value_set(schedule_id.to_string()),
        RUN_KIND.value_set(RunKind::Automation.as_str().to_string()),
    ]
}

/// The search attributes of a child of an automation run: `ScheduleId` and the child's
/// `RunKind` (plus `JobId` = the run for its day fetches, `BatchId` for its batch).
pub fn of_automation_child(schedule_id: &str, run_id: &str, kind: RunKind) -> SearchAttributes {
    let owner = match kind {
        RunKind::Batch => BATCH_ID.value_set(run_id.to_string()),
        _ => JOB_ID.value_set(run_id.to_string()),
    };
    SearchAttributes::new([
        SCHEDULE_ID.value_set(schedule_id.to_string()),
        RUN_KIND.value_set(kind.as_str().to_string()),
        owner,
    ])
}

/// The search attributes of a run on a fiche outside any audit (a transcription asked
/// for on the fiche itself).
pub fn of_fiche_run(fiche_id: &str, kind: RunKind) -> SearchAttributes {
    SearchAttributes::new([
        FICHE_ID.value_set(fiche_id.to_string()),
        RUN_KIND.value_set(kind.as_str().to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_run_carries_its_fiche_audit_and_kind() {
        let attrs = of_audit_run("FICHE-1001", "a1", RunKind::Step);
        assert_eq!(attrs.get(&FICHE_ID).as_deref(), Some("FICHE-1001"));
        assert_eq!(attrs.get(&AUDIT_ID).as_deref(), Some("a1"));
        assert_eq!(attrs.get(&RUN_KIND).as_deref(), Some("step"));
    }

    #[test]
    fn every_run_of_a_fetch_job_carries_the_job_id_and_its_kind() {
        let day = of_fetch_job("j1", RunKind::FetchDay);
        assert_eq!(day.get(&JOB_ID).as_deref(), Some("j1"));
        assert_eq!(day.get(&RUN_KIND).as_deref(), Some("fetch_day"));
        let parent = of_fetch_job("j1", RunKind::FetchJob);
        assert_eq!(parent.get(&RUN_KIND).as_deref(), Some("fetch_job"));
        let tr = of_fiche_run("FICHE-1001", RunKind::Transcription);
        assert_eq!(tr.get(&FICHE_ID).as_deref(), Some("FICHE-1001"));
        assert_eq!(tr.get(&AUDIT_ID), None);
    }

    #[test]
    fn a_batch_and_each_of_its_audits_carry_the_batch_id() {
        let batch = of_batch("b1");
        assert_eq!(batch.get(&BATCH_ID).as_deref(), Some("b1"));
        assert_eq!(batch.get(&RUN_KIND).as_deref(), Some("batch"));
        let audit = of_batch_audit("FICHE-1001", "a1", "b1");
        assert_eq!(audit.get(&BATCH_ID).as_deref(), Some("b1"));
        assert_eq!(audit.get(&AUDIT_ID).as_deref(), Some("a1"));
        assert_eq!(audit.get(&FICHE_ID).as_deref(), Some("FICHE-1001"));
        assert_eq!(audit.get(&RUN_KIND).as_deref(), Some("audit"));
    }
}
