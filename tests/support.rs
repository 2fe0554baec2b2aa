//! Test harness: isolated databases, task queues, in-process api, spawned binaries, and
//! waiting for conditions (never sleeping for a fixed time to "let things happen").

#![allow(dead_code)]

use callaudit_api::AppState;
use callaudit_api::temporal::TemporalSettings;
use callaudit_db::testing::{TestDatabase, create_test_database};
use std::future::Future;
use std::time::Duration;

/// Server-level Postgres URL the tests create their databases on.
pub fn admin_database_url() -> String {
    std::env::var("CALLAUDIT_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The shared Temporal dev server of the test run.
pub fn temporal_address() -> String {
    std::env::var("CALLAUDIT_TEST_TEMPORAL_ADDRESS").unwrap_or_else(|_| "127.0.0.1:7244".into())
}

/// The compiled `callaudit` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_callaudit")
}

/// A unique, readable task queue for one test.
pub fn task_queue(label: &str) -> String {
    format!("test-{label}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh migrated database for one test.
pub async fn test_db(label: &str) -> TestDatabase {
    create_test_database(&admin_database_url(), label)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a test database on {}: {e}",
                admin_database_url()
            )
        })
}

/// Temporal settings pointing at `address` with `task_queue`.
pub fn temporal_settings(address: &str, task_queue: &str) -> TemporalSettings {
    TemporalSettings {
        address: address.to_string(),
        namespace: "default".into(),
        task_queue: task_queue.to_string(),
        api_key: None,
        tls: false,
        ui_url: "http://localhost:8233".into(),
    }
}

/// An api served in-process on an ephemeral port.
pub struct TestApi {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state (pool, temporal gateway…).
    pub state: AppState,
    /// HTTP client.
    pub http: reqwest::Client,
}

/// Starts the api on `database_url` and Temporal `settings`, with no CRM configured.
pub async fn spawn_api(database_url: &str, settings: TemporalSettings) -> TestApi {
    spawn_api_with_crm(database_url, settings, None).await
}

/// Starts the api; with `crm` (a base URL such as `http://SIM/crm`) it reads fiches and
/// checks them before audits, under a fetch cap of 3 and a 60 s force-refresh cooldown.
pub async fn spawn_api_with_crm(
    database_url: &str,
    settings: TemporalSettings,
    crm: Option<String>,
) -> TestApi {
    spawn_api_stepping(database_url, settings, crm, 3).await
}

/// Like [`spawn_api_with_crm`], with audits analysing `step_parallelism` steps at once
/// (3 elsewhere, as `AUDIT_STEP_PARALLELISM` defaults to).
pub async fn spawn_api_stepping(
    database_url: &str,
    settings: TemporalSettings,
    crm: Option<String>,
    step_parallelism: u32,
) -> TestApi {
    spawn_api_from(api_settings(database_url, settings, crm, step_parallelism)).await
}

/// What the test api is built from (cap of 1000 streams); adjust a field, then
/// [`spawn_api_from`].
pub fn api_settings(
    database_url: &str,
    settings: TemporalSettings,
    crm: Option<String>,
    step_parallelism: u32,
) -> callaudit_api::state::ApiSettings {
    callaudit_api::state::ApiSettings {
        database_url: database_url.to_string(),
        pool_size: 5,
        temporal: settings,
        token_ttl: chrono::Duration::hours(1),
        step_parallelism,
        fiches: callaudit_upstream::fiches::FicheSettings {
            crm: crm.map(|base| {
                callaudit_upstream::crm::CrmClient::new(
                    &base,
                    callaudit_domain::secret::Secret::normalized("sim-crm"),
                    Duration::from_secs(10),
                )
            }),
            fetch_concurrency: 3,
            search_concurrency: 1,
            force_refresh_cooldown: Duration::from_secs(60),
        },
        holder: "test-api".into(),
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
    }
}

/// Starts an api built by `AppState::build` from `settings` on an ephemeral port.
pub async fn spawn_api_from(settings: callaudit_api::state::ApiSettings) -> TestApi {
    use poem::listener::{Acceptor, Listener};
    let (state, _listener) = AppState::build(settings).expect("api state");
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp addr");
    let app = callaudit_api::app(state.clone());
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    TestApi {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::new(),
    }
}

