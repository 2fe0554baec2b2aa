//! Each automation schedule is mirrored as a Temporal Schedule `automation:{id}` that
//! starts `AutomationRunWorkflow` on the schedule's cron in its time zone (overlap: skip;
//! catch-up window [`CATCHUP_WINDOW_SECS`]; paused while the schedule is disabled). The
//! table is the truth: the api mirrors every write, and [`reconcile`] repairs drift
//! (a Temporal Schedule missing, paused or changed behind our back, or left over from a
//! deleted row).

use callaudit_db::automation::{self, ScheduleRow};
use callaudit_db::{AsyncPgConnection, DbError};
use callaudit_domain::automation::{
    AUTOMATION_RUN_WORKFLOW, AutomationRunInput, CATCHUP_WINDOW_SECS, run_workflow_prefix,
    temporal_schedule_id,
};
use futures::StreamExt;
use std::collections::HashSet;
use std::time::Duration;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, DeleteScheduleOptions, ListSchedulesOptions, ScheduleAction,
    ScheduleError, ScheduleOverlapPolicy, ScheduleSpec, TriggerScheduleOptions,
};
use temporalio_client::tonic::Code;

/// `SCHEDULE_OVERLAP_POLICY_SKIP` in Temporal's protos.
const OVERLAP_SKIP: i32 = 1;

/// Why mirroring failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Temporal refused the schedule as written (bad cron, unknown time zone).
    #[error("{0}")]
    Invalid(String),
    /// Temporal could not be reached or failed.
    #[error("temporal: {0}")]
    Unavailable(String),
}

impl From<ScheduleError> for MirrorError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Rpc(status) if status.code() == Code::InvalidArgument => {
                Self::Invalid(status.message().to_string())
            }
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The note a mirrored schedule carries: it names the row's version, so the reconciler
/// sees a schedule that is not the row's current one.
pub fn note_of(row: &ScheduleRow) -> String {
    format!(
        "callaudit automation {} ({}), version {}",
        row.id,
        row.name,
        row.updated_at.timestamp_micros()
    )
}

fn spec_of(row: &ScheduleRow) -> ScheduleSpec {
    ScheduleSpec::builder()
        .cron_strings(vec![row.cron.clone()])
        .timezone_name(row.timezone.clone())
        .build()
}

fn action_of(row: &ScheduleRow, task_queue: &str) -> ScheduleAction {
    ScheduleAction::start_workflow(
        callaudit_workflows::AutomationRunWorkflow::run,
        AutomationRunInput {
            schedule_id: row.id.to_string(),
        },
        task_queue.to_string(),
        run_workflow_prefix(&row.id.to_string()),
    )
}

