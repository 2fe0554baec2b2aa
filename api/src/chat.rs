//! `/api/audits/{id}/chat` and `/api/fiches/{fiche_id}/chat`: ask about an audit (its
//! steps, verdicts, citations) or a fiche (its transcripts) and follow the answer as
//! Server-Sent Events while the LLM writes it; `…/chat/history` pages the conversation.
//!
//! A chat is interactive, not durable work: it runs in the api process (no workflow),
//! streaming from the LLM (`OPENAI_MODEL_CHAT`) straight to the client. Each user has one
//! conversation per audit and per fiche. The question is stored before the LLM is
//! called and the answer once it ends — whole (`complete`), cut by a broken stream
//! (`partial`, with the reason) or absent (`failed`) — even when the client left before.
//! The prompt is the subject's context, the 50 most recent messages stored before the
//! question (oldest first) and the question (`domain::chat`). Every quote of an answer
//! is checked against the fiche's transcripts like audit evidence and stored with its
//! verdict.

mod answer;
mod context;
mod errors;
mod wire;

pub use answer::ChatStream;
pub use errors::*;
pub use wire::*;

use crate::auth::{ApiTags, BearerAuth};
use crate::error::ApiError;
use crate::state::AppState;
use answer::{Question, ask, llm};
use callaudit_db::chat::{self as chat_rows, Subject};
use callaudit_db::{AsyncPgConnection, audits as audit_rows, fiches as fiche_rows, pool};
use callaudit_domain::chat::fiche_context;
use callaudit_domain::rbac::Permission;
use callaudit_upstream::fiches::FicheError;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

