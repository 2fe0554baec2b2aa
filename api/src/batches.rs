//! `/api/audits/batch`: audit many fiches with one configuration (starts
//! `BatchAuditWorkflow`), read a batch and its audits so far, list batches, follow a
//! batch's events, cancel one.
//!
//! The fiches come from the request (`fiche_ids`) or from a sale-date range over the
//! fiches **cached in Postgres** (`from`, `to`, `groupes`, `only_unaudited`,
//! `only_with_recordings`). The api does not search the CRM for the days of a range: a
//! year of days at the global cap of one sales search at a time
//! (`FICHE_SALES_SEARCH_CONCURRENCY`) would hold the request for minutes and starve the
//! other searches; bringing days into the cache is the progressive fetch's job, under
//! the same caps, and a range that matches nothing says so (422). A listed fiche that the
//! CRM does not know fails its own audit (the item is `failed`), not the batch.

mod errors;
mod selection;
mod views;

pub use errors::*;
pub use views::*;

use crate::audits::StreamTokenResponse;
use crate::auth::{ApiTags, BearerAuth, StreamAuth};
use crate::error::ApiError;
use crate::events::{TopicStream, resume_point, topic_stream};
use crate::idempotency::{self, IdempotencyKey};
use crate::state::AppState;
use crate::temporal::UnrecordedEnd;
use callaudit_db::batches::{self, BatchEnd, BatchRow, NewBatch};
use callaudit_db::{AsyncPgConnection, pool};
use callaudit_domain::batch::{BATCH_STREAM_END, BatchWorkflowInput};
use callaudit_domain::rbac::Permission;
use callaudit_domain::search;
use callaudit_domain::workflow_io::ids;
use callaudit_workflows::BatchAuditWorkflow;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use selection::{Source, Validated, select};
use temporalio_client::{WorkflowDescribeOptions, WorkflowSignalOptions};
use temporalio_common::MemoValues;
use uuid::Uuid;

/// Batch routes.
pub struct BatchesApi;

