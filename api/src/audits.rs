//! `/api/audits`: run an audit (starts `AuditWorkflow`), read one, list them.

mod reconcile;
mod wire;

pub use wire::{AuditStatusView, ConformiteView, NiveauView};

use crate::auth::{ApiTags, BearerAuth, StreamAuth};
use crate::error::ApiError;
use crate::events::{TopicStream, resume_point, topic_stream};
use crate::idempotency;
use crate::state::AppState;
use callaudit_db::audits::{self as audit_rows, AuditRow, NewAudit};
use callaudit_db::pool;
use callaudit_db::step_results::{self, StepResultRow};
use callaudit_domain::cost::{StepUsage, audit_cost};
use callaudit_domain::events::AUDIT_TERMINAL;
use callaudit_domain::rbac::Permission;
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::status::AuditStatus;
use callaudit_domain::workflow_io::{AuditWorkflowInput, ids};
use callaudit_workflows::AuditWorkflow;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use temporalio_client::WorkflowStartOptions;
use temporalio_common::MemoValues;
use uuid::Uuid;

/// Request to audit one fiche.
#[derive(Debug, Object)]
pub struct RunAuditRequest {
    /// CRM fiche id.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
    ))]
    pub fiche_id: String,
    /// Audit configuration to apply.
    pub audit_config_id: Uuid,
    /// Transcript-tools mode: the LLM reads the transcripts through `searchTranscript` /
    /// `getTranscriptChunks` tool calls instead of in its prompt (default false; `useRlm`
    /// is accepted too).
    pub use_rlm: Option<bool>,
    /// Alias of `use_rlm` (seed compatibility).
    #[oai(rename = "useRlm")]
    pub use_rlm_camel: Option<bool>,
}

/// Links of an accepted audit.
#[derive(Debug, Object)]
pub struct AuditLinks {
    /// The audit.
    pub audit: String,
    /// Its event stream (SSE).
    pub events: String,
    /// The run in the Temporal UI.
    pub temporal_ui: String,
}

/// Accepted audit.
#[derive(Debug, Object)]
pub struct RunAuditAccepted {
    /// Audit id.
    pub audit_id: Uuid,
    /// Workflow id (`audit:{audit_id}`).
    pub workflow_id: String,
    /// `pending` (or, for a repeated idempotent request, where the audit stands).
    pub status: AuditStatusView,
    /// Where to look next.
    pub links: AuditLinks,
}

/// How long a stream token lets a browser (re)open its stream.
const STREAM_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A stream token.
#[derive(Debug, Object)]
pub struct StreamToken {
    /// The token (`?token=`).
    pub token: String,
    /// When it stops opening the stream.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The stream's URL with the token.
    pub url: String,
}

/// `POST /api/audits/{id}/events/token` answer.
#[derive(ApiResponse)]
pub enum StreamTokenResponse {
    /// Issued.
    #[oai(status = 201)]
    Created(Json<StreamToken>),
}

/// `POST /api/audits/run` answer.
#[derive(ApiResponse)]
pub enum RunAuditResponse {
    /// Accepted: the workflow is started.
    #[oai(status = 202)]
    Accepted(Json<RunAuditAccepted>),
}

/// One step result.
#[derive(Debug, Object)]
pub struct StepView {
    /// Position.
    pub position: i32,
    /// Name.
    pub name: String,
    /// Weight.
    pub weight: f64,
    /// Critical.
    pub critical: bool,
    /// Score.
    pub score: f64,
    /// The step's verdict.
    pub conforme: ConformiteView,
    /// Gated analysis: `points_controle` (statut, citations, evidence_unverified…), commentaire, rerun_history, and `analysis`: how it was obtained (`mode` `prompt` or `tools`; in tools mode `requests`, `tool_rounds`, `tool_calls`, `tool_chars` read, `budget_exhausted`).
    pub raw_result: serde_json::Value,
    /// Model used.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
}

/// An audit with its summary and steps.
#[derive(Debug, Object)]
pub struct AuditView {
    /// Id.
    pub id: Uuid,
    /// Fiche.
    pub fiche_id: String,
    /// Configuration.
    pub audit_config_id: Uuid,
    /// Where the audit stands.
    pub status: AuditStatusView,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Workflow id.
    pub workflow_id: String,
    /// Score /100 (one decimal).
    pub score: Option<f64>,
    /// Quality level (once completed).
    pub niveau: Option<NiveauView>,
    /// A critical step is NON_CONFORME.
    pub critical: Option<bool>,
    /// Steps of the configuration.
    pub steps_total: i32,
    /// Steps stored.
    pub steps_done: i32,
    /// Failure reason.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// End time.
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Name of the configuration the audit ran with (as it was when it started).
    pub config_name: Option<String>,
    /// Version of that configuration: its last update before the audit started. Editing
    /// the configuration later changes nothing in this audit.
    pub config_version: Option<chrono::DateTime<chrono::Utc>>,
    /// What the audit used and, with a price table, cost (on the one-audit view only).
    pub cost: Option<CostView>,
    /// Steps by position (empty in lists).
    pub steps: Vec<StepView>,
}

