//! The `callaudit` binary: one executable, one subcommand per role.

mod automation;
mod bench;
mod config;
mod demo;
mod demo_after;
mod demo_automation;
mod demo_batch;
mod gate_bench;
mod pii_eval;
mod retention;
mod worker;
mod worker_metrics;

use anyhow::Context;
use callaudit_api::AppState;
use callaudit_api::state::ApiSettings;
use clap::Parser;
use config::{ApiArgs, AuthArgs, Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The bench serves the api in-process: its per-request lines would drown the figures.
    let default_filter = match cli.command {
        Command::Bench(_) => "warn,callaudit=info",
        _ => "info",
    };
    init_tracing(&cli.log_format, default_filter);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, cause chain included; never a secret (config holds them as Secret).
            eprintln!("callaudit: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Api(args) => api(*args).await,
        Command::Worker(args) => worker::run(*args).await,
        Command::Migrate(args) => {
            let url = args.db.url()?;
            if args.status {
                for v in callaudit_db::migrate::applied(url).await? {
                    println!("{v}");
                }
            } else if args.revert_all {
                let reverted = callaudit_db::migrate::revert_all(url).await?;
                println!("reverted {} migration(s)", reverted.len());
            } else {
                let applied = callaudit_db::migrate::run_pending(url).await?;
                println!("applied {} migration(s)", applied.len());
            }
            Ok(())
        }
        Command::SeedAuth(args) => {
            let url = args.db.url()?;
            callaudit_db::migrate::run_pending(url).await?;
            seed_auth(url, &args.auth).await?;
            println!("roles and permissions seeded");
            Ok(())
        }
        Command::Sim(args) => sim(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Gate(args) => gate(args),
        Command::GateBench(args) => gate_bench::run_bench(args),
        Command::PiiEval(args) => pii_eval::run(args),
        Command::Openapi => {
            println!("{}", callaudit_api::openapi_json());
            Ok(())
        }
        Command::Bench(args) => bench::run(args).await,
        Command::BenchBareWorker(args) => bench::bare_worker(args).await,
    }
}

/// Applies migrations and seeds RBAC (+ the admin user when configured): what `api` and
/// `worker` do at start, safe with many replicas starting at once. A database that does
/// not answer yet (restarting, failing over) is retried for a minute, as Temporal is
/// (`worker::connect_with_retry`): under `temporal-dev/chaos.sh` a worker restarted while
/// Postgres restarted exited on "connection closed" instead of waiting for it.
pub(crate) async fn prepare_database(url: &str, auth: &AuthArgs) -> anyhow::Result<()> {
    if auth.auth_seed_admin_email.is_some()
        && config::present(&auth.auth_seed_admin_password).is_none()
    {
        // A configuration error: not worth a minute of retries.
        anyhow::bail!("AUTH_SEED_ADMIN_EMAIL is set but AUTH_SEED_ADMIN_PASSWORD is missing")
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match prepare_database_once(url, auth).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "database not ready; retrying in 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn prepare_database_once(url: &str, auth: &AuthArgs) -> anyhow::Result<()> {
    let applied = callaudit_db::migrate::run_pending(url)
        .await
        .context("applying migrations")?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "migrations applied");
    }
    seed_auth(url, auth).await
}

