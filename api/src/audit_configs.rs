//! `/api/audit-configs`: CRUD of audit configurations.

use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::state::AppState;
use callaudit_db::audit_configs::{self as db, DeleteOutcome, StoredAuditConfig};
use callaudit_db::pool;
use callaudit_domain::audit_config::{AuditConfigSpec, StepSpec};
use callaudit_domain::rbac::Permission;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

/// A step of a configuration.
#[derive(Debug, Clone, Object)]
pub struct StepBody {
    /// 1-based position, unique in the configuration.
    pub position: i32,
    /// Name.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Instructions for the auditor.
    #[oai(default)]
    pub instructions: String,
    /// Weight in the score (≥ 0).
    pub weight: f64,
    /// A NON_CONFORME critical step forces REJET.
    #[oai(default)]
    pub critical: bool,
    /// Control points ("points de contrôle"), in order.
    pub control_points: Vec<String>,
}

/// A configuration as submitted.
#[derive(Debug, Clone, Object)]
pub struct AuditConfigBody {
    /// Name.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Description.
    #[oai(default)]
    pub description: String,
    /// Usable for new audits (default true).
    #[oai(default = "default_true")]
    pub active: bool,
    /// Steps.
    pub steps: Vec<StepBody>,
}

fn default_true() -> bool {
    true
}

/// A stored configuration.
#[derive(Debug, Clone, Object)]
pub struct AuditConfigView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Usable for new audits.
    pub active: bool,
    /// Steps by position.
    pub steps: Vec<StepBody>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last update.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A configuration in a list.
#[derive(Debug, Clone, Object)]
pub struct AuditConfigSummary {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Usable for new audits.
    pub active: bool,
    /// Number of steps.
    pub steps: i64,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Creation answer.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(Json<AuditConfigView>),
}

/// Deletion answer.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

impl AuditConfigBody {
    fn spec(&self) -> Result<AuditConfigSpec, ApiError> {
        let spec = AuditConfigSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            steps: self
                .steps
                .iter()
                .map(|s| StepSpec {
                    position: s.position,
                    name: s.name.clone(),
                    instructions: s.instructions.clone(),
                    weight: s.weight,
                    critical: s.critical,
                    control_points: s.control_points.clone(),
                })
                .collect(),
        };
        spec.validate().map_err(ApiError::unprocessable)?;
        Ok(spec)
    }
}

