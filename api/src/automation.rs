//! `/api/automation/schedules`: automation schedules — write, read, delete, run now.
//! Each schedule is a row of `automation_schedules` mirrored as the Temporal Schedule
//! `automation:{id}` ([`mirror`]): created with the row, updated with it, paused while
//! `enabled` is false, deleted with it; the reconciler ([`mirror::reconcile`], run by the
//! worker on `AUTOMATION_SCHEDULER_CRON`) repairs any drift. A write is validated before
//! anything is stored: the cron and time zone by Temporal itself (its reason is
//! answered), the audit configuration against the table, the webhook URL by the SSRF
//! guard (`callaudit_upstream::webhook`).

mod errors;
pub mod mirror;
mod reconcile;
mod views;

pub use errors::*;
pub(crate) use reconcile::reconcile_sweep_once;
pub use views::*;

use crate::auth::{ApiTags, BearerAuth, StreamAuth};
use crate::error::ApiError;
use crate::events::{TopicStream, resume_point, topic_stream};
use crate::state::AppState;
use callaudit_db::automation::{self as db, RunRow, ScheduleFields, ScheduleRow};
use callaudit_db::{AsyncPgConnection, pool};
use callaudit_domain::automation::{
    Controls, DEFAULT_TIMEZONE, FicheSelection, Notifications, RUN_STREAM_END, run_topic,
    temporal_schedule_id,
};
use callaudit_domain::rbac::Permission;
use chrono::{DateTime, Utc};
use mirror::MirrorError;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

/// Most groupes a selection may name.
const MAX_GROUPES: usize = 50;
/// Most e-mail recipients.
const MAX_EMAILS: usize = 20;
/// Most retries `retryFailed` may ask for.
const MAX_RETRIES: u32 = 10;

async fn found_run(conn: &mut AsyncPgConnection, id: Uuid) -> Result<RunRow, ApiError> {
    db::get_run(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("automation run {id} not found")))
}

/// A body checked and turned into the stored shapes.
struct Checked {
    timezone: String,
    selection: serde_json::Value,
    controls: serde_json::Value,
    notifications: serde_json::Value,
}

impl Checked {
    fn fields<'a>(&'a self, body: &'a AutomationScheduleBody) -> ScheduleFields<'a> {
        ScheduleFields {
            name: body.name.trim(),
            description: &body.description,
            cron: body.cron.trim(),
            timezone: &self.timezone,
            active: body.enabled,
            audit_config_id: body.audit_config_id,
            fiche_selection: &self.selection,
            options: &self.controls,
            notifications: &self.notifications,
        }
    }
}

