//! Command line and environment: every setting is a flag with an environment variable,
//! parsed once at start into typed structs. Secrets are trimmed and unquoted on parse
//! and never printed (clap is told to hide their values in `--help`).

use callaudit_domain::secret::Secret;
use clap::{Args, Parser, Subcommand};

mod tools;
pub use tools::*;

fn secret(raw: &str) -> Result<Secret, String> {
    Ok(Secret::normalized(raw))
}

/// All environment variables callaudit reads, for the top-level help.
pub const ENV_HELP: &str = "\
Environment variables (each also a flag of the subcommands that use it):
  DATABASE_URL                      Postgres URL (required by api, worker, migrate, seed-auth, demo)
  DATABASE_POOL_SIZE                connections per process (default 10)
  API_ADDR                          api listen address (default 0.0.0.0:8080)
  TEMPORAL_ADDRESS                  Temporal frontend host:port or URL (default 127.0.0.1:7233)
  TEMPORAL_NAMESPACE                namespace (default default)
  TEMPORAL_TASK_QUEUE               task queue of workflows and activities (default callaudit)
  TEMPORAL_API_KEY                  Temporal Cloud API key (secret; enables TLS)
  TEMPORAL_TLS                      use TLS without an API key (true/false, default false)
  TEMPORAL_UI_URL                   base URL of the Temporal UI for links (default http://localhost:8233)
  CRM_BASE_URL, CRM_API_KEY         CRM gateway (key secret)
  ELEVENLABS_BASE_URL               default https://api.elevenlabs.io
  ELEVENLABS_API_KEY                secret; trimmed and unquoted
  ELEVENLABS_MODEL_ID               default scribe_v1
  OPENAI_BASE_URL                   default https://api.openai.com/v1 (worker: audits; api: chat)
  OPENAI_API_KEY                    secret (worker: audits; api: chat, which answers 503 without it)
  OPENAI_MODEL_AUDIT                default gpt-4.1-mini
  OPENAI_MODEL_CHAT                 model of the api's chat answers (default gpt-4.1-mini)
  UPSTREAM_TIMEOUT_MS               HTTP timeout of upstream calls, a streamed chat answer included (default 120000)
  FICHE_FORCE_REFRESH_COOLDOWN_MS   min interval between forced refreshes of one fiche (default 1800000)
  FICHE_SALES_SEARCH_CONCURRENCY    global cap on CRM sales searches (default 1)
  FICHE_FETCH_CONCURRENCY           global cap on CRM fiche detail fetches (default 3)
  AUDIT_STEP_PARALLELISM            steps analysed at once per audit (default 3)
  BATCH_AUDIT_WINDOW                audits a batch runs at once unless its request says (default 5, at most 50)
  BATCH_CONTINUE_AS_NEW_AFTER       audits one run of a batch's workflow starts before continuing as new (default 200)
  WORKER_MAX_CONCURRENT_ACTIVITIES  activities one worker runs at once (default 50; its pool holds one connection per 4)
  WORKER_SHUTDOWN_GRACE_S           seconds in-flight activities get to finish on SIGTERM (default 30)
  WORKER_METRICS_ADDR               worker's Prometheus /metrics address, e.g. 0.0.0.0:9464 (unset: off)
  API_MAX_STREAMS                   event streams (SSE) one api replica serves at once (default 1000)
  API_RECONCILE_EVERY_S             seconds between sweeps reconciling audits whose workflow ended unrecorded (default 60)
  API_SSE_POLL_MS                   ms after which a stream re-reads its topic without a notification (default 5000)
  COST_PRICE_TABLE                  JSON price table for audit cost estimates (default none: usage totals only)
  API_CORS_ALLOWED_ORIGINS          browser origins allowed to call the api (CORS; comma-separated; default none)
  API_MAX_BODY_BYTES                largest request body the api accepts (default 1048576; 413 past it)
  PII_REDACTION                     off, prompts (default: personal data as placeholders in every LLM prompt) or stored (also transcripts at rest)
  RETENTION_DAYS_TRANSCRIPTS        days a completed transcript is kept (default: forever)
  RETENTION_DAYS_CHAT               days a chat message is kept (default: forever)
  RETENTION_DAYS_AUDIO_URLS         days a recording's audio URL is kept (default: forever)
  RETENTION_CRON                    when the retention schedule runs, UTC cron (default 0 3 * * *)
  AUTOMATION_SCHEDULER_CRON         when the automation reconciler sweeps, UTC (default * * * * *)
  AUTOMATION_MAX_RECORDINGS_PER_FICHE  skip fiches with more recordings (0 = no limit)
  WEBHOOK_ALLOWED_ORIGINS           comma-separated origins webhooks may target
  PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET, PUSHER_CLUSTER   realtime (secret: PUSHER_SECRET)
  PUSHER_BASE_URL                   Pusher HTTP API base URL instead of https://api-{PUSHER_CLUSTER}.pusher.com
  PUSHER_TIMEOUT_MS                 timeout of one call to Pusher (default 10000)
  SMTP_HOST, SMTP_PORT, SMTP_SECURE, SMTP_USER, SMTP_PASS, SMTP_FROM, SMTP_TIMEOUT_MS   e-mail (secret: SMTP_PASS)
  AUTH_SEED_ADMIN_EMAIL, AUTH_SEED_ADMIN_PASSWORD   admin user upserted at start (password secret)
  AUTH_TOKEN_TTL_HOURS              bearer token lifetime (default 12)
  AUTH_LOGIN_MAX_FAILURES_PER_EMAIL    failed logins per e-mail per window before 429 (default 5)
  AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS  failed logins per client address per window before 429 (default 20)
  AUTH_LOGIN_FAILURE_WINDOW_S       window of those counts, seconds (default 900)
  API_TRUSTED_PROXIES               comma-separated proxy IPs whose X-Forwarded-For names the client (none by default)
  SIM_ADDR                          simulators listen address (default 127.0.0.1:9090)
  LOG_FORMAT                        text or json (default text); RUST_LOG filters (default info)";

/// callaudit: audits recorded sales calls with Temporal workflows, Postgres and an LLM.
#[derive(Debug, Parser)]
#[command(name = "callaudit", version, about, after_long_help = ENV_HELP)]
pub struct Cli {
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (+ SSE, /docs, /metrics); applies migrations and seeds RBAC first.
    Api(Box<ApiArgs>),
    /// Run a Temporal worker (workflows + activities); applies migrations first.
    Worker(Box<WorkerArgs>),
    /// Apply pending migrations (or revert them all with --revert-all).
    Migrate(MigrateArgs),
    /// Upsert roles, permissions and the optional admin user.
    SeedAuth(SeedAuthArgs),
    /// Serve the CRM / ElevenLabs / OpenAI simulators.
    Sim(SimArgs),
    /// Run the demo against running services (see README).
    Demo(DemoArgs),
    /// Re-verify an analysis against a transcript and print why each claim stands or falls.
    Gate(GateArgs),
    /// Measure evidence gating on generated long calls: indexed against exhaustive search.
    GateBench(GateBenchArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Measure the personal-data detector on the labelled set: recall and precision per
    /// kind against the targets (exit code 1 when one is missed).
    PiiEval(PiiEvalArgs),
    /// Measure audits/s, latency, worker RSS and CPU against a bare Temporal baseline.
    Bench(BenchArgs),
    /// The bench's bare worker: no-op activities, no database (started by `bench`).
    #[command(hide = true)]
    BenchBareWorker(BareWorkerArgs),
}

/// Database settings.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Postgres URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Pool size per process.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 10)]
    pub database_pool_size: usize,
}

impl DbArgs {
    /// The URL, or a one-line error naming the variable.
    pub fn url(&self) -> anyhow::Result<&str> {
        match self.database_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => Ok(u),
            _ => anyhow::bail!("missing required configuration: DATABASE_URL (or --database-url)"),
        }
    }
}

