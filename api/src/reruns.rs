//! `/api/audits/{id}/steps/{position}/rerun` and `…/control-points/{index}/rerun`: analyse
//! a finished audit's step, or one of its control points, again (starts
//! `AuditRerunWorkflow`), and the reruns of an audit.

use crate::audits::ConformiteView;
use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::events::publish;
use crate::state::AppState;
use callaudit_db::reruns::{self, CreateError, NewRerun, RerunRow};
use callaudit_db::{AsyncPgConnection, audits as audit_rows, pool};
use callaudit_domain::audit_config::AuditConfigSpec;
use callaudit_domain::events::{AuditEvent, RerunRef};
use callaudit_domain::rbac::Permission;
use callaudit_domain::rerun::{RerunKind, RerunStatus};
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::{RerunWorkflowInput, ids};
use callaudit_workflows::AuditRerunWorkflow;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use temporalio_common::MemoValues;
use uuid::Uuid;

/// Longest reviewer hint accepted.
const MAX_INSTRUCTIONS_CHARS: usize = 4000;

/// Options of a rerun (the body may be empty or omitted).
#[derive(Debug, Object, Default)]
pub struct RerunRequest {
    /// Transcript-tools mode for this rerun (default: the audit's mode; `useRlm` is
    /// accepted too).
    pub use_rlm: Option<bool>,
    /// Alias of `use_rlm` (seed compatibility).
    #[oai(rename = "useRlm")]
    pub use_rlm_camel: Option<bool>,
    /// A reviewer's hint added to the step's instructions in the prompt (at most 4,000
    /// characters).
    pub instructions: Option<String>,
}

/// What a rerun analyses again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RerunKindView {
    /// The whole step.
    Step,
    /// One control point.
    ControlPoint,
}

/// Where a rerun stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RerunStatusView {
    /// Stored, workflow starting.
    Pending,
    /// Being analysed.
    Running,
    /// Applied: the step and the audit summary changed.
    Completed,
    /// Failed with its reason; nothing changed.
    Failed,
}

/// Links of a rerun.
#[derive(Debug, Object)]
pub struct RerunLinks {
    /// The audit (its steps show the result and `rerun_history`).
    pub audit: String,
    /// The audit's event stream (`audit.rerun.*` events).
    pub events: String,
    /// This rerun.
    pub rerun: String,
    /// The run in the Temporal UI.
    pub temporal_ui: String,
}

/// The outcome of an applied rerun.
#[derive(Debug, Object)]
pub struct RerunOutcomeView {
    /// The step's new score.
    pub step_score: f64,
    /// Its new verdict.
    pub step_conforme: ConformiteView,
    /// The audit's new score.
    pub audit_score: f64,
    /// The audit's new level.
    pub audit_niveau: crate::audits::NiveauView,
    /// A critical step is NON_CONFORME.
    pub audit_critical: bool,
}

/// A rerun.
#[derive(Debug, Object)]
pub struct RerunView {
    /// Id.
    pub id: Uuid,
    /// Audit.
    pub audit_id: Uuid,
    /// Step or control point.
    pub kind: RerunKindView,
    /// Step position.
    pub position: i32,
    /// Control point index (control-point reruns).
    pub control_point_index: Option<i32>,
    /// Number of this rerun of its target (1, 2, …).
    pub n: i32,
    /// Workflow id (`audit:{id}:rerun-step:{position}:{n}` or
    /// `audit:{id}:rerun-cp:{position}:{index}:{n}`).
    pub workflow_id: String,
    /// Where it stands.
    pub status: RerunStatusView,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// The reviewer's hint.
    pub instructions: Option<String>,
    /// Who asked.
    pub requested_by: Option<String>,
    /// Model used.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
    /// New step score and audit summary, once applied.
    pub outcome: Option<RerunOutcomeView>,
    /// Failure reason.
    pub error: Option<String>,
    /// Asked at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Ended at.
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where to look next.
    pub links: RerunLinks,
}

/// The reruns of an audit.
#[derive(Debug, Object)]
pub struct RerunList {
    /// Oldest first.
    pub items: Vec<RerunView>,
}

/// `POST …/rerun` answer.
#[derive(ApiResponse)]
pub enum RerunAccepted {
    /// Accepted: the rerun's workflow is started; follow it on the audit's stream.
    #[oai(status = 202)]
    Accepted(Json<RerunView>),
}