#[OpenApi(tag = "ApiTags::Audits")]
impl BatchesApi {
    /// Audit many fiches with one configuration: stores the batch and its items (each
    /// fiche once) and starts `BatchAuditWorkflow` (`batch:{id}`), which runs one
    /// `AuditWorkflow` per fiche — the same as `POST /api/audits/run` starts, its audit
    /// carrying `batch_id` — at most `window` at once. Its state (counts of pending,
    /// running, completed, failed and cancelled items) moves as each audit ends, with a
    /// `batch.progress` event each time.
    #[oai(
        path = "/api/audits/batch",
        method = "post",
        operation_id = "startBatchAudit"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.start", fields(audit_config.id = %body.audit_config_id, batch.id = tracing::field::Empty))]
    async fn start(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: Json<StartBatchRequest>,
        /// Makes the request safe to retry: the same key and body return the batch the
        /// first request created (no second batch, no second workflow); the same key with
        /// another body is a 409.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<StartBatchResponse, StartBatchAuditError> {
        let who = auth.require(Permission::BATCHES_WRITE)?;
        let request = Validated::of(&body)?;
        let key = idempotency::key(
            idempotency_key.0.as_deref(),
            batches::fingerprint(&request.canonical(body.audit_config_id)),
        )?;
        let mut conn = pool::get(&state.pool).await?;
        if let Some(key) = &key
            && let Some(earlier) = earlier_batch(&mut conn, who.user.id, key).await?
        {
            return Ok(accepted(&state, &earlier));
        }
        let config = callaudit_db::audit_configs::get(&mut conn, body.audit_config_id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("audit config {} not found", body.audit_config_id))
            })?;
        if !config.active {
            return Err(
                ApiError::unprocessable(format!("audit config {} is inactive", config.id)).into(),
            );
        }
        let fiche_ids = match &request.source {
            Source::Fiches(ids) => ids.clone(),
            Source::Range(range) => select(&mut conn, range, config.id).await?,
        };
        let batch_id = Uuid::new_v4();
        tracing::Span::current().record("batch.id", tracing::field::display(batch_id));
        let workflow_id = ids::batch(&batch_id.to_string());
        let window = request.window.unwrap_or(state.batches.window).max(1);
        let snapshot = serde_json::to_value(&config.spec).map_err(ApiError::internal)?;
        let selection = match &request.source {
            Source::Range(range) => Some(range.json()),
            Source::Fiches(_) => None,
        };
        let total = i32::try_from(fiche_ids.len()).unwrap_or(i32::MAX);
        let created = batches::create(
            &mut conn,
            &NewBatch {
                id: batch_id,
                audit_config_id: config.id,
                workflow_id: &workflow_id,
                use_rlm: request.use_rlm,
                total,
                window_size: i32::try_from(window).unwrap_or(i32::MAX),
                selection: selection.as_ref(),
                config_snapshot: &snapshot,
                config_version: Some(config.updated_at),
                created_by: Some(who.user.id),
                idempotency_key: key.as_ref().map(|k| k.key.as_str()),
                request_fingerprint: key.as_ref().map(|k| k.fingerprint.as_str()),
            },
            &fiche_ids,
        )
        .await?;
        if !created {
            // A concurrent request with the same key got there first.
            let earlier = match &key {
                Some(key) => earlier_batch(&mut conn, who.user.id, key).await?,
                None => None,
            }
            .ok_or_else(|| ApiError::conflict("the batch could not be stored; retry"))?;
            return Ok(accepted(&state, &earlier));
        }
        let input = BatchWorkflowInput {
            batch_id: batch_id.to_string(),
            use_rlm: request.use_rlm,
            window,
            step_parallelism: state.step_parallelism,
            continue_as_new_after: state.batches.continue_as_new_after,
            cursor: 0,
            counts: None,
            run: 0,
        };
        // Shown on the run in the Temporal UI.
        let mut memo = MemoValues::new();
        memo.insert("config", config.spec.name.clone())
            .insert("audit_config_id", config.id.to_string())
            .insert("use_rlm", request.use_rlm)
            .insert("fiches", total);
        let started = state
            .temporal
            .start(
                BatchAuditWorkflow::run,
                input,
                &workflow_id,
                search::of_batch(&batch_id.to_string()),
                memo,
            )
            .await;
        if started.is_err() {
            // Nothing half-created: the batch and its items go with the failed start.
            let _ = batches::delete_pending(&mut conn, batch_id).await;
            return Err(ApiError::unavailable(
                "the workflow engine is unavailable; nothing was started, retry later",
            )
            .into());
        }
        let row = batches::get(&mut conn, batch_id)
            .await?
            .ok_or_else(|| ApiError::internal("the batch just stored is gone"))?;
        Ok(accepted(&state, &row))
    }

    /// One batch: its state (status, counts), and its fiches by position with their
    /// audits so far (id, status, score, niveau). A batch whose workflow was terminated or
    /// timed out is reconciled to `failed` with the reason when read.
    #[oai(
        path = "/api/audits/batch/:id",
        method = "get",
        operation_id = "getBatchAudit"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.get", fields(batch.id = %id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        /// Items shown (1 to 5,000; default 1,000).
        #[oai(
            default = "default_items_limit",
            validator(minimum(value = "1"), maximum(value = "5000"))
        )]
        items_limit: Query<i64>,
        /// Items skipped, by position.
        #[oai(default, validator(minimum(value = "0")))]
        items_offset: Query<i64>,
    ) -> Result<Json<BatchView>, GetBatchAuditError> {
        auth.require(Permission::BATCHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let row = found(&mut conn, id.0).await?;
        let row = reconcile(&state, &mut conn, row).await?;
        let items = batches::items(&mut conn, id.0, items_limit.0, items_offset.0).await?;
        Ok(Json(view(&state, row, items)))
    }

    /// Batches, newest first, with their state (without their items).
    #[oai(
        path = "/api/audits/batches",
        method = "get",
        operation_id = "listBatchAudits"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.list")]
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
    ) -> Result<Json<BatchPage>, ListBatchAuditsError> {
        auth.require(Permission::BATCHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let page = batches::list(&mut conn, limit.0, offset.0).await?;
        Ok(Json(BatchPage {
            items: page
                .rows
                .into_iter()
                .map(|r| view(&state, r, vec![]))
                .collect(),
            total: page.total,
            limit: limit.0,
            offset: offset.0,
        }))
    }

    /// Cancels a batch: its workflow is signalled and starts no audit from then on; the
    /// audits running finish (they are kept, like those already finished); then the batch
    /// is recorded `cancelled` with its counts, its items not started `cancelled` (no
    /// audit, no workflow), and `batch.cancelled` ends its stream. A batch that has ended
    /// is a 409.
    #[oai(
        path = "/api/audits/batch/:id/cancel",
        method = "post",
        operation_id = "cancelBatchAudit"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.cancel", fields(batch.id = %id.0))]
    async fn cancel(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<CancelBatchResponse, CancelBatchAuditError> {
        let who = auth.require(Permission::BATCHES_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let row = found(&mut conn, id.0).await?;
        let ended = |row: &BatchRow| {
            ApiError::conflict(format!(
                "batch {} has ended ({}); nothing to cancel",
                row.id, row.status
            ))
        };
        if row.status.is_terminal()
            || !batches::request_cancel(&mut conn, id.0, &who.user.email).await?
        {
            let now = found(&mut conn, id.0).await?;
            return Err(ended(&now).into());
        }
        let client = state.temporal.client().await.map_err(|e| {
            tracing::warn!(error = %e, "cancel: Temporal unreachable");
            ApiError::unavailable("the workflow engine is unavailable; retry later")
        })?;
        let handle = client.get_workflow_handle::<BatchAuditWorkflow>(row.workflow_id.clone());
        let by = who.user.email.clone();
        if let Err(e) = handle
            .signal(
                BatchAuditWorkflow::cancel,
                by,
                WorkflowSignalOptions::default(),
            )
            .await
        {
            // A workflow that has ended takes no signal: its row is made to say how.
            tracing::info!(error = %e, "cancel signal not delivered");
            let now = reconcile(&state, &mut conn, row).await?;
            if now.status.is_terminal() {
                return Err(ended(&now).into());
            }
            return Err(ApiError::unavailable(
                "the batch's workflow could not be reached; the request is recorded, retry",
            )
            .into());
        }
        let now = found(&mut conn, id.0).await?;
        let items = batches::items(&mut conn, id.0, default_items_limit(), 0).await?;
        Ok(CancelBatchResponse::Accepted(Json(view(
            &state, now, items,
        ))))
    }

    /// The batch's events as Server-Sent Events: `batch.started` (total, window),
    /// `batch.progress` after each audit ends (the item, how it ended, the counts after
    /// it), then `batch.completed`, `batch.cancelled` or `batch.failed`, after which the
    /// stream closes. Replays what follows `Last-Event-ID` (or `?after=`), then follows
    /// live from any api replica; `id:` is the event id, `event:` its type, `data:` the
    /// event as JSON. Each audit's own events are on its stream
    /// (`/api/audits/{audit_id}/events`).
    #[oai(
        path = "/api/audits/batch/:id/events",
        method = "get",
        operation_id = "streamBatchAuditEvents"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.events", fields(batch.id = %id.0))]
    async fn events(
        &self,
        auth: StreamAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
    ) -> Result<TopicStream, StreamBatchAuditEventsError> {
        let topic = ids::batch_topic(&id.0.to_string());
        auth.allow(&topic, Permission::BATCHES_READ)?;
        let after = resume_point(last_event_id.0.as_deref(), after.0)?;
        {
            let mut conn = pool::get(&state.pool).await?;
            let row = found(&mut conn, id.0).await?;
            // A workflow that ended without recording it gets its terminal event now, so
            // the stream ends instead of waiting forever.
            reconcile(&state, &mut conn, row).await?;
        }
        Ok(topic_stream(&state, topic, after, BATCH_STREAM_END)?)
    }

    /// A short-lived token for this batch's event stream, for a browser's `EventSource`:
    /// open `/api/audits/batch/{id}/events?token=…` with it, without credentials. Valid
    /// for this stream only, for ten minutes.
    #[oai(
        path = "/api/audits/batch/:id/events/token",
        method = "post",
        operation_id = "createBatchAuditEventsToken"
    )]
    #[tracing::instrument(skip_all, name = "api.batches.events_token", fields(batch.id = %id.0))]
    async fn events_token(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<StreamTokenResponse, CreateBatchAuditEventsTokenError> {
        let who = auth.require(Permission::BATCHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        found(&mut conn, id.0).await?;
        Ok(crate::events::stream_token(
            &mut conn,
            who.user.id,
            &ids::batch_topic(&id.0.to_string()),
            &format!("/api/audits/batch/{}/events", id.0),
        )
        .await?)
    }
}

fn default_limit() -> i64 {
    50
}

fn default_items_limit() -> i64 {
    1000
}

/// The batch, or 404.
async fn found(conn: &mut AsyncPgConnection, id: Uuid) -> Result<BatchRow, ApiError> {
    batches::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("batch {id} not found")))
}

