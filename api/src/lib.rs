//! The thin HTTP face of callaudit: validates requests, starts Temporal workflows, reads
//! Postgres and streams events (SSE). Every `/api` route requires a bearer token and a
//! permission; every error is JSON.

pub mod audit_configs;
pub mod audits;
pub mod auth;
pub mod automation;
pub mod batches;
pub mod chat;
pub mod client_addr;
pub(crate) mod disclosure;
pub mod error;
pub mod events;
pub mod fetch_jobs;
pub mod fiches;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod personal_data;
pub mod realtime;
pub mod reruns;
pub mod reviews;
pub mod sse;
pub mod state;
pub mod temporal;

use poem::http::Method;
use poem::middleware::{Cors, Tracing};
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;
use std::sync::Arc;

pub use state::AppState;

/// The APIs served.
pub type Apis = (
    health::HealthApi,
    auth::AuthApi,
    audit_configs::AuditConfigsApi,
    audits::AuditsApi,
    reruns::RerunsApi,
    reviews::ReviewsApi,
    fiches::FichesApi,
    fetch_jobs::FetchJobsApi,
    personal_data::PersonalDataApi,
    chat::ChatApi,
    batches::BatchesApi,
    automation::AutomationApi,
    realtime::RealtimeApi,
);

/// The OpenAPI service with every route.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            auth::AuthApi,
            audit_configs::AuditConfigsApi,
            audits::AuditsApi,
            reruns::RerunsApi,
            reviews::ReviewsApi,
            fiches::FichesApi,
            fetch_jobs::FetchJobsApi,
            personal_data::PersonalDataApi,
            chat::ChatApi,
            batches::BatchesApi,
            automation::AutomationApi,
            realtime::RealtimeApi,
        ),
        "callaudit",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Audits recorded sales calls: fetch fiches, transcribe, check each step with an \
             LLM, verify evidence, score deterministically. Authenticate with \
             `POST /api/auth/login`, then send `Authorization: Bearer <token>`.",
    )
}

/// The OpenAPI document as pretty JSON (snapshot-tested).
pub fn openapi_json() -> String {
    openapi().spec()
}

/// The whole application: API, `/openapi.json`, Swagger UI at `/docs`, JSON errors,
/// request metrics.
pub fn app(state: AppState) -> impl Endpoint {
    let api = openapi();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let metrics: Arc<metrics::Metrics> = state.metrics.clone();
    let max_body = state.max_body_bytes;
    let origins = state.cors_allowed_origins.clone();
    // Browsers on an allowed origin may call every route and follow the streams
    // (preflight included); any other origin gets no CORS headers, so the browser
    // refuses its reads.
    let cors = Cors::new()
        .allow_origins(origins.iter().cloned())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            "authorization",
            "content-type",
            "last-event-id",
            "idempotency-key",
        ])
        .expose_headers(["retry-after"])
        .max_age(600);
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(state)
        .around(move |ep, req| limits::limit_body(ep, req, max_body))
        .catch_all_error(error::json_errors)
        .around(move |ep, req| metrics::record(ep, req, metrics.clone()))
        .with_if(!origins.is_empty(), cors)
        .with(Tracing)
}