operation_errors! {
    /// What `rerunStep` and `rerunControlPoint` answer besides the accepted rerun.
    pub enum RerunError for "rerunStep" {
        /// The id is not a UUID, a position or index is not a number, the body is not a
        /// `RerunRequest`, or `instructions` is longer than 4,000 characters.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:write`.
        403,
        /// No audit with this id, or it has no such step or control point.
        404,
        /// The audit has not completed (it is still running, failed or was cancelled):
        /// only a completed audit can be rerun.
        409,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// Postgres or Temporal is unavailable; nothing was started, retry later.
        503,
    }
}

operation_errors! {
    /// What `listAuditReruns` and `getAuditRerun` answer besides the reruns.
    pub enum ReadRerunsError for "listAuditReruns" {
        /// An id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:read`.
        403,
        /// No audit (or rerun of it) with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

/// Rerun routes.
pub struct RerunsApi;

#[OpenApi(tag = "ApiTags::Audits")]
impl RerunsApi {
    /// Analyses a step of a completed audit again, with the same analyzer, evidence
    /// gating and scoring as the audit (and the reviewer's `instructions`): the new output
    /// replaces the stored one, the audit summary is recomputed, and
    /// `raw_result.rerun_history` gains an entry with the previous and new output. Reruns
    /// of one audit apply one at a time. Events `audit.rerun.started`, then
    /// `audit.rerun.completed` (new step score and audit summary) or `audit.rerun.failed`
    /// on the audit's stream.
    #[oai(
        path = "/api/audits/:id/steps/:position/rerun",
        method = "post",
        operation_id = "rerunStep"
    )]
    #[tracing::instrument(skip_all, name = "api.reruns.step", fields(audit.id = %id.0, step.position = position.0))]
    async fn rerun_step(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        position: Path<i32>,
        body: Json<Option<RerunRequest>>,
    ) -> Result<RerunAccepted, RerunError> {
        let target = Target {
            audit_id: id.0,
            position: position.0,
            control_point_index: None,
        };
        Ok(start(&auth, &state, target, body.0.unwrap_or_default()).await?)
    }

    /// Analyses one control point of a completed audit's step again (alone, with the
    /// reviewer's `instructions`): `raw_result.points_controle[index]` is patched in place,
    /// the step's score and verdict are recomputed from all its points, then the audit
    /// summary; `rerun_history` gains an entry with the previous and new point. Same
    /// events as a step rerun.
    #[oai(
        path = "/api/audits/:id/steps/:position/control-points/:index/rerun",
        method = "post",
        operation_id = "rerunControlPoint"
    )]
    #[tracing::instrument(skip_all, name = "api.reruns.control_point", fields(audit.id = %id.0, step.position = position.0, control_point.index = index.0))]
    async fn rerun_control_point(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        position: Path<i32>,
        index: Path<i32>,
        body: Json<Option<RerunRequest>>,
    ) -> Result<RerunAccepted, RerunError> {
        let target = Target {
            audit_id: id.0,
            position: position.0,
            control_point_index: Some(index.0),
        };
        Ok(start(&auth, &state, target, body.0.unwrap_or_default()).await?)
    }

    /// The reruns of an audit, oldest first, with their status and outcome.
    #[oai(
        path = "/api/audits/:id/reruns",
        method = "get",
        operation_id = "listAuditReruns"
    )]
    #[tracing::instrument(skip_all, name = "api.reruns.list", fields(audit.id = %id.0))]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<RerunList>, ReadRerunsError> {
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
        if audit_rows::get(&mut conn, id.0)
            .await
            .map_err(ApiError::from)?
            .is_none()
        {
            return Err(ApiError::not_found(format!("audit {} not found", id.0)).into());
        }
        let rows = reruns::of_audit(&mut conn, id.0)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(RerunList {
            items: rows.into_iter().map(|r| view(&state, r)).collect(),
        }))
    }

    /// One rerun of an audit.
    #[oai(
        path = "/api/audits/:id/reruns/:rerun_id",
        method = "get",
        operation_id = "getAuditRerun"
    )]
    #[tracing::instrument(skip_all, name = "api.reruns.get", fields(audit.id = %id.0, rerun.id = %rerun_id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        rerun_id: Path<Uuid>,
    ) -> Result<Json<RerunView>, ReadRerunsError> {
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
        let row = reruns::get(&mut conn, rerun_id.0)
            .await
            .map_err(ApiError::from)?
            .filter(|r| r.audit_id == id.0)
            .ok_or_else(|| {
                ApiError::not_found(format!("audit {} has no rerun {}", id.0, rerun_id.0))
            })?;
        Ok(Json(view(&state, row)))
    }
}

