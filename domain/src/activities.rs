//! Activity definitions: names and types the workflows call. The implementations live in
//! `callaudit-activities` (`#[activity(definition = …)]` checks the types match). The
//! names are part of workflow history: never rename one without a versioning plan.
#![allow(missing_docs, clippy::unused_self)]

use crate::batch::{
    BatchCounts, BatchFailure, BatchItemInput, BatchPlan, BatchRef, FinishBatchInput,
    FinishItemInput, FinishedItem, NextItems, NextItemsInput, StartedItem,
};
use crate::fetch_job::{
    DaySales, FetchJobFailure, FetchJobFinished, JobAttempt, RecordDayInput, SearchDayInput,
};
use crate::scoring::AuditSummary;
use crate::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditPlan, AuditRef, EnsureFicheInput, FicheRecordings,
    RerunActivityInput, RerunAnalyzed, RerunFailure, RerunOutcome, StepOutcome, TranscribeInput,
    TranscribeOutput,
};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// Declarations of every activity of callaudit.
pub struct CallauditActivities;

#[activity_definitions]
impl CallauditActivities {
    /// Marks the audit running, emits `audit.started`, returns its step positions.
    #[activity(name = "audit.start")]
    pub fn start_audit(_input: AuditRef) -> Result<AuditPlan, ActivityError> {
        unimplemented!()
    }

    /// Makes sure the fiche's full details and recordings are stored (CRM, capped).
    #[activity(name = "fiche.ensure_details")]
    pub fn ensure_fiche(_input: EnsureFicheInput) -> Result<FicheRecordings, ActivityError> {
        unimplemented!()
    }

    /// Transcribes one recording (ElevenLabs) unless a completed transcription exists.
    #[activity(name = "transcription.transcribe")]
    pub fn transcribe(_input: TranscribeInput) -> Result<TranscribeOutput, ActivityError> {
        unimplemented!()
    }

    /// Analyses one step with the LLM, gates the evidence, stores the step row.
    #[activity(name = "audit.analyze_step")]
    pub fn analyze_step(_input: AnalyzeStepInput) -> Result<StepOutcome, ActivityError> {
        unimplemented!()
    }

    /// Computes the compliance summary from the stored steps; emits `audit.completed`.
    #[activity(name = "audit.finalize")]
    pub fn finalize_audit(_input: AuditRef) -> Result<AuditSummary, ActivityError> {
        unimplemented!()
    }

