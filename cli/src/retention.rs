//! The worker keeps the retention schedule true to its settings: with any
//! `RETENTION_DAYS_*` set, a Temporal Schedule `callaudit-retention:{task queue}` starts
//! `RetentionWorkflow` on `RETENTION_CRON` (overlap: skip) with the limits as input; with
//! none, the schedule is removed. Every worker does it at start; the last one's settings
//! stand.

use crate::config::RetentionArgs;
use callaudit_workflows::RetentionWorkflow;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, DeleteScheduleOptions, ScheduleAction, ScheduleError,
    ScheduleOverlapPolicy, ScheduleSpec,
};

/// The schedule's id for `task_queue`.
pub fn schedule_id(task_queue: &str) -> String {
    format!("callaudit-retention:{task_queue}")
}

/// Creates, updates or removes the retention schedule.
pub async fn ensure_schedule(
    client: &Client,
    task_queue: &str,
    args: &RetentionArgs,
) -> anyhow::Result<()> {
    let id = schedule_id(task_queue);
    let limits = args.limits();
    if !limits.any() {
        // Off: nothing purges (a schedule left from earlier settings goes).
        let _ = client
            .get_schedule_handle(id.clone())
            .delete(DeleteScheduleOptions::default())
            .await;
        return Ok(());
    }
    let spec = || {
        ScheduleSpec::builder()
            .cron_strings(vec![args.retention_cron.clone()])
            .build()
    };
    let action = || {
        ScheduleAction::start_workflow(
            RetentionWorkflow::run,
            limits,
            task_queue.to_string(),
            format!("retention:{task_queue}"),
        )
    };
    let created = client
        .create_schedule(
            id.clone(),
            CreateScheduleOptions::builder()
                .action(action())
                .spec(spec())
                .overlap_policy(ScheduleOverlapPolicy::Skip)
                .note("callaudit: purges personal data older than RETENTION_DAYS_*".to_string())
                .build(),
        )
        .await;
    match created {
        Ok(_) => tracing::info!(schedule.id = %id, ?limits, "retention schedule created"),
        Err(ScheduleError::Rpc(status))
            if status.code() == temporalio_client::tonic::Code::AlreadyExists =>
        {
            let (spec, action) = (spec(), action());
            client
                .get_schedule_handle(id.clone())
                .update(
                    move |u| {
                        u.set_spec(spec)
                            .set_action(action)
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("updating the retention schedule: {e}"))?;
            tracing::info!(schedule.id = %id, ?limits, "retention schedule updated");
        }
        Err(e) => anyhow::bail!("creating the retention schedule: {e}"),
    }
    Ok(())
}
