//! The automation run's activities: record the run, select its fiches (after the day
//! fetches stored them) into its batch, end it with its summary. Each is idempotent,
//! keyed by the run: the run row is unique per schedule and scheduled time, its batch has
//! the run's id, and the end is written once.

use crate::state::{WorkerActivities, permanent, retryable};
use callaudit_db::automation as db;
use callaudit_db::batches::{self, NewBatch, Selection};
use callaudit_domain::automation::RetryInput;
use callaudit_domain::automation::{
    AutomationEvent, FicheSelection, FinishRunInput, IgnoredFiche, Notifications, NotifyInput,
    RUN_AUDIT_WINDOW, RunOutcome, RunPlan, RunSelection, SelectInput, StartRunInput,
};
use callaudit_domain::workflow_io::ids;
use std::collections::HashMap;
use temporalio_common::ActivityError;
use uuid::Uuid;

/// Most fiches one run selects.
const MAX_RUN_FICHES: i64 = 5000;

/// The batch id of retry `round` of run `run_id` (round 0: the run's own id).
fn retry_batch_id(run_id: Uuid, round: u32) -> Uuid {
    Uuid::from_u128(run_id.as_u128() ^ (u128::from(round) << 64))
}

fn uuid(what: &str, s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid {what} id {s}")))
}