/// Checks a body (everything but the cron and time zone, which Temporal checks when the
/// schedule is mirrored).
async fn check(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    body: &AutomationScheduleBody,
) -> Result<Checked, ApiError> {
    if body.name.trim().is_empty() || body.cron.trim().is_empty() {
        return Err(ApiError::bad_request("name and cron must not be blank"));
    }
    let sel = &body.fiche_selection;
    if !(1..=366).contains(&sel.days_back) {
        return Err(ApiError::bad_request(
            "ficheSelection.daysBack must be between 1 and 366",
        ));
    }
    let mut groupes: Vec<String> = sel.groupes.iter().map(|g| g.trim().to_string()).collect();
    if groupes.iter().any(String::is_empty) || groupes.len() > MAX_GROUPES {
        return Err(ApiError::bad_request(format!(
            "ficheSelection.groupes must hold 0 to {MAX_GROUPES} non-empty names"
        )));
    }
    groupes.sort();
    groupes.dedup();
    if body.controls.max_retries > MAX_RETRIES {
        return Err(ApiError::bad_request(format!(
            "controls.maxRetries must be at most {MAX_RETRIES}"
        )));
    }
    let n = &body.notifications;
    if n.emails.len() > MAX_EMAILS {
        return Err(ApiError::bad_request(format!(
            "notifications.emails must hold at most {MAX_EMAILS} e-mail addresses"
        )));
    }
    // Checked here so that no address can carry a header into the e-mail.
    for (i, e) in n.emails.iter().enumerate() {
        callaudit_domain::automation_email::check_email(e.trim()).map_err(|why| {
            ApiError::unprocessable(format!(
                "notifications.emails[{i}] {:?} is not a valid e-mail address: {why}",
                e.trim()
            ))
        })?;
    }
    let config = callaudit_db::audit_configs::get(conn, body.audit_config_id)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "unknown audit configuration {}",
                body.audit_config_id
            ))
        })?;
    if !config.active {
        return Err(ApiError::unprocessable(format!(
            "audit configuration {} is inactive",
            config.id
        )));
    }
    let webhook_url = match n.webhook_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => {
            callaudit_upstream::webhook::check(url, &state.automation.webhooks)
                .await
                .map_err(|e| ApiError::unprocessable(e.to_string()))?;
            Some(url.to_string())
        }
    };
    let to_json = |v: serde_json::Result<serde_json::Value>| v.map_err(ApiError::internal);
    Ok(Checked {
        timezone: body
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TIMEZONE)
            .to_string(),
        selection: to_json(serde_json::to_value(FicheSelection {
            days_back: sel.days_back,
            groupes,
            only_unaudited: sel.only_unaudited,
            only_with_recordings: sel.only_with_recordings,
            max_recordings_per_fiche: sel.max_recordings_per_fiche,
            use_rlm: sel.use_rlm,
            limit: sel.limit,
        }))?,
        controls: to_json(serde_json::to_value(Controls {
            skip_if_transcribed: body.controls.skip_if_transcribed,
            continue_on_error: body.controls.continue_on_error,
            retry_failed: body.controls.retry_failed,
            max_retries: body.controls.max_retries,
        }))?,
        notifications: to_json(serde_json::to_value(Notifications {
            webhook_url,
            emails: n.emails.iter().map(|e| e.trim().to_string()).collect(),
            realtime: n.realtime,
        }))?,
    })
}

/// A mirroring failure as the caller sees it.
fn mirror_error(e: MirrorError) -> ApiError {
    match e {
        MirrorError::Invalid(reason) => {
            ApiError::bad_request(format!("Temporal refuses the schedule: {reason}"))
        }
        MirrorError::Unavailable(reason) => {
            tracing::warn!(%reason, "automation schedule not mirrored");
            ApiError::unavailable(
                "the workflow engine is unavailable; nothing was changed, retry later",
            )
        }
    }
}

async fn client(state: &AppState) -> Result<temporalio_client::Client, ApiError> {
    state.temporal.client().await.map_err(|e| {
        tracing::warn!(error = %e, "Temporal unreachable");
        ApiError::unavailable(
            "the workflow engine is unavailable; nothing was changed, retry later",
        )
    })
}

fn view(row: ScheduleRow) -> AutomationScheduleView {
    AutomationScheduleView {
        id: row.id,
        name: row.name,
        description: row.description,
        cron: row.cron,
        timezone: row.timezone,
        enabled: row.active,
        audit_config_id: row.audit_config_id,
        fiche_selection: row.fiche_selection,
        controls: row.options,
        notifications: row.notifications,
        temporal_schedule_id: row.temporal_schedule_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        webhook_secret: None,
    }
}

async fn found(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ScheduleRow, ApiError> {
    db::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("automation schedule {id} not found")))
}

fn default_limit() -> i64 {
    50
}

/// Automation routes.
pub struct AutomationApi;

