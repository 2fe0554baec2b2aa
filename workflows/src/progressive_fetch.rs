//! `ProgressiveFetchWorkflow`: a progressive fiche fetch job (`fiche-fetch-job:{job_id}`),
//! one `DayFetchWorkflow` child per day in a sliding window.
//!
//! The workflow is the single, serialised writer of the job's row: children finish in
//! any order, their outcomes queue in the workflow's state, and one recorder records
//! them one after the other (`fetch_job.record_day`), while the window keeps starting
//! the next days. After [`ProgressiveFetchInput::days_per_run`] days the run drains its
//! window and continues as new with the cursor and the totals, so a range of years keeps
//! every run's history small.

use crate::day_fetch::DayFetchWorkflow;
use crate::failure::{can_record_failure, failure_chain};
use crate::options::db_activity;
use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::fetch_job::{
    DayFetchInput, DayOutcome, FetchJobFailure, FetchProgress, JobAttempt, ProgressiveFetchInput,
    ProgressiveFetchOutput, RecordDayInput,
};
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::ids;
use chrono::NaiveDate;
use std::collections::VecDeque;
use std::convert::Infallible;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, ContinueAsNewOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult, join,
};

/// A job's attempt: its days through `DayFetchWorkflow` children, each outcome recorded
/// on the job's row in turn, then the attempt's end.
#[workflow]
#[derive(Default)]
pub struct ProgressiveFetchWorkflow {
    progress: FetchProgress,
    /// Days finished, not recorded yet (oldest first).
    finished: VecDeque<DayOutcome>,
    /// The window of this run has no more days to start or wait for.
    window_done: bool,
}

#[workflow_methods]
impl ProgressiveFetchWorkflow {
    /// Runs the attempt; on failure records it (`fetch_job.failed`) before failing.
    #[run(name = "ProgressiveFetchWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ProgressiveFetchInput,
    ) -> WorkflowResult<ProgressiveFetchOutput> {
        match Self::fetch(ctx, &input).await {
            Ok(out) => Ok(out),
            Err(e) => {
                if can_record_failure(&e) {
                    let failure = FetchJobFailure {
                        job_id: input.job_id.clone(),
                        attempt: input.attempt,
                        error: failure_chain(&e),
                    };
                    ctx.execute_activity(
                        CallauditActivities::fail_fetch_job,
                        failure,
                        db_activity(),
                    )
                    .await?;
                }
                Err(e)
            }
        }
    }

    /// Where the attempt stands.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> FetchProgress {
        self.progress.clone()
    }

    async fn fetch(
        ctx: &mut WorkflowContext<Self>,
        input: &ProgressiveFetchInput,
    ) -> WorkflowResult<ProgressiveFetchOutput> {
        let job = JobAttempt {
            job_id: input.job_id.clone(),
            attempt: input.attempt,
        };
        let total = input.days.len();
        ctx.state_mut(|s| {
            s.progress.attempt = input.attempt;
            s.progress.days_total = total;
            s.progress.days_started = input.cursor;
            s.progress.totals = input.totals;
        });
        if input.cursor == 0 {
            ctx.execute_activity(
                CallauditActivities::start_fetch_job,
                job.clone(),
                db_activity(),
            )
            .await?;
        }
        let end = input
            .cursor
            .saturating_add(input.days_per_run.max(1))
            .min(total);
        let days = (input.cursor..end).filter_map(|i| input.days.day(i));
        let width = usize::try_from(input.day_window.max(1)).unwrap_or(1);
        let window = async {
            let all = run_sliding_window(
                days,
                width,
                |day| {
                    ctx.state_mut(|s| s.progress.days_started += 1);
                    fetch_day(ctx.clone(), input, day)
                },
                |outcome| ctx.state_mut(|s| s.finished.push_back(outcome)),
            )
            .await;
            ctx.state_mut(|s| s.window_done = true);
            all
        };
        let (windowed, recorded) = join!(window, record_in_turn(ctx, &job));
        windowed.unwrap_or_else(|never: Infallible| match never {});
        recorded?;

        let totals = ctx.state(|s| s.progress.totals);
        if end < total {
            let next = ProgressiveFetchInput {
                cursor: end,
                totals,
                ..input.clone()
            };
            // Same id, type, task queue, memo and search attributes; a fresh history.
            match ctx.continue_as_new(next, ContinueAsNewOptions::default()) {
                Err(continued) => return Err(continued),
                Ok(never) => match never {},
            }
        }
        let finished = ctx
            .execute_activity(CallauditActivities::finish_fetch_job, job, db_activity())
            .await?;
        Ok(ProgressiveFetchOutput {
            job_id: input.job_id.clone(),
            attempt: input.attempt,
            status: finished.status,
            totals,
        })
    }
}

/// Runs `day` as its `DayFetchWorkflow` child (`JobId`, `RunKind = "fetch_day"`); any
/// failure of the child (its search failed after its retries, it could not start) is the
/// day's failed outcome, with its root cause.
async fn fetch_day(
    ctx: WorkflowContext<ProgressiveFetchWorkflow>,
    input: &ProgressiveFetchInput,
    day: NaiveDate,
) -> Result<DayOutcome, Infallible> {
    let child = DayFetchInput {
        job_id: input.job_id.clone(),
        attempt: input.attempt,
        day,
        groupes: input.groupes.clone(),
        force_refresh: input.force_refresh,
        fiche_window: input.fiche_window,
    };
    let options = ChildWorkflowOptions::builder()
        .workflow_id(ids::fetch_day(&input.job_id, day, input.attempt))
        .search_attributes(search::of_fetch_job(&input.job_id, RunKind::FetchDay))
        .build();
    let outcome = match ctx
        .start_child_workflow(DayFetchWorkflow::run, child, options)
        .await
    {
        Ok(started) => match started.result().await {
            Ok(counts) => DayOutcome::Completed(counts),
            Err(e) => DayOutcome::Failed {
                day,
                error: failure_chain(&e),
            },
        },
        Err(e) => DayOutcome::Failed {
            day,
            error: failure_chain(&e),
        },
    };
    Ok(outcome)
}

/// Records the finished days one after the other, in the order they finished, until the
/// window is done and nothing is left: the job row has this one writer.
async fn record_in_turn(
    ctx: &WorkflowContext<ProgressiveFetchWorkflow>,
    job: &JobAttempt,
) -> WorkflowResult<()> {
    loop {
        ctx.wait_condition(|s| !s.finished.is_empty() || s.window_done)
            .await?;
        let Some(outcome) = ctx.state_mut(|s| s.finished.pop_front()) else {
            return Ok(());
        };
        ctx.execute_activity(
            CallauditActivities::record_fetch_day,
            RecordDayInput {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                outcome: outcome.clone(),
            },
            db_activity(),
        )
        .await?;
        ctx.state_mut(|s| s.progress.totals.add(&outcome));
    }
}
