//! `/api/fiches/progressive-fetch` and `/api/fiches/jobs`: fetch the CRM's fiches of a
//! date range as a job (starts `ProgressiveFetchWorkflow`, one `DayFetchWorkflow` per
//! day), read jobs with a status derived from row and workflow, follow a job's events,
//! retry its failed days.

mod errors;
mod reconcile;
mod views;

pub use errors::*;
pub use reconcile::sweep_once as reconcile_sweep_once;
pub use views::*;

use crate::auth::{ApiTags, BearerAuth, StreamAuth};
use crate::error::ApiError;
use crate::events::{TopicStream, publish, resume_point, topic_stream};
use crate::state::AppState;
use callaudit_db::fetch_jobs::{self, FetchJobRow, NewFetchJob, RetryError};
use callaudit_db::pool;
use callaudit_domain::fetch_job::{
    DAY_WINDOW, DAYS_PER_RUN, FETCH_JOB_STREAM_END, FICHE_WINDOW, FetchDays, FetchJobEvent,
    FetchTotals, ProgressiveFetchInput, RangeError, range_days,
};
use callaudit_domain::rbac::Permission;
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::ids;
use callaudit_workflows::ProgressiveFetchWorkflow;
use chrono::NaiveDate;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowStartOptions};
use temporalio_common::MemoValues;
use uuid::Uuid;

/// Most groups one job may select.
const MAX_GROUPES: usize = 100;
/// Longest group name accepted.
const MAX_GROUPE_CHARS: usize = 100;

/// Fetch job routes.
pub struct FetchJobsApi;