#[derive(Debug, Clone, Copy)]
struct Target {
    audit_id: Uuid,
    position: i32,
    control_point_index: Option<i32>,
}

impl Target {
    fn kind(self) -> RerunKind {
        if self.control_point_index.is_some() {
            RerunKind::ControlPoint
        } else {
            RerunKind::Step
        }
    }
}

/// Checks the target against the audit's configuration snapshot (a position or index it
/// does not have is a 404).
fn check_target(audit_id: Uuid, spec: &AuditConfigSpec, t: Target) -> Result<(), ApiError> {
    let step = spec
        .steps
        .iter()
        .find(|s| s.position == t.position)
        .ok_or_else(|| {
            ApiError::not_found(format!("audit {audit_id} has no step {}", t.position))
        })?;
    if let Some(index) = t.control_point_index {
        let count = step.control_points.len();
        if usize::try_from(index).map_or(true, |i| i >= count) {
            return Err(ApiError::not_found(format!(
                "step {} of audit {audit_id} has no control point {index} (it has {count}, \
                 numbered from 0)",
                t.position
            )));
        }
    }
    Ok(())
}

fn rerun_ref(r: &RerunRow) -> RerunRef {
    RerunRef {
        rerun_id: r.id.to_string(),
        workflow_id: r.workflow_id.clone(),
        kind: r.kind,
        position: r.position,
        control_point_index: r.control_point_index,
    }
}

/// Stores the rerun (numbered under the audit's lock), announces `audit.rerun.started`,
/// starts its workflow; a failed start records the rerun failed (`audit.rerun.failed`).
async fn start(
    auth: &BearerAuth,
    state: &AppState,
    t: Target,
    body: RerunRequest,
) -> Result<RerunAccepted, ApiError> {
    let who = auth.require(Permission::AUDITS_WRITE)?;
    let instructions = body
        .instructions
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(text) = instructions
        && text.chars().count() > MAX_INSTRUCTIONS_CHARS
    {
        return Err(ApiError::bad_request(format!(
            "instructions must be at most {MAX_INSTRUCTIONS_CHARS} characters"
        )));
    }
    let mut conn = pool::get(&state.pool).await?;
    let audit = audit_rows::get(&mut conn, t.audit_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("audit {} not found", t.audit_id)))?;
    let spec: AuditConfigSpec =
        audit_rows::config_of(&mut conn, &audit)
            .await
            .map_err(|e| match e {
                audit_rows::AuditConfigError::Db(e) => ApiError::from(e),
                audit_rows::AuditConfigError::Deleted => ApiError::conflict(format!(
                    "audit {} has no configuration snapshot and its configuration was deleted: \
                 it cannot be rerun",
                    audit.id
                )),
                unreadable => ApiError::internal(unreadable),
            })?;
    check_target(audit.id, &spec, t)?;
    let use_rlm = body.use_rlm.or(body.use_rlm_camel).unwrap_or(audit.use_rlm);
    let audit_key = audit.id.to_string();
    let row = reruns::create(
        &mut conn,
        &NewRerun {
            audit_id: audit.id,
            kind: t.kind(),
            position: t.position,
            control_point_index: t.control_point_index,
            use_rlm,
            instructions,
            requested_by: Some(who.user.id),
            requested_by_email: Some(&who.user.email),
        },
        |n| match t.control_point_index {
            Some(i) => ids::rerun_control_point(&audit_key, t.position, i, n),
            None => ids::rerun_step(&audit_key, t.position, n),
        },
    )
    .await
    .map_err(|e| match e {
        CreateError::NoAudit => ApiError::not_found(format!("audit {} not found", t.audit_id)),
        CreateError::NotCompleted(status) => ApiError::conflict(format!(
            "audit {} is {status}: only a completed audit can be rerun",
            t.audit_id
        )),
        CreateError::Db(e) => e.into(),
    })?;
    publish(
        &mut conn,
        &AuditEvent::RerunStarted {
            audit_id: audit_key.clone(),
            rerun: rerun_ref(&row),
            by: who.user.email.clone(),
        },
    )
    .await?;
    let mut memo = MemoValues::new();
    memo.insert("kind", row.kind.as_str())
        .insert("use_rlm", use_rlm)
        .insert("requested_by", who.user.email.clone());
    let started = state
        .temporal
        .start(
            AuditRerunWorkflow::run,
            RerunWorkflowInput {
                rerun_id: row.id.to_string(),
                audit_id: audit_key.clone(),
            },
            &row.workflow_id,
            search::of_audit_run(&audit.fiche_id, &audit_key, RunKind::Rerun),
            memo,
        )
        .await;
    if started.is_err() {
        let reason = "the workflow engine was unavailable; the rerun was not started";
        if reruns::fail(&mut conn, row.id, reason).await? {
            publish(
                &mut conn,
                &AuditEvent::RerunFailed {
                    audit_id: audit_key,
                    rerun: rerun_ref(&row),
                    error: reason.to_string(),
                },
            )
            .await?;
        }
        return Err(ApiError::unavailable(
            "the workflow engine is unavailable; nothing was started, retry later",
        ));
    }
    Ok(RerunAccepted::Accepted(Json(view(state, row))))
}