/// Temporal connection settings.
#[derive(Debug, Clone, Args)]
pub struct TemporalArgs {
    /// Temporal frontend address.
    #[arg(long, env = "TEMPORAL_ADDRESS", default_value = "127.0.0.1:7233")]
    pub temporal_address: String,
    /// Namespace.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
    /// Task queue.
    #[arg(long, env = "TEMPORAL_TASK_QUEUE", default_value = "callaudit")]
    pub temporal_task_queue: String,
    /// Temporal Cloud API key.
    #[arg(long, env = "TEMPORAL_API_KEY", hide_env_values = true, value_parser = secret)]
    pub temporal_api_key: Option<Secret>,
    /// Use TLS.
    #[arg(long, env = "TEMPORAL_TLS", default_value_t = false)]
    pub temporal_tls: bool,
    /// Base URL of the Temporal UI (for links).
    #[arg(long, env = "TEMPORAL_UI_URL", default_value = "http://localhost:8233")]
    pub temporal_ui_url: String,
}

impl TemporalArgs {
    /// Typed settings.
    pub fn settings(&self) -> callaudit_api::temporal::TemporalSettings {
        callaudit_api::temporal::TemporalSettings {
            address: self.temporal_address.clone(),
            namespace: self.temporal_namespace.clone(),
            task_queue: self.temporal_task_queue.clone(),
            api_key: self.temporal_api_key.clone(),
            tls: self.temporal_tls,
            ui_url: self.temporal_ui_url.trim_end_matches('/').to_string(),
        }
    }
}