#[OpenApi(tag = "ApiTags::Fiches")]
impl FetchJobsApi {
    /// Fetches the CRM's fiches of a date range, day by day, as a job: for each day the
    /// sales with calls are searched (under `FICHE_SALES_SEARCH_CONCURRENCY`) and stored as
    /// partial fiches, then the details of those in `groupes` are fetched (under
    /// `FICHE_FETCH_CONCURRENCY`). A day whose search still fails after its retries is
    /// recorded failed; the job then ends `partial` and lists it (`POST …/retry`). Events
    /// on `GET /api/fiches/jobs/{id}/events`.
    #[oai(
        path = "/api/fiches/progressive-fetch",
        method = "post",
        operation_id = "startFetchJob"
    )]
    #[tracing::instrument(skip_all, name = "api.fetch_jobs.start", fields(job.id = tracing::field::Empty, job.from = %body.from, job.to = %body.to))]
    async fn start(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: Json<ProgressiveFetchRequest>,
    ) -> Result<FetchJobAccepted, StartFetchJobError> {
        let who = auth.require(Permission::FICHES_WRITE)?;
        let days = range_days(body.from, body.to).map_err(|e| match e {
            RangeError::Reversed { .. } | RangeError::TooLong { .. } => {
                ApiError::unprocessable(e.to_string())
            }
        })?;
        let groupes = groupes(body.groupes.as_deref().unwrap_or_default())?;
        let force_refresh = body.force_refresh.unwrap_or(false);
        let id = Uuid::new_v4();
        tracing::Span::current().record("job.id", tracing::field::display(id));
        let workflow_id = ids::fetch_job(&id.to_string());
        let range: Vec<NaiveDate> = (0..days)
            .filter_map(|i| body.from.checked_add_days(chrono::Days::new(u64::from(i))))
            .collect();
        let mut conn = pool::get(&state.pool).await?;
        let row = fetch_jobs::create(
            &mut conn,
            &NewFetchJob {
                id,
                date_from: body.from,
                date_to: body.to,
                workflow_id: &workflow_id,
                groupes: &groupes,
                force_refresh,
                created_by: Some(who.user.id),
            },
            &range,
        )
        .await?;
        let input = ProgressiveFetchInput {
            job_id: id.to_string(),
            attempt: 1,
            days: FetchDays::Range {
                from: body.from,
                to: body.to,
            },
            groupes,
            force_refresh,
            day_window: DAY_WINDOW,
            fiche_window: FICHE_WINDOW,
            days_per_run: DAYS_PER_RUN,
            cursor: 0,
            totals: FetchTotals::default(),
        };
        if let Err(e) = start_workflow(&state, &row, input).await {
            // Nothing accepted: the job goes away with the failed start.
            let _ = fetch_jobs::delete_pending(&mut conn, id).await;
            tracing::warn!(error = %e, "starting ProgressiveFetchWorkflow failed");
            return Err(ApiError::unavailable(
                "the workflow engine is unavailable; nothing was started, retry later",
            )
            .into());
        }
        Ok(FetchJobAccepted::Accepted(Json(view(
            &state,
            row,
            vec![],
            Derived::default(),
        ))))
    }

    /// Jobs, newest first, with their stored status.
    #[oai(
        path = "/api/fiches/jobs",
        method = "get",
        operation_id = "listFetchJobs"
    )]
    #[tracing::instrument(skip_all, name = "api.fetch_jobs.list")]
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
    ) -> Result<Json<FetchJobPage>, ListFetchJobsError> {
        auth.require(Permission::FICHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let page = fetch_jobs::list(&mut conn, limit.0, offset.0).await?;
        let mut items = Vec::with_capacity(page.rows.len());
        for row in page.rows {
            let failed = fetch_jobs::failed_days(&mut conn, row.id).await?;
            items.push(view(&state, row, failed, Derived::default()));
        }
        Ok(Json(FetchJobPage {
            items,
            total: page.total,
            limit: limit.0,
            offset: offset.0,
        }))
    }

    /// One job with its days. Its status is derived from its row and its workflow: when
    /// the workflow ended without finalising the row (it completed, failed, was
    /// terminated, timed out, or never started), the row is repaired first and
    /// `repaired` says what was found.
    #[oai(
        path = "/api/fiches/jobs/:id",
        method = "get",
        operation_id = "getFetchJob"
    )]
    #[tracing::instrument(skip_all, name = "api.fetch_jobs.get", fields(job.id = %id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<FetchJobView>, GetFetchJobError> {
        auth.require(Permission::FICHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let row = job(&mut conn, id.0).await?;
        let (row, derived) = reconcile::reconcile(&state, &mut conn, row).await?;
        let failed = fetch_jobs::failed_days(&mut conn, row.id).await?;
        let days = fetch_jobs::days_of(&mut conn, row.id).await?;
        let mut v = view(&state, row, failed, derived);
        v.days = Some(days.into_iter().map(FetchDayView::from).collect());
        Ok(Json(v))
    }

    /// The job's events as Server-Sent Events (`fetch_job.started` per attempt,
    /// `fetch_job.day.completed` / `fetch_job.day.failed` per day, then
    /// `fetch_job.completed` or `fetch_job.failed`): replays what follows `Last-Event-ID`
    /// (or `?after=`), follows live from any api replica, and closes once every attempt
    /// started has ended. Each SSE `id:` is the event id, `event:` its type, `data:` the
    /// event as JSON.
    #[oai(
        path = "/api/fiches/jobs/:id/events",
        method = "get",
        operation_id = "streamFetchJobEvents"
    )]
    #[tracing::instrument(skip_all, name = "api.fetch_jobs.events", fields(job.id = %id.0))]
    async fn events(
        &self,
        auth: StreamAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
    ) -> Result<TopicStream, StreamFetchJobEventsError> {
        let topic = ids::fetch_job_topic(&id.0.to_string());
        auth.allow(&topic, Permission::FICHES_READ)?;
        let after = resume_point(last_event_id.0.as_deref(), after.0)?;
        {
            let mut conn = pool::get(&state.pool).await?;
            let row = job(&mut conn, id.0).await?;
            // A workflow that ended without recording it gets its end event now, so the
            // stream ends instead of waiting forever.
            reconcile::reconcile(&state, &mut conn, row).await?;
        }
        Ok(topic_stream(&state, topic, after, FETCH_JOB_STREAM_END)?)
    }

    /// Redoes only the failed days of an ended job, as its next attempt: a new run of
    /// `fiche-fetch-job:{id}` whose day children are `…:day:{YYYY-MM-DD}:retry:{attempt}`
    /// (never colliding with earlier ones). Days already fetched are not searched again.
    /// `fetch_job.started` (with the attempt) reopens the job's stream.
    #[oai(
        path = "/api/fiches/jobs/:id/retry",
        method = "post",
        operation_id = "retryFetchJob"
    )]
    #[tracing::instrument(skip_all, name = "api.fetch_jobs.retry", fields(job.id = %id.0))]
    async fn retry(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<FetchJobAccepted, RetryFetchJobError> {
        auth.require(Permission::FICHES_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let before = job(&mut conn, id.0).await?;
        if before.status.is_terminal() && previous_run_open(&state, &before).await? {
            return Err(ApiError::conflict(format!(
                "job {} has ended but its last run is still closing; retry in a moment",
                id.0
            ))
            .into());
        }
        let (row, redo) = fetch_jobs::retry(&mut conn, id.0)
            .await
            .map_err(|e| match e {
                RetryError::NoJob => ApiError::not_found(format!("fetch job {} not found", id.0)),
                RetryError::NotEnded(s) => ApiError::conflict(format!(
                    "job {} is {s}: only an ended job can be retried",
                    id.0
                )),
                RetryError::NothingToRetry => {
                    ApiError::conflict(format!("job {} has no failed day: nothing to retry", id.0))
                }
                RetryError::Db(e) => e.into(),
            })?;
        let attempt = u32::try_from(row.attempt).unwrap_or(u32::MAX);
        // Announced before the run starts, so a stream opened now waits for this attempt
        // instead of ending on the previous one's end.
        publish(
            &mut conn,
            &FetchJobEvent::Started {
                job_id: row.id.to_string(),
                attempt,
                from: row.date_from,
                to: row.date_to,
                days: u32::try_from(redo.len()).unwrap_or(u32::MAX),
            },
        )
        .await?;
        let input = ProgressiveFetchInput {
            job_id: row.id.to_string(),
            attempt,
            days: FetchDays::Listed(redo),
            groupes: row.groupes(),
            force_refresh: row.force_refresh,
            day_window: DAY_WINDOW,
            fiche_window: FICHE_WINDOW,
            days_per_run: DAYS_PER_RUN,
            cursor: 0,
            totals: FetchTotals::default(),
        };
        if let Err(e) = start_workflow(&state, &row, input).await {
            tracing::warn!(error = %e, "starting the retry's ProgressiveFetchWorkflow failed");
            let reason = "the workflow engine was unavailable; the retry was not started";
            if fetch_jobs::fail(&mut conn, row.id, row.attempt, reason).await? {
                let failed = fetch_jobs::failed_days(&mut conn, row.id).await?;
                if let Some(now) = fetch_jobs::get(&mut conn, row.id).await?
                    && let Some(event) = now.ended_event(failed)
                {
                    publish(&mut conn, &event).await?;
                }
            }
            return Err(ApiError::unavailable(
                "the workflow engine is unavailable; the retry was not started, retry later",
            )
            .into());
        }
        let failed = fetch_jobs::failed_days(&mut conn, row.id).await?;
        Ok(FetchJobAccepted::Accepted(Json(view(
            &state,
            row,
            failed,
            Derived::default(),
        ))))
    }
}

fn default_limit() -> i64 {
    50
}

/// The job, or a 404.
async fn job(
    conn: &mut callaudit_db::AsyncPgConnection,
    id: Uuid,
) -> Result<FetchJobRow, ApiError> {
    fetch_jobs::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("fetch job {id} not found")))
}