pub(crate) async fn seed_auth(url: &str, auth: &AuthArgs) -> anyhow::Result<()> {
    let mut conn = callaudit_db::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    callaudit_db::auth::seed_rbac(&mut conn)
        .await
        .context("seeding roles")?;
    match (
        &auth.auth_seed_admin_email,
        config::present(&auth.auth_seed_admin_password),
    ) {
        (Some(email), Some(password)) if !email.trim().is_empty() => {
            callaudit_db::auth::upsert_user(&mut conn, email, password.expose(), "admin")
                .await
                .context("upserting the admin user")?;
            tracing::info!(email = %email.trim(), "admin user upserted");
        }
        (Some(_), None) => {
            anyhow::bail!("AUTH_SEED_ADMIN_EMAIL is set but AUTH_SEED_ADMIN_PASSWORD is missing")
        }
        _ => {}
    }
    Ok(())
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let url = args.db.url()?.to_string();
    prepare_database(&url, &args.auth).await?;
    let (state, _listener) = AppState::build(ApiSettings {
        database_url: url.clone(),
        pool_size: args.db.database_pool_size,
        temporal: args.temporal.settings(),
        token_ttl: chrono::Duration::hours(args.auth_token_ttl_hours.max(1)),
        step_parallelism: args.audit_step_parallelism,
        fiches: args.crm.fiche_settings(),
        holder: format!("api-{}", std::process::id()),
        max_streams: usize::try_from(args.api_max_streams).unwrap_or(usize::MAX),
        max_body_bytes: usize::try_from(args.api_max_body_bytes).unwrap_or(usize::MAX),
        login_throttle: callaudit_db::login_throttle::LoginThrottleSettings {
            max_failures_per_email: args.auth_login_max_failures_per_email,
            max_failures_per_address: args.auth_login_max_failures_per_address,
            window: std::time::Duration::from_secs(args.auth_login_failure_window_s),
        },
        trusted_proxies: args.api_trusted_proxies.clone(),
        cors_allowed_origins: args
            .api_cors_allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect(),
        prices: args
            .cost_price_table
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(callaudit_domain::cost::PriceTable::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("COST_PRICE_TABLE: {e}"))?,
        reconcile_every: std::time::Duration::from_secs(args.api_reconcile_every_s),
        sse_poll_every: std::time::Duration::from_millis(args.api_sse_poll_ms),
        chat: args.chat.llm(args.crm.timeout()),
        batches: callaudit_api::state::BatchSettings {
            window: args.batch_audit_window,
            continue_as_new_after: args.batch_continue_as_new_after,
        },
        automation: callaudit_api::state::AutomationSettings {
            webhooks: callaudit_upstream::webhook::WebhookPolicy::new(
                &args.webhook_allowed_origins,
            ),
            pusher: args.pusher.settings(),
        },
    })?;
    let listener = poem::listener::TcpListener::bind(args.api_addr.clone());
    tracing::info!(addr = %args.api_addr, "api listening");
    poem::Server::new(listener)
        .run_with_graceful_shutdown(
            callaudit_api::app(state),
            shutdown_signal(),
            Some(std::time::Duration::from_secs(10)),
        )
        .await
        .with_context(|| format!("serving on {}", args.api_addr))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

async fn sim(args: config::SimArgs) -> anyhow::Result<()> {
    let state = callaudit_sim::SimState::with_generated_fiches(
        callaudit_sim::SimConfig::default(),
        args.generated_fiches,
    );
    let listener = tokio::net::TcpListener::bind(&args.sim_addr)
        .await
        .with_context(|| format!("binding {}", args.sim_addr))?;
    tracing::info!(addr = %args.sim_addr, "simulators listening (CRM /crm, ElevenLabs /elevenlabs, OpenAI /openai/v1)");
    callaudit_sim::serve(listener, state).await?;
    Ok(())
}

fn gate(args: config::GateArgs) -> anyhow::Result<()> {
    use callaudit_domain::{analysis::StepAnalysis, evidence, scoring, transcript::Transcript};
    let mut transcripts: Vec<Transcript> = Vec::new();
    for path in &args.transcript {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if value.is_array() {
            transcripts.extend(serde_json::from_value::<Vec<Transcript>>(value)?);
        } else {
            transcripts.push(serde_json::from_value(value).with_context(|| {
                format!(
                    "{}: expected a transcript {{recording_id, text, words}}",
                    path.display()
                )
            })?);
        }
    }
    let text = std::fs::read_to_string(&args.analysis)
        .with_context(|| format!("reading {}", args.analysis.display()))?;
    let analysis: StepAnalysis = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected {{points_controle: [...]}}",
            args.analysis.display()
        )
    })?;
    let gated = evidence::gate_step(analysis, &transcripts, &evidence::GatingOptions::default());
    for p in &gated.points_controle {
        let claimed = p
            .claimed_statut
            .map(|c| format!(" (claimed {c})"))
            .unwrap_or_default();
        println!("[{}] {} → {}{}", p.index, p.point, p.statut, claimed);
        for check in &p.citation_checks {
            println!(
                "    {:<16} {:.2}  \"{}\" — {}",
                check.verdict.as_str(),
                check.similarity,
                check.quote,
                check.reason
            );
        }
        if let Some(reason) = &p.evidence_reason {
            println!("    evidence_unverified: {reason}");
        }
    }
    let step = scoring::score_step(args.weight, &gated.points_controle);
    println!(
        "step: score {:.2} / {} — {}",
        step.score, args.weight, step.conforme
    );
    println!("{}", serde_json::to_string_pretty(&gated)?);
    Ok(())
}
