//! A real browser follows an audit's stream: headless Chromium, driven through the W3C
//! WebDriver protocol (chromedriver) with reqwest, loads a page served from another
//! origin than the api's, logs in with `fetch`, asks for a stream token with an
//! `Authorization` header (so the browser itself runs the CORS preflight), and opens
//! `new EventSource(url)`, which sends no header. What the page saw is read back from
//! `window.runs` with WebDriver's `execute/sync`; what the api received is recorded by
//! a wrapper around the app, so the tests can tell what the browser did on the wire.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`) on `PATH`;
//! without them the tests print why and skip, unless `CALLAUDIT_TEST_REQUIRE_BROWSER` is
//! set (as `.ci/run` does after installing them), in which case they fail.

use crate::audit_pipeline::Scenario;
use crate::events_stream::emit;
use crate::support::*;
use callaudit_domain::events::{AUDIT_TERMINAL, AuditEvent};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The page both origins serve. It keeps what each run saw in `window.runs[name]`:
/// `events` (type, lastEventId, data), `errors` (the EventSource's readyState at each
/// error), `opened` (open events), `failure` (a fetch that threw), `done` (terminal
/// event seen; the page then closes the EventSource, which would otherwise reconnect).
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>callaudit stream follower</title>
<script>
window.runs = {};
function record(name) {
  return (window.runs[name] = {events: [], errors: [], opened: 0, failure: null, done: false});
}
function listen(run, url, kinds, terminal) {
  const source = new EventSource(url);
  source.onopen = () => { run.opened += 1; };
  source.onerror = () => { run.errors.push(source.readyState); };
  for (const kind of kinds) {
    source.addEventListener(kind, (e) => {
      run.events.push({type: e.type, lastEventId: e.lastEventId, data: e.data});
      if (terminal.includes(e.type)) { source.close(); run.done = true; }
    });
  }
}
// Logs in, asks for a stream token with the bearer token, then follows the stream.
window.follow = async function (name, api, email, password, auditId, kinds, terminal) {
  const run = record(name);
  try {
    const login = await fetch(`${api}/api/auth/login`, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email, password}),
    });
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);
    const bearer = (await login.json()).token;
    const issued = await fetch(`${api}/api/audits/${auditId}/events/token`, {
      method: "POST",
      headers: {Authorization: `Bearer ${bearer}`},
    });
    if (issued.status !== 201) throw new Error(`events/token answered ${issued.status}`);
    listen(run, api + (await issued.json()).url, kinds, terminal);
  } catch (e) {
    run.failure = `${e.name}: ${e.message}`;
  }
};
// Opens a stream URL as given (no login, no token request).
window.openStream = function (name, url, kinds, terminal) {
  listen(record(name), url, kinds, terminal);
};
</script>
<p>callaudit stream follower</p>
"#;

/// Every event type the page listens for (`message`: an event without `event:`).
fn kinds() -> Value {
    json!([
        "message",
        AuditEvent::STARTED,
        AuditEvent::STEP_COMPLETED,
        AuditEvent::COMPLETED,
        AuditEvent::FAILED,
        AuditEvent::CANCELLED,
    ])
}

/// A headless Chromium session behind its own chromedriver.
struct Browser {
    driver: String,
    session: String,
    http: reqwest::Client,
    _chromedriver: ChildGuard,
}

