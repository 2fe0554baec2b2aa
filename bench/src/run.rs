//! The bench command: both runs, their batches and what is measured during them.

use crate::BenchArgs;
use crate::bare::{BareAuditInput, BareAuditWorkflow};
use crate::procstat;
use crate::report::{BenchReport, Form, Measured, RunFigures, Shape};
use crate::stack::{InProcessApi, SimServer, WorkerProcess, seed_admin};
use anyhow::{Context, bail};
use callaudit_api::state::ApiSettings;
use callaudit_domain::secret::Secret;
use callaudit_domain::workflow_io::ids;
use callaudit_upstream::crm::CrmClient;
use callaudit_upstream::fiches::FicheSettings;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

/// Runs the bench and prints its figures. The project run's api is built by
/// `AppState::build`, as the binary's `api` command builds it; the workers are this
/// executable's `worker` and `bench-bare-worker` subcommands.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.audits == 0 || args.concurrency == 0 {
        bail!("--audits and --concurrency must be at least 1");
    }
    let admin_url = match args.database_url.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ if args.skip_project => String::new(),
        _ => bail!(
            "missing required configuration: DATABASE_URL (a server-level Postgres URL; the \
             bench creates and drops its own database there)"
        ),
    };
    let sim = callaudit_sim::SimState::with_generated_fiches(
        callaudit_sim::SimConfig::default(),
        args.audits,
    );
    let shape = audit_shape(&sim, args.audits, args.step_parallelism)?;

    let bare = if args.skip_bare {
        None
    } else {
        eprintln!(
            "bench: bare run — {} audits, {} in flight",
            args.audits, args.concurrency
        );
        Some(RunFigures::from_measured(
            shape,
            args.bare_shape,
            &bare_run(&args, shape).await.context("bare run")?,
        ))
    };
    let project = if args.skip_project {
        None
    } else {
        eprintln!(
            "bench: project run — {} audits, {} in flight",
            args.audits, args.concurrency
        );
        Some(RunFigures::from_measured(
            shape,
            Form::Lean,
            &project_run(&args, &admin_url, shape, sim)
                .await
                .context("project run")?,
        ))
    };
    let bare_after = if args.skip_bare || args.skip_project || args.single_baseline {
        None
    } else {
        eprintln!("bench: bare run again (the baseline brackets the project run)");
        Some(RunFigures::from_measured(
            shape,
            args.bare_shape,
            &bare_run(&args, shape).await.context("second bare run")?,
        ))
    };
    let report = BenchReport::new(
        args.audits,
        args.concurrency,
        shape,
        args.temporal_address.clone(),
        project,
        bare,
        bare_after,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The shape both runs use: the sample configuration's steps, the generated fiches'
/// recordings (every fiche must have the same number).
fn audit_shape(
    sim: &callaudit_sim::SimState,
    audits: usize,
    step_parallelism: u32,
) -> anyhow::Result<Shape> {
    let config: Value = serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON)?;
    let steps = config["steps"].as_array().map_or(0, Vec::len);
    let mut recordings = None;
    for i in 1..=audits {
        let id = fiche_id(i);
        let fiche = sim
            .dataset()
            .fiche(&id)
            .with_context(|| format!("the simulator has no fiche {id}"))?;
        match recordings {
            None => recordings = Some(fiche.recordings.len()),
            Some(n) if n == fiche.recordings.len() => {}
            Some(n) => bail!(
                "fiche {id} has {} recordings, others {n}",
                fiche.recordings.len()
            ),
        }
    }
    Ok(Shape {
        steps: u32::try_from(steps)?,
        recordings: u32::try_from(recordings.unwrap_or(0))?,
        step_parallelism,
    })
}

/// The `i`-th generated fiche of the simulator (from 1).
fn fiche_id(i: usize) -> String {
    format!("FICHE-GEN-{i}")
}

pub(crate) fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

fn temporal_settings(
    args: &BenchArgs,
    task_queue: &str,
) -> callaudit_api::temporal::TemporalSettings {
    callaudit_api::temporal::TemporalSettings {
        address: args.temporal_address.clone(),
        namespace: args.temporal_namespace.clone(),
        task_queue: task_queue.to_string(),
        api_key: None,
        tls: false,
        ui_url: "http://localhost:8233".into(),
    }
}

/// CPU and memory readings taken at the start and at the end of a batch.
struct Probe {
    worker_pid: u32,
    sim_threads: Option<&'static str>,
    sim_cpu_s: Option<f64>,
    temporal_pid: Option<u32>,
    database: Option<String>,
    worker_cpu_s: f64,
    temporal_cpu_s: Option<f64>,
    self_cpu_s: f64,
    postgres_cpu_s: BTreeMap<u32, f64>,
}