/// What an audit used and what it cost.
#[derive(Debug, Object)]
pub struct CostView {
    /// Chat completion requests (one per step in prompt mode, every round in tools mode).
    pub llm_requests: u32,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Seconds of audio of the recordings it read (each transcribed once, shared by the
    /// fiche's audits).
    pub speech_to_text_seconds: f64,
    /// Estimate from `COST_PRICE_TABLE` (none without a table, or when a model it used is
    /// not priced).
    pub estimated_cost: Option<f64>,
    /// Currency of the estimate.
    pub currency: Option<String>,
}

/// The cost of an audit from its stored steps and the audio of its fiche.
async fn cost_of(
    state: &AppState,
    conn: &mut callaudit_db::AsyncPgConnection,
    audit: &AuditRow,
    steps: &[StepResultRow],
) -> Result<CostView, ApiError> {
    let usage: Vec<StepUsage> = steps
        .iter()
        .map(|s| StepUsage {
            model: s.model.clone(),
            requests: s.raw_result["analysis"]["requests"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            prompt_tokens: i64::from(s.prompt_tokens),
            completion_tokens: i64::from(s.completion_tokens),
        })
        .collect();
    let audio = callaudit_db::recordings::transcribed_seconds(conn, &audit.fiche_id).await?;
    let c = audit_cost(&usage, audio, state.prices.as_deref());
    Ok(CostView {
        llm_requests: c.llm_requests,
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        speech_to_text_seconds: c.speech_to_text_seconds,
        estimated_cost: c.estimated_cost,
        currency: c.currency,
    })
}

/// A page of audits.
#[derive(Debug, Object)]
pub struct AuditPage {
    /// Audits, newest first.
    pub items: Vec<AuditView>,
    /// Total matching.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Offset.
    pub offset: i64,
}

fn view(a: AuditRow, steps: Vec<StepResultRow>) -> AuditView {
    AuditView {
        id: a.id,
        fiche_id: a.fiche_id,
        audit_config_id: a.audit_config_id,
        status: a.status.into(),
        use_rlm: a.use_rlm,
        workflow_id: a.workflow_id,
        score: a.score,
        niveau: a.niveau.map(Into::into),
        critical: a.critical,
        steps_total: a.steps_total,
        steps_done: a.steps_done,
        error: a.error,
        created_at: a.created_at,
        completed_at: a.completed_at,
        config_name: a
            .config_snapshot
            .as_ref()
            .and_then(|c| c["name"].as_str())
            .map(str::to_string),
        config_version: a.config_version,
        cost: None,
        steps: steps
            .into_iter()
            .map(|s| StepView {
                position: s.position,
                name: s.step_name,
                weight: s.weight,
                critical: s.critical,
                score: s.score,
                conforme: s.conforme.into(),
                raw_result: s.raw_result,
                model: s.model,
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
            })
            .collect(),
    }
}

/// The 202 of an audit run (a new one, or the one an idempotency key names).
fn accepted(
    state: &AppState,
    audit_id: Uuid,
    workflow_id: &str,
    status: AuditStatus,
) -> RunAuditResponse {
    RunAuditResponse::Accepted(Json(RunAuditAccepted {
        audit_id,
        workflow_id: workflow_id.to_string(),
        status: status.into(),
        links: AuditLinks {
            audit: format!("/api/audits/{audit_id}"),
            events: format!("/api/audits/{audit_id}/events"),
            temporal_ui: state.temporal.settings.ui_link(workflow_id),
        },
    }))
}

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
    ) -> Result<RunAuditResponse, ApiError> {
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
            return Err(ApiError::unprocessable(format!(
                "audit config {} is inactive",
                config.id
            )));
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
        let started = async {
            let client = state.temporal.client().await.map_err(|e| e.to_string())?;
            client
                .start_workflow(
                    AuditWorkflow::run,
                    input,
                    WorkflowStartOptions::new(
                        state.temporal.settings.task_queue.clone(),
                        workflow_id.clone(),
                    )
                    .search_attributes(search::of_audit_run(
                        &body.fiche_id,
                        &audit_id.to_string(),
                        RunKind::Audit,
                    ))
                    .memo(memo)
                    .build(),
                )
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = started {
            // Nothing half-created: the audit row goes away with the failed start.
            let _ = audit_rows::delete_pending(&mut conn, audit_id).await;
            tracing::warn!(error = %e, "starting AuditWorkflow failed");
            return Err(ApiError::unavailable(
                "the workflow engine is unavailable; nothing was started, retry later",
            ));
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
    ) -> Result<Json<AuditView>, ApiError> {
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let audit = audit_rows::get(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("audit {} not found", id.0)))?;
        let audit = reconcile::reconcile(&state, &mut conn, audit).await?;
        let steps = step_results::of_audit(&mut conn, id.0).await?;
        let cost = cost_of(&state, &mut conn, &audit, &steps).await?;
        let mut view = view(audit, steps);
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
    ) -> Result<Json<AuditView>, ApiError> {
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
    ) -> Result<TopicStream, ApiError> {
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
        topic_stream(&state, topic, after, AUDIT_TERMINAL)
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
    ) -> Result<StreamTokenResponse, ApiError> {
        let who = auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        if audit_rows::get(&mut conn, id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("audit {} not found", id.0)));
        }
        let (token, expires_at) = callaudit_db::stream_tokens::issue(
            &mut conn,
            who.user.id,
            &ids::audit_topic(&id.0.to_string()),
            STREAM_TOKEN_TTL,
        )
        .await?;
        Ok(StreamTokenResponse::Created(Json(StreamToken {
            url: format!("/api/audits/{}/events?token={token}", id.0),
            token,
            expires_at,
        })))
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
    ) -> Result<Json<AuditPage>, ApiError> {
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
