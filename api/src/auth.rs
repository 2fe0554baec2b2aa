//! Bearer-token authentication, permission checks and the `/api/auth` routes.

use crate::client_addr::client_address;
use crate::error::{ApiError, operation_errors};
use crate::state::AppState;
use callaudit_db::auth::{self as db_auth, Principal, Session};
use callaudit_db::login_throttle::{self, Attempt};
use callaudit_db::pool;
use callaudit_domain::rbac::Permission;
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme, Tags};

/// API tags (sections of the docs).
#[derive(Tags)]
pub enum ApiTags {
    /// Login and identity.
    Auth,
    /// Liveness, readiness, metrics.
    Health,
    /// Audits: run, read, stream.
    Audits,
    /// Audit configurations.
    AuditConfigs,
    /// CRM fiches: cached reads, forced refresh, sales search.
    Fiches,
    /// Chat about an audit or a fiche: streamed answers with checked quotes, history.
    Chat,
}

/// A bearer token issued by `POST /api/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(pub Session);

/// What a stream token grants: following one topic, on behalf of a user.
#[derive(Debug, Clone)]
pub struct StreamGrant {
    /// The topic it was issued for (`audit:<uuid>`).
    pub topic: String,
}

/// A short-lived stream token in the URL (`?token=`), for browsers' `EventSource`, which
/// cannot send an `Authorization` header. Issued by `POST /api/audits/{id}/events/token`
/// and valid for that stream only.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "token",
    key_in = "query",
    checker = "check_stream_token"
)]
pub struct StreamTokenAuth(pub StreamGrant);

