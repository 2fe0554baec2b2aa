//! `DELETE /api/fiches/{fiche_id}/personal-data`: erasure of a fiche's personal data on
//! request (the right to erasure), keeping its audits' scores and verdicts.

use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::events::publish;
use crate::state::AppState;
use callaudit_db::personal_data::{self as store, Access};
use callaudit_db::pool;
use callaudit_domain::personal_data::{PersonalDataEvent, Removed};
use callaudit_domain::rbac::Permission;
use chrono::SecondsFormat;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

/// What an erasure removed.
#[derive(Debug, Object)]
pub struct ErasureView {
    /// The fiche.
    pub fiche_id: String,
    /// Transcripts deleted.
    pub transcripts: u64,
    /// Audio URLs cleared.
    pub audio_urls: u64,
    /// Chat messages deleted (about the fiche and its audits).
    pub chat_messages: u64,
    /// Stored step results and rerun analyses whose quotes and comments were erased
    /// (scores and verdicts stay).
    pub step_results: u64,
    /// 1 when the fiche's client details were cleared now, 0 when they were already.
    pub fiche_details: u64,
    /// When (RFC 3339).
    pub erased_at: String,
}

operation_errors! {
    /// What `erasePersonalData` answers besides what was erased.
    pub enum EraseError for "erasePersonalData" {
        /// The fiche id is not 1 to 100 letters, digits, `_`, `.` or `-` (dots alone are
        /// refused).
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `pii:delete` (admins only by default).
        403,
        /// No fiche with this id is stored.
        404,
        /// Postgres is unavailable; nothing was erased, retry later.
        503,
    }
}

/// Personal-data routes.
pub struct PersonalDataApi;

#[OpenApi(tag = "ApiTags::Fiches")]
impl PersonalDataApi {
    /// Erases the fiche's personal data: its transcripts, audio URLs, the chat messages
    /// about it and its audits, its client details, and what its audits' stored results
    /// quote or comment — their scores, verdicts and summaries stay, so reports still add
    /// up. Idempotent (a second call erases nothing more); recorded in the access log and
    /// announced as `personal_data.erased`. A later audit of the fiche fetches it from the
    /// CRM again.
    #[oai(
        path = "/api/fiches/:fiche_id/personal-data",
        method = "delete",
        operation_id = "erasePersonalData"
    )]
    #[tracing::instrument(skip_all, name = "api.personal_data.erase", fields(fiche.id = %fiche_id.0))]
    async fn erase(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
        ))]
        fiche_id: Path<String>,
    ) -> Result<Json<ErasureView>, EraseError> {
        let who = auth.require(Permission::PII_DELETE)?;
        let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
        let removed: Removed = store::erase_fiche(&mut conn, &fiche_id.0)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::not_found(format!("fiche {} not found", fiche_id.0)))?;
        let at = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        store::log_access(
            &mut conn,
            &Access {
                user_id: Some(who.user.id),
                user_email: Some(&who.user.email),
                action: "erase",
                subject_kind: "fiche",
                subject_id: &fiche_id.0,
                detail: serde_json::to_value(removed).unwrap_or_default(),
            },
        )
        .await
        .map_err(ApiError::from)?;
        tracing::info!(
            transcripts = removed.transcripts,
            chat_messages = removed.chat_messages,
            step_results = removed.step_results,
            "personal data erased"
        );
        publish(
            &mut conn,
            &PersonalDataEvent::Erased {
                fiche_id: fiche_id.0.clone(),
                by: who.user.email.clone(),
                at: at.clone(),
                removed,
            },
        )
        .await?;
        Ok(Json(ErasureView {
            fiche_id: fiche_id.0.clone(),
            transcripts: removed.transcripts,
            audio_urls: removed.audio_urls,
            chat_messages: removed.chat_messages,
            step_results: removed.step_results,
            fiche_details: removed.fiches,
            erased_at: at,
        }))
    }
}