fn accepted(state: &AppState, row: &BatchRow) -> StartBatchResponse {
    StartBatchResponse::Accepted(Json(BatchAccepted {
        batch_id: row.id,
        workflow_id: row.workflow_id.clone(),
        status: row.status.into(),
        total: row.total,
        window: row.window_size,
        links: links(state, row.id, &row.workflow_id),
    }))
}

/// The batch `user` created earlier under `key`, when the request is the same; 409 when
/// the key was used for another request.
async fn earlier_batch(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<BatchRow>, ApiError> {
    match batches::by_idempotency_key(conn, user, &key.key).await? {
        None => Ok(None),
        Some(b) if b.request_fingerprint.as_deref() == Some(key.fingerprint.as_str()) => {
            Ok(Some(found(conn, b.id).await?))
        }
        Some(b) => Err(ApiError::conflict(format!(
            "Idempotency-Key {:?} was used for another request (batch {}); use a new key",
            key.key, b.id
        ))),
    }
}

/// When `row` has not ended but its workflow has (terminated, timed out, cancelled,
/// failed without recording it), records the batch failed with the reason — its items not
/// started cancelled — and announces `batch.failed`; returns the row as it now stands.
/// Temporal being unreachable leaves the row as it is.
pub(crate) async fn reconcile(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    row: BatchRow,
) -> Result<BatchRow, ApiError> {
    if row.status.is_terminal() {
        return Ok(row);
    }
    let Ok(client) = state.temporal.client().await else {
        return Ok(row);
    };
    let handle = client.get_workflow_handle::<BatchAuditWorkflow>(row.workflow_id.clone());
    let Ok(description) = handle.describe(WorkflowDescribeOptions::default()).await else {
        return Ok(row);
    };
    let Some(ended) = UnrecordedEnd::of(description.status()) else {
        return Ok(row);
    };
    let ended = ended.participle();
    let reason = format!(
        "the workflow {} was {ended} without recording an outcome (reconciled)",
        row.workflow_id
    );
    let (_, ended_now) = batches::end(conn, row.id, BatchEnd::Failed(&reason)).await?;
    if ended_now {
        tracing::warn!(batch.id = %row.id, %reason, "batch reconciled");
    }
    Ok(found(conn, row.id).await.unwrap_or(row))
}

/// One round of the reconcile sweep over batches: those not ended whose row has not moved
/// since `idle_since` are checked against their workflows ([`reconcile`]).
pub(crate) async fn reconcile_sweep_once(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    idle_since: chrono::DateTime<chrono::Utc>,
) {
    let Ok(rows) = batches::unsettled(conn, idle_since, 100).await else {
        return;
    };
    for row in rows {
        if let Err(e) = reconcile(state, conn, row).await {
            tracing::warn!(error = ?e, "reconcile sweep: a batch could not be reconciled");
        }
    }
}