/// Auth seeding.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// E-mail of the admin user upserted at start.
    #[arg(long, env = "AUTH_SEED_ADMIN_EMAIL")]
    pub auth_seed_admin_email: Option<String>,
    /// Its password.
    #[arg(long, env = "AUTH_SEED_ADMIN_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub auth_seed_admin_password: Option<Secret>,
}

/// `api` arguments.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Listen address.
    #[arg(long, env = "API_ADDR", default_value = "0.0.0.0:8080")]
    pub api_addr: String,
    /// Bearer token lifetime in hours.
    #[arg(long, env = "AUTH_TOKEN_TTL_HOURS", default_value_t = 12)]
    pub auth_token_ttl_hours: i64,
    /// Failed logins one e-mail may have per window; past it, 429 with Retry-After.
    #[arg(long, env = "AUTH_LOGIN_MAX_FAILURES_PER_EMAIL", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub auth_login_max_failures_per_email: u32,
    /// Failed logins one client address (IPv4, or IPv6 /64) may have per window, over all
    /// e-mails; past it, 429 with Retry-After.
    #[arg(long, env = "AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_login_max_failures_per_address: u32,
    /// Window of the failed-login counts, in seconds.
    #[arg(long, env = "AUTH_LOGIN_FAILURE_WINDOW_S", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_login_failure_window_s: u64,
    /// Reverse proxies (IP addresses, comma-separated) trusted to name the client in
    /// X-Forwarded-For; by default none, and the TCP peer is the client.
    #[arg(long, env = "API_TRUSTED_PROXIES", value_delimiter = ',')]
    pub api_trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins (scheme://host[:port], comma-separated) of browser frontends allowed to
    /// call the api (CORS, preflight included); by default none.
    #[arg(long, env = "API_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub api_cors_allowed_origins: Vec<String>,
    /// Origins (scheme://host[:port], comma-separated) automation webhooks may target over
    /// http or at a non-public address (the SSRF guard's allowlist); by default none.
    #[arg(long, env = "WEBHOOK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub webhook_allowed_origins: Vec<String>,
    /// Price table of the audits' cost estimates, as JSON: {"currency": "USD", "models":
    /// {"<model>": {"input_per_1m_tokens": …, "output_per_1m_tokens": …}},
    /// "speech_to_text_per_hour": …}; unset, audits show usage totals only.
    #[arg(long, env = "COST_PRICE_TABLE")]
    pub cost_price_table: Option<String>,
    /// Seconds between two sweeps reconciling audits whose workflows ended without
    /// recording it (terminated, timed out).
    #[arg(long, env = "API_RECONCILE_EVERY_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub api_reconcile_every_s: u64,
    /// Milliseconds after which an event stream re-reads its topic even without a
    /// notification (what a lost NOTIFY costs at most; live events do not wait for it).
    #[arg(long, env = "API_SSE_POLL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub api_sse_poll_ms: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub crm: CrmArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub chat: ChatLlmArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub pusher: PusherArgs,
    /// Steps analysed at once per audit (set on the workflows this api starts).
    #[arg(long, env = "AUDIT_STEP_PARALLELISM", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub audit_step_parallelism: u32,
    /// Audits a batch runs at once when its request names no `window`.
    #[arg(long, env = "BATCH_AUDIT_WINDOW", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub batch_audit_window: u32,
    /// Audits one run of a batch's workflow starts before it continues as new (keeps the
    /// history of a batch of thousands small).
    #[arg(long, env = "BATCH_CONTINUE_AS_NEW_AFTER", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    pub batch_continue_as_new_after: u32,
    /// Event streams (SSE) this replica serves at once; past it, 503.
    #[arg(long, env = "API_MAX_STREAMS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub api_max_streams: u64,
    /// Largest request body the api accepts, in bytes; past it, 413.
    #[arg(long, env = "API_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub api_max_body_bytes: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub temporal: TemporalArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
}

