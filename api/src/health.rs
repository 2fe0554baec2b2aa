//! `/health` (the process answers), `/ready` (Postgres and Temporal answer), `/metrics`.

use crate::auth::ApiTags;
use crate::state::AppState;
use diesel_async::SimpleAsyncConnection;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::time::Duration;

/// Liveness answer.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// Version of callaudit.
    pub version: String,
}

/// State of one dependency.
#[derive(Debug, Object)]
pub struct DependencyCheck {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Why it is unavailable (no secrets).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

/// Readiness report.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Postgres.
    pub postgres: DependencyCheck,
    /// Temporal.
    pub temporal: DependencyCheck,
}

/// `/ready` answers.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Both dependencies answer.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// At least one does not; the body says which.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

fn check(result: Result<(), String>) -> DependencyCheck {
    match result {
        Ok(()) => DependencyCheck {
            status: "ok".into(),
            error: None,
        },
        Err(e) => DependencyCheck {
            status: "unavailable".into(),
            error: Some(e),
        },
    }
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    let probe = async {
        let mut conn = callaudit_db::pool::get(&state.pool)
            .await
            .map_err(|e| e.to_string())?;
        conn.batch_execute("SELECT 1")
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Health routes.
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process is up (no dependency checked).
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// Readiness: 200 only when Postgres and Temporal both answer; 503 names the failure.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&AppState>) -> ReadyResponse {
        // The raw errors go to the log; the answer names the failing dependency only (it
        // is unauthenticated: no driver messages, hosts of the database or stack details).
        let (pg, temporal) = tokio::join!(
            async {
                check_postgres(&state).await.map_err(|e| {
                    tracing::warn!(error = %e, "readiness: Postgres unavailable");
                    "Postgres does not answer".to_string()
                })
            },
            async {
                state.temporal.check().await.map_err(|e| {
                    tracing::warn!(error = %e, "readiness: Temporal unavailable");
                    format!(
                        "Temporal does not answer at {}",
                        state.temporal.settings.address
                    )
                })
            }
        );
        let ok = pg.is_ok() && temporal.is_ok();
        let body = Readiness {
            status: if ok { "ready" } else { "not_ready" }.into(),
            postgres: check(pg),
            temporal: check(temporal),
        };
        if ok {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }

    /// Prometheus metrics (text exposition format).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&AppState>) -> PlainText<String> {
        PlainText(state.metrics.render())
    }
}