impl TestApi {
    /// The sample configuration, created through the api by a manager.
    pub async fn sample_config(&self) -> serde_json::Value {
        let manager = self.token_for("manager").await;
        let (status, config) = self
            .send(
                reqwest::Method::POST,
                "/api/audit-configs",
                Some(&manager),
                &serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample"),
            )
            .await;
        assert_eq!(status, 201, "{config}");
        config
    }

    /// Creates a user with `role` and logs in; returns the bearer token.
    pub async fn token_for(&self, role: &str) -> String {
        let email = format!("{role}-{}@example.test", uuid::Uuid::new_v4().simple());
        let password = format!("pw-{role}-correct horse");
        {
            let mut conn = callaudit_db::pool::get(&self.state.pool)
                .await
                .expect("conn");
            callaudit_db::auth::seed_rbac(&mut conn)
                .await
                .expect("seed");
            callaudit_db::auth::upsert_user(&mut conn, &email, &password, role)
                .await
                .expect("user");
        }
        let resp = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 200, "login as {role}");
        let body: serde_json::Value = resp.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }

    /// GET with an optional token; returns (status, JSON body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Sends `method` with a JSON body; returns (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Polls `check` until it returns `Some`, failing the test with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The `temporal` CLI (from `TEMPORAL_CLI` or PATH).
pub fn temporal_cli() -> String {
    std::env::var("TEMPORAL_CLI").unwrap_or_else(|_| "temporal".into())
}

/// A child process killed when dropped.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a private in-memory Temporal dev server on `port` (for tests that stop it).
pub fn start_private_temporal(port: u16) -> ChildGuard {
    let child = std::process::Command::new(temporal_cli())
        .args([
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--log-level",
            "error",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--http-port",
            &free_port().to_string(),
        ])
        .args(["--metrics-port", &free_port().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start temporal dev server (is the temporal CLI installed? see temporal-dev/)");
    ChildGuard(child)
}

pub use callaudit_api::sse::SseEvent;

/// A minimal SSE reader over a live HTTP response (comments and keep-alives skipped).
pub struct SseClient {
    resp: reqwest::Response,
    decoder: callaudit_api::sse::SseDecoder,
    pending: std::collections::VecDeque<SseEvent>,
    /// HTTP status of the stream request.
    pub status: u16,
}

impl SseClient {
    /// Opens `path` with a bearer token and an optional `Last-Event-ID`.
    pub async fn open(
        api: &TestApi,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> SseClient {
        let mut req = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(token)
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.expect("sse request");
        let status = resp.status().as_u16();
        SseClient {
            resp,
            decoder: Default::default(),
            pending: Default::default(),
            status,
        }
    }

    /// The next event, `None` when the server closed the stream; fails the test when
    /// nothing arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no SSE event within {timeout:?}"))
                .expect("sse body");
            match chunk {
                Some(bytes) => self.pending.extend(self.decoder.push(&bytes)),
                None => return None,
            }
        }
    }

    /// Every remaining event until the server closes the stream.
    pub async fn rest(&mut self, timeout: Duration) -> Vec<SseEvent> {
        let mut out = vec![];
        while let Some(e) = self.next(timeout).await {
            out.push(e);
        }
        out
    }
}

/// A pending audit of FICHE-1001 with the sample configuration, stored straight in
/// Postgres (no workflow): for tests of what reads audits.
pub async fn pending_audit_row(
    conn: &mut callaudit_db::AsyncPgConnection,
    steps_total: i32,
) -> uuid::Uuid {
    let spec: callaudit_domain::audit_config::AuditConfigSpec =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample config");
    let config = callaudit_db::audit_configs::create(conn, &spec, None)
        .await
        .expect("config");
    let id = uuid::Uuid::new_v4();
    callaudit_db::audits::create(
        conn,
        &callaudit_db::audits::NewAudit {
            id,
            fiche_id: "FICHE-1001",
            audit_config_id: config,
            use_rlm: false,
            workflow_id: &format!("audit:{id}"),
            steps_total,
            requested_by: None,
            idempotency_key: None,
            request_fingerprint: None,
            config_snapshot: None,
            config_version: None,
        },
    )
    .await
    .expect("audit");
    id
}