/// The groups asked for, trimmed, once each, in order; blank or overlong ones (or too
/// many) are a 422.
fn groupes(asked: &[String]) -> Result<Vec<String>, ApiError> {
    if asked.len() > MAX_GROUPES {
        return Err(ApiError::unprocessable(format!(
            "at most {MAX_GROUPES} groupes, got {}",
            asked.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for g in asked {
        let g = g.trim();
        if g.is_empty() || g.chars().count() > MAX_GROUPE_CHARS {
            return Err(ApiError::unprocessable(format!(
                "each groupe must be 1 to {MAX_GROUPE_CHARS} characters, got {g:?}"
            )));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
    }
    Ok(out)
}

/// Whether the job's workflow still has an open run (it finalised the row and is about
/// to complete). Temporal unreachable: a 503.
async fn previous_run_open(state: &AppState, row: &FetchJobRow) -> Result<bool, ApiError> {
    let unavailable = |e: String| {
        tracing::warn!(error = %e, "retry: Temporal unreachable");
        ApiError::unavailable("the workflow engine is unavailable; retry later")
    };
    let client = state
        .temporal
        .client()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let handle = client.get_workflow_handle::<ProgressiveFetchWorkflow>(row.workflow_id.clone());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => Ok(d.status() == WorkflowExecutionStatus::Running),
        Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_)) => Ok(false),
        Err(e) => Err(unavailable(e.to_string())),
    }
}

/// Starts a run of the job's workflow for `input`'s attempt, with its search attributes
/// (`JobId`, `RunKind = "fetch_job"`) and memo (range, groups, attempt).
async fn start_workflow(
    state: &AppState,
    row: &FetchJobRow,
    input: ProgressiveFetchInput,
) -> Result<(), String> {
    let mut memo = MemoValues::new();
    memo.insert("from", row.date_from.to_string())
        .insert("to", row.date_to.to_string())
        .insert("groupes", input.groupes.join(","))
        .insert("attempt", input.attempt);
    let client = state.temporal.client().await.map_err(|e| e.to_string())?;
    client
        .start_workflow(
            ProgressiveFetchWorkflow::run,
            input,
            WorkflowStartOptions::new(
                state.temporal.settings.task_queue.clone(),
                row.workflow_id.clone(),
            )
            .search_attributes(search::of_fetch_job(&row.id.to_string(), RunKind::FetchJob))
            .memo(memo)
            .build(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
