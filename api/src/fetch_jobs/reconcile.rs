//! Keeping a job's row true to its workflow: the status a read answers is derived from
//! both, and a row its workflow left unfinalised is repaired — the workflow completed
//! (finalised now from the recorded days), or failed, was terminated, timed out or
//! cancelled, or never started (recorded failed with the reason; its days not recorded
//! failed too, so a retry redoes them). Each repair announces the attempt's end, so its
//! stream ends.

use super::views::Derived;
use crate::error::ApiError;
use crate::events::publish;
use crate::state::AppState;
use callaudit_db::AsyncPgConnection;
use callaudit_db::fetch_jobs::{self, FetchJobRow};
use callaudit_workflows::ProgressiveFetchWorkflow;
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus};

/// How long a job may wait for its workflow to exist before "never started" is true (the
/// api stores the row, then starts the workflow).
const START_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// Temporal's word for a run's status.
fn status_name(s: WorkflowExecutionStatus) -> &'static str {
    match s {
        WorkflowExecutionStatus::Running => "running",
        WorkflowExecutionStatus::Completed => "completed",
        WorkflowExecutionStatus::Failed => "failed",
        WorkflowExecutionStatus::Canceled => "canceled",
        WorkflowExecutionStatus::Terminated => "terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "continued_as_new",
        WorkflowExecutionStatus::TimedOut => "timed_out",
        WorkflowExecutionStatus::Paused => "paused",
        _ => "unknown",
    }
}

/// The job as it truly stands: `row` checked against its workflow's latest run, and
/// repaired when they disagree. Temporal being unreachable leaves the row as it is
/// (`workflow_status` absent).
pub(crate) async fn reconcile(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    row: FetchJobRow,
) -> Result<(FetchJobRow, Derived), ApiError> {
    let Ok(client) = state.temporal.client().await else {
        return Ok((row, Derived::default()));
    };
    let handle = client.get_workflow_handle::<ProgressiveFetchWorkflow>(row.workflow_id.clone());
    let (status, run_attempt) = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => (
            Some(d.status()),
            d.memo().get::<u32>("attempt").ok().flatten(),
        ),
        Err(WorkflowInteractionError::NotFound(_)) => (None, None),
        Err(_) => return Ok((row, Derived::default())),
    };
    let mut derived = Derived {
        workflow_status: Some(status.map_or("not_found", status_name).to_string()),
        repaired: None,
    };
    if row.status.is_terminal() {
        return Ok((row, derived));
    }
    let attempt = row.attempt;
    // The latest run is this attempt's (its memo says which attempt it runs), or the
    // previous attempt's while a retry's run is being started.
    let ours = run_attempt.map_or(attempt == 1, |a| i64::from(a) == i64::from(attempt));
    let idle = row.updated_at < chrono::Utc::now() - START_GRACE;
    let repaired = match status {
        // Running (or waiting for a worker), or a state a newer server added: nothing to
        // repair now.
        Some(
            WorkflowExecutionStatus::Running
            | WorkflowExecutionStatus::Paused
            | WorkflowExecutionStatus::ContinuedAsNew
            | WorkflowExecutionStatus::Unspecified
            | WorkflowExecutionStatus::Unknown,
        ) => return Ok((row, derived)),
        Some(WorkflowExecutionStatus::Completed) if ours => {
            fetch_jobs::finish(conn, row.id, attempt).await?;
            "its workflow completed without finalising the job: finalised from the recorded \
             days (a day not recorded is failed)"
                .to_string()
        }
        Some(s) if ours => {
            let reason = format!(
                "the workflow {} was {} without recording an outcome (reconciled)",
                row.workflow_id,
                status_name(s).replace('_', " ")
            );
            fetch_jobs::fail(conn, row.id, attempt, &reason).await?;
            reason
        }
        // The api stores the attempt, then starts its run at once: past the grace it
        // never will.
        _ if !idle => return Ok((row, derived)),
        _ => {
            let reason = format!(
                "the workflow {} never ran attempt {attempt} (reconciled)",
                row.workflow_id
            );
            fetch_jobs::fail(conn, row.id, attempt, &reason).await?;
            reason
        }
    };
    let now = fetch_jobs::get(conn, row.id).await?.unwrap_or(row);
    if now.attempt == attempt {
        let failed_days = fetch_jobs::failed_days(conn, now.id).await?;
        if let Some(event) = now.ended_event(failed_days) {
            publish(conn, &event).await?;
        }
    }
    tracing::warn!(job.id = %now.id, repaired = %repaired, "fetch job reconciled");
    derived.repaired = Some(repaired);
    Ok((now, derived))
}

/// Jobs looked at per sweep round.
const SWEEP_BATCH: i64 = 100;

/// Reconciles the jobs not ended whose row has not moved since `idle_since` (part of
/// the api's reconcile sweep, `API_RECONCILE_EVERY_S`): no job stays running forever
/// even if nobody reads it.
pub async fn sweep_once(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    idle_since: chrono::DateTime<chrono::Utc>,
) {
    let Ok(jobs) = fetch_jobs::unsettled(conn, idle_since, SWEEP_BATCH).await else {
        return;
    };
    for job in jobs {
        if let Err(e) = reconcile(state, conn, job).await {
            tracing::warn!(error = ?e, "reconcile sweep: a fetch job could not be reconciled");
        }
    }
}