async fn check_stream_token(
    req: &Request,
    key: poem_openapi::auth::ApiKey,
) -> poem::Result<StreamGrant> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from(ApiError::internal("app state missing")))?;
    let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
    match callaudit_db::stream_tokens::check(&mut conn, key.key.trim()).await {
        Ok(Some((topic, _user))) => Ok(StreamGrant { topic }),
        Ok(None) => Err(ApiError::unauthorized("invalid or expired stream token").into()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// Who may open an event stream: a bearer token (with the read permission), or a stream
/// token issued for that very stream.
pub enum StreamAuth {
    /// `Authorization: Bearer …`.
    Bearer(BearerAuth),
    /// `?token=…`.
    Token(StreamTokenAuth),
}

/// Written by hand rather than derived: the derived enum answers with the error of the
/// scheme tried last, so while Postgres was unreachable a client sending a valid bearer
/// token got the 401 of the missing `?token=` (seen under `temporal-dev/chaos.sh`: a
/// stream resuming during a Postgres restart was refused as unauthenticated). Here a
/// failure that is not about the credentials (503) wins, then the error of the scheme the
/// client used.
impl<'a> poem_openapi::ApiExtractor<'a> for StreamAuth {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <BearerAuth as poem_openapi::ApiExtractor>::register(registry);
        <StreamTokenAuth as poem_openapi::ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <BearerAuth as poem_openapi::ApiExtractor>::security_schemes();
        schemes.extend(<StreamTokenAuth as poem_openapi::ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bearer = match BearerAuth::from_request(req, body, param_opts.clone()).await {
            Ok(b) => return Ok(Self::Bearer(b)),
            Err(e) => e,
        };
        let token = match StreamTokenAuth::from_request(req, body, param_opts).await {
            Ok(t) => return Ok(Self::Token(t)),
            Err(e) => e,
        };
        let unauthorized = poem::http::StatusCode::UNAUTHORIZED;
        Err(if bearer.status() != unauthorized {
            bearer
        } else if token.status() != unauthorized
            || !req
                .headers()
                .contains_key(poem::http::header::AUTHORIZATION)
        {
            token
        } else {
            bearer
        })
    }
}

impl StreamAuth {
    /// Allows following `topic` when the bearer holds `permission` or the stream token
    /// was issued for `topic`.
    pub fn allow(&self, topic: &str, permission: Permission) -> Result<(), ApiError> {
        match self {
            Self::Bearer(bearer) => bearer.require(permission).map(|_| ()),
            Self::Token(StreamTokenAuth(grant)) if grant.topic == topic => Ok(()),
            Self::Token(_) => Err(ApiError::forbidden(
                "this stream token was issued for another stream",
            )),
        }
    }
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Session> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from(ApiError::internal("app state missing")))?;
    let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
    match db_auth::session_for_token(&mut conn, bearer.token.trim()).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(ApiError::unauthorized("invalid or expired bearer token").into()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

impl BearerAuth {
    /// The principal if it holds `permission`, else 403 naming the permission.
    pub fn require(&self, permission: Permission) -> Result<&Principal, ApiError> {
        let principal = &self.0.principal;
        if principal.can(permission) {
            Ok(principal)
        } else {
            Err(ApiError::forbidden(format!(
                "permission {permission} required (your roles: {})",
                if principal.roles.is_empty() {
                    "none".to_string()
                } else {
                    principal.roles.join(", ")
                }
            )))
        }
    }
}

/// Login request.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// E-mail.
    #[oai(validator(min_length = 3, max_length = 320))]
    pub email: String,
    /// Password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// Login answer: the bearer token (shown once) and who you are.
#[derive(Debug, Object)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer …`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Expiry (RFC 3339).
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The authenticated user.
    pub user: Me,
}

/// The authenticated user.
#[derive(Debug, Object)]
pub struct Me {
    /// User id.
    pub id: uuid::Uuid,
    /// E-mail.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Permissions as `resource:action`.
    pub permissions: Vec<String>,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Self {
        Me {
            id: p.user.id,
            email: p.user.email.clone(),
            display_name: p.user.display_name.clone(),
            roles: p.roles.clone(),
            permissions: p.permissions.clone(),
        }
    }
}

/// Answer of `POST /api/auth/logout`.
#[derive(Debug, ApiResponse)]
pub enum LogoutResponse {
    /// The token is revoked: every later request with it gets 401.
    #[oai(status = 204)]
    LoggedOut,
}

operation_errors! {
    /// What `login` answers besides a token.
    pub enum LoginError for "login" {
        /// The body is not a JSON `LoginRequest` (e-mail of 3 to 320 characters,
        /// password of 1 to 1024).
        400,
        /// Wrong e-mail or password, or an inactive user (the answer does not say which).
        401,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// Too many failed logins from this e-mail or client address; retry after
        /// `Retry-After` seconds.
        429,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `logout` answers besides 204.
    pub enum LogoutError for "logout" {
        /// Missing, invalid, expired or already revoked bearer token.
        401,
        /// Postgres is unavailable; the token is not revoked, retry later.
        503,
    }
}

operation_errors! {
    /// What `getMe` answers besides the user.
    pub enum GetMeError for "getMe" {
        /// Missing, invalid or expired bearer token.
        401,
        /// Postgres is unavailable (the token cannot be checked); retry later.
        503,
    }
}

/// Expired tokens and stale throttle counters deleted per login, at most (each an
/// indexed, bounded DELETE, so a login stays cheap however much has piled up).
const PURGE_BATCH: i64 = 100;

/// `/api/auth` routes.
pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Exchange e-mail and password for a bearer token.
    ///
    /// Failed logins are limited per e-mail and per client address (by default 5 and 20
    /// in 15 minutes); past a limit the answer is 429 with `Retry-After`, without any
    /// password check, until the window ends. A successful login clears its e-mail's
    /// count.
    #[oai(path = "/api/auth/login", method = "post", operation_id = "login")]
    #[tracing::instrument(skip_all, name = "api.auth.login", fields(client.address, user.id))]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, LoginError> {
        let address = client_address(req, &state.trusted_proxies);
        tracing::Span::current().record("client.address", address.as_str());
        let email = body.email.trim();
        let credentials = {
            let mut conn = pool::get(&state.pool).await?;
            let attempt =
                login_throttle::claim_attempt(&mut conn, &state.login_throttle, email, &address)
                    .await?;
            if let Attempt::Throttled { retry_after_s } = attempt {
                tracing::warn!(retry_after_s, "login throttled");
                return Err(ApiError::too_many_requests(
                    format!("too many failed logins; retry in {retry_after_s} s"),
                    retry_after_s,
                )
                .into());
            }
            db_auth::purge_expired_tokens(&mut conn, PURGE_BATCH).await?;
            login_throttle::purge_stale(&mut conn, state.login_throttle.window, PURGE_BATCH)
                .await?;
            db_auth::credentials_for(&mut conn, email).await?
            // The connection goes back to the pool here: argon2 runs without it.
        };
        let Some(user) = db_auth::check_password(credentials, &body.password).await? else {
            return Err(ApiError::unauthorized("invalid e-mail or password").into());
        };
        tracing::Span::current().record("user.id", tracing::field::display(user.id));
        let mut conn = pool::get(&state.pool).await?;
        login_throttle::forgive_success(&mut conn, email, &address).await?;
        let (token, expires_at, principal) =
            db_auth::issue_token(&mut conn, user, state.token_ttl).await?;
        Ok(Json(LoginResponse {
            token,
            token_type: "Bearer".into(),
            expires_at,
            user: Me::from(&principal),
        }))
    }

    /// Revoke the bearer token of this request (log out); it gets 401 from then on.
    #[oai(path = "/api/auth/logout", method = "post", operation_id = "logout")]
    #[tracing::instrument(skip_all, name = "api.auth.logout", fields(user.id = %auth.0.principal.user.id))]
    async fn logout(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<LogoutResponse, LogoutError> {
        let mut conn = pool::get(&state.pool).await?;
        db_auth::revoke_token(&mut conn, auth.0.token_id).await?;
        Ok(LogoutResponse::LoggedOut)
    }

    /// Who the bearer token belongs to, with roles and permissions.
    #[oai(path = "/api/auth/me", method = "get", operation_id = "getMe")]
    #[tracing::instrument(skip_all, name = "api.auth.me")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<Me>, GetMeError> {
        Ok(Json(Me::from(&auth.0.principal)))
    }
}