impl Probe {
    /// Starts measuring; with `database`, also the CPU of the local Postgres backends
    /// serving it (found by their command line); with `sim_threads`, the CPU of this
    /// process's threads of that name.
    fn start(
        worker_pid: u32,
        temporal_pid: Option<u32>,
        database: Option<&str>,
        sim_threads: Option<&'static str>,
    ) -> anyhow::Result<Self> {
        Ok(Probe {
            worker_pid,
            sim_threads,
            sim_cpu_s: sim_threads.map(procstat::cpu_of_own_threads),
            temporal_pid,
            database: database.map(|d| format!(" {d} ")),
            postgres_cpu_s: database
                .map(|d| procstat::cpu_of_processes_matching(&format!(" {d} ")))
                .unwrap_or_default(),
            worker_cpu_s: procstat::sample(worker_pid)?.cpu_s,
            temporal_cpu_s: temporal_pid
                .map(|p| procstat::sample(p).map(|s| s.cpu_s))
                .transpose()
                .context("sampling the Temporal server (--temporal-pid)")?,
            self_cpu_s: procstat::sample(std::process::id())?.cpu_s,
        })
    }

    fn finish(self, wall: Duration, latencies: Vec<Duration>) -> anyhow::Result<Measured> {
        let worker = procstat::sample(self.worker_pid)?;
        let temporal_cpu_s = match (self.temporal_pid, self.temporal_cpu_s) {
            (Some(pid), Some(before)) => Some(procstat::sample(pid)?.cpu_s - before),
            _ => None,
        };
        // Backends opened during the batch count from zero; one that closed is missed.
        let postgres_cpu_s = self.database.as_deref().and_then(|needle| {
            let now = procstat::cpu_of_processes_matching(needle);
            (!now.is_empty()).then(|| {
                now.iter()
                    .map(|(pid, cpu)| cpu - self.postgres_cpu_s.get(pid).copied().unwrap_or(0.0))
                    .sum()
            })
        });
        Ok(Measured {
            wall,
            latencies,
            postgres_cpu_s,
            simulators_cpu_s: self
                .sim_threads
                .zip(self.sim_cpu_s)
                .map(|(name, before)| procstat::cpu_of_own_threads(name) - before),
            worker_cpu_s: worker.cpu_s - self.worker_cpu_s,
            worker_peak_rss_bytes: worker.peak_rss_bytes,
            temporal_cpu_s,
            bench_process_cpu_s: procstat::sample(std::process::id())?.cpu_s - self.self_cpu_s,
        })
    }
}