#[OpenApi(tag = "ApiTags::Audits")]
impl AutomationApi {
    /// Creates a schedule: validated, stored, then mirrored as the Temporal Schedule
    /// `automation:{id}` (starts `AutomationRunWorkflow` on the cron in the time zone;
    /// overlap skip; 10-minute catch-up window; paused when `enabled` is false). If
    /// Temporal refuses or is down, nothing is kept.
    #[oai(
        path = "/api/automation/schedules",
        method = "post",
        operation_id = "createAutomationSchedule"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.create", fields(schedule.id = tracing::field::Empty))]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: Json<AutomationScheduleBody>,
    ) -> Result<ScheduleCreated, CreateScheduleError> {
        let who = auth.require(Permission::AUTOMATION_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let checked = check(&state, &mut conn, &body).await?;
        let client = client(&state).await?;
        let id = Uuid::new_v4();
        tracing::Span::current().record("schedule.id", tracing::field::display(id));
        let row = db::create(
            &mut conn,
            id,
            &temporal_schedule_id(&id.to_string()),
            &checked.fields(&body),
            Some(who.user.id),
        )
        .await?;
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        db::set_webhook_secret(&mut conn, id, &secret).await?;
        if let Err(e) = mirror::upsert(&client, &state.temporal.settings.task_queue, &row).await {
            // Nothing half-created: the row goes, and so does a schedule created before
            // the update that set its policies failed.
            let _ = mirror::remove(&client, &id.to_string()).await;
            let _ = db::delete(&mut conn, id).await;
            return Err(mirror_error(e).into());
        }
        let mut created = view(row);
        created.webhook_secret = Some(secret);
        Ok(ScheduleCreated::Created(Json(created)))
    }

    /// Schedules, newest first.
    #[oai(
        path = "/api/automation/schedules",
        method = "get",
        operation_id = "listAutomationSchedules"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.list")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<AutomationSchedulePage>, ListSchedulesError> {
        auth.require(Permission::AUTOMATION_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let (rows, total) = db::list(&mut conn, limit.0, offset.0).await?;
        Ok(Json(AutomationSchedulePage {
            items: rows.into_iter().map(view).collect(),
            total,
            limit: limit.0,
            offset: offset.0,
        }))
    }

    /// One schedule.
    #[oai(
        path = "/api/automation/schedules/:id",
        method = "get",
        operation_id = "getAutomationSchedule"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.get", fields(schedule.id = %id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<AutomationScheduleView>, GetScheduleError> {
        auth.require(Permission::AUTOMATION_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        Ok(Json(view(found(&mut conn, id.0).await?)))
    }

    /// Replaces a schedule (the whole body, validated as on creation) and its Temporal
    /// Schedule; `enabled: false` pauses it, `true` resumes it. A run going on keeps the
    /// settings it started with. If Temporal refuses or is down, the row is put back.
    #[oai(
        path = "/api/automation/schedules/:id",
        method = "put",
        operation_id = "updateAutomationSchedule"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.update", fields(schedule.id = %id.0))]
    async fn update(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<AutomationScheduleBody>,
    ) -> Result<Json<AutomationScheduleView>, UpdateScheduleError> {
        auth.require(Permission::AUTOMATION_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let before = found(&mut conn, id.0).await?;
        let checked = check(&state, &mut conn, &body).await?;
        let client = client(&state).await?;
        let row = db::update(&mut conn, id.0, &checked.fields(&body))
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("automation schedule {} not found", id.0))
            })?;
        let task_queue = &state.temporal.settings.task_queue;
        if let Err(e) = mirror::upsert(&client, task_queue, &row).await {
            let restore = ScheduleFields {
                name: &before.name,
                description: &before.description,
                cron: &before.cron,
                timezone: &before.timezone,
                active: before.active,
                audit_config_id: before.audit_config_id.unwrap_or(body.audit_config_id),
                fiche_selection: &before.fiche_selection,
                options: &before.options,
                notifications: &before.notifications,
            };
            if let Ok(Some(back)) = db::update(&mut conn, id.0, &restore).await {
                // Whatever Temporal took of the refused write is undone too (the
                // reconciler would do it otherwise).
                let _ = mirror::upsert(&client, task_queue, &back).await;
            }
            return Err(mirror_error(e).into());
        }
        Ok(Json(view(row)))
    }

    /// Deletes a schedule: its Temporal Schedule first (runs going on finish), then the
    /// row and its runs' rows.
    #[oai(
        path = "/api/automation/schedules/:id",
        method = "delete",
        operation_id = "deleteAutomationSchedule"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.delete", fields(schedule.id = %id.0))]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<ScheduleDeleted, DeleteScheduleError> {
        auth.require(Permission::AUTOMATION_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        found(&mut conn, id.0).await?;
        let client = client(&state).await?;
        mirror::remove(&client, &id.0.to_string())
            .await
            .map_err(mirror_error)?;
        db::delete(&mut conn, id.0).await?;
        Ok(ScheduleDeleted::NoContent)
    }

    /// Runs a schedule now: triggers its Temporal Schedule, which starts
    /// `AutomationRunWorkflow` (a disabled schedule runs too). 409 while one of its runs
    /// is still going; a run that has just ended but that Temporal has not yet seen close
    /// delays the new one instead of dropping it.
    #[oai(
        path = "/api/automation/schedules/:id/run",
        method = "post",
        operation_id = "runAutomationSchedule"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.run", fields(schedule.id = %id.0))]
    async fn run(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<RunAccepted, RunScheduleError> {
        auth.require(Permission::AUTOMATION_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let row = found(&mut conn, id.0).await?;
        if let Some(going) = db::running_run(&mut conn, id.0).await? {
            return Err(ApiError::conflict(format!(
                "run {} of this schedule, started at {}, is still going: run it again once \
                 it has ended",
                going.id,
                going.started_at.to_rfc3339()
            ))
            .into());
        }
        drop(conn);
        let client = client(&state).await?;
        let task_queue = &state.temporal.settings.task_queue;
        if let Err(first) = mirror::trigger(&client, &id.0.to_string()).await {
            // A schedule lost in Temporal is mirrored again, then triggered.
            tracing::info!(error = %first, "trigger failed; mirroring the schedule again");
            mirror::upsert(&client, task_queue, &row)
                .await
                .map_err(mirror_error)?;
            mirror::trigger(&client, &id.0.to_string())
                .await
                .map_err(mirror_error)?;
        }
        Ok(RunAccepted::Accepted(Json(RunTriggered {
            schedule_id: row.id,
            temporal_schedule_id: row.temporal_schedule_id,
        })))
    }

    /// Runs, newest scheduled first; `schedule_id` keeps one schedule's.
    #[oai(
        path = "/api/automation/runs",
        method = "get",
        operation_id = "listAutomationRuns"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.runs")]
    async fn runs(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        schedule_id: Query<Option<Uuid>>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<AutomationRunPage>, ListRunsError> {
        auth.require(Permission::AUTOMATION_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let (rows, total) = db::list_runs(&mut conn, schedule_id.0, limit.0, offset.0).await?;
        Ok(Json(AutomationRunPage {
            items: rows.into_iter().map(run_view).collect(),
            total,
            limit: limit.0,
            offset: offset.0,
        }))
    }

    /// One run: its status, summary and ignored fiches.
    #[oai(
        path = "/api/automation/runs/:id",
        method = "get",
        operation_id = "getAutomationRun"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.run_get", fields(run.id = %id.0))]
    async fn get_run(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<AutomationRunView>, GetRunError> {
        auth.require(Permission::AUTOMATION_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let mut run = run_view(found_run(&mut conn, id.0).await?);
        run.webhook_deliveries = db::deliveries_of(&mut conn, id.0)
            .await?
            .into_iter()
            .map(|d| WebhookDeliveryView {
                event: d.event,
                url: d.url,
                status: d.status,
                attempts: d.attempts,
                response_status: d.response_status,
                error: d.error,
                updated_at: d.updated_at,
            })
            .collect();
        run.email_delivery = callaudit_db::automation_email::of_run(&mut conn, id.0)
            .await?
            .map(|d| EmailDeliveryView {
                recipients: d.recipients,
                status: d.status,
                attempts: d.attempts,
                smtp_response: d.smtp_response,
                error: d.error,
                updated_at: d.updated_at,
            });
        Ok(Json(run))
    }

    /// The run's events as Server-Sent Events: `automation/started` (its window's days),
    /// then `automation/completed` (status `completed` or `partial`, the summary) or
    /// `automation/failed`, after which the stream closes. Replays what follows
    /// `Last-Event-ID` (or `?after=`), then follows live from any api replica, like the
    /// other streams. Its audits' progress is on its batch's stream
    /// (`/api/audits/batch/{id}/events`, same id).
    #[oai(
        path = "/api/automation/runs/:id/events",
        method = "get",
        operation_id = "streamAutomationRunEvents"
    )]
    #[tracing::instrument(skip_all, name = "api.automation.run_events", fields(run.id = %id.0))]
    async fn run_events(
        &self,
        auth: StreamAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
    ) -> Result<TopicStream, StreamRunEventsError> {
        let topic = run_topic(&id.0.to_string());
        auth.allow(&topic, Permission::AUTOMATION_READ)?;
        let after = resume_point(last_event_id.0.as_deref(), after.0)?;
        {
            let mut conn = pool::get(&state.pool).await?;
            found_run(&mut conn, id.0).await?;
        }
        Ok(topic_stream(&state, topic, after, RUN_STREAM_END)?)
    }
}
