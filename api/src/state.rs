//! Shared state of the api process.

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::temporal::TemporalGateway;
use callaudit_db::Pool;
use std::sync::Arc;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Postgres pool.
    pub pool: Pool,
    /// Lazily connected Temporal client.
    pub temporal: Arc<TemporalGateway>,
    /// Bearer token lifetime.
    pub token_ttl: chrono::Duration,
    /// Prometheus registry and HTTP metrics.
    pub metrics: Arc<Metrics>,
    /// Fan-out of `pg_notify` topics to SSE streams.
    pub events: EventHub,
    /// CRM access (cache + global caps) for fiche reads and the pre-audit check.
    pub fiches: callaudit_activities::fiches::FicheService,
    /// Steps an audit analyses at once (`AUDIT_STEP_PARALLELISM`).
    pub step_parallelism: u32,
}
