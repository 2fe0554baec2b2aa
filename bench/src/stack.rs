//! The processes of a bench run: the simulators on their own runtime, the api in this
//! process, workers as child processes.

use crate::report::Shape;
use crate::run::run_id;
use anyhow::{Context, bail};
use callaudit_api::state::ApiSettings;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Log filter of the workers: warnings, and the line saying they poll.
const WORKER_LOG: &str = "warn,callaudit::worker=info";

/// The simulators on a runtime of their own, so their CPU time (upstream vendors' work,
/// not ours) can be told apart from the api's by thread name.
pub(crate) struct SimServer {
    pub(crate) addr: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SimServer {
    pub(crate) const THREAD_NAME: &'static str = "bench-sim";

    pub(crate) fn start(state: Arc<callaudit_sim::SimState>) -> anyhow::Result<Self> {
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
pub(crate) async fn seed_admin(
    database_url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
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
pub(crate) struct InProcessApi {
    base: String,
    pub(crate) state: callaudit_api::AppState,
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
    pub(crate) async fn spawn(settings: ApiSettings) -> anyhow::Result<Self> {
        use poem::listener::{Acceptor, Listener};
        let (state, listener) = callaudit_api::AppState::build(settings)?;
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

    pub(crate) async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = req.send().await.context("calling the api")?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
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
    pub(crate) async fn load_sample_config(
        &self,
        token: &str,
        shape: Shape,
    ) -> anyhow::Result<Value> {
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
    pub(crate) async fn audit(
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
    pub(crate) async fn wait_until_events_flow(&self, database_url: &str) -> anyhow::Result<()> {
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

/// A worker started as a child of this process (killed if dropped).
pub(crate) struct WorkerProcess {
    label: &'static str,
    child: tokio::process::Child,
    pub(crate) pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl WorkerProcess {
    pub(crate) const LOG_LINES: usize = 30;

    /// Starts `callaudit <args>` with only `env` (plus HOSTNAME) and waits until it polls.
    pub(crate) async fn spawn(
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
    pub(crate) fn tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after 40 s).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
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
