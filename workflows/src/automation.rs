//! `AutomationRunWorkflow` (`automation:{schedule_id}-{scheduled time}`, the id its
//! Temporal Schedule gives each run): one run of an automation schedule.
//!
//! 1. `automation.start_run` records the run under the time it was scheduled for (read
//!    from the workflow id, or the workflow's start time for another id) and reads the
//!    schedule: the window's days, groupes, `useRlm`, `continueOnError`. The run sets its
//!    own search attributes (`ScheduleId`, `RunKind = "automation"`): a schedule's
//!    action gives it none.
//! 2. Selection: one `DayFetchWorkflow` child per day of the window
//!    (`{run workflow id}:day:{day}`, deterministic: a retried run dispatches nothing
//!    twice), at most [`RUN_DAY_WINDOW`] at once — the progressive fetch's fan-out: the
//!    CRM's sales of the day stored, the details of those in `groupes` fetched. Then
//!    `automation.select_fiches` applies `onlyUnaudited`, `onlyWithRecordings` (on the
//!    fetched details), the recordings limit and `limit`, lists the ignored fiches with
//!    their reasons and stores the rest as the run's batch.
//! 3. Transcription ([`crate::automation_transcription`]): the selected recordings
//!    through the shared `TranscriptionWorkflow` children (`transcribe:{recording id}`)
//!    in a sliding window; `skipIfTranscribed`, `retryFailed`; the fiches still failed
//!    leave the batch (without `continueOnError` the run stops there).
//! 4. Audits: a `BatchAuditWorkflow` child (`batch:{run id}`), the batch audit's
//!    sliding window of `AuditWorkflow`s — each finds its transcripts stored and audits
//!    with `use_rlm` from `ficheSelection.useRlm`. Every wait is a child's result;
//!    nothing polls.
//! 5. `automation.finish_run` stores the summary and the status (`partial` when audits
//!    failed under `continueOnError`, `failed` without it) and emits
//!    `automation/completed` or `automation/failed`. A failure of the run itself is
//!    recorded the same way before the workflow fails.

use crate::automation_transcription::{AUTOMATION_TRANSCRIPTION_PATCH, transcription_phase};
use crate::batch::BatchAuditWorkflow;
use crate::day_fetch::DayFetchWorkflow;
use crate::failure::{can_record_failure, failure_chain};
use crate::options::db_activity;
use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::automation::{
    AutomationRunInput, FetchTotals, FinishRunInput, NotifyInput, RUN_AUDIT_WINDOW, RUN_DAY_WINDOW,
    RUN_STEP_PARALLELISM, RetryInput, RunOutcome, RunPlan, RunSelection, SelectInput,
    StartRunInput, day_child_id, scheduled_at_of,
};
use callaudit_domain::batch::BatchWorkflowInput;
use callaudit_domain::fetch_job::{DayCounts, DayFetchInput};
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::ids;
use chrono::{DateTime, NaiveDate, Utc};
use std::convert::Infallible;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, ChildWorkflowOptions, RetryPolicy, WorkflowContext, WorkflowResult,
};

/// Attempts of one webhook delivery.
pub const WEBHOOK_ATTEMPTS: u32 = 5;

/// Children one batch run starts before it continues as new.
const BATCH_CONTINUE_AS_NEW_AFTER: u32 = 200;

/// One run of an automation schedule: select, fetch, audit, summarise.
#[workflow]
#[derive(Default)]
pub struct AutomationRunWorkflow;