/// The path of `name` in one of `PATH`'s directories.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session; `None` (with
    /// the reason printed) when they are not installed and the browser is not required.
    async fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
        else {
            assert!(
                std::env::var_os("CALLAUDIT_TEST_REQUIRE_BROWSER").is_none(),
                "CALLAUDIT_TEST_REQUIRE_BROWSER is set but chromium or chromedriver is not on \
                 PATH (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "skipped: chromium and chromedriver are not on PATH \
                 (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = free_port();
        let mut child = ChildGuard(
            std::process::Command::new(chromedriver)
                .args([format!("--port={port}"), "--silent".into()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let driver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        wait_for("chromedriver to be ready", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            let (http, driver) = (&http, &driver);
            async move {
                let status: Value = http
                    .get(format!("{driver}/status"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (status["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        // Root in a container has no user namespace for Chromium's sandbox.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run"],
            },
        }}});
        let created: Value = http
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        Some(Browser {
            driver,
            session,
            http,
            _chromedriver: child,
        })
    }

    /// Sends a WebDriver command of this session; returns its `value`.
    async fn command(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.driver, self.session);
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .expect("webdriver");
        let status = resp.status();
        let answer: Value = resp.json().await.expect("webdriver json");
        assert!(status.is_success(), "WebDriver {path}: {status} {answer}");
        answer["value"].clone()
    }

    /// Navigates to `url` (returns once the page has loaded).
    async fn goto(&self, url: &str) {
        self.command("url", &json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    async fn run(&self, script: &str, args: Value) -> Value {
        self.command("execute/sync", &json!({"script": script, "args": args}))
            .await
    }

    /// What the page's run `name` saw so far.
    async fn seen(&self, name: &str) -> Value {
        self.run("return window.runs[arguments[0]] ?? null;", json!([name]))
            .await
    }

    /// Polls run `name` until `done` says it is finished; returns it.
    async fn wait_for_run(&self, name: &str, timeout: Duration, done: fn(&Value) -> bool) -> Value {
        wait_for(&format!("the page's run {name:?}"), timeout, || async {
            let seen = self.seen(name).await;
            done(&seen).then_some(seen)
        })
        .await
    }
}

impl Drop for Browser {
    /// Ends the session, which quits Chromium (killing chromedriver alone would leave it
    /// running). Plain blocking HTTP, as drop cannot await and may run while unwinding.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(addr) = self.driver.strip_prefix("http://") else {
            return;
        };
        if let Ok(mut conn) = std::net::TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                conn,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session
            );
            let _ = conn.read_to_end(&mut Vec::new());
        }
    }
}

/// Serves [`PAGE`] on a port of its own; returns its origin (`http://127.0.0.1:PORT`).
async fn serve_page() -> String {
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind page");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp addr");
    let app = poem::Route::new().at("/", poem::endpoint::make_sync(|_| poem::web::Html(PAGE)));
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    format!("http://{addr}")
}

/// One request the api received, as the browser sent it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: String,
    origin: Option<String>,
    authorization: bool,
    /// `Access-Control-Request-Headers` of a preflight.
    preflight_headers: Option<String>,
    status: u16,
}

type Requests = Arc<Mutex<Vec<Received>>>;

/// The api built by `AppState::build` from `settings`, with every request it answers
/// recorded (outside CORS, so preflights are seen too).
async fn spawn_watched_api(settings: callaudit_api::state::ApiSettings) -> (TestApi, Requests) {
    use poem::listener::{Acceptor, Listener};
    use poem::{Endpoint, EndpointExt, IntoResponse};
    let (state, _listener) = callaudit_api::AppState::build(settings).expect("api state");
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp addr");
    let requests = Requests::default();
    let log = requests.clone();
    let app = callaudit_api::app(state.clone()).around(move |ep, req| {
        let log = log.clone();
        async move {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let mut seen = Received {
                method: req.method().to_string(),
                path: req.uri().path().to_string(),
                query: req.uri().query().unwrap_or_default().to_string(),
                origin: header("origin"),
                authorization: req.headers().contains_key("authorization"),
                preflight_headers: header("access-control-request-headers"),
                status: 0,
            };
            let resp = ep.call(req).await.map(IntoResponse::into_response);
            seen.status = match &resp {
                Ok(r) => r.status().as_u16(),
                Err(e) => e.status().as_u16(),
            };
            log.lock().unwrap().push(seen);
            resp
        }
    });
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    let api = TestApi {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::new(),
    };
    (api, requests)
}

/// What the api received as `method` on `path`.
fn received(requests: &Requests, method: &str, path: &str) -> Vec<Received> {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .cloned()
        .collect()
}

/// A user with `role` whose password the page types; returns (email, password).
async fn user(api: &TestApi, role: &str) -> (String, String) {
    let email = format!(
        "browser-{role}-{}@example.test",
        uuid::Uuid::new_v4().simple()
    );
    let password = format!("pw-{role}-correct horse");
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    callaudit_db::auth::seed_rbac(&mut conn)
        .await
        .expect("seed");
    callaudit_db::auth::upsert_user(&mut conn, &email, &password, role)
        .await
        .expect("user");
    (email, password)
}

