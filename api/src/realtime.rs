//! `POST /api/realtime/pusher/auth`: Pusher's private-channel authorisation endpoint.
//! A browser's Pusher client posts the `socket_id` it was given and the `channel_name`
//! it wants to subscribe to; the answer `{"auth": "{key}:{signature}"}` lets it in.
//!
//! Only the channels the worker's relay sends to are signed —
//! `private-job-{audit|batch|fetch-job|automation-run}-{id}` (`callaudit_domain::realtime`)
//! — for a job that exists and that the caller may read, with the permission reading
//! that job takes (`audits:read`, `batches:read`, `fiches:read` for fetch jobs,
//! `automation:read`). The permission is checked before the job is looked up, so a
//! caller without it learns nothing of which jobs exist.

use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::state::AppState;
use callaudit_db::pool;
use callaudit_domain::rbac::Permission;
use callaudit_domain::realtime::{ChannelError, JobKind, parse_job_channel, valid_socket_id};
use poem::web::Data;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi};
use uuid::Uuid;

/// Realtime routes.
pub struct RealtimeApi;

/// What Pusher's client posts (as a form, its default, or as JSON).
#[derive(Debug, Clone, Object, serde::Deserialize)]
pub struct PusherAuthBody {
    /// The connection's socket id, `{digits}.{digits}`.
    pub socket_id: String,
    /// The channel to subscribe to: `private-job-{kind}-{id}`.
    pub channel_name: String,
}

/// The body, form-encoded (what pusher-js sends) or JSON.
#[derive(Debug, ApiRequest)]
pub enum PusherAuthRequest {
    /// `application/x-www-form-urlencoded`.
    Form(Form<PusherAuthBody>),
    /// `application/json`.
    Json(Json<PusherAuthBody>),
}

/// The subscription's authorisation.
#[derive(Debug, Clone, Object)]
pub struct PusherAuth {
    /// `{PUSHER_KEY}:{hex HMAC-SHA256 of "{socket_id}:{channel_name}" under the secret}`.
    pub auth: String,
}

/// The answer.
#[derive(Debug, ApiResponse)]
pub enum PusherAuthResponse {
    /// The channel may be subscribed to.
    #[oai(status = 200)]
    Ok(Json<PusherAuth>),
}

operation_errors! {
    /// What `authorizePusherChannel` answers besides the authorisation.
    pub enum AuthorizePusherChannelError for "authorizePusherChannel" {
        /// `socket_id` or `channel_name` is missing, or `socket_id` is not
        /// `{digits}.{digits}`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The channel is not a private job channel
        /// (`private-job-{audit|batch|fetch-job|automation-run}-{id}`), or the token lacks
        /// the permission reading that job takes.
        403,
        /// No job of that kind with that id.
        404,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is neither `application/x-www-form-urlencoded` nor `application/json`.
        415,
        /// Pusher is not configured (`PUSHER_APP_ID`, `PUSHER_KEY`, `PUSHER_SECRET`), or
        /// Postgres is unavailable.
        503,
    }
}

/// The permission reading a job of `kind` takes (as its own GET route).
fn read_permission(kind: JobKind) -> Permission {
    match kind {
        JobKind::Audit => Permission::AUDITS_READ,
        JobKind::Batch => Permission::BATCHES_READ,
        JobKind::FetchJob => Permission::FICHES_READ,
        JobKind::AutomationRun => Permission::AUTOMATION_READ,
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl RealtimeApi {
    /// Authorise a Pusher subscription to a job's private channel (Pusher's
    /// `channelAuthorization` endpoint: point pusher-js at it with the bearer token in
    /// its headers). Signs `private-job-{audit|batch|fetch-job|automation-run}-{id}`
    /// for a job that exists and that the caller may read (`audits:read`,
    /// `batches:read`, `fiches:read`, `automation:read`); nothing else.
    #[oai(
        path = "/api/realtime/pusher/auth",
        method = "post",
        operation_id = "authorizePusherChannel"
    )]
    #[tracing::instrument(skip_all, name = "api.realtime.pusher_auth", fields(channel = tracing::field::Empty))]
    async fn authorize(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: PusherAuthRequest,
    ) -> Result<PusherAuthResponse, AuthorizePusherChannelError> {
        let body = match body {
            PusherAuthRequest::Form(Form(b)) | PusherAuthRequest::Json(Json(b)) => b,
        };
        let Some(pusher) = &state.automation.pusher else {
            return Err(ApiError::unavailable(
                "realtime is not configured (PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET)",
            )
            .into());
        };
        if !valid_socket_id(&body.socket_id) {
            return Err(ApiError::bad_request(format!(
                "socket_id must be {{digits}}.{{digits}}, got {:?}",
                body.socket_id.chars().take(40).collect::<String>()
            ))
            .into());
        }
        let channel = body.channel_name.as_str();
        tracing::Span::current().record("channel", channel);
        let (kind, id) = parse_job_channel(channel).map_err(|e| match e {
            ChannelError::NotPrivate(_) | ChannelError::NotAJobChannel(_) => {
                ApiError::forbidden(e.to_string())
            }
        })?;
        auth.require(read_permission(kind))?;
        let missing = || ApiError::not_found(format!("no {} with id {id}", kind.name()));
        let id = id.parse::<Uuid>().map_err(|_| missing())?;
        let mut conn = pool::get(&state.pool).await?;
        let exists = match kind {
            JobKind::Audit => callaudit_db::audits::get(&mut conn, id).await?.is_some(),
            JobKind::Batch => callaudit_db::batches::get(&mut conn, id).await?.is_some(),
            JobKind::FetchJob => callaudit_db::fetch_jobs::get(&mut conn, id)
                .await?
                .is_some(),
            JobKind::AutomationRun => callaudit_db::automation::get_run(&mut conn, id)
                .await?
                .is_some(),
        };
        if !exists {
            return Err(missing().into());
        }
        Ok(PusherAuthResponse::Ok(Json(PusherAuth {
            auth: pusher.channel_auth(&body.socket_id, channel),
        })))
    }
}
