//! The bench command: both runs, their batches and what is measured during them.

use crate::bare::{BareAuditInput, BareAuditWorkflow};
use crate::procstat;
use crate::report::{BenchReport, Measured, RunFigures, Shape};
use crate::{ApiSetup, BenchArgs};
use anyhow::{Context, bail};
use callaudit_domain::secret::Secret;
use callaudit_domain::workflow_io::ids;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Log filter of the workers: warnings, and the line saying they poll.
const WORKER_LOG: &str = "warn,callaudit::worker=info";

/// Builds the project run's in-process api: the binary's own builder (see [`ApiSetup`]).
type BuildApi<'a> =
    &'a dyn Fn(ApiSetup) -> anyhow::Result<(callaudit_api::AppState, tokio::task::JoinHandle<()>)>;

/// Runs the bench and prints its figures. `build_api` builds the api's state the way the
/// binary's `api` command does (and starts its event listener, returning its task); the
/// workers are this executable's `worker` and `bench-bare-worker` subcommands.
pub async fn run<F>(args: BenchArgs, build_api: F) -> anyhow::Result<()>
where
    F: Fn(ApiSetup) -> anyhow::Result<(callaudit_api::AppState, tokio::task::JoinHandle<()>)>,
{
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
            &project_run(&args, &admin_url, shape, sim, &build_api)
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

fn run_id() -> String {
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
    build_api: BuildApi<'_>,
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
    let api = InProcessApi::spawn(
        build_api,
        ApiSetup {
            database_url: db.url.clone(),
            pool_size: 10,
            temporal: settings.clone(),
            token_ttl_hours: 1,
            step_parallelism: shape.step_parallelism,
            crm_base_url: format!("http://{sim_addr}/crm"),
            crm_api_key: Secret::normalized("sim-crm"),
        },
    )
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

/// The simulators on a runtime of their own, so their CPU time (upstream vendors' work,
/// not ours) can be told apart from the api's by thread name.
struct SimServer {
    addr: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SimServer {
    const THREAD_NAME: &'static str = "bench-sim";

    fn start(state: Arc<callaudit_sim::SimState>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(Self::THREAD_NAME)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            callaudit_sim::serve(listener, state).await
        });
        Ok(SimServer {
            addr,
            runtime: Some(runtime),
        })
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Roles, permissions and the bench's admin user (what `callaudit seed-auth` does).
async fn seed_admin(database_url: &str, email: &str, password: &str) -> anyhow::Result<()> {
    let mut conn = callaudit_db::establish(database_url)
        .await
        .context("connecting to the bench database")?;
    callaudit_db::auth::seed_rbac(&mut conn)
        .await
        .context("seeding roles")?;
    callaudit_db::auth::upsert_user(&mut conn, email, password, "admin")
        .await
        .context("upserting the bench's admin user")?;
    Ok(())
}

/// The api served in this process on an ephemeral port, with an HTTP client; stops
/// serving (and listening to Postgres) when dropped.
struct InProcessApi {
    base: String,
    state: callaudit_api::AppState,
    /// Short requests (30 s timeout).
    http: reqwest::Client,
    /// Event streams: no overall timeout (the batch has one).
    stream: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for InProcessApi {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

impl InProcessApi {
    async fn spawn(build_api: BuildApi<'_>, setup: ApiSetup) -> anyhow::Result<Self> {
        use poem::listener::{Acceptor, Listener};
        let (state, listener) = build_api(setup)?;
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .context("binding the api")?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("api address")?;
        let app = callaudit_api::app(state.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(InProcessApi {
            base: format!("http://{addr}"),
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            stream: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()?,
            tasks: vec![listener, server],
        })
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req.send().await.context("calling the api")?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .call(
                self.http
                    .post(format!("{}/api/auth/login", self.base))
                    .json(&json!({"email": email, "password": password})),
            )
            .await?;
        if status != 200 {
            bail!("login failed ({status}): {body}");
        }
        Ok(body["token"].as_str().context("no token")?.to_string())
    }

    /// Loads the 6-step sample configuration; returns its id.
    async fn load_sample_config(&self, token: &str, shape: Shape) -> anyhow::Result<Value> {
        let config: Value = serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON)?;
        let (status, created) = self
            .call(
                self.http
                    .post(format!("{}/api/audit-configs", self.base))
                    .bearer_auth(token)
                    .json(&config),
            )
            .await?;
        if status != 201 {
            bail!("loading the sample configuration failed ({status}): {created}");
        }
        let steps = created["steps"].as_array().map_or(0, Vec::len);
        if u32::try_from(steps)? != shape.steps {
            bail!(
                "the sample configuration has {steps} steps, expected {}",
                shape.steps
            );
        }
        Ok(created["id"].clone())
    }

    /// Runs one audit through the api and follows it on its SSE stream (what a UI does);
    /// returns submission → terminal event.
    async fn audit(
        &self,
        token: &str,
        config_id: &Value,
        fiche_id: &str,
    ) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let (status, accepted) = self
            .call(
                self.http
                    .post(format!("{}/api/audits/run", self.base))
                    .bearer_auth(token)
                    .json(&json!({"fiche_id": fiche_id, "audit_config_id": config_id})),
            )
            .await?;
        if status != 202 {
            bail!("starting the audit of {fiche_id} failed ({status}): {accepted}");
        }
        let audit_id = accepted["audit_id"].as_str().context("no audit id")?;
        let mut resp = self
            .stream
            .get(format!("{}/api/audits/{audit_id}/events", self.base))
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .context("opening the audit's event stream")?;
        if !resp.status().is_success() {
            bail!("event stream of audit {audit_id}: {}", resp.status());
        }
        let mut sse = callaudit_api::sse::SseDecoder::default();
        while let Some(chunk) = resp.chunk().await.context("reading the event stream")? {
            for event in sse.push(&chunk) {
                match event.event.as_deref().unwrap_or_default() {
                    "audit.completed" => return Ok(t0.elapsed()),
                    "audit.failed" => bail!("audit {audit_id} of {fiche_id} failed"),
                    _ => {}
                }
            }
        }
        bail!("the event stream of audit {audit_id} ended before a terminal event")
    }

    /// Publishes probe events until the api's LISTEN connection relays one, so no audit's
    /// stream starts before notifications flow (it would fall back to slow polling).
    async fn wait_until_events_flow(&self, database_url: &str) -> anyhow::Result<()> {
        use tokio::sync::broadcast::error::RecvError;
        let topic = format!("bench:{}", run_id());
        let mut rx = self.state.events.subscribe();
        let mut conn = callaudit_db::establish(database_url).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            callaudit_db::events::publish(&mut conn, &topic, "bench.probe", &json!({}), None)
                .await?;
            let heard = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match rx.recv().await {
                        Ok(t) if t == topic => return true,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return false,
                    }
                }
            })
            .await;
            if heard == Ok(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the api's event listener did not come up within 20 s");
            }
        }
    }
}