fn view(state: &AppState, r: RerunRow) -> RerunView {
    let outcome = r
        .outcome
        .as_ref()
        .and_then(|o| serde_json::from_value::<callaudit_db::reruns::Patched>(o.clone()).ok())
        .map(|p| RerunOutcomeView {
            step_score: p.score,
            step_conforme: p.conforme.into(),
            audit_score: p.summary.score,
            audit_niveau: p.summary.niveau.into(),
            audit_critical: p.summary.critical,
        });
    RerunView {
        links: RerunLinks {
            audit: format!("/api/audits/{}", r.audit_id),
            events: format!("/api/audits/{}/events", r.audit_id),
            rerun: format!("/api/audits/{}/reruns/{}", r.audit_id, r.id),
            temporal_ui: state.temporal.settings.ui_link(&r.workflow_id),
        },
        id: r.id,
        audit_id: r.audit_id,
        kind: match r.kind {
            RerunKind::Step => RerunKindView::Step,
            RerunKind::ControlPoint => RerunKindView::ControlPoint,
        },
        position: r.position,
        control_point_index: r.control_point_index,
        n: r.n,
        workflow_id: r.workflow_id,
        status: match r.status {
            RerunStatus::Pending => RerunStatusView::Pending,
            RerunStatus::Running => RerunStatusView::Running,
            RerunStatus::Completed => RerunStatusView::Completed,
            RerunStatus::Failed => RerunStatusView::Failed,
        },
        use_rlm: r.use_rlm,
        instructions: r.instructions,
        requested_by: r.requested_by_email,
        model: r.model,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        outcome,
        error: r.error,
        created_at: r.created_at,
        completed_at: r.completed_at,
    }
}

/// When rerun `row` has not ended but its workflow has (terminated, timed out, cancelled,
/// failed without recording it) or never started (the api stopped between storing it and
/// starting it), records it failed with the reason and announces `audit.rerun.failed`, so
/// the audit's stream settles. Temporal being unreachable leaves the row as it is.
pub(crate) async fn reconcile(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    row: RerunRow,
) -> Result<(), ApiError> {
    if matches!(row.status, RerunStatus::Completed | RerunStatus::Failed) {
        return Ok(());
    }
    let Ok(client) = state.temporal.client().await else {
        return Ok(());
    };
    let handle = client.get_workflow_handle::<AuditRerunWorkflow>(row.workflow_id.clone());
    let ended = match handle
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
    {
        Ok(d) => match crate::temporal::UnrecordedEnd::of(d.status()) {
            Some(end) => end.phrase(),
            None => return Ok(()),
        },
        Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_)) => "never started",
        Err(_) => return Ok(()),
    };
    let reason = format!(
        "the rerun workflow {} {ended} without recording an outcome (reconciled)",
        row.workflow_id
    );
    if reruns::fail(conn, row.id, &reason).await? {
        tracing::warn!(rerun.id = %row.id, audit.id = %row.audit_id, %reason, "rerun reconciled");
        publish(
            conn,
            &AuditEvent::RerunFailed {
                audit_id: row.audit_id.to_string(),
                rerun: rerun_ref(&row),
                error: reason,
            },
        )
        .await?;
    }
    Ok(())
}