/// Upstream vendor settings (worker side).
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub crm: CrmArgs,
    /// ElevenLabs base URL.
    #[arg(
        long,
        env = "ELEVENLABS_BASE_URL",
        default_value = "https://api.elevenlabs.io"
    )]
    pub elevenlabs_base_url: String,
    /// ElevenLabs key.
    #[arg(long, env = "ELEVENLABS_API_KEY", hide_env_values = true, value_parser = secret)]
    pub elevenlabs_api_key: Option<Secret>,
    /// ElevenLabs model.
    #[arg(long, env = "ELEVENLABS_MODEL_ID", default_value = "scribe_v1")]
    pub elevenlabs_model_id: String,
    /// OpenAI-compatible base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,
    /// OpenAI key.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = secret)]
    pub openai_api_key: Option<Secret>,
    /// Model for audits.
    #[arg(long, env = "OPENAI_MODEL_AUDIT", default_value = "gpt-4.1-mini")]
    pub openai_model_audit: String,
    /// Model for chat.
    #[arg(long, env = "OPENAI_MODEL_CHAT", default_value = "gpt-4.1-mini")]
    pub openai_model_chat: String,
    /// What is redacted before the LLM: `off`, `prompts` (personal data as typed
    /// placeholders in every prompt) or `stored` (also transcripts at rest).
    #[arg(long, env = "PII_REDACTION", default_value = "prompts", value_parser = pii_redaction)]
    pub pii_redaction: callaudit_domain::personal_data::PiiRedaction,
}

fn pii_redaction(s: &str) -> Result<callaudit_domain::personal_data::PiiRedaction, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("PII_REDACTION must be off, prompts or stored, got {s:?}"))
}

/// The LLM the api's chat streams its answers from (the timeout is `UPSTREAM_TIMEOUT_MS`,
/// of the CRM settings).
#[derive(Debug, Clone, Args)]
pub struct ChatLlmArgs {
    /// OpenAI-compatible base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,
    /// OpenAI key; unset, the chat routes answer 503.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = secret)]
    pub openai_api_key: Option<Secret>,
    /// Model for chat.
    #[arg(long, env = "OPENAI_MODEL_CHAT", default_value = "gpt-4.1-mini")]
    pub openai_model_chat: String,
    /// What is redacted before the LLM (`off`, `prompts`, `stored`).
    #[arg(long, env = "PII_REDACTION", default_value = "prompts", value_parser = pii_redaction)]
    pub pii_redaction: callaudit_domain::personal_data::PiiRedaction,
}

impl ChatLlmArgs {
    /// The chat's LLM, when a key is set.
    pub fn llm(&self, timeout: std::time::Duration) -> Option<callaudit_api::state::ChatLlm> {
        present(&self.openai_api_key).map(|key| callaudit_api::state::ChatLlm {
            client: callaudit_upstream::openai::OpenAiClient::new(
                self.openai_base_url.trim(),
                key,
                timeout,
            ),
            model: self.openai_model_chat.trim().to_string(),
            pii_redaction: self.pii_redaction,
        })
    }
}

