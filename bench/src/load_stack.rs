//! The stack of the load modes: a database made for the run, the simulators in this
//! process, the api and the worker as **child processes** (so each one's CPU and memory
//! can be read from `/proc`), and an HTTP client speaking to the api as a UI does.

use crate::procstat;
use crate::stack::{SimServer, WorkerProcess, seed_admin};
use anyhow::{Context, bail};
use callaudit_api::temporal::TemporalSettings;
use callaudit_db::testing::TestDatabase;
use callaudit_domain::workflow_io::ids;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a load mode runs against.
pub(crate) struct Services {
    pub(crate) db: TestDatabase,
    pub(crate) sim_server: SimServer,
    pub(crate) temporal: TemporalSettings,
    pub(crate) email: String,
    pub(crate) password: String,
}

impl Services {
    /// A fresh database (dropped with the value), the bench's admin user, the simulators
    /// serving `sim`, and a task queue of its own on `temporal_address`.
    pub(crate) async fn start(
        admin_url: &str,
        temporal_address: &str,
        namespace: &str,
        sim: Arc<callaudit_sim::SimState>,
    ) -> anyhow::Result<Self> {
        let run = crate::run::run_id();
        let db = callaudit_db::testing::create_test_database(admin_url, "bench")
            .await
            .context("creating the bench database (is DATABASE_URL a server-level URL?)")?;
        let email = "bench@callaudit.local".to_string();
        let password = format!("bench-{}", uuid::Uuid::new_v4().simple());
        seed_admin(&db.url, &email, &password).await?;
        let sim_server = SimServer::start(sim)?;
        Ok(Services {
            db,
            sim_server,
            temporal: TemporalSettings {
                address: temporal_address.to_string(),
                namespace: namespace.to_string(),
                task_queue: format!("bench-load-{run}"),
                api_key: None,
                tls: false,
                ui_url: "http://localhost:8233".into(),
            },
            email,
            password,
        })
    }

    fn sim_url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.sim_server.addr)
    }

    /// Environment shared by the api and the worker.
    fn common_env(&self, step_parallelism: u32) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.db.url.clone()),
            ("TEMPORAL_ADDRESS", self.temporal.address.clone()),
            ("TEMPORAL_NAMESPACE", self.temporal.namespace.clone()),
            ("TEMPORAL_TASK_QUEUE", self.temporal.task_queue.clone()),
            ("CRM_BASE_URL", self.sim_url("crm")),
            ("CRM_API_KEY", "sim-crm".into()),
            ("AUDIT_STEP_PARALLELISM", step_parallelism.to_string()),
        ]
    }

    /// `callaudit worker` on the simulators, started and polling.
    pub(crate) async fn worker(&self, step_parallelism: u32) -> anyhow::Result<WorkerProcess> {
        let mut env = self.common_env(step_parallelism);
        env.extend([
            ("ELEVENLABS_BASE_URL", self.sim_url("elevenlabs")),
            ("ELEVENLABS_API_KEY", "sim-stt".into()),
            ("OPENAI_BASE_URL", self.sim_url("openai/v1")),
            ("OPENAI_API_KEY", "sim-llm".into()),
        ]);
        WorkerProcess::spawn("worker", &["worker"], env).await
    }

    /// `callaudit api` on a free local port, answering `/health`, serving at most
    /// `max_streams` event streams, with `extra` settings.
    pub(crate) async fn api(
        &self,
        step_parallelism: u32,
        max_streams: usize,
        extra: Vec<(&'static str, String)>,
    ) -> anyhow::Result<ApiProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut env = self.common_env(step_parallelism);
        env.extend([
            ("API_ADDR", format!("127.0.0.1:{port}")),
            ("API_MAX_STREAMS", max_streams.to_string()),
        ]);
        env.extend(extra);
        ApiProcess::spawn(port, env).await
    }
}

/// `callaudit api` as a child of this process (killed if dropped); logs at `warn` to our
/// stderr.
pub(crate) struct ApiProcess {
    child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) base: String,
}

