//! Keeping automation runs true to their workflows: a run still `running` whose
//! `AutomationRunWorkflow` ended without recording it (terminated by an operator, timed
//! out, cancelled, failed before `automation.finish_run`) — or that Temporal does not know
//! at all — is recorded failed with the reason and announces `automation/failed`, so no run
//! stays `running` forever. Run by the api's periodic reconcile sweep, with the audits,
//! batches, fetch jobs and reruns.

use crate::error::ApiError;
use crate::events::publish;
use crate::state::AppState;
use crate::temporal::UnrecordedEnd;
use callaudit_db::AsyncPgConnection;
use callaudit_db::automation::{self as db, RunRow};
use callaudit_domain::automation::AutomationEvent;
use callaudit_workflows::AutomationRunWorkflow;
use temporalio_client::WorkflowDescribeOptions;
use temporalio_client::errors::WorkflowInteractionError;

/// Runs looked at per sweep round.
const SWEEP_BATCH: i64 = 100;

/// The reason recorded for a run whose workflow `workflow_id` `ended` ("was terminated
/// without recording an outcome", "was never started"…).
pub(crate) fn reason(workflow_id: &str, ended: &str) -> String {
    format!("the workflow {workflow_id} {ended} (reconciled)")
}

/// What ended a workflow that did not record its outcome.
const UNRECORDED: &str = "without recording an outcome";

/// When `run` is `running` but its workflow has ended (not by completing) or is unknown to
/// Temporal, records it failed with the reason and announces `automation/failed`; returns
/// whether it did. Temporal being unreachable leaves the run as it is.
pub(crate) async fn reconcile(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    run: &RunRow,
) -> Result<bool, ApiError> {
    if run.status != "running" {
        return Ok(false);
    }
    let Ok(client) = state.temporal.client().await else {
        return Ok(false);
    };
    let handle = client.get_workflow_handle::<AutomationRunWorkflow>(run.workflow_id.clone());
    let ended = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => match UnrecordedEnd::of(d.status()) {
            Some(end) => format!("{} {UNRECORDED}", end.phrase()),
            None => return Ok(false),
        },
        Err(WorkflowInteractionError::NotFound(_)) => "was never started".to_string(),
        Err(_) => return Ok(false),
    };
    let reason = reason(&run.workflow_id, &ended);
    if !db::fail_run(conn, run.id, &reason).await? {
        return Ok(false);
    }
    tracing::warn!(run.id = %run.id, schedule.id = %run.schedule_id, %reason, "automation run reconciled");
    publish(
        conn,
        &AutomationEvent::Failed {
            run_id: run.id.to_string(),
            schedule_id: run.schedule_id.to_string(),
            error: reason,
            summary: run.result_summary.clone(),
        },
    )
    .await?;
    Ok(true)
}

/// One round of the reconcile sweep over automation runs: those still `running` that
/// started before `idle_since` are checked against their workflows ([`reconcile`]).
pub(crate) async fn reconcile_sweep_once(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    idle_since: chrono::DateTime<chrono::Utc>,
) {
    let Ok(runs) = db::unsettled_runs(conn, idle_since, SWEEP_BATCH).await else {
        return;
    };
    for run in runs {
        if let Err(e) = reconcile(state, conn, &run).await {
            tracing::warn!(error = ?e, "reconcile sweep: an automation run could not be reconciled");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reason_names_the_workflow_and_what_ended_it() {
        assert_eq!(
            super::reason("automation:s1-2026-12-04T06:00:00Z", "was never started"),
            "the workflow automation:s1-2026-12-04T06:00:00Z was never started (reconciled)"
        );
    }
}