impl WorkerActivities {
    async fn schedule_of(
        &self,
        conn: &mut callaudit_db::AsyncPgConnection,
        id: Uuid,
    ) -> Result<db::ScheduleRow, ActivityError> {
        db::get(conn, id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("automation schedule {id} not found")))
    }

    /// A run and its schedule (either missing is permanent).
    async fn run_with_schedule(
        &self,
        conn: &mut callaudit_db::AsyncPgConnection,
        run_id: Uuid,
    ) -> Result<(db::RunRow, db::ScheduleRow), ActivityError> {
        let run = db::get_run(conn, run_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("automation run {run_id} not found")))?;
        let schedule = self.schedule_of(conn, run.schedule_id).await?;
        Ok((run, schedule))
    }

    /// `automation.start_run`: the run's row (created once) and its plan.
    #[tracing::instrument(name = "automation.start_run", skip_all, fields(schedule.id = %input.schedule_id, run.scheduled_at = %input.scheduled_at))]
    pub(crate) async fn start_run(&self, input: StartRunInput) -> Result<RunPlan, ActivityError> {
        let schedule_id = uuid("schedule", &input.schedule_id)?;
        let mut conn = self.conn().await?;
        let schedule = self.schedule_of(&mut conn, schedule_id).await?;
        let run = db::start_run(
            &mut conn,
            schedule_id,
            &input.workflow_id,
            input.scheduled_at,
        )
        .await
        .map_err(retryable)?;
        let selection: FicheSelection =
            serde_json::from_value(schedule.fiche_selection.clone()).unwrap_or_default();
        let controls: callaudit_domain::automation::Controls =
            serde_json::from_value(schedule.options.clone()).unwrap_or_default();
        let days = db::window_days(
            &mut conn,
            run.scheduled_at,
            &schedule.timezone,
            selection.days_back.max(1),
        )
        .await
        .map_err(retryable)?;
        drop(conn);
        self.publish(&AutomationEvent::Started {
            run_id: run.id.to_string(),
            schedule_id: schedule_id.to_string(),
            scheduled_at: run.scheduled_at,
            days: u32::try_from(days.len()).unwrap_or(u32::MAX),
        })
        .await?;
        tracing::info!(run.id = %run.id, days = days.len(), "automation run started");
        Ok(RunPlan {
            run_id: run.id.to_string(),
            days,
            groupes: selection.groupes,
            use_rlm: selection.use_rlm,
            continue_on_error: controls.continue_on_error,
            retry_failed: controls.retry_failed,
            max_retries: controls.max_retries,
            skip_if_transcribed: controls.skip_if_transcribed,
        })
    }

    /// `automation.select_fiches`: the cached fiches of the window matching `groupes`,
    /// `onlyUnaudited` and `onlyWithRecordings`; those above the recordings limit and
    /// beyond `limit` ignored with their reasons (stored on the run); the rest stored as
    /// the run's batch (its id is the run's).
    #[tracing::instrument(name = "automation.select_fiches", skip_all, fields(run.id = %input.run_id))]
    pub(crate) async fn select_run_fiches(
        &self,
        input: SelectInput,
    ) -> Result<RunSelection, ActivityError> {
        let run_id = uuid("run", &input.run_id)?;
        let mut conn = self.conn().await?;
        let (run, schedule) = self.run_with_schedule(&mut conn, run_id).await?;
        let selection: FicheSelection =
            serde_json::from_value(schedule.fiche_selection.clone()).unwrap_or_default();
        let config_id = schedule
            .audit_config_id
            .ok_or_else(|| permanent("the schedule's audit configuration was deleted"))?;
        let config = callaudit_db::audit_configs::get(&mut conn, config_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("audit configuration {config_id} not found")))?;
        let days = db::window_days(
            &mut conn,
            run.scheduled_at,
            &schedule.timezone,
            selection.days_back.max(1),
        )
        .await
        .map_err(retryable)?;
        let (Some(from), Some(to)) = (days.first().copied(), days.last().copied()) else {
            return Ok(RunSelection {
                batch_id: None,
                selected: 0,
                ignored: vec![],
                transcription: None,
            });
        };
        let groupes = (!selection.groupes.is_empty()).then_some(selection.groupes.as_slice());
        let matching = batches::select_fiches(
            &mut conn,
            &Selection {
                from,
                to,
                groupes,
                only_unaudited_with: selection.only_unaudited.then_some(config.id),
                only_with_recordings: selection.only_with_recordings,
            },
            MAX_RUN_FICHES,
        )
        .await
        .map_err(retryable)?;
        let counts: HashMap<String, i32> = db::recordings_counts(&mut conn, &matching)
            .await
            .map_err(retryable)?
            .into_iter()
            .collect();
        let max = selection
            .max_recordings_per_fiche
            .unwrap_or(self.automation_max_recordings_per_fiche);
        let limit = selection.limit.map_or(usize::MAX, |l| l as usize);
        let (mut selected, mut ignored) = (Vec::new(), Vec::new());
        for fiche_id in matching {
            let n = counts.get(&fiche_id).copied().unwrap_or(0);
            if max > 0 && i64::from(n) > i64::from(max) {
                ignored.push(IgnoredFiche {
                    reason: format!("{n} recordings, above maxRecordingsPerFiche {max}"),
                    fiche_id,
                });
            } else if selected.len() >= limit {
                ignored.push(IgnoredFiche {
                    reason: format!("beyond ficheSelection.limit {limit}"),
                    fiche_id,
                });
            } else {
                selected.push(fiche_id);
            }
        }
        let ignored_json = serde_json::to_value(&ignored).map_err(retryable)?;
        db::set_ignored(&mut conn, run_id, &ignored_json)
            .await
            .map_err(retryable)?;
        let batch_id = if selected.is_empty() {
            None
        } else {
            let snapshot = serde_json::to_value(&config.spec).map_err(retryable)?;
            let window = serde_json::json!({"from": from, "to": to, "automation_run_id": run_id});
            let workflow_id = ids::batch(&run_id.to_string());
            // A retried call finds the batch stored (same id): nothing twice.
            batches::create(
                &mut conn,
                &NewBatch {
                    id: run_id,
                    audit_config_id: config.id,
                    workflow_id: &workflow_id,
                    use_rlm: selection.use_rlm,
                    total: i32::try_from(selected.len()).unwrap_or(i32::MAX),
                    window_size: i32::try_from(RUN_AUDIT_WINDOW).unwrap_or(5),
                    selection: Some(&window),
                    config_snapshot: &snapshot,
                    config_version: Some(config.updated_at),
                    created_by: None,
                    idempotency_key: None,
                    request_fingerprint: None,
                },
                &selected,
            )
            .await
            .map_err(retryable)?;
            Some(run_id.to_string())
        };
        tracing::info!(
            selected = selected.len(),
            ignored = ignored.len(),
            "automation fiches selected"
        );
        Ok(RunSelection {
            batch_id,
            selected: u32::try_from(selected.len()).unwrap_or(u32::MAX),
            ignored,
            transcription: None,
        })
    }

    /// `automation.finish_run`: the status (failed on the run's own error, or on a failed
    /// audit without `continueOnError`; partial with failed audits; completed), the
    /// summary, and `automation/completed` or `automation/failed`.
    #[tracing::instrument(name = "automation.finish_run", skip_all, fields(run.id = %input.run_id))]
    pub(crate) async fn finish_run(
        &self,
        input: FinishRunInput,
    ) -> Result<RunOutcome, ActivityError> {
        let run_id = uuid("run", &input.run_id)?;
        let mut conn = self.conn().await?;
        let (run, schedule) = self.run_with_schedule(&mut conn, run_id).await?;
        let controls: callaudit_domain::automation::Controls =
            serde_json::from_value(schedule.options.clone()).unwrap_or_default();
        let (audited, failed) = input.audits.unwrap_or((0, 0));
        let phase = input
            .selection
            .as_ref()
            .and_then(|s| s.transcription.clone());
        let transcribed = match (
            &phase,
            input.selection.as_ref().and_then(|s| s.batch_id.as_ref()),
        ) {
            (Some(t), _) => i64::from(t.transcribed),
            (None, Some(b)) => db::transcribed_fiches(&mut conn, uuid("batch", b)?)
                .await
                .map_err(retryable)?,
            (None, None) => 0,
        };
        // A fiche whose transcription failed is a failed fiche, as one whose audit failed.
        let untranscribed = phase.as_ref().map_or(0, |t| t.failed.len());
        let failed = failed + u32::try_from(untranscribed).unwrap_or(u32::MAX);
        let (status, error) = match (&input.error, failed) {
            (Some(e), _) => ("failed", Some(e.clone())),
            (None, 0) => ("completed", None),
            (None, _) if controls.continue_on_error => ("partial", None),
            (None, _) if untranscribed > 0 => (
                "failed",
                Some(format!(
                    "{untranscribed} fiche(s) failed transcription and continueOnError is off"
                )),
            ),
            (None, n) => (
                "failed",
                Some(format!("{n} audit(s) failed and continueOnError is off")),
            ),
        };
        let ignored = input
            .selection
            .as_ref()
            .map(|s| s.ignored.clone())
            .unwrap_or_default();
        let duration_ms = (chrono::Utc::now() - run.started_at)
            .num_milliseconds()
            .max(0);
        let summary = serde_json::json!({
            "selected": input.selection.as_ref().map_or(0, |s| s.selected),
            "ignored": ignored,
            "ignoredCount": ignored.len(),
            "transcribed": transcribed,
            "transcriptionSkipped": phase.as_ref().map_or(0, |t| t.skipped),
            "transcriptionFailed": untranscribed,
            "transcription": phase.as_ref().map(|t| serde_json::json!({
                "failedFiches": t.failed.iter().map(|f| serde_json::json!({
                    "fiche_id": f.fiche_id, "error": f.error,
                })).collect::<Vec<_>>(),
                "recordingsSent": t.recordings_sent,
                "recordingsReused": t.recordings_reused,
                "retries": t.retries,
            })),
            "audited": audited,
            "failed": failed,
            "retries": input.retries,
            "fetch": {
                "days": input.fetch.days,
                "daysFailed": input.fetch.days_failed,
                "found": input.fetch.found,
                "fetched": input.fetch.fetched,
                "fetchFailed": input.fetch.fetch_failed,
            },
            "batchId": input.selection.as_ref().and_then(|s| s.batch_id.clone()),
            "durations": {
                "totalMs": duration_ms,
                "transcriptionMs": phase.as_ref().map(|t| t.duration_ms),
            },
        });
        let row = db::finish_run(&mut conn, run_id, status, &summary, error.as_deref())
            .await
            .map_err(retryable)?;
        drop(conn);
        let event = match row.status.as_str() {
            "failed" => AutomationEvent::Failed {
                run_id: run_id.to_string(),
                schedule_id: row.schedule_id.to_string(),
                error: row.error.clone().unwrap_or_default(),
                summary: row.result_summary.clone(),
            },
            s => AutomationEvent::Completed {
                run_id: run_id.to_string(),
                schedule_id: row.schedule_id.to_string(),
                status: s.to_string(),
                summary: row.result_summary.clone(),
            },
        };
        self.publish(&event).await?;
        tracing::info!(status = %row.status, "automation run ended");
        Ok(RunOutcome {
            run_id: run_id.to_string(),
            status: row.status,
            summary: row.result_summary,
        })
    }

    /// `automation.notify_webhook`: one attempt of the delivery of an event to the
    /// schedule's webhook, recorded (attempts, outcome). A URL the guard refuses is
    /// recorded `refused` and not retried; a failed attempt is recorded `failed` and
    /// retried by the activity's policy.
    #[tracing::instrument(name = "automation.notify_webhook", skip_all, fields(run.id = %input.run_id, event = %input.event, attempt))]
    pub(crate) async fn notify_webhook(
        &self,
        attempt: u32,
        input: NotifyInput,
    ) -> Result<String, ActivityError> {
        use callaudit_upstream::webhook::{Delivery, deliver};
        let run_id = uuid("run", &input.run_id)?;
        let mut conn = self.conn().await?;
        let (_, schedule) = self.run_with_schedule(&mut conn, run_id).await?;
        let notifications: Notifications =
            serde_json::from_value(schedule.notifications.clone()).unwrap_or_default();
        let Some(url) = notifications.webhook_url.filter(|u| !u.trim().is_empty()) else {
            return Ok("skipped".into());
        };
        let secret = db::webhook_secret(&mut conn, schedule.id)
            .await
            .map_err(retryable)?
            .unwrap_or_default();
        drop(conn);
        let body = serde_json::to_vec(&serde_json::json!({
            "event": input.event,
            "run_id": input.run_id,
            "schedule_id": schedule.id,
            "data": input.payload,
        }))
        .map_err(retryable)?;
        let outcome = deliver(
            &url,
            &self.webhooks,
            &secret,
            chrono::Utc::now().timestamp(),
            body,
        )
        .await;
        let attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
        let mut conn = self.conn().await?;
        let (status, code, error) = match &outcome {
            Delivery::Delivered { status } => ("delivered", Some(i32::from(*status)), None),
            Delivery::Refused(reason) => ("refused", None, Some(reason.clone())),
            Delivery::Failed { status, error } => {
                ("failed", status.map(i32::from), Some(error.clone()))
            }
        };
        db::record_delivery(
            &mut conn,
            run_id,
            &input.event,
            &url,
            status,
            attempts,
            code,
            error.as_deref(),
        )
        .await
        .map_err(retryable)?;
        match outcome {
            Delivery::Failed { error, .. } => Err(retryable(error)),
            _ => Ok(status.to_string()),
        }
    }

    /// `automation.retry_failed`: the fiches whose audit failed in `failed_batch_id`, as
    /// a new batch (id [`retry_batch_id`] of the run and the round: a retried call finds
    /// it stored).
    #[tracing::instrument(name = "automation.retry_failed", skip_all, fields(run.id = %input.run_id, round = input.round))]
    pub(crate) async fn retry_failed(
        &self,
        input: RetryInput,
    ) -> Result<Option<String>, ActivityError> {
        let run_id = uuid("run", &input.run_id)?;
        let failed_batch = uuid("batch", &input.failed_batch_id)?;
        let mut conn = self.conn().await?;
        let previous = batches::get(&mut conn, failed_batch)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("batch {failed_batch} not found")))?;
        let failed: Vec<String> = batches::items(&mut conn, failed_batch, 5000, 0)
            .await
            .map_err(retryable)?
            .into_iter()
            .filter(|i| i.status.as_str() == "failed")
            .map(|i| i.fiche_id)
            .collect();
        if failed.is_empty() {
            return Ok(None);
        }
        let config = callaudit_db::audit_configs::get(&mut conn, previous.audit_config_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent("the run's audit configuration was deleted"))?;
        let snapshot = serde_json::to_value(&config.spec).map_err(retryable)?;
        let id = retry_batch_id(run_id, input.round);
        let workflow_id = ids::batch(&id.to_string());
        let selection = serde_json::json!({"automation_run_id": run_id, "retry": input.round});
        batches::create(
            &mut conn,
            &NewBatch {
                id,
                audit_config_id: previous.audit_config_id,
                workflow_id: &workflow_id,
                use_rlm: previous.use_rlm,
                total: i32::try_from(failed.len()).unwrap_or(i32::MAX),
                window_size: previous.window_size,
                selection: Some(&selection),
                config_snapshot: &snapshot,
                config_version: Some(config.updated_at),
                created_by: None,
                idempotency_key: None,
                request_fingerprint: None,
            },
            &failed,
        )
        .await
        .map_err(retryable)?;
        tracing::info!(fiches = failed.len(), "failed audits dispatched again");
        Ok(Some(id.to_string()))
    }
}