/// CRM gateway settings (api and worker: both fetch fiches under the same global caps).
#[derive(Debug, Clone, Args)]
pub struct CrmArgs {
    /// CRM gateway base URL.
    #[arg(long, env = "CRM_BASE_URL")]
    pub crm_base_url: Option<String>,
    /// CRM gateway key.
    #[arg(long, env = "CRM_API_KEY", hide_env_values = true, value_parser = secret)]
    pub crm_api_key: Option<Secret>,
    /// HTTP timeout of upstream calls, ms.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 120_000)]
    pub upstream_timeout_ms: u64,
    /// Min interval between forced refreshes of one fiche, ms.
    #[arg(
        long,
        env = "FICHE_FORCE_REFRESH_COOLDOWN_MS",
        default_value_t = 1_800_000
    )]
    pub fiche_force_refresh_cooldown_ms: u64,
    /// Global cap on concurrent CRM sales searches.
    #[arg(long, env = "FICHE_SALES_SEARCH_CONCURRENCY", default_value_t = 1)]
    pub fiche_sales_search_concurrency: u32,
    /// Global cap on concurrent CRM detail fetches.
    #[arg(long, env = "FICHE_FETCH_CONCURRENCY", default_value_t = 3)]
    pub fiche_fetch_concurrency: u32,
}

impl CrmArgs {
    /// HTTP timeout of upstream calls.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.upstream_timeout_ms.max(1000))
    }

    /// How fiches are fetched: the CRM client (when configured), caps and cooldown.
    pub fn fiche_settings(&self) -> callaudit_upstream::fiches::FicheSettings {
        let crm = match (&self.crm_base_url, present(&self.crm_api_key)) {
            (Some(url), Some(key)) if !url.trim().is_empty() => Some(
                callaudit_upstream::crm::CrmClient::new(url.trim(), key, self.timeout()),
            ),
            _ => None,
        };
        callaudit_upstream::fiches::FicheSettings {
            crm,
            fetch_concurrency: self.fiche_fetch_concurrency,
            search_concurrency: self.fiche_sales_search_concurrency,
            force_refresh_cooldown: std::time::Duration::from_millis(
                self.fiche_force_refresh_cooldown_ms,
            ),
        }
    }
}

/// Retention of personal data: with any limit set, the worker keeps a Temporal Schedule
/// running `RetentionWorkflow` (`callaudit-retention:{task queue}`); with none, it removes
/// it.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Days a completed transcript is kept (unset: forever).
    #[arg(long, env = "RETENTION_DAYS_TRANSCRIPTS", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days_transcripts: Option<u32>,
    /// Days a chat message is kept (unset: forever).
    #[arg(long, env = "RETENTION_DAYS_CHAT", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days_chat: Option<u32>,
    /// Days a recording's audio URL is kept (unset: forever).
    #[arg(long, env = "RETENTION_DAYS_AUDIO_URLS", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days_audio_urls: Option<u32>,
    /// When the retention schedule runs (cron, UTC).
    #[arg(long, env = "RETENTION_CRON", default_value = "0 3 * * *")]
    pub retention_cron: String,
}

impl RetentionArgs {
    /// The limits, as the schedule's workflow input.
    pub fn limits(&self) -> callaudit_domain::personal_data::RetentionLimits {
        callaudit_domain::personal_data::RetentionLimits {
            transcripts_days: self.retention_days_transcripts,
            chat_days: self.retention_days_chat,
            audio_urls_days: self.retention_days_audio_urls,
        }
    }
}

