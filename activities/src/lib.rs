//! Activity implementations (I/O lives here): the persistence and vendor steps of
//! callaudit's workflows, one file per activity group. Every activity is idempotent,
//! keyed by the workflow's ids: a retried or replayed activity finds its row and returns
//! it without calling upstream. Vendors are reached through `callaudit-upstream`.
//!
//! The one `#[activities]` block below (the SDK registers a type's activities from a
//! single block) names each activity and hands it to its group's file, and counts the
//! work it did in [`metrics`].

pub mod analyze;
mod audit;
mod automation;
pub mod automation_email;
mod automation_transcription;
mod batch;
mod fetch_job;
mod fiche;
pub mod heartbeat;
pub mod metrics;
mod rerun;
mod retention;
mod state;
mod transcription;
mod transcripts;

pub use heartbeat::{HEARTBEAT_EVERY, heartbeating};
pub use metrics::{WorkMetrics, work_metrics};
pub use state::WorkerActivities;

use callaudit_domain::batch::{
    BatchCounts, BatchFailure, BatchItemInput, BatchPlan, BatchRef, FinishBatchInput,
    FinishItemInput, FinishedItem, NextItems, NextItemsInput, StartedItem,
};
use callaudit_domain::fetch_job::{
    DaySales, FetchJobFailure, FetchJobFinished, JobAttempt, RecordDayInput, SearchDayInput,
};
use callaudit_domain::scoring::AuditSummary;
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditPlan, AuditRef, EnsureFicheInput, FicheRecordings,
    RerunActivityInput, RerunAnalyzed, RerunFailure, RerunOutcome, StepOutcome, TranscribeInput,
    TranscribeOutput,
};
use std::sync::Arc;
use temporalio_common::ActivityError;
use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityContext;

