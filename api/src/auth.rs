//! Bearer-token authentication, permission checks and the `/api/auth` routes.

use crate::error::ApiError;
use crate::state::AppState;
use callaudit_db::auth::{self as db_auth, Principal};
use callaudit_db::pool;
use callaudit_domain::rbac::Permission;
use poem::Request;
use poem::web::Data;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, SecurityScheme, Tags};

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
}

/// A bearer token issued by `POST /api/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from(ApiError::internal("app state missing")))?;
    let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
    match db_auth::principal_for_token(&mut conn, bearer.token.trim()).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(ApiError::unauthorized("invalid or expired bearer token").into()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

impl BearerAuth {
    /// The principal if it holds `permission`, else 403 naming the permission.
    pub fn require(&self, permission: Permission) -> Result<&Principal, ApiError> {
        if self.0.can(permission) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!(
                "permission {permission} required (your roles: {})",
                if self.0.roles.is_empty() {
                    "none".to_string()
                } else {
                    self.0.roles.join(", ")
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

/// `/api/auth` routes.
pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Exchange e-mail and password for a bearer token.
    #[oai(path = "/api/auth/login", method = "post")]
    #[tracing::instrument(skip_all, name = "api.auth.login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, ApiError> {
        let mut conn = pool::get(&state.pool).await?;
        match db_auth::login(&mut conn, &body.email, &body.password, state.token_ttl).await? {
            Some((token, expires_at, principal)) => Ok(Json(LoginResponse {
                token,
                token_type: "Bearer".into(),
                expires_at,
                user: Me::from(&principal),
            })),
            None => Err(ApiError::unauthorized("invalid e-mail or password")),
        }
    }

    /// Who the bearer token belongs to, with roles and permissions.
    #[oai(path = "/api/auth/me", method = "get")]
    #[tracing::instrument(skip_all, name = "api.auth.me")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<Me>, ApiError> {
        Ok(Json(Me::from(&auth.0)))
    }
}