/// Submits `n` audits with at most `concurrency` in flight; returns the batch wall time
/// and each audit's latency. Fails on the first failed audit or after `timeout`.
async fn batch<F, Fut>(
    n: usize,
    concurrency: usize,
    timeout: Duration,
    one: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Duration>>,
{
    let started = Instant::now();
    let all = futures::stream::iter(1..=n)
        .map(one)
        .buffer_unordered(concurrency)
        .try_collect::<Vec<Duration>>();
    let latencies = tokio::time::timeout(timeout, all)
        .await
        .map_err(|_| anyhow::anyhow!("the batch did not finish within {timeout:?}"))??;
    Ok((started.elapsed(), latencies))
}

// ---- bare run ------------------------------------------------------------------------

async fn bare_run(args: &BenchArgs, shape: Shape) -> anyhow::Result<Measured> {
    let run = run_id();
    let settings = temporal_settings(args, &format!("bench-bare-{run}"));
    let worker = WorkerProcess::spawn(
        "bare worker",
        &["bench-bare-worker"],
        vec![
            ("TEMPORAL_ADDRESS", settings.address.clone()),
            ("TEMPORAL_NAMESPACE", settings.namespace.clone()),
            ("TEMPORAL_TASK_QUEUE", settings.task_queue.clone()),
        ],
    )
    .await?;
    let client = callaudit_api::temporal::connect(&settings, Duration::from_secs(10)).await?;

    let probe = Probe::start(worker.pid, args.temporal_pid, None, None)?;
    let bare_shape = args.bare_shape;
    let result = batch(
        args.audits,
        args.concurrency,
        Duration::from_secs(args.timeout_s),
        |i| {
            let client = client.clone();
            let queue = settings.task_queue.clone();
            let run = run.clone();
            async move {
                let audit_id = format!("bare-{run}-{i}");
                let input = BareAuditInput {
                    audit_id: audit_id.clone(),
                    fiche_id: format!("bare-{run}-fiche-{i}"),
                    steps: shape.steps,
                    recordings: shape.recordings,
                    step_parallelism: shape.step_parallelism,
                    lean: bare_shape == Form::Lean,
                };
                let t0 = Instant::now();
                let handle = client
                    .start_workflow(
                        BareAuditWorkflow::run,
                        input,
                        WorkflowStartOptions::new(queue, ids::audit(&audit_id)).build(),
                    )
                    .await
                    .with_context(|| format!("starting bare audit {audit_id}"))?;
                handle
                    .get_result(WorkflowGetResultOptions::default())
                    .await
                    .with_context(|| format!("bare audit {audit_id}"))?;
                Ok(t0.elapsed())
            }
        },
    )
    .await;
    finish_run(worker, probe, result).await
}

/// Reads the figures (before the worker stops), stops the worker, adds its log to errors.
async fn finish_run(
    worker: WorkerProcess,
    probe: Probe,
    result: anyhow::Result<(Duration, Vec<Duration>)>,
) -> anyhow::Result<Measured> {
    let measured = result.and_then(|(wall, latencies)| probe.finish(wall, latencies));
    let tail = worker.tail();
    let stopped = worker.stop().await;
    let measured = measured.with_context(|| format!("worker log (last lines):\n{tail}"))?;
    stopped?;
    Ok(measured)
}

// ---- project run -----------------------------------------------------------------------

async fn project_run(
    args: &BenchArgs,
    admin_url: &str,
    shape: Shape,
    sim: Arc<callaudit_sim::SimState>,
) -> anyhow::Result<Measured> {
    let run = run_id();
    let db = callaudit_db::testing::create_test_database(admin_url, "bench")
        .await
        .with_context(|| "creating the bench database (is DATABASE_URL a server-level URL?)")?;
    let password = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let email = "bench@callaudit.local".to_string();
    seed_admin(&db.url, &email, &password).await?;
    let sim_server = SimServer::start(sim.clone())?;
    let sim_addr = sim_server.addr;
    let settings = temporal_settings(args, &format!("bench-{run}"));
    // The simulator's CRM; the other CRM settings at the defaults of `callaudit api`.
    let api = InProcessApi::spawn(ApiSettings {
        database_url: db.url.clone(),
        pool_size: 10,
        temporal: settings.clone(),
        token_ttl: chrono::Duration::hours(1),
        step_parallelism: shape.step_parallelism,
        fiches: FicheSettings {
            crm: Some(CrmClient::new(
                &format!("http://{sim_addr}/crm"),
                Secret::normalized("sim-crm"),
                Duration::from_secs(120),
            )),
            fetch_concurrency: 3,
            search_concurrency: 1,
            force_refresh_cooldown: Duration::from_secs(1800),
        },
        holder: format!("bench-api-{run}"),
        max_streams: 1000,
        max_body_bytes: 1 << 20,
        login_throttle: Default::default(),
        trusted_proxies: vec![],
        cors_allowed_origins: vec![],
        prices: None,
        reconcile_every: Duration::from_secs(60),
        sse_poll_every: Duration::from_secs(5),
        chat: None,
        batches: Default::default(),
        automation: Default::default(),
    })
    .await?;
    let worker = WorkerProcess::spawn(
        "worker",
        &["worker"],
        vec![
            ("DATABASE_URL", db.url.clone()),
            ("TEMPORAL_ADDRESS", settings.address.clone()),
            ("TEMPORAL_NAMESPACE", settings.namespace.clone()),
            ("TEMPORAL_TASK_QUEUE", settings.task_queue.clone()),
            ("CRM_BASE_URL", format!("http://{sim_addr}/crm")),
            ("CRM_API_KEY", "sim-crm".into()),
            (
                "ELEVENLABS_BASE_URL",
                format!("http://{sim_addr}/elevenlabs"),
            ),
            ("ELEVENLABS_API_KEY", "sim-stt".into()),
            ("OPENAI_BASE_URL", format!("http://{sim_addr}/openai/v1")),
            ("OPENAI_API_KEY", "sim-llm".into()),
        ],
    )
    .await?;

    let token = api.login(&email, &password).await?;
    let config_id = api.load_sample_config(&token, shape).await?;
    // Connected before the clock starts, as the bare run's client is.
    api.state.temporal.client().await?;
    api.wait_until_events_flow(&db.url).await?;
    sim.reset_stats();

    let probe = Probe::start(
        worker.pid,
        args.temporal_pid,
        Some(&db.name),
        Some(SimServer::THREAD_NAME),
    )?;
    let result = batch(
        args.audits,
        args.concurrency,
        Duration::from_secs(args.timeout_s),
        |i| {
            let api = &api;
            let token = token.as_str();
            let config_id = &config_id;
            async move { api.audit(token, config_id, &fiche_id(i)).await }
        },
    )
    .await;
    let measured = finish_run(worker, probe, result).await;
    drop(sim_server);
    drop(api);
    let measured = measured?;

    // The work really happened: one transcription per recording, one LLM call per step.
    let stats = sim.stats();
    let n = u64::try_from(args.audits)?;
    if stats.stt_requests < n * u64::from(shape.recordings)
        || stats.llm_requests < n * u64::from(shape.steps)
    {
        bail!(
            "the simulators saw less work than {n} audits need: {} transcriptions, {} LLM calls",
            stats.stt_requests,
            stats.llm_requests
        );
    }
    drop(db);
    Ok(measured)
}