impl ApiProcess {
    async fn spawn(port: u16, env: Vec<(&'static str, String)>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the callaudit binary")?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("api")
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "text")
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Ok(host) = std::env::var("HOSTNAME") {
            cmd.env("HOSTNAME", host);
        }
        let mut child = cmd.spawn().context("starting the api")?;
        let pid = child.id().context("api pid")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the api exited before answering: {status}");
            }
            if let Ok(r) = http.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                return Ok(ApiProcess { child, pid, base });
            }
            if Instant::now() > deadline {
                bail!("the api did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits (SIGKILL after 20 s).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let _ = kill(Pid::from_raw(i32::try_from(self.pid)?), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// An api client logged in as the bench's admin.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) token: String,
    /// Short requests (30 s timeout).
    pub(crate) http: reqwest::Client,
    /// Event streams: no overall timeout.
    pub(crate) stream: reqwest::Client,
}

impl Client {
    pub(crate) async fn login(api: &ApiProcess, services: &Services) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let resp = http
            .post(format!("{}/api/auth/login", api.base))
            .json(&json!({"email": services.email, "password": services.password}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("login failed ({status}): {body}");
        }
        Ok(Client {
            base: api.base.clone(),
            token: body["token"].as_str().context("no token")?.to_string(),
            http,
            stream: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// `(status, body)` of a request with the bearer token.
    pub(crate) async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .context("calling the api")?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Loads the 6-step sample configuration; returns its id.
    pub(crate) async fn sample_config(&self) -> anyhow::Result<uuid::Uuid> {
        let config: Value = serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON)?;
        let (status, created) = self
            .call(
                self.http
                    .post(format!("{}/api/audit-configs", self.base))
                    .json(&config),
            )
            .await?;
        if status != 201 {
            bail!("loading the sample configuration failed ({status}): {created}");
        }
        created["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("no configuration id")
    }

    /// `POST /api/audits/run`; returns the audit id.
    pub(crate) async fn start_audit(
        &self,
        config: uuid::Uuid,
        fiche_id: &str,
        use_rlm: bool,
    ) -> anyhow::Result<String> {
        let (status, accepted) = self
            .call(
                self.http
                    .post(format!("{}/api/audits/run", self.base))
                    .json(&json!({"fiche_id": fiche_id, "audit_config_id": config, "use_rlm": use_rlm})),
            )
            .await?;
        if status != 202 {
            bail!("starting the audit of {fiche_id} failed ({status}): {accepted}");
        }
        Ok(accepted["audit_id"]
            .as_str()
            .context("no audit id")?
            .to_string())
    }

    /// Opens the event stream of `audit_id`.
    pub(crate) async fn events(&self, audit_id: &str) -> anyhow::Result<reqwest::Response> {
        let resp = self
            .stream
            .get(format!("{}/api/audits/{audit_id}/events", self.base))
            .bearer_auth(&self.token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .context("opening an event stream")?;
        if !resp.status().is_success() {
            bail!("event stream of audit {audit_id}: {}", resp.status());
        }
        Ok(resp)
    }

    /// Runs one audit and follows its stream until it completes (what a UI does);
    /// returns its id and submission → `audit.completed`.
    pub(crate) async fn audit(
        &self,
        config: uuid::Uuid,
        fiche_id: &str,
        use_rlm: bool,
    ) -> anyhow::Result<(String, Duration)> {
        let t0 = Instant::now();
        let audit_id = self.start_audit(config, fiche_id, use_rlm).await?;
        let mut resp = self.events(&audit_id).await?;
        let mut sse = callaudit_api::sse::SseDecoder::default();
        while let Some(chunk) = resp.chunk().await.context("reading the event stream")? {
            for event in sse.push(&chunk) {
                match event.event.as_deref().unwrap_or_default() {
                    "audit.completed" => return Ok((audit_id, t0.elapsed())),
                    "audit.failed" => {
                        bail!("audit {audit_id} of {fiche_id} failed: {}", event.data)
                    }
                    _ => {}
                }
            }
        }
        bail!("the event stream of audit {audit_id} ended before a terminal event")
    }

    /// Waits until the api's LISTEN connection relays notifications: a probe audit row's
    /// stream must receive a probe event (published again every 200 ms), so no measured
    /// stream falls back to the slow poll.
    pub(crate) async fn wait_until_events_flow(
        &self,
        database_url: &str,
        config: uuid::Uuid,
    ) -> anyhow::Result<()> {
        let ids = create_audit_rows(database_url, config, "FICHE-PROBE", 1).await?;
        let audit_id = ids.first().context("no probe audit")?.clone();
        let mut resp = self.events(&audit_id).await?;
        let topic = ids::audit_topic(&audit_id);
        let mut conn = callaudit_db::establish(database_url).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sse = callaudit_api::sse::SseDecoder::default();
        loop {
            callaudit_db::events::publish(&mut conn, &topic, "bench.probe", &json!({}), None)
                .await?;
            let heard = tokio::time::timeout(Duration::from_millis(200), async {
                while let Some(chunk) = resp.chunk().await? {
                    if sse
                        .push(&chunk)
                        .iter()
                        .any(|e| e.event.as_deref() == Some("bench.probe"))
                    {
                        return Ok::<_, reqwest::Error>(true);
                    }
                }
                Ok(false)
            })
            .await;
            match heard {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => bail!("the probe stream ended"),
                Ok(Err(e)) => bail!("reading the probe stream: {e}"),
                Err(_) if Instant::now() > deadline => {
                    bail!("the api's event listener did not relay a probe within 20 s")
                }
                Err(_) => {}
            }
        }
    }
}

/// Stores `n` pending audits of `config` directly (fiches `{prefix}-{i}`, workflows that
/// were never started): rows for event streams to follow. Returns their ids.
pub(crate) async fn create_audit_rows(
    database_url: &str,
    config: uuid::Uuid,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut conn = callaudit_db::establish(database_url).await?;
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        let id = uuid::Uuid::new_v4();
        let fiche = format!("{prefix}-{i}");
        let workflow_id = format!("bench-not-started-{id}");
        callaudit_db::audits::create(
            &mut conn,
            &callaudit_db::audits::NewAudit {
                id,
                fiche_id: &fiche,
                audit_config_id: config,
                use_rlm: false,
                workflow_id: &workflow_id,
                steps_total: 6,
                requested_by: None,
                idempotency_key: None,
                request_fingerprint: None,
                config_snapshot: None,
                config_version: None,
            },
        )
        .await
        .context("storing an audit row")?;
        out.push(id.to_string());
    }
    Ok(out)
}

/// CPU seconds of a set of processes, read at the start and the end of a phase.
pub(crate) struct CpuWindow {
    started: Instant,
    pids: Vec<(&'static str, Option<u32>, f64)>,
    postgres_needle: Option<String>,
    postgres: std::collections::BTreeMap<u32, f64>,
}

/// CPU used during a phase, by process, as cores (CPU seconds per second of wall time).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CpuSplit {
    /// Wall time of the phase, s.
    pub wall_s: f64,
    /// `(process, cores used)`; `None` when its pid is unknown.
    pub cores: Vec<(String, Option<f64>)>,
}

impl CpuWindow {
    /// Starts measuring `pids` (labelled) and, with `database`, the local Postgres
    /// backends serving it.
    pub(crate) fn start(pids: &[(&'static str, Option<u32>)], database: Option<&str>) -> Self {
        let needle = database.map(|d| format!(" {d} "));
        CpuWindow {
            started: Instant::now(),
            pids: pids
                .iter()
                .map(|(l, p)| {
                    let cpu = p
                        .and_then(|p| procstat::sample(p).ok())
                        .map_or(0.0, |s| s.cpu_s);
                    (*l, *p, cpu)
                })
                .collect(),
            postgres: needle
                .as_deref()
                .map(procstat::cpu_of_processes_matching)
                .unwrap_or_default(),
            postgres_needle: needle,
        }
    }

    /// Cores used by each process since `start`.
    pub(crate) fn finish(&self) -> CpuSplit {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let mut cores: Vec<(String, Option<f64>)> = self
            .pids
            .iter()
            .map(|(label, pid, before)| {
                let now = pid.and_then(|p| procstat::sample(p).ok());
                (
                    (*label).to_string(),
                    now.map(|s| crate::load_machine::round((s.cpu_s - before) / wall, 3)),
                )
            })
            .collect();
        if let Some(needle) = &self.postgres_needle {
            let now = procstat::cpu_of_processes_matching(needle);
            let used: f64 = now
                .iter()
                .map(|(pid, cpu)| cpu - self.postgres.get(pid).copied().unwrap_or(0.0))
                .sum();
            cores.push((
                "postgres backends".into(),
                Some(crate::load_machine::round(used / wall, 3)),
            ));
        }
        CpuSplit {
            wall_s: crate::load_machine::round(wall, 2),
            cores,
        }
    }
}

impl CpuSplit {
    /// `api 0.85, temporal 0.40, …` (cores).
    pub fn line(&self) -> String {
        self.cores
            .iter()
            .map(|(l, c)| match c {
                Some(c) => format!("{l} {c:.2}"),
                None => format!("{l} -"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