impl From<StoredAuditConfig> for AuditConfigView {
    fn from(c: StoredAuditConfig) -> Self {
        AuditConfigView {
            id: c.id,
            name: c.spec.name,
            description: c.spec.description,
            active: c.active,
            steps: c
                .spec
                .steps
                .into_iter()
                .map(|s| StepBody {
                    position: s.position,
                    name: s.name,
                    instructions: s.instructions,
                    weight: s.weight,
                    critical: s.critical,
                    control_points: s.control_points,
                })
                .collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

async fn load(state: &AppState, id: Uuid) -> Result<AuditConfigView, ApiError> {
    let mut conn = pool::get(&state.pool).await?;
    db::get(&mut conn, id)
        .await?
        .map(Into::into)
        .ok_or_else(|| ApiError::not_found(format!("audit config {id} not found")))
}

operation_errors! {
    /// What `createAuditConfig` answers besides the new configuration.
    pub enum CreateAuditConfigError for "createAuditConfig" {
        /// The body is not a JSON `AuditConfigBody` (missing field, wrong type, name not
        /// of 1 to 200 characters).
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audit_configs:write`.
        403,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The configuration is invalid: no step or too many, positions not unique or
        /// below 1, a negative weight, a step without control points, an empty name or
        /// control point (the message says which).
        422,
        /// Postgres is unavailable; nothing was stored, retry later.
        503,
    }
}

operation_errors! {
    /// What `listAuditConfigs` answers besides the list.
    pub enum ListAuditConfigsError for "listAuditConfigs" {
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audit_configs:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `getAuditConfig` answers besides the configuration.
    pub enum GetAuditConfigError for "getAuditConfig" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audit_configs:read`.
        403,
        /// No configuration with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `replaceAuditConfig` answers besides the configuration as replaced.
    pub enum ReplaceAuditConfigError for "replaceAuditConfig" {
        /// The id is not a UUID, or the body is not a JSON `AuditConfigBody`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audit_configs:write`.
        403,
        /// No configuration with this id.
        404,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The configuration is invalid: no step or too many, positions not unique or
        /// below 1, a negative weight, a step without control points, an empty name or
        /// control point (the message says which).
        422,
        /// Postgres is unavailable; nothing was changed, retry later.
        503,
    }
}

operation_errors! {
    /// What `deleteAuditConfig` answers besides 204.
    pub enum DeleteAuditConfigError for "deleteAuditConfig" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audit_configs:delete`.
        403,
        /// No configuration with this id.
        404,
        /// Audits use this configuration: deactivate it (`active: false`) instead.
        409,
        /// Postgres is unavailable; nothing was deleted, retry later.
        503,
    }
}

/// Audit configuration routes.
pub struct AuditConfigsApi;

#[OpenApi(tag = "ApiTags::AuditConfigs")]
impl AuditConfigsApi {
    /// Create a configuration (validated: unique positions, weights ≥ 0, ≥ 1 control point per step).
    #[oai(
        path = "/api/audit-configs",
        method = "post",
        operation_id = "createAuditConfig"
    )]
    #[tracing::instrument(skip_all, name = "api.audit_configs.create")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        body: Json<AuditConfigBody>,
    ) -> Result<Created, CreateAuditConfigError> {
        let who = auth.require(Permission::AUDIT_CONFIGS_WRITE)?;
        let spec = body.spec()?;
        let id = {
            let mut conn = pool::get(&state.pool).await?;
            let id = db::create(&mut conn, &spec, Some(who.user.id)).await?;
            if !body.active {
                db::replace(&mut conn, id, &spec, false).await?;
            }
            id
        };
        Ok(Created::Created(Json(load(&state, id).await?)))
    }

    /// List configurations, newest first.
    #[oai(
        path = "/api/audit-configs",
        method = "get",
        operation_id = "listAuditConfigs"
    )]
    #[tracing::instrument(skip_all, name = "api.audit_configs.list")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
    ) -> Result<Json<Vec<AuditConfigSummary>>, ListAuditConfigsError> {
        auth.require(Permission::AUDIT_CONFIGS_READ)?;
        let mut conn = pool::get(&state.pool).await?;
        let rows = db::list(&mut conn).await?;
        Ok(Json(
            rows.into_iter()
                .map(|(id, name, active, steps, created_at)| AuditConfigSummary {
                    id,
                    name,
                    active,
                    steps,
                    created_at,
                })
                .collect(),
        ))
    }

    /// One configuration with its steps and control points.
    #[oai(
        path = "/api/audit-configs/:id",
        method = "get",
        operation_id = "getAuditConfig"
    )]
    #[tracing::instrument(skip_all, name = "api.audit_configs.get", fields(audit_config.id = %id.0))]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<AuditConfigView>, GetAuditConfigError> {
        auth.require(Permission::AUDIT_CONFIGS_READ)?;
        Ok(Json(load(&state, id.0).await?))
    }

    /// Replace a configuration (name, description, active, steps).
    #[oai(
        path = "/api/audit-configs/:id",
        method = "put",
        operation_id = "replaceAuditConfig"
    )]
    #[tracing::instrument(skip_all, name = "api.audit_configs.replace", fields(audit_config.id = %id.0))]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<AuditConfigBody>,
    ) -> Result<Json<AuditConfigView>, ReplaceAuditConfigError> {
        auth.require(Permission::AUDIT_CONFIGS_WRITE)?;
        let spec = body.spec()?;
        let mut conn = pool::get(&state.pool).await?;
        if !db::replace(&mut conn, id.0, &spec, body.active).await? {
            return Err(ApiError::not_found(format!("audit config {} not found", id.0)).into());
        }
        drop(conn);
        Ok(Json(load(&state, id.0).await?))
    }

    /// Delete a configuration no audit uses (409 otherwise: deactivate it instead).
    #[oai(
        path = "/api/audit-configs/:id",
        method = "delete",
        operation_id = "deleteAuditConfig"
    )]
    #[tracing::instrument(skip_all, name = "api.audit_configs.delete", fields(audit_config.id = %id.0))]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Deleted, DeleteAuditConfigError> {
        auth.require(Permission::AUDIT_CONFIGS_DELETE)?;
        let mut conn = pool::get(&state.pool).await?;
        match db::delete(&mut conn, id.0).await? {
            DeleteOutcome::Deleted => Ok(Deleted::NoContent),
            DeleteOutcome::NotFound => {
                Err(ApiError::not_found(format!("audit config {} not found", id.0)).into())
            }
            DeleteOutcome::InUse(n) => Err(ApiError::conflict(format!(
                "audit config {} is used by {n} audit(s); set active=false instead",
                id.0
            ))
            .into()),
        }
    }
}