#[workflow_methods]
impl AutomationRunWorkflow {
    /// Runs the schedule once; on failure records it (`automation/failed`) before failing.
    #[run(name = "AutomationRunWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AutomationRunInput,
    ) -> WorkflowResult<RunOutcome> {
        ctx.upsert_search_attributes(search::automation_run_updates(&input.schedule_id));
        let workflow_id = ctx.workflow_id().to_string();
        let scheduled_at = scheduled_at_of(&workflow_id, &input.schedule_id)
            .or_else(|| ctx.workflow_time().map(DateTime::<Utc>::from))
            .unwrap_or_default();
        let plan = ctx
            .execute_activity(
                CallauditActivities::start_automation_run,
                StartRunInput {
                    schedule_id: input.schedule_id.clone(),
                    workflow_id: workflow_id.clone(),
                    scheduled_at,
                },
                db_activity(),
            )
            .await?;
        notify(
            ctx,
            &plan.run_id,
            "automation/started",
            serde_json::json!({
                "run_id": plan.run_id, "schedule_id": input.schedule_id,
                "scheduled_at": scheduled_at, "days": plan.days.len(),
            }),
        )
        .await;
        let mut fetch = FetchTotals::default();
        let mut selection = None;
        let mut retries = 0;
        let result = Self::steps(
            ctx,
            &input,
            &workflow_id,
            &plan,
            &mut fetch,
            &mut selection,
            &mut retries,
        )
        .await;
        let (audits, error) = match result {
            Ok(audits) => (audits, None),
            Err(e) if can_record_failure(&e) => (None, Some((failure_chain(&e), e))),
            Err(e) => return Err(e),
        };
        let outcome = ctx
            .execute_activity(
                CallauditActivities::finish_automation_run,
                FinishRunInput {
                    run_id: plan.run_id.clone(),
                    fetch,
                    selection,
                    audits,
                    retries,
                    error: error.as_ref().map(|(chain, _)| chain.clone()),
                },
                db_activity(),
            )
            .await?;
        let kind = if outcome.status == "failed" {
            "automation/failed"
        } else {
            "automation/completed"
        };
        notify(
            ctx,
            &plan.run_id,
            kind,
            serde_json::json!({"status": outcome.status, "summary": outcome.summary}),
        )
        .await;
        if ctx.patched(AUTOMATION_EMAIL_PATCH) {
            notify_email(ctx, &plan.run_id).await;
        }
        match error {
            Some((_, e)) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Fetch, select, audit; returns the audits' (completed, failed) counts.
    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &AutomationRunInput,
        workflow_id: &str,
        plan: &RunPlan,
        fetch: &mut FetchTotals,
        selection: &mut Option<RunSelection>,
        retries: &mut u32,
    ) -> WorkflowResult<Option<(u32, u32)>> {
        fetch.days = u32::try_from(plan.days.len()).unwrap_or(u32::MAX);
        let day_ctx = ctx.clone();
        run_sliding_window(
            plan.days.clone(),
            usize::try_from(RUN_DAY_WINDOW).unwrap_or(5),
            |day| fetch_day(day_ctx.clone(), input, workflow_id, plan, day),
            |counts: Option<DayCounts>| match counts {
                Some(c) => {
                    fetch.found += c.found;
                    fetch.fetched += c.fetched;
                    fetch.fetch_failed += c.failed;
                }
                None => fetch.days_failed += 1,
            },
        )
        .await
        .unwrap_or_else(|never: Infallible| match never {});
        let selected = ctx
            .execute_activity(
                CallauditActivities::select_automation_fiches,
                SelectInput {
                    run_id: plan.run_id.clone(),
                },
                db_activity(),
            )
            .await?;
        let batch_id = selected.batch_id.clone();
        *selection = Some(selected);
        let Some(mut batch_id) = batch_id else {
            return Ok(Some((0, 0)));
        };
        if ctx.patched(AUTOMATION_TRANSCRIPTION_PATCH) {
            // The transcription phase; the fiches it failed leave the batch.
            let (totals, left) =
                transcription_phase(ctx, &input.schedule_id, plan, &batch_id).await?;
            if let Some(s) = selection.as_mut() {
                s.transcription = Some(totals);
                s.batch_id.clone_from(&left);
            }
            let Some(left) = left else {
                return Ok(Some((0, 0)));
            };
            batch_id = left;
        }
        let out = run_batch(ctx, input, plan, &batch_id).await?;
        let (mut completed, mut failed) = (out.counts.completed, out.counts.failed);
        // retryFailed: the failed audits dispatched again, maxRetries times at most, each
        // round a batch of its own.
        let (mut last, mut round) = (batch_id, 0);
        while failed > 0 && plan.retry_failed && round < plan.max_retries {
            round += 1;
            let next = ctx
                .execute_activity(
                    CallauditActivities::retry_automation_failed,
                    RetryInput {
                        run_id: plan.run_id.clone(),
                        failed_batch_id: last.clone(),
                        round,
                    },
                    db_activity(),
                )
                .await?;
            let Some(next) = next else { break };
            let out = run_batch(ctx, input, plan, &next).await?;
            completed += out.counts.completed;
            failed = out.counts.failed;
            last = next;
        }
        *retries = round;
        Ok(Some((completed, failed)))
    }
}

