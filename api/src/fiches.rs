//! `/api/fiches`: read a fiche (cached; fetched from the CRM on a miss; `force_refresh`
//! at most once per cooldown), list cached fiches, the CRM sales search by date, and
//! on-demand transcription of a fiche's recordings ([`transcribe`]).

mod transcribe;

pub use transcribe::{
    FicheTranscription, RecordingTranscription, TranscribeAccepted, TranscriptionStart,
};

use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::state::AppState;
use callaudit_db::{fiches as fiche_rows, pool};
use callaudit_domain::rbac::Permission;
use callaudit_upstream::UpstreamError;
use callaudit_upstream::fiches::{Ensured, FicheError, ForceRefresh};
use callaudit_upstream::heartbeat::Unsupervised;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::time::Duration;

/// How long a request waits for a free CRM slot before answering 503.
pub const CRM_SLOT_WAIT: Duration = Duration::from_secs(20);

/// Attempts of a CRM read made for a user before answering 503: a single 5xx or 429 of
/// a fragile gateway should not bounce the request.
const CRM_ATTEMPTS: u32 = 3;

/// Longest pause between two attempts (a longer `Retry-After` is cut to it).
const CRM_MAX_PAUSE: Duration = Duration::from_secs(2);

/// [`FicheService::ensure`](callaudit_upstream::fiches::FicheService::ensure) for an api
/// request: a transient CRM failure or a 429 is retried, [`CRM_ATTEMPTS`] attempts in
/// all, 250 ms then 500 ms apart (or the `Retry-After`, at most [`CRM_MAX_PAUSE`]); a
/// permanent failure, an unknown fiche or busy CRM slots answer at once.
pub(crate) async fn ensure_retrying(
    state: &AppState,
    fiche_id: &str,
    force_refresh: bool,
) -> Result<Ensured, FicheError> {
    let mut attempt = 1;
    loop {
        let result = state
            .fiches
            .ensure(fiche_id, force_refresh, &Unsupervised, Some(CRM_SLOT_WAIT))
            .await;
        let pause = match &result {
            Err(FicheError::Upstream(e)) if e.is_retryable() && attempt < CRM_ATTEMPTS => match e {
                UpstreamError::RateLimited {
                    retry_after_s: Some(s),
                    ..
                } => Duration::from_secs(*s).min(CRM_MAX_PAUSE),
                _ => Duration::from_millis(250) * 2u32.pow(attempt - 1),
            },
            _ => return result,
        };
        tracing::info!(
            attempt,
            pause_ms = pause.as_millis(),
            "CRM read failed; retrying"
        );
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// A recording of a fiche.
#[derive(Debug, Object)]
pub struct RecordingItem {
    /// Id.
    pub recording_id: String,
    /// Call start.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Length, seconds.
    pub duration_s: Option<f64>,
    /// outbound / inbound.
    pub direction: Option<String>,
    /// Transcription status (`completed`…), absent when never transcribed.
    pub transcription: Option<String>,
    /// A completed transcription is stored.
    pub transcribed: bool,
}

/// A cached fiche.
#[derive(Debug, Object)]
pub struct FicheView {
    /// CRM fiche id.
    pub fiche_id: String,
    /// Group.
    pub groupe: Option<String>,
    /// CRM status.
    pub statut: Option<String>,
    /// Sale time.
    pub date_vente: Option<chrono::DateTime<chrono::Utc>>,
    /// Customer.
    pub client: serde_json::Value,
    /// Full CRM details.
    pub details: Option<serde_json::Value>,
    /// Only the sales-list entry is known (`_salesListOnly`).
    #[oai(rename = "_salesListOnly")]
    pub sales_list_only: bool,
    /// Recordings in CRM order.
    pub recordings: Vec<RecordingItem>,
    /// When the details were fetched from the CRM.
    pub details_fetched_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The CRM was called for this answer.
    pub fetched: bool,
    /// `not_requested`, `done` or `cooldown`.
    pub force_refresh: String,
    /// With `cooldown`: seconds until a forced refresh is allowed again.
    pub force_refresh_retry_after_s: Option<u64>,
}

/// One sale from the CRM sales search (a partial fiche).
#[derive(Debug, Object)]
pub struct SaleItem {
    /// CRM fiche id.
    pub fiche_id: String,
    /// Group.
    pub groupe: Option<String>,
    /// Sale time as sent by the CRM.
    pub date_vente: Option<String>,
    /// Customer.
    pub client: serde_json::Value,
    /// Number of calls.
    pub recordings_count: i64,
    /// Always true: full details are fetched on demand.
    #[oai(rename = "_salesListOnly")]
    pub sales_list_only: bool,
}

/// Sales search result.
#[derive(Debug, Object)]
pub struct SalesPage {
    /// The day searched.
    pub date: String,
    /// Sales with calls, as the CRM ordered them.
    pub fiches: Vec<SaleItem>,
}

operation_errors! {
    /// What `searchSales` answers besides the sales.
    pub enum SearchSalesError for "searchSales" {
        /// `date` is missing or not a calendar day `YYYY-MM-DD`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`.
        403,
        /// The CRM refused the search; retrying will not help.
        502,
        /// The CRM is unavailable or not configured, its search slots stayed busy, or
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `getFiche` answers besides the fiche.
    pub enum GetFicheError for "getFiche" {
        /// The fiche id is not 1 to 100 letters, digits, `_`, `.` or `-` (dots alone are
        /// refused), or `force_refresh` is not a boolean.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`, or `fiches:write` for `force_refresh=true`.
        403,
        /// The CRM does not know this fiche.
        404,
        /// The CRM refused the request; retrying will not help.
        502,
        /// The CRM is unavailable or not configured, its slots stayed busy, or Postgres
        /// is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `listFiches` answers besides the page.
    pub enum ListFichesError for "listFiches" {
        /// `date` is not a calendar day `YYYY-MM-DD`, `limit` is not between 1 and 200, or
        /// `offset` is negative.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `transcribeFiche` answers besides the accepted request.
    pub enum TranscribeFicheError for "transcribeFiche" {
        /// The fiche id is not 1 to 100 letters, digits, `_`, `.` or `-` (dots alone are
        /// refused).
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `transcriptions:write`.
        403,
        /// The CRM does not know this fiche.
        404,
        /// The CRM refused the request; retrying will not help.
        502,
        /// The CRM (after brief retries), Postgres or Temporal is unavailable, or the CRM
        /// is not configured and the fiche's details are not cached; retry later.
        503,
    }
}

/// A cached fiche in a list.
#[derive(Debug, Object)]
pub struct FicheListItem {
    /// CRM fiche id.
    pub fiche_id: String,
    /// Group.
    pub groupe: Option<String>,
    /// CRM status.
    pub statut: Option<String>,
    /// Sale time.
    pub date_vente: Option<chrono::DateTime<chrono::Utc>>,
    /// Only the sales-list entry is known (`_salesListOnly`).
    #[oai(rename = "_salesListOnly")]
    pub sales_list_only: bool,
    /// Number of recordings.
    pub recordings_count: i32,
    /// When the details were fetched from the CRM.
    pub details_fetched_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of cached fiches.
#[derive(Debug, Object)]
pub struct FicheList {
    /// By sale time, then id.
    pub items: Vec<FicheListItem>,
    /// Fiches matching the filters.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Offset.
    pub offset: i64,
}

fn default_limit() -> i64 {
    50
}

/// Fiche routes.
pub struct FichesApi;

#[OpenApi(tag = "ApiTags::Fiches")]
impl FichesApi {
    /// Cached fiches (full or sales-list only), by sale time: those sold on `date` (the
    /// sale's calendar day in Europe/Paris time, the CRM's day) and of `groupe`, when
    /// given. Nothing is asked of the CRM.
    #[oai(path = "/api/fiches", method = "get", operation_id = "listFiches")]
    #[tracing::instrument(skip_all, name = "api.fiches.list")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        /// Sale day, `YYYY-MM-DD`.
        date: Query<Option<chrono::NaiveDate>>,
        /// Group (exact).
        groupe: Query<Option<String>>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
        #[oai(default, validator(minimum(value = "0")))] offset: Query<i64>,
    ) -> Result<Json<FicheList>, ListFichesError> {
        auth.require(Permission::FICHES_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let page = fiche_rows::list(
            &mut conn,
            fiche_rows::FicheFilter {
                date: date.0,
                groupe: groupe.0.as_deref(),
            },
            limit.0,
            offset.0,
        )
        .await?;
        Ok(Json(FicheList {
            items: page
                .rows
                .into_iter()
                .map(|f| FicheListItem {
                    fiche_id: f.fiche_id,
                    groupe: f.groupe,
                    statut: f.statut,
                    date_vente: f.date_vente,
                    sales_list_only: f.sales_list_only,
                    recordings_count: f.recordings_count,
                    details_fetched_at: f.details_fetched_at,
                })
                .collect(),
            total: page.total,
            limit: limit.0,
            offset: offset.0,
        }))
    }

    /// Transcribes every recording of the fiche that has no completed transcription: its
    /// details are fetched first when not cached, then one `TranscriptionWorkflow`
    /// (`transcribe:{recording_id}`, the one audits use) is started per recording — one
    /// already running (an audit's) is shared, not started twice. `GET
    /// /api/fiches/{fiche_id}` shows each recording's `transcribed`.
    #[oai(
        path = "/api/fiches/:fiche_id/transcribe",
        method = "post",
        operation_id = "transcribeFiche"
    )]
    #[tracing::instrument(skip_all, name = "api.fiches.transcribe", fields(fiche.id = %fiche_id.0))]
    async fn transcribe(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
        ))]
        fiche_id: Path<String>,
    ) -> Result<TranscribeAccepted, TranscribeFicheError> {
        auth.require(Permission::TRANSCRIPTIONS_WRITE)?;
        match ensure_retrying(&state, &fiche_id.0, false).await {
            Ok(_) => {}
            Err(FicheError::NotConfigured) => {
                let mut conn = pool::get(&state.pool).await?;
                let cached = fiche_rows::cache_state(&mut conn, &fiche_id.0)
                    .await?
                    .is_some_and(|s| s.has_details());
                if !cached {
                    return Err(ApiError::unavailable(
                        "the CRM is not configured in the api and the fiche's details are                          not cached; its recordings are unknown",
                    )
                    .into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(transcribe::start(&state, &fiche_id.0).await?)
    }

    /// Sales with calls on a day (CRM `sales-with-calls`, under the global search cap);
    /// each is stored as a partial fiche flagged `_salesListOnly`.
    #[oai(
        path = "/api/fiches/sales",
        method = "get",
        operation_id = "searchSales"
    )]
    #[tracing::instrument(skip_all, name = "api.fiches.sales")]
    async fn sales(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        /// Day, `YYYY-MM-DD`.
        date: Query<String>,
    ) -> Result<Json<SalesPage>, SearchSalesError> {
        auth.require(Permission::FICHES_READ)?;
        let day = chrono::NaiveDate::parse_from_str(date.0.trim(), "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(format!(
                "date must be a calendar day YYYY-MM-DD, got {:?}",
                date.0
            ))
        })?;
        let fiches = state
            .fiches
            .sales_search(day, &Unsupervised, Some(CRM_SLOT_WAIT))
            .await?;
        Ok(Json(SalesPage {
            date: day.format("%Y-%m-%d").to_string(),
            fiches: fiches
                .into_iter()
                .map(|f| SaleItem {
                    fiche_id: f.fiche_id,
                    groupe: f.groupe,
                    date_vente: f.date_vente,
                    client: f.client,
                    recordings_count: f.recordings_count,
                    sales_list_only: true,
                })
                .collect(),
        }))
    }

    /// A fiche with its recordings: from the cache, fetched from the CRM when missing or
    /// only known from a sales list. `force_refresh=true` (needs `fiches:write`) fetches
    /// again, at most once per `FICHE_FORCE_REFRESH_COOLDOWN_MS` per fiche; inside the
    /// cooldown the cached fiche is returned with `force_refresh: "cooldown"`.
    #[oai(
        path = "/api/fiches/:fiche_id",
        method = "get",
        operation_id = "getFiche"
    )]
    #[tracing::instrument(skip_all, name = "api.fiches.get", fields(fiche.id = %fiche_id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        #[oai(validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[A-Za-z0-9_.\-]*[A-Za-z0-9][A-Za-z0-9_.\-]*$"
        ))]
        fiche_id: Path<String>,
        #[oai(default)] force_refresh: Query<bool>,
    ) -> Result<Json<FicheView>, GetFicheError> {
        auth.require(Permission::FICHES_READ)?;
        if force_refresh.0 {
            auth.require(Permission::FICHES_WRITE)?;
        }
        let ensured = state
            .fiches
            .ensure(
                &fiche_id.0,
                force_refresh.0,
                &Unsupervised,
                Some(CRM_SLOT_WAIT),
            )
            .await?;
        let mut conn = pool::get(&state.pool).await?;
        let fiche_rows::FicheWithRecordings {
            fiche: row,
            recordings: recs,
        } = fiche_rows::get(&mut conn, &fiche_id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("fiche {} not found", fiche_id.0)))?;
        let (force, retry_after) = match ensured.force_refresh {
            ForceRefresh::NotRequested => ("not_requested", None),
            ForceRefresh::Done => ("done", None),
            ForceRefresh::Cooldown { retry_after } => {
                ("cooldown", Some(retry_after.as_secs().max(1)))
            }
        };
        Ok(Json(FicheView {
            fiche_id: row.fiche_id,
            groupe: row.groupe,
            statut: row.statut,
            date_vente: row.date_vente,
            client: row.client,
            details: row.details,
            sales_list_only: row.sales_list_only,
            recordings: recs
                .into_iter()
                .map(|r| RecordingItem {
                    recording_id: r.recording_id,
                    started_at: r.started_at,
                    duration_s: r.duration_s,
                    direction: r.direction,
                    transcribed: r.transcription.as_deref()
                        == Some(callaudit_domain::status::TranscriptionStatus::Completed.as_str()),
                    transcription: r.transcription,
                })
                .collect(),
            details_fetched_at: row.details_fetched_at,
            fetched: ensured.fetched,
            force_refresh: force.into(),
            force_refresh_retry_after_s: retry_after,
        }))
    }
}