/// Creates the row's Temporal Schedule, or brings the existing one in line with the row
/// (spec, action, policies, paused, note).
#[tracing::instrument(skip_all, fields(schedule.id = %row.id))]
pub async fn upsert(
    client: &Client,
    task_queue: &str,
    row: &ScheduleRow,
) -> Result<(), MirrorError> {
    let id = temporal_schedule_id(&row.id.to_string());
    let created = client
        .create_schedule(
            id.clone(),
            CreateScheduleOptions::builder()
                .action(action_of(row, task_queue))
                .spec(spec_of(row))
                .overlap_policy(ScheduleOverlapPolicy::Skip)
                .paused(!row.active)
                .note(note_of(row))
                .build(),
        )
        .await;
    match created {
        Ok(_) => {}
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    // The catch-up window is set by an update (creation does not take one); an existing
    // schedule gets everything again.
    let (spec, action, paused, note) = (
        spec_of(row),
        action_of(row, task_queue),
        !row.active,
        note_of(row),
    );
    client
        .get_schedule_handle(id)
        .update(
            move |u| {
                u.set_spec(spec)
                    .set_action(action)
                    .set_overlap_policy(ScheduleOverlapPolicy::Skip)
                    .set_catchup_window(Duration::from_secs(CATCHUP_WINDOW_SECS))
                    .set_paused(paused)
                    .set_note(note);
            },
            Default::default(),
        )
        .await?;
    Ok(())
}

/// Deletes schedule `schedule_id`'s Temporal Schedule (one already gone is fine).
pub async fn remove(client: &Client, schedule_id: &str) -> Result<(), MirrorError> {
    match client
        .get_schedule_handle(temporal_schedule_id(schedule_id))
        .delete(DeleteScheduleOptions::default())
        .await
    {
        Ok(()) => Ok(()),
        Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Starts a run now, or as soon as the run still going ends: the trigger is buffered
/// (one at most), never dropped. Under the schedule's own policy (skip) a trigger that
/// came just after a run closed, before the Temporal Schedule had seen it close, was
/// silently skipped while the api had answered 202.
///
/// Temporal names a triggered run after the second it was triggered in
/// (`automation:{id}-{time}`), and the run's row is keyed by that time: a trigger made in
/// the second of the latest start (a double click, a run that ended within its first
/// second) would name its run after that one. Such a trigger waits for the next second.
pub async fn trigger(client: &Client, schedule_id: &str) -> Result<(), MirrorError> {
    let handle = client.get_schedule_handle(temporal_schedule_id(schedule_id));
    let described = handle.describe(Default::default()).await?;
    let latest_start = described
        .raw()
        .info
        .as_ref()
        .into_iter()
        .flat_map(|i| i.recent_actions.iter())
        .filter_map(|a| a.schedule_time.as_ref().map(|t| t.seconds))
        .max();
    if let Some(latest) = latest_start {
        let now = chrono::Utc::now();
        if now.timestamp() <= latest {
            let next = chrono::DateTime::from_timestamp(latest + 1, 0).unwrap_or(now);
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait.min(Duration::from_millis(1100))).await;
        }
    }
    handle
        .trigger(
            ScheduleOverlapPolicy::BufferOne,
            TriggerScheduleOptions::default(),
        )
        .await
        .map_err(Into::into)
}

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Rows whose Temporal Schedule was missing and was created.
    pub created: u32,
    /// Temporal Schedules brought back in line with their row.
    pub repaired: u32,
    /// Temporal Schedules without a row, deleted.
    pub deleted: u32,
    /// Rows that could not be mirrored (logged).
    pub failed: u32,
}

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Postgres.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Temporal.
    #[error(transparent)]
    Temporal(#[from] MirrorError),
}

/// Repairs drift between `automation_schedules` and the Temporal Schedules: every row
/// gets its schedule as the row says (created when missing; updated when its note,
/// paused state, action or policies differ), and every `automation:*` Temporal Schedule
/// of `task_queue` without a row is deleted. Idempotent; any number of callers may run it.
#[tracing::instrument(skip_all, name = "automation.reconcile")]
pub async fn reconcile(
    conn: &mut AsyncPgConnection,
    client: &Client,
    task_queue: &str,
) -> Result<ReconcileReport, ReconcileError> {
    let rows = automation::all(conn).await?;
    let mut report = ReconcileReport::default();
    let mut known = HashSet::new();
    for row in &rows {
        let id = temporal_schedule_id(&row.id.to_string());
        known.insert(id.clone());
        let described = client
            .get_schedule_handle(id.clone())
            .describe(Default::default())
            .await;
        let outcome = match described {
            Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => {
                upsert(client, task_queue, row)
                    .await
                    .map(|()| report.created += 1)
            }
            Err(e) => Err(e.into()),
            Ok(d) if in_line(&d, row, task_queue) => Ok(()),
            Ok(_) => upsert(client, task_queue, row)
                .await
                .map(|()| report.repaired += 1),
        };
        if let Err(e) = outcome {
            tracing::warn!(schedule.id = %row.id, error = %e, "automation schedule not mirrored");
            report.failed += 1;
        }
    }
    let mut listed = client.list_schedules(ListSchedulesOptions::default());
    let mut orphans = Vec::new();
    while let Some(entry) = listed.next().await {
        let entry = entry.map_err(MirrorError::from)?;
        let id = entry.schedule_id();
        if id.starts_with("automation:") && !known.contains(id) {
            orphans.push(id.to_string());
        }
    }
    for id in orphans {
        // Only the schedules of this deployment's task queue: another deployment (or
        // test) sharing the namespace keeps its own.
        let ours = match client
            .get_schedule_handle(id.clone())
            .describe(Default::default())
            .await
        {
            Ok(d) => matches!(
                d.action(),
                temporalio_client::schedules::ScheduleDescriptionAction::StartWorkflow(a)
                    if a.task_queue() == task_queue
            ),
            Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => false,
            Err(e) => return Err(MirrorError::from(e).into()),
        };
        if !ours {
            continue;
        }
        let schedule_id = id.trim_start_matches("automation:");
        remove(client, schedule_id).await?;
        tracing::info!(temporal.schedule_id = %id, "orphan automation schedule deleted");
        report.deleted += 1;
    }
    Ok(report)
}

fn in_line(
    d: &temporalio_client::schedules::ScheduleDescription,
    row: &ScheduleRow,
    task_queue: &str,
) -> bool {
    let action_ok = match d.action() {
        temporalio_client::schedules::ScheduleDescriptionAction::StartWorkflow(a) => {
            a.workflow_type() == AUTOMATION_RUN_WORKFLOW && a.task_queue() == task_queue
        }
        _ => false,
    };
    let policies = d.raw().schedule.as_ref().and_then(|s| s.policies.as_ref());
    let policies_ok = policies.is_some_and(|p| {
        p.overlap_policy == OVERLAP_SKIP
            && p.catchup_window
                .as_ref()
                .is_some_and(|w| w.seconds == CATCHUP_WINDOW_SECS as i64)
    });
    action_ok && policies_ok && d.paused() != row.active && d.note() == Some(note_of(row).as_str())
}
