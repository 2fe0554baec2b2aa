//! The request and response shapes of the audit routes, and how rows become them.

use super::wire::{AuditStatusView, ConformiteView, NiveauView};
use crate::error::ApiError;
use crate::state::AppState;
use callaudit_db::audits::AuditRow;
use callaudit_db::step_results::StepResultRow;
use callaudit_domain::cost::{StepUsage, audit_cost};
use callaudit_domain::status::AuditStatus;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
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
    /// Each control point: the AI verdict, the human one if any, and which one counts
    /// (read from `raw_result`).
    pub control_points: Vec<ControlPointView>,
    /// Gated analysis: `points_controle` (statut, citations, evidence_unverified…), commentaire, rerun_history, and `analysis`: how it was obtained (`mode` `prompt` or `tools`; in tools mode `requests`, `tool_rounds`, `tool_calls`, `tool_chars` read, `budget_exhausted`).
    pub raw_result: serde_json::Value,
    /// Model used.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
}

/// Who decides a control point's status in the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum VerdictSource {
    /// The AI's verdict (after evidence gating).
    Ai,
    /// A human review.
    Human,
}

/// A control point's verdicts.
#[derive(Debug, Object)]
pub struct ControlPointView {
    /// Index in the step.
    pub index: i32,
    /// Wording.
    pub point: String,
    /// The AI's verdict after evidence gating.
    pub ai_statut: crate::reviews::StatutView,
    /// The reviewer's verdict, if any.
    pub human_statut: Option<crate::reviews::StatutView>,
    /// The reviewer's comment.
    pub review_comment: Option<String>,
    /// Who reviewed.
    pub reviewed_by: Option<String>,
    /// When (RFC 3339).
    pub reviewed_at: Option<String>,
    /// The verdict that counts in the scores.
    pub counted_statut: crate::reviews::StatutView,
    /// Whose verdict counts.
    pub counts: VerdictSource,
    /// A PRESENT/PARTIEL claim had no verified citation.
    pub evidence_unverified: bool,
}

fn control_points(raw: &serde_json::Value) -> Vec<ControlPointView> {
    let Ok(result) =
        serde_json::from_value::<callaudit_domain::step_result::StepResult>(raw.clone())
    else {
        return Vec::new();
    };
    result
        .gated
        .points_controle
        .into_iter()
        .map(|p| ControlPointView {
            index: i32::try_from(p.index).unwrap_or(i32::MAX),
            ai_statut: p.statut.into(),
            human_statut: p.review.as_ref().map(|r| r.statut.into()),
            review_comment: p.review.as_ref().map(|r| r.comment.clone()),
            reviewed_by: p.review.as_ref().map(|r| r.by.clone()),
            reviewed_at: p.review.as_ref().map(|r| r.at.clone()),
            counted_statut: p.counted_statut().into(),
            counts: if p.review.is_some() {
                VerdictSource::Human
            } else {
                VerdictSource::Ai
            },
            evidence_unverified: p.evidence_unverified,
            point: p.point,
        })
        .collect()
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
    /// Chat completion requests (one per step in prompt mode, every round in tools mode),
    /// reruns included.
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

/// The cost of an audit from its stored steps, its reruns and the audio of its fiche.
pub(super) async fn cost_of(
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
    // Reruns spend tokens for the audit too (analysed ones, applied or not).
    let mut usage = usage;
    usage.extend(
        callaudit_db::reruns::of_audit(conn, audit.id)
            .await?
            .into_iter()
            .filter(|r| r.llm_requests > 0)
            .map(|r| StepUsage {
                model: r.model,
                requests: u32::try_from(r.llm_requests).unwrap_or(0),
                prompt_tokens: i64::from(r.prompt_tokens),
                completion_tokens: i64::from(r.completion_tokens),
            }),
    );
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

pub(super) fn view(a: AuditRow, steps: Vec<StepResultRow>) -> AuditView {
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
                control_points: control_points(&s.raw_result),
                raw_result: s.raw_result,
                model: s.model,
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
            })
            .collect(),
    }
}

/// The 202 of an audit run (a new one, or the one an idempotency key names).
pub(super) fn accepted(
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