/// The api settings of these tests: only `origin` may call it from a browser.
fn settings_allowing(db_url: &str, queue: &str, origin: &str) -> callaudit_api::state::ApiSettings {
    let mut settings = api_settings(
        db_url,
        temporal_settings(&temporal_address(), queue),
        None,
        3,
    );
    settings.cors_allowed_origins = vec![origin.to_string()];
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_on_an_allowed_origin_follows_a_real_audit_live_with_a_stream_token() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let page = serve_page().await;
    let label = "browser_follow";
    let db = test_db(label).await;
    let queue = task_queue(label);
    let (sim, _) = callaudit_sim::spawn(
        "127.0.0.1:0",
        callaudit_sim::SimState::new(Default::default()),
    )
    .await
    .expect("sim");
    let (api, requests) = spawn_watched_api(settings_allowing(&db.url, &queue, &page)).await;
    assert_ne!(api.base, page, "the page is on another origin than the api");
    let auditor = api.token_for("auditor").await;
    let manager = api.token_for("manager").await;
    let sc = Scenario {
        db,
        queue,
        sim,
        api,
        auditor,
        manager,
    };
    let steps = 3;
    let config = sc.config(steps).await;
    // No worker yet: the workflow waits, so the page is following before anything happens.
    let audit = sc.run("FICHE-1001", &config).await;
    let (email, password) = user(&sc.api, "viewer").await;

    browser.goto(&format!("{page}/")).await;
    browser
        .run(
            "window.follow(...arguments); return null;",
            json!([
                "live",
                sc.api.base,
                email,
                password,
                audit,
                kinds(),
                AUDIT_TERMINAL
            ]),
        )
        .await;
    let open = browser
        .wait_for_run("live", Duration::from_secs(15), |r| {
            r["opened"].as_u64() >= Some(1) || !r["failure"].is_null()
        })
        .await;
    assert_eq!(open["failure"], Value::Null, "{open}");
    assert_eq!(open["events"], json!([]), "nothing happened yet: {open}");

    let _worker = sc.worker(&[]);
    let seen = browser
        .wait_for_run("live", Duration::from_secs(45), |r| {
            r["done"] == true || r["errors"].as_array().is_some_and(|e| !e.is_empty())
        })
        .await;
    assert_eq!(seen["errors"], json!([]), "{seen}");
    assert_eq!(seen["opened"], 1, "one connection, no reconnect: {seen}");

    let events = seen["events"].as_array().expect("events");
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let mut expected = vec![AuditEvent::STARTED];
    expected.extend(std::iter::repeat_n(AuditEvent::STEP_COMPLETED, steps));
    expected.push(AuditEvent::COMPLETED);
    assert_eq!(types, expected, "{seen}");
    let data: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e["data"].as_str().unwrap()).expect("data is JSON"))
        .collect();
    let ids: Vec<i64> = events
        .iter()
        .map(|e| {
            e["lastEventId"]
                .as_str()
                .unwrap()
                .parse()
                .expect("numeric id")
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for ((event, data), id) in events.iter().zip(&data).zip(&ids) {
        assert_eq!((&data["id"], &data["type"]), (&json!(id), &event["type"]));
        assert_eq!(data["payload"]["audit_id"], audit.as_str());
    }
    assert_eq!(data[0]["payload"]["steps_total"], steps);

    let view = sc.audit(&audit).await;
    assert_eq!(view["status"], "completed", "{view}");
    let sample: Value =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample");
    let mut step_events: Vec<&Value> = data[1..=steps].iter().map(|d| &d["payload"]).collect();
    step_events.sort_by_key(|p| p["position"].as_i64());
    for (i, payload) in step_events.iter().enumerate() {
        let (configured, stored) = (&sample["steps"][i], &view["steps"][i]);
        assert_eq!(
            (&payload["position"], &payload["name"]),
            (&configured["position"], &configured["name"]),
            "one event per configured step"
        );
        assert_eq!(
            (&payload["score"], &payload["conforme"]),
            (&stored["score"], &stored["conforme"]),
            "step {i}: {view}"
        );
    }
    let summary = &data[steps + 1]["payload"];
    assert_eq!(
        (&summary["score"], &summary["niveau"], &summary["critical"]),
        (&view["score"], &view["niveau"], &view["critical"]),
        "{view}"
    );
    assert!(view["score"].is_number(), "{view}");

    // On the wire: the browser preflighted the token request (its Authorization header),
    // then sent it, then opened the stream with the token and without any header.
    let token_path = format!("/api/audits/{audit}/events/token");
    let preflight = received(&requests, "OPTIONS", &token_path);
    assert_eq!(preflight.len(), 1, "{preflight:?}");
    assert_eq!(preflight[0].origin.as_deref(), Some(page.as_str()));
    assert!(
        preflight[0]
            .preflight_headers
            .as_deref()
            .is_some_and(|h| h.contains("authorization")),
        "{preflight:?}"
    );
    assert!((200..300).contains(&preflight[0].status), "{preflight:?}");
    let issued = received(&requests, "POST", &token_path);
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert!(
        issued[0].authorization && issued[0].status == 201,
        "{issued:?}"
    );
    let streams = received(&requests, "GET", &format!("/api/audits/{audit}/events"));
    assert_eq!(streams.len(), 1, "{streams:?}");
    let stream = &streams[0];
    assert!(
        !stream.authorization,
        "EventSource sent a header: {stream:?}"
    );
    assert!(stream.query.starts_with("token="), "{stream:?}");
    assert_eq!(
        (stream.origin.as_deref(), stream.status),
        (Some(page.as_str()), 200)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_on_another_origin_is_refused_by_cors_and_a_forged_stream_token_opens_nothing() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (allowed, other) = (serve_page().await, serve_page().await);
    let db = test_db("browser_refused").await;
    let (api, requests) = spawn_watched_api(settings_allowing(&db.url, "unused", &allowed)).await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        pending_audit_row(&mut conn, 1).await
    };
    emit(&api, audit, AuditEvent::STARTED, 0).await;
    emit(&api, audit, AuditEvent::COMPLETED, 0).await;
    let (email, password) = user(&api, "viewer").await;
    let viewer = api.token_for("viewer").await;
    let (status, issued) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/{audit}/events/token"),
            Some(&viewer),
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let real_stream = format!("{}{}", api.base, issued["url"].as_str().expect("url"));
    let refused = |r: &Value| r["errors"].as_array().is_some_and(|e| !e.is_empty());

    // From an origin not in the allowlist: the browser's preflight of the login gets no
    // CORS headers, so fetch throws and the login itself is never sent.
    browser.goto(&format!("{other}/")).await;
    browser
        .run(
            "window.follow(...arguments); return null;",
            json!([
                "login",
                api.base,
                email,
                password,
                audit,
                kinds(),
                AUDIT_TERMINAL
            ]),
        )
        .await;
    let login = browser
        .wait_for_run("login", Duration::from_secs(15), |r| {
            !r["failure"].is_null()
        })
        .await;
    assert!(
        login["failure"]
            .as_str()
            .is_some_and(|f| f.starts_with("TypeError")),
        "{login}"
    );
    let preflights = received(&requests, "OPTIONS", "/api/auth/login");
    assert_eq!(preflights.len(), 1, "{preflights:?}");
    assert_eq!(preflights[0].origin.as_deref(), Some(other.as_str()));
    assert!(
        received(&requests, "POST", "/api/auth/login")
            .iter()
            .all(|r| r.origin.as_deref() != Some(other.as_str())),
        "the browser sent the login despite the failed preflight"
    );
    // Nor may it read a stream, even with a valid token: the events exist, the page gets
    // none, and EventSource gives up (CLOSED = 2) instead of reconnecting.
    browser
        .run(
            "window.openStream(...arguments); return null;",
            json!(["stolen", real_stream, kinds(), AUDIT_TERMINAL]),
        )
        .await;
    let stolen = browser
        .wait_for_run("stolen", Duration::from_secs(15), refused)
        .await;
    assert_eq!(
        (&stolen["events"], &stolen["errors"], &stolen["opened"]),
        (&json!([]), &json!([2]), &json!(0)),
        "{stolen}"
    );

    // From the allowed origin, a forged token opens nothing either (401).
    browser.goto(&format!("{allowed}/")).await;
    let forged = format!("{}/api/audits/{audit}/events?token=st_forged", api.base);
    browser
        .run(
            "window.openStream(...arguments); return null;",
            json!(["forged", forged, kinds(), AUDIT_TERMINAL]),
        )
        .await;
    let seen = browser
        .wait_for_run("forged", Duration::from_secs(15), refused)
        .await;
    assert_eq!(
        (&seen["events"], &seen["errors"], &seen["opened"]),
        (&json!([]), &json!([2]), &json!(0)),
        "{seen}"
    );
    let streams = received(&requests, "GET", &format!("/api/audits/{audit}/events"));
    let forged_request = streams
        .iter()
        .find(|r| r.query == "token=st_forged")
        .expect("the browser asked for the stream");
    assert_eq!(
        (forged_request.origin.as_deref(), forged_request.status),
        (Some(allowed.as_str()), 401)
    );
    assert!(!forged_request.authorization);
}
