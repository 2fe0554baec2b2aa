//! `/api/audits`: run an audit (starts `AuditWorkflow`), read one, list them.

mod errors;
mod reconcile;
mod views;
mod wire;

pub use errors::*;
pub use reconcile::sweep as reconcile_sweep;
pub use views::*;
pub use wire::{AuditStatusView, ConformiteView, NiveauView};

use crate::auth::{ApiTags, BearerAuth, StreamAuth};
use crate::error::ApiError;
use crate::events::{TopicStream, resume_point, topic_stream};
use crate::idempotency;
use crate::state::AppState;
use callaudit_db::audits::{self as audit_rows, NewAudit};
use callaudit_db::pool;
use callaudit_db::step_results;
use callaudit_domain::events::AUDIT_STREAM_END;
use callaudit_domain::rbac::Permission;
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::status::AuditStatus;
use callaudit_domain::workflow_io::{AuditWorkflowInput, ids};
use callaudit_workflows::AuditWorkflow;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use temporalio_common::MemoValues;
use uuid::Uuid;

/// Audit routes.
pub struct AuditsApi;

#[OpenApi(tag = "ApiTags::Audits")]
impl AuditsApi {
    /// Audit a fiche with a configuration: stores a pending audit and starts its workflow.
    #[oai(path = "/api/audits/run", method = "post", operation_id = "runAudit")]
    #[tracing::instrument(skip_all, name = "api.audits.run", fields(fiche.id = %body.fiche_id, audit.id = tracing::field::Empty))]
    async fn run(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: Json<RunAuditRequest>,
        /// Makes the request safe to retry: the same key and body return the audit the
        /// first request created; the same key with another body is a 409.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<RunAuditResponse, RunAuditError> {
        let who = auth.require(Permission::AUDITS_WRITE)?;
        let use_rlm = body.use_rlm.or(body.use_rlm_camel).unwrap_or(false);
        let key = idempotency::key(
            idempotency_key.0.as_deref(),
            format!("{}|{}|{use_rlm}", body.fiche_id, body.audit_config_id),
        )?;
        let mut conn = pool::get(&state.pool).await?;
        if let Some(key) = &key
            && let Some(earlier) = idempotency::earlier_audit(&mut conn, who.user.id, key).await?
        {
            return Ok(accepted(
                &state,
                earlier.id,
                &earlier.workflow_id,
                earlier.status,
            ));
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
        drop(conn);
        // Unknown fiches are refused here, before anything is stored. The details this
        // fetches are cached, so the workflow will not call the CRM again.
        match crate::fiches::ensure_retrying(&state, &body.fiche_id, false).await {
            Ok(_) => {}
            Err(callaudit_upstream::fiches::FicheError::NotConfigured) => {
                tracing::debug!("CRM not configured in the api: the workflow checks the fiche");
            }
            Err(e) => return Err(e.into()),
        }
        let mut conn = pool::get(&state.pool).await?;
        let audit_id = Uuid::new_v4();
        tracing::Span::current().record("audit.id", tracing::field::display(audit_id));
        let workflow_id = ids::audit(&audit_id.to_string());
        let steps_total = i32::try_from(config.spec.steps.len()).unwrap_or(i32::MAX);
        // The audit applies the configuration as it is now, whatever happens to it later.
        let snapshot = serde_json::to_value(&config.spec).map_err(ApiError::internal)?;
        let created = audit_rows::create(
            &mut conn,
            &NewAudit {
                id: audit_id,
                fiche_id: &body.fiche_id,
                audit_config_id: config.id,
                use_rlm,
                workflow_id: &workflow_id,
                steps_total,
                requested_by: Some(who.user.id),
                idempotency_key: key.as_ref().map(|k| k.key.as_str()),
                request_fingerprint: key.as_ref().map(|k| k.fingerprint.as_str()),
                config_snapshot: Some(&snapshot),
                config_version: Some(config.updated_at),
            },
        )
        .await?;
        if !created {
            // A concurrent request with the same key got there first.
            let earlier = match &key {
                Some(key) => idempotency::earlier_audit(&mut conn, who.user.id, key).await?,
                None => None,
            }
            .ok_or_else(|| ApiError::conflict("the audit could not be stored; retry"))?;
            return Ok(accepted(
                &state,
                earlier.id,
                &earlier.workflow_id,
                earlier.status,
            ));
        }
        let input = AuditWorkflowInput {
            audit_id: audit_id.to_string(),
            fiche_id: body.fiche_id.clone(),
            use_rlm,
            step_parallelism: state.step_parallelism,
        };
        // Shown on the run in the Temporal UI.
        let mut memo = MemoValues::new();
        memo.insert("config", config.spec.name.clone())
            .insert("audit_config_id", config.id.to_string())
            .insert("use_rlm", use_rlm);
        let started = state
            .temporal
            .start(
                AuditWorkflow::run,
                input,
                &workflow_id,
                search::of_audit_run(&body.fiche_id, &audit_id.to_string(), RunKind::Audit),
                memo,
            )
            .await;
        if started.is_err() {
            // Nothing half-created: the audit row goes away with the failed start.
            let _ = audit_rows::delete_pending(&mut conn, audit_id).await;
            return Err(ApiError::unavailable(
                "the workflow engine is unavailable; nothing was started, retry later",
            )
            .into());
        }
        Ok(accepted(
            &state,
            audit_id,
            &workflow_id,
            AuditStatus::Pending,
        ))
    }

    /// One audit: summary, steps, control points and citations.
    #[oai(path = "/api/audits/:id", method = "get", operation_id = "getAudit")]
    #[tracing::instrument(skip_all, name = "api.audits.get", fields(audit.id = %id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<AuditView>, GetAuditError> {
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let audit = audit_rows::get(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("audit {} not found", id.0)))?;
        let audit = reconcile::reconcile(&state, &mut conn, audit).await?;
        let steps = step_results::of_audit(&mut conn, id.0).await?;
        let cost = cost_of(&state, &mut conn, &audit, &steps).await?;
        // Citations and comments redacted unless the reader holds pii:read (logged).
        let mut disclosure = crate::disclosure::Disclosure::for_reader(
            &auth,
            &mut conn,
            &audit.fiche_id,
            "audit",
            &audit.id.to_string(),
        )
        .await?;
        let mut view = view(audit, steps);
        for step in &mut view.steps {
            disclosure.json(&mut step.raw_result);
        }
        view.cost = Some(cost);
        Ok(Json(view))
    }

    /// Cancels a running audit: its workflow is asked to stop, the audit is recorded
    /// `cancelled` and `audit.cancelled` ends its event stream. An audit that has ended
    /// is a 409.
    #[oai(
        path = "/api/audits/:id/cancel",
        method = "post",
        operation_id = "cancelAudit"
    )]
    #[tracing::instrument(skip_all, name = "api.audits.cancel", fields(audit.id = %id.0))]
    async fn cancel(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<AuditView>, CancelAuditError> {
        let who = auth.require(Permission::AUDITS_WRITE)?;
        let mut conn = pool::get(&state.pool).await?;
        let audit = audit_rows::get(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("audit {} not found", id.0)))?;
        let audit = reconcile::cancel(&state, &mut conn, audit, &who.user.email).await?;
        let steps = step_results::of_audit(&mut conn, id.0).await?;
        Ok(Json(view(audit, steps)))
    }

    /// The audit's events as Server-Sent Events: replays what follows `Last-Event-ID` (or
    /// `?after=`), then follows live from any api replica, and closes after
    /// `audit.completed` or `audit.failed`. Each SSE `id:` is the event id, `event:` its
    /// type, `data:` the event as JSON.
    #[oai(
        path = "/api/audits/:id/events",
        method = "get",
        operation_id = "streamAuditEvents"
    )]
    #[tracing::instrument(skip_all, name = "api.audits.events", fields(audit.id = %id.0))]
    async fn events(
        &self,
        auth: StreamAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
        #[oai(validator(minimum(value = "0")))] after: Query<Option<i64>>,
    ) -> Result<TopicStream, StreamAuditEventsError> {
        let topic = ids::audit_topic(&id.0.to_string());
        auth.allow(&topic, Permission::AUDITS_READ)?;
        let after = resume_point(last_event_id.0.as_deref(), after.0)?;
        {
            let mut conn = pool::get(&state.pool).await?;
            let audit = audit_rows::get(&mut conn, id.0)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("audit {} not found", id.0)))?;
            // A workflow that ended without recording it gets its terminal event now, so
            // the stream ends instead of waiting forever.
            reconcile::reconcile(&state, &mut conn, audit).await?;
        }
        Ok(topic_stream(&state, topic, after, AUDIT_STREAM_END)?)
    }

    /// A short-lived token for this audit's event stream, for a browser's `EventSource`
    /// (which cannot send an `Authorization` header): open
    /// `/api/audits/{id}/events?token=…` with it, without credentials. It is valid for
    /// this stream only, for ten minutes (a reconnecting `EventSource` reuses it).
    #[oai(
        path = "/api/audits/:id/events/token",
        method = "post",
        operation_id = "createAuditEventsToken"
    )]
    #[tracing::instrument(skip_all, name = "api.audits.events_token", fields(audit.id = %id.0))]
    async fn events_token(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<StreamTokenResponse, CreateAuditEventsTokenError> {
        let who = auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        if audit_rows::get(&mut conn, id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("audit {} not found", id.0)).into());
        }
        Ok(crate::events::stream_token(
            &mut conn,
            who.user.id,
            &ids::audit_topic(&id.0.to_string()),
            &format!("/api/audits/{}/events", id.0),
        )
        .await?)
    }

    /// Audits, newest first, optionally of one fiche.
    #[oai(path = "/api/audits", method = "get", operation_id = "listAudits")]
    #[tracing::instrument(skip_all, name = "api.audits.list")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        fiche_id: Query<Option<String>>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<AuditPage>, ListAuditsError> {
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let page = audit_rows::list(&mut conn, fiche_id.0.as_deref(), limit.0, offset.0).await?;
        Ok(Json(AuditPage {
            items: page.rows.into_iter().map(|a| view(a, vec![])).collect(),
            total: page.total,
            limit: limit.0,
            offset: offset.0,
        }))
    }
}

fn default_limit() -> i64 {
    50
}