#[activities]
impl WorkerActivities {
    /// `audit.start` ([`audit`]).
    #[activity(name = "audit.start")]
    pub async fn start_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditRef,
    ) -> Result<AuditPlan, ActivityError> {
        let plan = self.start(input).await?;
        work_metrics().audit_started();
        Ok(plan)
    }

    /// `fiche.ensure_details` ([`fiche`]).
    #[activity(name = "fiche.ensure_details")]
    pub async fn ensure_fiche(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EnsureFicheInput,
    ) -> Result<FicheRecordings, ActivityError> {
        self.ensure_details(&ctx, input).await
    }

    /// `transcription.transcribe` ([`transcription`]).
    #[activity(name = "transcription.transcribe")]
    pub async fn transcribe(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TranscribeInput,
    ) -> Result<TranscribeOutput, ActivityError> {
        self.transcribe_recording(&ctx, input).await
    }

    /// `audit.analyze_step` ([`audit`], [`analyze`]).
    #[activity(name = "audit.analyze_step")]
    pub async fn analyze_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalyzeStepInput,
    ) -> Result<StepOutcome, ActivityError> {
        let began = std::time::Instant::now();
        let use_rlm = input.use_rlm;
        let outcome = self.analyze(&ctx, input).await?;
        if !outcome.reused {
            work_metrics().step_analysed(use_rlm, began.elapsed());
        }
        Ok(outcome)
    }

    /// `audit.finalize` ([`audit`]).
    #[activity(name = "audit.finalize")]
    pub async fn finalize_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditRef,
    ) -> Result<AuditSummary, ActivityError> {
        let summary = self.finalize(input).await?;
        work_metrics().audit_completed(summary.niveau);
        Ok(summary)
    }

    /// `audit.fail` ([`audit`]).
    #[activity(name = "audit.fail")]
    pub async fn fail_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditFailure,
    ) -> Result<(), ActivityError> {
        if self.fail(input).await? {
            work_metrics().audit_failed();
        }
        Ok(())
    }

    /// `rerun.analyze` ([`rerun`], [`analyze`]).
    #[activity(name = "rerun.analyze")]
    pub async fn analyze_rerun(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RerunActivityInput,
    ) -> Result<RerunAnalyzed, ActivityError> {
        self.analyze_rerun_step(&ctx, input).await
    }

    /// `rerun.apply` ([`rerun`]).
    #[activity(name = "rerun.apply")]
    pub async fn apply_rerun(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RerunActivityInput,
    ) -> Result<RerunOutcome, ActivityError> {
        self.apply_rerun_step(input).await
    }

    /// `rerun.fail` ([`rerun`]).
    #[activity(name = "rerun.fail")]
    pub async fn fail_rerun(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RerunFailure,
    ) -> Result<(), ActivityError> {
        self.fail_rerun_step(input).await?;
        Ok(())
    }

    /// `fetch_job.start` ([`fetch_job`]).
    #[activity(name = "fetch_job.start")]
    pub async fn start_fetch_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: JobAttempt,
    ) -> Result<(), ActivityError> {
        self.start_job(input).await
    }

    /// `fetch_job.search_day` ([`fetch_job`]).
    #[activity(name = "fetch_job.search_day")]
    pub async fn search_fetch_day(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SearchDayInput,
    ) -> Result<DaySales, ActivityError> {
        self.search_day(&ctx, input).await
    }

    /// `fetch_job.record_day` ([`fetch_job`]).
    #[activity(name = "fetch_job.record_day")]
    pub async fn record_fetch_day(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordDayInput,
    ) -> Result<(), ActivityError> {
        self.record_day(input).await
    }

    /// `fetch_job.finish` ([`fetch_job`]).
    #[activity(name = "fetch_job.finish")]
    pub async fn finish_fetch_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: JobAttempt,
    ) -> Result<FetchJobFinished, ActivityError> {
        self.finish_job(input).await
    }

    /// `fetch_job.fail` ([`fetch_job`]).
    #[activity(name = "fetch_job.fail")]
    pub async fn fail_fetch_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FetchJobFailure,
    ) -> Result<(), ActivityError> {
        self.fail_job(input).await
    }

    /// `retention.purge` ([`retention`]).
    #[activity(name = "retention.purge")]
    pub async fn purge_personal_data(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: callaudit_domain::personal_data::RetentionRun,
    ) -> Result<callaudit_domain::personal_data::Removed, ActivityError> {
        self.purge_old_personal_data(&ctx, input).await
    }

    /// `batch.start` ([`batch`]).
    #[activity(name = "batch.start")]
    pub async fn start_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: BatchRef,
    ) -> Result<BatchPlan, ActivityError> {
        self.start_batch_run(input).await
    }

    /// `batch.next_items` ([`batch`]).
    #[activity(name = "batch.next_items")]
    pub async fn next_batch_items(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: NextItemsInput,
    ) -> Result<NextItems, ActivityError> {
        self.next_items(input).await
    }

    /// `batch.start_item` ([`batch`]).
    #[activity(name = "batch.start_item")]
    pub async fn start_batch_item(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: BatchItemInput,
    ) -> Result<StartedItem, ActivityError> {
        self.start_item(input).await
    }

    /// `batch.finish_item` ([`batch`]).
    #[activity(name = "batch.finish_item")]
    pub async fn finish_batch_item(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FinishItemInput,
    ) -> Result<FinishedItem, ActivityError> {
        self.finish_item(input).await
    }

    /// `batch.finish` ([`batch`]).
    #[activity(name = "batch.finish")]
    pub async fn finish_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FinishBatchInput,
    ) -> Result<BatchCounts, ActivityError> {
        self.end_batch_run(input).await
    }

    /// `batch.fail` ([`batch`]).
    #[activity(name = "batch.fail")]
    pub async fn fail_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: BatchFailure,
    ) -> Result<(), ActivityError> {
        self.fail_batch_run(input).await
    }

    /// `automation.start_run` ([`automation`]).
    #[activity(name = "automation.start_run")]
    pub async fn start_automation_run(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::StartRunInput,
    ) -> Result<callaudit_domain::automation::RunPlan, ActivityError> {
        self.start_run(input).await
    }

    /// `automation.select_fiches` ([`automation`]).
    #[activity(name = "automation.select_fiches")]
    pub async fn select_automation_fiches(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::SelectInput,
    ) -> Result<callaudit_domain::automation::RunSelection, ActivityError> {
        self.select_run_fiches(input).await
    }

    /// `automation.notify_email` ([`automation_email`]).
    #[activity(name = "automation.notify_email")]
    pub async fn notify_automation_email(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: callaudit_domain::automation_email::NotifyEmailInput,
    ) -> Result<String, ActivityError> {
        self.notify_email(ctx.info().attempt, input).await
    }

    /// `automation.notify_webhook` ([`automation`]).
    #[activity(name = "automation.notify_webhook")]
    pub async fn notify_automation_webhook(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: callaudit_domain::automation::NotifyInput,
    ) -> Result<String, ActivityError> {
        self.notify_webhook(ctx.info().attempt, input).await
    }

    /// `automation.retry_failed` ([`automation`]).
    #[activity(name = "automation.retry_failed")]
    pub async fn retry_automation_failed(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::RetryInput,
    ) -> Result<Option<String>, ActivityError> {
        self.retry_failed(input).await
    }

    /// `automation.transcription_plan` ([`automation_transcription`]).
    #[activity(name = "automation.transcription_plan")]
    pub async fn plan_automation_transcription(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::TranscriptionPlanInput,
    ) -> Result<Vec<callaudit_domain::automation::FicheToTranscribe>, ActivityError> {
        self.transcription_plan(input).await
    }

    /// `automation.settle_transcriptions` ([`automation_transcription`]).
    #[activity(name = "automation.settle_transcriptions")]
    pub async fn settle_automation_transcriptions(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::SettleTranscriptionsInput,
    ) -> Result<Option<String>, ActivityError> {
        self.settle_transcriptions(input).await
    }

    /// `automation.finish_run` ([`automation`]).
    #[activity(name = "automation.finish_run")]
    pub async fn finish_automation_run(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: callaudit_domain::automation::FinishRunInput,
    ) -> Result<callaudit_domain::automation::RunOutcome, ActivityError> {
        self.finish_run(input).await
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerActivities;
    use callaudit_domain::activities::CallauditActivities;
    use temporalio_common::ActivityDefinition;

    /// Compile-time: same input and output types; run time: same activity type name.
    fn same<D: ActivityDefinition, I: ActivityDefinition<Input = D::Input, Output = D::Output>>(
        d: D,
        i: I,
    ) {
        assert_eq!(d.name(), i.name());
    }

    #[test]
    fn implementations_match_the_definitions_the_workflows_call() {
        same(
            CallauditActivities::start_audit,
            WorkerActivities::start_audit,
        );
        same(
            CallauditActivities::ensure_fiche,
            WorkerActivities::ensure_fiche,
        );
        same(
            CallauditActivities::transcribe,
            WorkerActivities::transcribe,
        );
        same(
            CallauditActivities::analyze_step,
            WorkerActivities::analyze_step,
        );
        same(
            CallauditActivities::finalize_audit,
            WorkerActivities::finalize_audit,
        );
        same(
            CallauditActivities::fail_audit,
            WorkerActivities::fail_audit,
        );
        same(
            CallauditActivities::analyze_rerun,
            WorkerActivities::analyze_rerun,
        );
        same(
            CallauditActivities::apply_rerun,
            WorkerActivities::apply_rerun,
        );
        same(
            CallauditActivities::fail_rerun,
            WorkerActivities::fail_rerun,
        );
        same(
            CallauditActivities::start_fetch_job,
            WorkerActivities::start_fetch_job,
        );
        same(
            CallauditActivities::search_fetch_day,
            WorkerActivities::search_fetch_day,
        );
        same(
            CallauditActivities::record_fetch_day,
            WorkerActivities::record_fetch_day,
        );
        same(
            CallauditActivities::finish_fetch_job,
            WorkerActivities::finish_fetch_job,
        );
        same(
            CallauditActivities::fail_fetch_job,
            WorkerActivities::fail_fetch_job,
        );
        same(
            CallauditActivities::purge_personal_data,
            WorkerActivities::purge_personal_data,
        );
        same(
            CallauditActivities::start_batch,
            WorkerActivities::start_batch,
        );
        same(
            CallauditActivities::next_batch_items,
            WorkerActivities::next_batch_items,
        );
        same(
            CallauditActivities::start_batch_item,
            WorkerActivities::start_batch_item,
        );
        same(
            CallauditActivities::finish_batch_item,
            WorkerActivities::finish_batch_item,
        );
        same(
            CallauditActivities::finish_batch,
            WorkerActivities::finish_batch,
        );
        same(
            CallauditActivities::fail_batch,
            WorkerActivities::fail_batch,
        );
        same(
            CallauditActivities::start_automation_run,
            WorkerActivities::start_automation_run,
        );
        same(
            CallauditActivities::select_automation_fiches,
            WorkerActivities::select_automation_fiches,
        );
        same(
            CallauditActivities::plan_automation_transcription,
            WorkerActivities::plan_automation_transcription,
        );
        same(
            CallauditActivities::settle_automation_transcriptions,
            WorkerActivities::settle_automation_transcriptions,
        );
        same(
            CallauditActivities::finish_automation_run,
            WorkerActivities::finish_automation_run,
        );
        same(
            CallauditActivities::notify_automation_webhook,
            WorkerActivities::notify_automation_webhook,
        );
        same(
            CallauditActivities::notify_automation_email,
            WorkerActivities::notify_automation_email,
        );
        same(
            CallauditActivities::retry_automation_failed,
            WorkerActivities::retry_automation_failed,
        );
    }
}