// ---- worker child processes -------------------------------------------------------------

/// A worker started as a child of this process (killed if dropped).
struct WorkerProcess {
    label: &'static str,
    child: tokio::process::Child,
    pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl WorkerProcess {
    const LOG_LINES: usize = 30;

    /// Starts `callaudit <args>` with only `env` (plus HOSTNAME) and waits until it polls.
    async fn spawn(
        label: &'static str,
        args: &[&str],
        env: Vec<(&str, String)>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the callaudit binary")?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(args)
            .env_clear()
            .env("RUST_LOG", WORKER_LOG)
            .env("LOG_FORMAT", "text")
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Ok(host) = std::env::var("HOSTNAME") {
            cmd.env("HOSTNAME", host);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the {label}"))?;
        let pid = child.id().context("worker pid")?;
        let stderr = child.stderr.take().context("worker stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let mut lines = BufReader::new(stderr).lines();
        let push = |log: &Mutex<VecDeque<String>>, line: String| {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() == Self::LOG_LINES {
                log.pop_front();
            }
            log.push_back(line);
        };
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(line) = lines.next_line().await? {
                let polling = line.contains("worker polling");
                push(&log, line);
                if polling {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        let me = WorkerProcess {
            label,
            child,
            pid,
            log: log.clone(),
        };
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("the {label} exited before polling:\n{}", me.tail()),
            Ok(Err(e)) => bail!("reading the {label}'s log: {e}"),
            Err(_) => bail!(
                "the {label} did not start polling within 90 s:\n{}",
                me.tail()
            ),
        }
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                push(&log, line);
            }
        });
        Ok(me)
    }

    /// The last lines the worker logged.
    fn tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after 40 s).
    async fn stop(mut self) -> anyhow::Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = i32::try_from(self.pid)?;
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            tracing::warn!(error = %e, worker = self.label, "SIGTERM failed");
        }
        match tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("the {} exited with {status}:\n{}", self.label, self.tail());
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the {} ignored SIGTERM for 40 s: killed", self.label)
            }
        }
    }
}