/// Chat routes.
pub struct ChatApi;

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatApi {
    /// Asks about an audit: its configuration's steps, each step's verdict and score, its
    /// control points with statut, commentaire and citations. The answer streams as
    /// Server-Sent Events: `chat.started` (the question is stored), `chat.delta` per piece
    /// of text, then `chat.completed` (the stored answer with each quote's verdict and the
    /// usage) or `chat.failed` (the reason; what arrived is stored as a partial answer).
    #[oai(
        path = "/api/audits/:id/chat",
        method = "post",
        operation_id = "chatAboutAudit"
    )]
    #[tracing::instrument(skip_all, name = "api.chat.audit", fields(audit.id = %id.0, fiche.id = tracing::field::Empty))]
    async fn chat_about_audit(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ChatRequest>,
    ) -> Result<ChatStream, ChatAboutAuditError> {
        let who = auth.require(Permission::CHAT_WRITE)?;
        auth.require(Permission::AUDITS_READ)?;
        let text = body.question()?;
        let llm = llm(&state)?;
        let mut conn = pool::get(&state.pool).await?;
        let audit = audit_rows::get(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("audit {} not found", id.0)))?;
        tracing::Span::current().record("fiche.id", audit.fiche_id.as_str());
        let context = context::of_audit(&mut conn, &audit).await?;
        let transcripts = context::transcripts(&mut conn, &audit.fiche_id).await?;
        drop(conn);
        let question = Question {
            subject: Subject::Audit(audit.id),
            user: who.user.id,
            text,
            context,
            transcripts,
        };
        Ok(ask(&state, llm, question).await?)
    }

    /// Asks about a fiche: its transcripts, speaker-labelled and timestamped (bounded).
    /// The answer streams as for an audit (`chat.started`, `chat.delta`…,
    /// `chat.completed` or `chat.failed`). A fiche not cached yet is fetched from the CRM.
    #[oai(
        path = "/api/fiches/:fiche_id/chat",
        method = "post",
        operation_id = "chatAboutFiche"
    )]
    #[tracing::instrument(skip_all, name = "api.chat.fiche", fields(fiche.id = %fiche_id.0))]
    async fn chat_about_fiche(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
        ))]
        fiche_id: Path<String>,
        body: Json<ChatRequest>,
    ) -> Result<ChatStream, ChatAboutFicheError> {
        let who = auth.require(Permission::CHAT_WRITE)?;
        auth.require(Permission::FICHES_READ)?;
        let text = body.question()?;
        let llm = llm(&state)?;
        let fiche_id = fiche_id.0.as_str();
        let cached = {
            let mut conn = pool::get(&state.pool).await?;
            fiche_rows::get(&mut conn, fiche_id).await?.is_some()
        };
        if !cached {
            match crate::fiches::ensure_retrying(&state, fiche_id, false).await {
                Ok(_) => {}
                Err(FicheError::NotConfigured) => {
                    return Err(ApiError::not_found(format!("fiche {fiche_id} not found")).into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut conn = pool::get(&state.pool).await?;
        let transcripts = context::transcripts(&mut conn, fiche_id).await?;
        drop(conn);
        let question = Question {
            subject: Subject::Fiche(fiche_id),
            user: who.user.id,
            text,
            context: fiche_context(fiche_id, &transcripts),
            transcripts,
        };
        Ok(ask(&state, llm, question).await?)
    }

    /// Your conversation about an audit, oldest first, paged (`total` counts every
    /// message); empty before your first question.
    #[oai(
        path = "/api/audits/:id/chat/history",
        method = "get",
        operation_id = "getAuditChatHistory"
    )]
    #[tracing::instrument(skip_all, name = "api.chat.audit_history", fields(audit.id = %id.0))]
    async fn audit_history(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<ChatHistoryPage>, GetAuditChatHistoryError> {
        let who = auth.require(Permission::CHAT_READ)?;
        auth.require(Permission::AUDITS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        if audit_rows::get(&mut conn, id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("audit {} not found", id.0)).into());
        }
        let page = history(
            &mut conn,
            Subject::Audit(id.0),
            who.user.id,
            limit.0,
            offset.0,
        )
        .await?;
        let fiche = audit_rows::get(&mut conn, id.0)
            .await?
            .map(|a| a.fiche_id)
            .unwrap_or_default();
        let mut disclosure = crate::disclosure::Disclosure::for_reader(
            &auth,
            &mut conn,
            &fiche,
            "audit_chat",
            &id.0.to_string(),
        )
        .await?;
        Ok(Json(disclose(page, &mut disclosure)))
    }

    /// Your conversation about a fiche, oldest first, paged (`total` counts every
    /// message); empty before your first question.
    #[oai(
        path = "/api/fiches/:fiche_id/chat/history",
        method = "get",
        operation_id = "getFicheChatHistory"
    )]
    #[tracing::instrument(skip_all, name = "api.chat.fiche_history", fields(fiche.id = %fiche_id.0))]
    async fn fiche_history(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
        ))]
        fiche_id: Path<String>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<ChatHistoryPage>, GetFicheChatHistoryError> {
        let who = auth.require(Permission::CHAT_READ)?;
        auth.require(Permission::FICHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        if fiche_rows::get(&mut conn, &fiche_id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("fiche {} not found", fiche_id.0)).into());
        }
        let page = history(
            &mut conn,
            Subject::Fiche(&fiche_id.0),
            who.user.id,
            limit.0,
            offset.0,
        )
        .await?;
        let mut disclosure = crate::disclosure::Disclosure::for_reader(
            &auth,
            &mut conn,
            &fiche_id.0,
            "fiche_chat",
            &fiche_id.0,
        )
        .await?;
        Ok(Json(disclose(page, &mut disclosure)))
    }
}

fn default_limit() -> i64 {
    50
}

/// The page as its reader may see it: questions, answers and quotes redacted unless they
/// hold pii:read.
fn disclose(mut page: ChatHistoryPage, d: &mut crate::disclosure::Disclosure) -> ChatHistoryPage {
    for m in &mut page.items {
        m.content = d.text(&m.content);
        for q in &mut m.quotes {
            q.quote = d.text(&q.quote);
            q.matched_text = q.matched_text.as_deref().map(|t| d.text(t));
        }
    }
    page
}

/// A page of `user`'s conversation about `subject` (empty when there is none yet).
async fn history(
    conn: &mut AsyncPgConnection,
    subject: Subject<'_>,
    user: Uuid,
    limit: i64,
    offset: i64,
) -> Result<ChatHistoryPage, ApiError> {
    let Some(conversation) = chat_rows::find_conversation(conn, subject, user).await? else {
        return Ok(ChatHistoryPage {
            conversation_id: None,
            items: vec![],
            total: 0,
            limit,
            offset,
        });
    };
    let page = chat_rows::page(conn, conversation, limit, offset).await?;
    Ok(ChatHistoryPage {
        conversation_id: Some(conversation),
        items: page.rows.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    })
}