/// Pusher Channels (realtime): the worker relays events to it, the api signs
/// subscriptions to its private channels. Off unless app id, key and secret are set.
#[derive(Debug, Clone, Args)]
pub struct PusherArgs {
    /// Pusher app id.
    #[arg(long, env = "PUSHER_APP_ID")]
    pub pusher_app_id: Option<String>,
    /// Pusher key.
    #[arg(long, env = "PUSHER_KEY")]
    pub pusher_key: Option<String>,
    /// Pusher secret.
    #[arg(long, env = "PUSHER_SECRET", hide_env_values = true, value_parser = secret)]
    pub pusher_secret: Option<Secret>,
    /// Pusher cluster: the HTTP API is https://api-{cluster}.pusher.com (default mt1).
    #[arg(long, env = "PUSHER_CLUSTER")]
    pub pusher_cluster: Option<String>,
    /// Base URL of the HTTP API instead of the cluster's (a Pusher-compatible endpoint,
    /// e.g. a local one in tests), e.g. http://127.0.0.1:9091.
    #[arg(long, env = "PUSHER_BASE_URL")]
    pub pusher_base_url: Option<String>,
    /// Timeout of one call to Pusher, ms.
    #[arg(long, env = "PUSHER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub pusher_timeout_ms: u64,
}

impl PusherArgs {
    /// The settings, when app id, key and secret are all set.
    pub fn settings(&self) -> Option<callaudit_upstream::pusher::PusherSettings> {
        callaudit_upstream::pusher::PusherSettings::from_parts(
            self.pusher_app_id.as_deref(),
            self.pusher_key.as_deref(),
            self.pusher_secret.as_ref(),
            self.pusher_cluster.as_deref(),
            self.pusher_base_url.as_deref(),
            std::time::Duration::from_millis(self.pusher_timeout_ms),
        )
    }
}

/// Notification settings (automation; used by later workflows).
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// When the automation reconciler sweeps (5-field cron, UTC).
    #[arg(long, env = "AUTOMATION_SCHEDULER_CRON", default_value = "* * * * *")]
    pub automation_scheduler_cron: String,
    /// Skip fiches with more recordings than this (0 = no limit).
    #[arg(long, env = "AUTOMATION_MAX_RECORDINGS_PER_FICHE", default_value_t = 0)]
    pub automation_max_recordings_per_fiche: u32,
    /// Origins webhooks may target (comma-separated).
    #[arg(long, env = "WEBHOOK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub webhook_allowed_origins: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub pusher: PusherArgs,
    /// SMTP host.
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port.
    #[arg(long, env = "SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// SMTP over TLS.
    #[arg(long, env = "SMTP_SECURE", default_value_t = false)]
    pub smtp_secure: bool,
    /// SMTP user.
    #[arg(long, env = "SMTP_USER")]
    pub smtp_user: Option<String>,
    /// SMTP password.
    #[arg(long, env = "SMTP_PASS", hide_env_values = true, value_parser = secret)]
    pub smtp_pass: Option<Secret>,
    /// Sender address.
    #[arg(long, env = "SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// SMTP timeout, ms.
    #[arg(long, env = "SMTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub smtp_timeout_ms: u64,
}

/// `worker` arguments.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Max activities running at once in this worker (its database pool holds at least
    /// one connection per four of them).
    #[arg(long, env = "WORKER_MAX_CONCURRENT_ACTIVITIES", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub worker_max_concurrent_activities: u64,
    /// Seconds in-flight activities get to finish on SIGTERM.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub worker_shutdown_grace_s: u64,
    /// Address of the worker's Prometheus `/metrics` (audits, steps, vendor calls, LLM
    /// tokens and the Temporal SDK's worker metrics), e.g. 0.0.0.0:9464; unset: not served.
    #[arg(long, env = "WORKER_METRICS_ADDR")]
    pub worker_metrics_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub temporal: TemporalArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
}

/// `migrate` arguments.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Revert every migration instead (destroys data).
    #[arg(long)]
    pub revert_all: bool,
    /// Only list applied migrations.
    #[arg(long)]
    pub status: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
}

/// `seed-auth` arguments.
#[derive(Debug, Clone, Args)]
pub struct SeedAuthArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
}

/// `Option<Secret>` that is set and non-empty.
pub fn present(s: &Option<Secret>) -> Option<Secret> {
    s.as_ref().filter(|v| !v.is_empty()).cloned()
}