    /// Records the audit as failed; emits `audit.failed`.
    #[activity(name = "audit.fail")]
    pub fn fail_audit(_input: AuditFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Purges the personal data older than the retention limits, in batches; emits
    /// `personal_data.purged` with what went.
    #[activity(name = "retention.purge")]
    pub fn purge_personal_data(
        _input: crate::personal_data::RetentionRun,
    ) -> Result<crate::personal_data::Removed, ActivityError> {
        unimplemented!()
    }

    /// Analyses the rerun's step (or its one control point) again with the same analyzer,
    /// gating and scoring as an audit; stores the analysis on the rerun row.
    #[activity(name = "rerun.analyze")]
    pub fn analyze_rerun(_input: RerunActivityInput) -> Result<RerunAnalyzed, ActivityError> {
        unimplemented!()
    }

    /// Applies the stored analysis to the step (history appended), recomputes the audit
    /// summary, all under the audit's row lock; emits `audit.rerun.completed`.
    #[activity(name = "rerun.apply")]
    pub fn apply_rerun(_input: RerunActivityInput) -> Result<RerunOutcome, ActivityError> {
        unimplemented!()
    }

    /// Records the rerun as failed; emits `audit.rerun.failed`.
    #[activity(name = "rerun.fail")]
    pub fn fail_rerun(_input: RerunFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Marks a fetch job's attempt running; emits `fetch_job.started` (once per attempt).
    #[activity(name = "fetch_job.start")]
    pub fn start_fetch_job(_input: JobAttempt) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Searches the CRM for one day's sales with calls (under the global search cap),
    /// stores them as partial fiches, returns those selected by `groupes`.
    #[activity(name = "fetch_job.search_day")]
    pub fn search_fetch_day(_input: SearchDayInput) -> Result<DaySales, ActivityError> {
        unimplemented!()
    }

    /// Records one day's outcome on the job (day row and job counters, once); emits
    /// `fetch_job.day.completed` or `fetch_job.day.failed`.
    #[activity(name = "fetch_job.record_day")]
    pub fn record_fetch_day(_input: RecordDayInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Ends the attempt: completed, partial (failed days listed) or failed; emits
    /// `fetch_job.completed` or `fetch_job.failed`.
    #[activity(name = "fetch_job.finish")]
    pub fn finish_fetch_job(_input: JobAttempt) -> Result<FetchJobFinished, ActivityError> {
        unimplemented!()
    }

    /// Records the attempt as failed (its days not recorded failed with the reason);
    /// emits `fetch_job.failed`.
    #[activity(name = "fetch_job.fail")]
    pub fn fail_fetch_job(_input: FetchJobFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Marks the batch running, emits `batch.started`, returns its item count.
    #[activity(name = "batch.start")]
    pub fn start_batch(_input: BatchRef) -> Result<BatchPlan, ActivityError> {
        unimplemented!()
    }

    /// The batch's pending items after a position (a page), and whether cancelling was
    /// asked on its row.
    #[activity(name = "batch.next_items")]
    pub fn next_batch_items(_input: NextItemsInput) -> Result<NextItems, ActivityError> {
        unimplemented!()
    }

    /// Creates the item's audit row once (keyed by batch and fiche) and marks the item
    /// running; a retry returns the same audit.
    #[activity(name = "batch.start_item")]
    pub fn start_batch_item(_input: BatchItemInput) -> Result<StartedItem, ActivityError> {
        unimplemented!()
    }

    /// Records how the item's audit ended and moves the batch's counts, once; emits
    /// `batch.progress` with the counts after it.
    #[activity(name = "batch.finish_item")]
    pub fn finish_batch_item(_input: FinishItemInput) -> Result<FinishedItem, ActivityError> {
        unimplemented!()
    }

    /// Ends the batch (completed, partial, or cancelled with its items not started);
    /// emits `batch.completed` or `batch.cancelled`.
    #[activity(name = "batch.finish")]
    pub fn finish_batch(_input: FinishBatchInput) -> Result<BatchCounts, ActivityError> {
        unimplemented!()
    }

    /// Records the batch as failed (its items not started cancelled); emits `batch.failed`.
    #[activity(name = "batch.fail")]
    pub fn fail_batch(_input: BatchFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Records an automation run once (per schedule and scheduled time); returns its plan.
    #[activity(name = "automation.start_run")]
    pub fn start_automation_run(
        _input: crate::automation::StartRunInput,
    ) -> Result<crate::automation::RunPlan, ActivityError> {
        unimplemented!()
    }

    /// Selects the run's fiches among the cached ones (filters, limits, ignored with
    /// reasons) and stores their batch; returns the selection.
    #[activity(name = "automation.select_fiches")]
    pub fn select_automation_fiches(
        _input: crate::automation::SelectInput,
    ) -> Result<crate::automation::RunSelection, ActivityError> {
        unimplemented!()
    }

    /// Posts one event of a run to its schedule's webhook (signed, SSRF-guarded), one
    /// attempt per call (retried with backoff by the policy), each recorded; returns the
    /// delivery's status (`skipped` without a webhook).
    #[activity(name = "automation.notify_webhook")]
    pub fn notify_automation_webhook(
        _input: crate::automation::NotifyInput,
    ) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// E-mails the summary of an ended run to its schedule's addresses over SMTP, one
    /// attempt per call (transient failures retried by the policy), recorded; returns the
    /// outcome (`sent`, `skipped` without SMTP, `failed`, `none` without addresses).
    #[activity(name = "automation.notify_email")]
    pub fn notify_automation_email(
        _input: crate::automation_email::NotifyEmailInput,
    ) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// Stores a new batch of the fiches whose audit failed in a batch of the run (retry
    /// `round`); returns its id, or None when none failed.
    #[activity(name = "automation.retry_failed")]
    pub fn retry_automation_failed(
        _input: crate::automation::RetryInput,
    ) -> Result<Option<String>, ActivityError> {
        unimplemented!()
    }

    /// The selected fiches of a run with the recordings its transcription phase
    /// dispatches (`skipIfTranscribed` applied).
    #[activity(name = "automation.transcription_plan")]
    pub fn plan_automation_transcription(
        _input: crate::automation::TranscriptionPlanInput,
    ) -> Result<Vec<crate::automation::FicheToTranscribe>, ActivityError> {
        unimplemented!()
    }

    /// Takes the fiches whose transcription failed out of the run's pending batch (the
    /// batch dropped without `continueOnError`); returns the batch left to audit.
    #[activity(name = "automation.settle_transcriptions")]
    pub fn settle_automation_transcriptions(
        _input: crate::automation::SettleTranscriptionsInput,
    ) -> Result<Option<String>, ActivityError> {
        unimplemented!()
    }

    /// Ends the run with its summary; emits `automation/completed` or `automation/failed`.
    #[activity(name = "automation.finish_run")]
    pub fn finish_automation_run(
        _input: crate::automation::FinishRunInput,
    ) -> Result<crate::automation::RunOutcome, ActivityError> {
        unimplemented!()
    }
}