/// Audits batch `batch_id` as a `BatchAuditWorkflow` child (`batch:{batch_id}`).
async fn run_batch(
    ctx: &WorkflowContext<AutomationRunWorkflow>,
    input: &AutomationRunInput,
    plan: &RunPlan,
    batch_id: &str,
) -> WorkflowResult<callaudit_domain::batch::BatchWorkflowOutput> {
    let child = ctx
        .start_child_workflow(
            BatchAuditWorkflow::run,
            BatchWorkflowInput {
                batch_id: batch_id.to_string(),
                use_rlm: plan.use_rlm,
                window: RUN_AUDIT_WINDOW,
                step_parallelism: RUN_STEP_PARALLELISM,
                continue_as_new_after: BATCH_CONTINUE_AS_NEW_AFTER,
                cursor: 0,
                counts: None,
                run: 0,
            },
            ChildWorkflowOptions::builder()
                .workflow_id(ids::batch(batch_id))
                .search_attributes(search::of_automation_child(
                    &input.schedule_id,
                    batch_id,
                    RunKind::Batch,
                ))
                .build(),
        )
        .await?;
    Ok(child.result().await?)
}

/// Patch id of the run's e-mail summary (`automation.notify_email` after the last
/// webhook delivery): runs recorded before it replay without it.
pub const AUTOMATION_EMAIL_PATCH: &str = "automation-email-summary";

/// Attempts of the e-mail summary (transient SMTP failures; a refusal is not retried).
pub const EMAIL_ATTEMPTS: u32 = 4;

/// E-mails the ended run's summary to its schedule's addresses: each attempt recorded by
/// the activity, transient failures retried 2 s, 4 s, 8 s apart; an e-mail never sent
/// stays recorded `failed` and does not fail the run.
async fn notify_email(ctx: &WorkflowContext<AutomationRunWorkflow>, run_id: &str) {
    let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(EMAIL_ATTEMPTS)
                .build(),
        )
        .build();
    let _ = ctx
        .execute_activity(
            CallauditActivities::notify_automation_email,
            callaudit_domain::automation_email::NotifyEmailInput {
                run_id: run_id.to_string(),
            },
            options,
        )
        .await;
}

/// Delivers one event of the run to its schedule's webhook: each attempt is recorded by
/// the activity, retried 5 times 1 s, 2 s, 4 s… apart; a delivery that never succeeds
/// stays recorded `failed` and does not fail the run.
async fn notify(
    ctx: &WorkflowContext<AutomationRunWorkflow>,
    run_id: &str,
    event: &str,
    payload: serde_json::Value,
) {
    let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30))
                .maximum_attempts(WEBHOOK_ATTEMPTS)
                .build(),
        )
        .build();
    let _ = ctx
        .execute_activity(
            CallauditActivities::notify_automation_webhook,
            NotifyInput {
                run_id: run_id.to_string(),
                event: event.to_string(),
                payload,
            },
            options,
        )
        .await;
}

/// One day of the window as its `DayFetchWorkflow` child; `None` when the day failed
/// (its search out of retries, or the child could not start): counted, not fatal.
async fn fetch_day(
    ctx: WorkflowContext<AutomationRunWorkflow>,
    input: &AutomationRunInput,
    workflow_id: &str,
    plan: &RunPlan,
    day: NaiveDate,
) -> Result<Option<DayCounts>, Infallible> {
    let child = DayFetchInput {
        job_id: plan.run_id.clone(),
        attempt: 1,
        day,
        groupes: plan.groupes.clone(),
        force_refresh: false,
        fiche_window: RUN_DAY_WINDOW,
    };
    let options = ChildWorkflowOptions::builder()
        .workflow_id(day_child_id(workflow_id, day))
        .search_attributes(search::of_automation_child(
            &input.schedule_id,
            &plan.run_id,
            RunKind::FetchDay,
        ))
        .build();
    Ok(
        match ctx
            .start_child_workflow(DayFetchWorkflow::run, child, options)
            .await
        {
            Ok(started) => started.result().await.ok(),
            Err(_) => None,
        },
    )
}
