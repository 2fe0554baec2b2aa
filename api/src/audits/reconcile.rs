//! Keeping audit rows true to their workflows: an audit (or a rerun of one) whose
//! workflow ended without recording it (terminated, timed out, cancelled outside the api)
//! is recorded failed with the reason; and cancellation on request.

use crate::error::ApiError;
use crate::events::publish;
use crate::state::AppState;
use crate::temporal::UnrecordedEnd;
use callaudit_db::AsyncPgConnection;
use callaudit_db::audits::{self as audit_rows, AuditRow};
use callaudit_domain::events::AuditEvent;
use callaudit_workflows::AuditWorkflow;
use temporalio_client::{WorkflowCancelOptions, WorkflowDescribeOptions};

/// When `audit` is not ended but its workflow is (and not by completing), records the
/// failure with what ended it and announces `audit.failed`; returns the row as it now
/// stands. Temporal being unreachable leaves the row as it is.
pub(crate) async fn reconcile(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    audit: AuditRow,
) -> Result<AuditRow, ApiError> {
    if audit.status.is_terminal() {
        return Ok(audit);
    }
    let Ok(client) = state.temporal.client().await else {
        return Ok(audit);
    };
    let handle = client.get_workflow_handle::<AuditWorkflow>(audit.workflow_id.clone());
    let Ok(description) = handle.describe(WorkflowDescribeOptions::default()).await else {
        return Ok(audit);
    };
    let Some(ended) = UnrecordedEnd::of(description.status()) else {
        return Ok(audit);
    };
    let ended = ended.participle();
    let reason = format!(
        "the workflow {} was {ended} without recording an outcome (reconciled)",
        audit.workflow_id
    );
    if audit_rows::fail(conn, audit.id, &reason).await? {
        tracing::warn!(audit.id = %audit.id, %reason, "audit reconciled");
        publish(
            conn,
            &AuditEvent::Failed {
                audit_id: audit.id.to_string(),
                error: reason,
            },
        )
        .await?;
    }
    Ok(audit_rows::get(conn, audit.id).await?.unwrap_or(audit))
}

/// Audits looked at per sweep round.
const SWEEP_BATCH: i64 = 100;

/// Reconciles, every `every`, the audits that have not ended and whose row has not moved
/// for `every` (a workflow terminated by an operator, or timed out, never tells the row):
/// no audit stays running forever even if nobody reads it. Runs until aborted; every
/// replica may run it (reconciling twice records once).
pub async fn sweep(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let idle_since =
            chrono::Utc::now() - chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        let Ok(mut conn) = callaudit_db::pool::get(&state.pool).await else {
            continue;
        };
        let Ok(audits) = audit_rows::unsettled(&mut conn, idle_since, SWEEP_BATCH).await else {
            continue;
        };
        for audit in audits {
            if let Err(e) = reconcile(&state, &mut conn, audit).await {
                tracing::warn!(error = ?e, "reconcile sweep: an audit could not be reconciled");
            }
        }
        // Batches too: one whose workflow was terminated would never record its end.
        crate::batches::reconcile_sweep_once(&state, &mut conn, idle_since).await;
        // Progressive fetch jobs too: every started job reaches a recorded end.
        crate::fetch_jobs::reconcile_sweep_once(&state, &mut conn, idle_since).await;
        // Automation runs too: one whose workflow was terminated would stay running.
        crate::automation::reconcile_sweep_once(&state, &mut conn, idle_since).await;
        // Reruns too: one whose workflow ended without recording it, or never started,
        // would leave its audit's stream open forever.
        let Ok(reruns) = callaudit_db::reruns::unsettled(&mut conn, idle_since, SWEEP_BATCH).await
        else {
            continue;
        };
        for rerun in reruns {
            if let Err(e) = crate::reruns::reconcile(&state, &mut conn, rerun).await {
                tracing::warn!(error = ?e, "reconcile sweep: a rerun could not be reconciled");
            }
        }
    }
}

/// Cancels a running audit: requests the workflow's cancellation, records `cancelled`
/// and announces `audit.cancelled`. An ended audit is a 409.
pub(crate) async fn cancel(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    audit: AuditRow,
    by: &str,
) -> Result<AuditRow, ApiError> {
    if audit.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "audit {} has ended ({}); nothing to cancel",
            audit.id, audit.status
        )));
    }
    let client = state.temporal.client().await.map_err(|e| {
        tracing::warn!(error = %e, "cancel: Temporal unreachable");
        ApiError::unavailable("the workflow engine is unavailable; retry later")
    })?;
    let handle = client.get_workflow_handle::<AuditWorkflow>(audit.workflow_id.clone());
    if let Err(e) = handle.cancel(WorkflowCancelOptions::default()).await {
        // An ended workflow cannot be cancelled: the row is recorded cancelled anyway
        // (what ran is kept, nothing more will run).
        tracing::info!(error = %e, audit.id = %audit.id, "cancel request not delivered");
    }
    let reason = format!("cancelled by {by}");
    if audit_rows::cancel(conn, audit.id, &reason).await? {
        publish(
            conn,
            &AuditEvent::Cancelled {
                audit_id: audit.id.to_string(),
                by: by.to_string(),
            },
        )
        .await?;
    }
    let now = audit_rows::get(conn, audit.id).await?.unwrap_or(audit);
    if now.status != callaudit_domain::status::AuditStatus::Cancelled {
        return Err(ApiError::conflict(format!(
            "audit {} ended ({}) before it could be cancelled",
            now.id, now.status
        )));
    }
    Ok(now)
}
