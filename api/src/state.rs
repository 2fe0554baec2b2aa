//! Shared state of the api process, built in one place ([`AppState::build`]) for the
//! binary, the bench and the tests alike.

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::temporal::{TemporalGateway, TemporalSettings};
use callaudit_db::Pool;
use callaudit_db::login_throttle::LoginThrottleSettings;
use callaudit_domain::cost::PriceTable;
use callaudit_upstream::fiches::{FicheService, FicheSettings};
use callaudit_upstream::metrics::VendorMetrics;
use callaudit_upstream::openai::OpenAiClient;
use std::net::IpAddr;
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
    pub fiches: FicheService,
    /// Steps an audit analyses at once (`AUDIT_STEP_PARALLELISM`).
    pub step_parallelism: u32,
    /// Largest request body accepted (`API_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Failed-login limits (`AUTH_LOGIN_*`).
    pub login_throttle: LoginThrottleSettings,
    /// Proxies whose `X-Forwarded-For` names the client (`API_TRUSTED_PROXIES`).
    pub trusted_proxies: Arc<[IpAddr]>,
    /// Origins allowed by CORS (`API_CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: Arc<[String]>,
    /// Prices for cost estimates (`COST_PRICE_TABLE`).
    pub prices: Option<Arc<PriceTable>>,
    /// The LLM the chat streams its answers from (`OPENAI_*`); none: chat answers 503.
    pub chat: Option<ChatLlm>,
    /// How batch audits run (`BATCH_AUDIT_WINDOW`, `BATCH_CONTINUE_AS_NEW_AFTER`).
    pub batches: BatchSettings,
    /// How automation schedules are checked (`WEBHOOK_ALLOWED_ORIGINS`).
    pub automation: AutomationSettings,
}

/// How automation schedules are checked on write, and how their realtime channels are
/// signed.
#[derive(Debug, Clone, Default)]
pub struct AutomationSettings {
    /// The SSRF guard's allowlist (`WEBHOOK_ALLOWED_ORIGINS`).
    pub webhooks: callaudit_upstream::webhook::WebhookPolicy,
    /// Pusher's credentials (`PUSHER_*`): `POST /api/realtime/pusher/auth` signs with
    /// them; none, it answers 503.
    pub pusher: Option<callaudit_upstream::pusher::PusherSettings>,
}

/// How the batch audits this api starts run.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Audits a batch runs at once when its request does not say (`BATCH_AUDIT_WINDOW`).
    pub window: u32,
    /// Children one run of `BatchAuditWorkflow` starts before it continues as new
    /// (`BATCH_CONTINUE_AS_NEW_AFTER`; small values are for tests).
    pub continue_as_new_after: u32,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            window: callaudit_domain::batch::DEFAULT_WINDOW,
            continue_as_new_after: callaudit_domain::batch::DEFAULT_CONTINUE_AS_NEW_AFTER,
        }
    }
}

/// The LLM of the chat: an OpenAI-compatible client and the model to ask.
#[derive(Debug, Clone)]
pub struct ChatLlm {
    /// Client (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `UPSTREAM_TIMEOUT_MS`).
    pub client: OpenAiClient,
    /// Model (`OPENAI_MODEL_CHAT`).
    pub model: String,
    /// What is redacted before the LLM (`PII_REDACTION`).
    pub pii_redaction: callaudit_domain::personal_data::PiiRedaction,
}

/// What the api is built from (parsed configuration).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Postgres URL.
    pub database_url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Temporal.
    pub temporal: TemporalSettings,
    /// Bearer token lifetime.
    pub token_ttl: chrono::Duration,
    /// Steps an audit analyses at once.
    pub step_parallelism: u32,
    /// CRM access.
    pub fiches: FicheSettings,
    /// Identity of this replica for CRM leases.
    pub holder: String,
    /// Event streams this replica serves at once (`API_MAX_STREAMS`).
    pub max_streams: usize,
    /// Largest request body accepted (`API_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Failed-login limits per e-mail and per client address (`AUTH_LOGIN_*`).
    pub login_throttle: LoginThrottleSettings,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`
    /// (`API_TRUSTED_PROXIES`; none by default: the TCP peer is the client).
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins a browser frontend may call the api from (`API_CORS_ALLOWED_ORIGINS`;
    /// none by default: no CORS headers at all).
    pub cors_allowed_origins: Vec<String>,
    /// Prices for the audits' cost estimates (`COST_PRICE_TABLE`; none: totals only).
    pub prices: Option<PriceTable>,
    /// How often unsettled audits are reconciled with their workflows
    /// (`API_RECONCILE_EVERY_S`).
    pub reconcile_every: std::time::Duration,
    /// How often a stream re-reads its topic without a notification (`API_SSE_POLL_MS`).
    pub sse_poll_every: std::time::Duration,
    /// The chat's LLM (none when `OPENAI_API_KEY` is unset: chat answers 503). Its calls
    /// and tokens are counted in the api's `/metrics`.
    pub chat: Option<ChatLlm>,
    /// How batch audits run.
    pub batches: BatchSettings,
    /// How automation schedules are checked.
    pub automation: AutomationSettings,
}

impl AppState {
    /// Builds the state and starts its background work — the LISTEN loop that feeds SSE
    /// streams and the reconcile sweep of unsettled audits; returns their task (it runs
    /// until aborted or the process ends).
    pub fn build(
        settings: ApiSettings,
    ) -> Result<(AppState, tokio::task::JoinHandle<()>), callaudit_db::DbError> {
        let pool = callaudit_db::connect_pool(&settings.database_url, settings.pool_size)?;
        let events = EventHub::new(settings.max_streams).with_poll(settings.sse_poll_every);
        let metrics = Arc::new(Metrics::new());
        let chat = match settings.chat {
            Some(llm) => {
                let vendor = VendorMetrics::register(&metrics.registry)
                    .expect("vendor metric names are free in the api's registry");
                Some(ChatLlm {
                    client: llm.client.with_metrics(vendor),
                    ..llm
                })
            }
            None => None,
        };
        let listen = events.clone().run_listener(settings.database_url);
        let state = AppState {
            fiches: FicheService::new(pool.clone(), settings.fiches, settings.holder),
            pool,
            temporal: Arc::new(TemporalGateway::new(settings.temporal)),
            token_ttl: settings.token_ttl,
            metrics,
            events,
            step_parallelism: settings.step_parallelism,
            max_body_bytes: settings.max_body_bytes,
            login_throttle: settings.login_throttle,
            trusted_proxies: settings.trusted_proxies.into(),
            cors_allowed_origins: settings.cors_allowed_origins.into(),
            prices: settings.prices.map(Arc::new),
            chat,
            batches: settings.batches,
            automation: settings.automation,
        };
        let sweep = crate::audits::reconcile_sweep(state.clone(), settings.reconcile_every);
        let background = tokio::spawn(async move {
            tokio::join!(listen, sweep);
        });
        Ok((state, background))
    }
}
