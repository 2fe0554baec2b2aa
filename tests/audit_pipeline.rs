//! The audit pipeline end to end: api → AuditWorkflow → children → activities → simulators.

use crate::support::*;
use callaudit_domain::analysis::Conformite;
use callaudit_domain::scoring::{StepForSummary, summarize};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A worker process wired to the simulators at `sim`, with extra environment.
pub(crate) fn spawn_worker_with(
    db_url: &str,
    queue: &str,
    sim: &str,
    env: &[(&str, &str)],
) -> ChildGuard {
    spawn_worker_logged(db_url, queue, sim, env, None)
}

/// Like [`spawn_worker_with`], writing stdout and stderr to `log` when given.
fn spawn_worker_logged(
    db_url: &str,
    queue: &str,
    sim: &str,
    env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> ChildGuard {
    let mut cmd = Command::new(bin());
    cmd.arg("worker")
        .env("DATABASE_URL", db_url)
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("TEMPORAL_TASK_QUEUE", queue)
        .env("CRM_BASE_URL", format!("http://{sim}/crm"))
        .env("CRM_API_KEY", "sim-crm")
        .env("ELEVENLABS_BASE_URL", format!("http://{sim}/elevenlabs"))
        .env("ELEVENLABS_API_KEY", "sim-stt")
        .env("OPENAI_BASE_URL", format!("http://{sim}/openai/v1"))
        .env("OPENAI_API_KEY", "sim-llm")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(path) = log {
        let out = std::fs::File::create(path).expect("worker log");
        let err = out.try_clone().expect("worker log");
        cmd.stdout(out).stderr(err);
    }
    ChildGuard(cmd.spawn().expect("spawn worker"))
}

fn config_with_steps(n: usize) -> serde_json::Value {
    let mut config: serde_json::Value =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample");
    let steps = config["steps"].as_array_mut().expect("steps");
    steps.truncate(n);
    config
}

/// A test database, simulators, an api and tokens; workers are started by each test.
pub(crate) struct Scenario {
    pub(crate) db: callaudit_db::testing::TestDatabase,
    pub(crate) queue: String,
    pub(crate) sim: SocketAddr,
    pub(crate) api: TestApi,
    pub(crate) auditor: String,
    pub(crate) manager: String,
}

impl Scenario {
    /// With an api that checks fiches against the simulated CRM before audits.
    pub(crate) async fn new(label: &str, sim: callaudit_sim::SimConfig) -> Scenario {
        Self::build(label, sim, true, 3).await
    }

    /// With an api that has no CRM configured: the workers fetch every fiche.
    pub(crate) async fn without_api_crm(label: &str, sim: callaudit_sim::SimConfig) -> Scenario {
        Self::build(label, sim, false, 3).await
    }

    /// Like [`Scenario::without_api_crm`], every vendor answering after `latency_ms` (so
    /// work stays in flight long enough to act on it).
    pub(crate) async fn slow(label: &str, latency_ms: u64) -> Scenario {
        Self::without_api_crm(
            label,
            callaudit_sim::SimConfig {
                latency_ms,
                ..Default::default()
            },
        )
        .await
    }

    /// Like [`Scenario::without_api_crm`], audits analysing `step_parallelism` steps at once
    /// (3 otherwise).
    pub(crate) async fn without_api_crm_stepping(
        label: &str,
        sim: callaudit_sim::SimConfig,
        step_parallelism: u32,
    ) -> Scenario {
        Self::build(label, sim, false, step_parallelism).await
    }

    async fn build(
        label: &str,
        sim: callaudit_sim::SimConfig,
        api_crm: bool,
        step_parallelism: u32,
    ) -> Scenario {
        let db = test_db(label).await;
        let queue = task_queue(label);
        let (sim, _) = callaudit_sim::spawn("127.0.0.1:0", callaudit_sim::SimState::new(sim))
            .await
            .expect("sim");
        let api = spawn_api_stepping(
            &db.url,
            temporal_settings(&temporal_address(), &queue),
            api_crm.then(|| format!("http://{sim}/crm")),
            step_parallelism,
        )
        .await;
        let auditor = api.token_for("auditor").await;
        let manager = api.token_for("manager").await;
        Scenario {
            db,
            queue,
            sim,
            api,
            auditor,
            manager,
        }
    }

    /// With an api that checks fiches against the simulated CRM and accepts webhooks to
    /// `origin` (`WEBHOOK_ALLOWED_ORIGINS`, an http origin of 127.0.0.1 here); the
    /// worker must be given the same origin.
    pub(crate) async fn with_webhook_origin(label: &str, origin: &str) -> Scenario {
        let db = test_db(label).await;
        let queue = task_queue(label);
        let (sim, _) = callaudit_sim::spawn(
            "127.0.0.1:0",
            callaudit_sim::SimState::new(Default::default()),
        )
        .await
        .expect("sim");
        let mut settings = api_settings(
            &db.url,
            temporal_settings(&temporal_address(), &queue),
            Some(format!("http://{sim}/crm")),
            3,
        );
        settings.automation.webhooks =
            callaudit_upstream::webhook::WebhookPolicy::new(&[origin.to_string()]);
        let api = spawn_api_from(settings).await;
        let auditor = api.token_for("auditor").await;
        let manager = api.token_for("manager").await;
        Scenario {
            db,
            queue,
            sim,
            api,
            auditor,
            manager,
        }
    }

    pub(crate) fn worker(&self, env: &[(&str, &str)]) -> ChildGuard {
        spawn_worker_with(&self.db.url, &self.queue, &self.sim.to_string(), env)
    }

    /// A worker whose stdout and stderr go to `log`.
    pub(crate) fn worker_logged(&self, env: &[(&str, &str)], log: &std::path::Path) -> ChildGuard {
        spawn_worker_logged(
            &self.db.url,
            &self.queue,
            &self.sim.to_string(),
            env,
            Some(log),
        )
    }

    pub(crate) async fn config(&self, steps: usize) -> serde_json::Value {
        let (status, config) = self
            .api
            .send(
                reqwest::Method::POST,
                "/api/audit-configs",
                Some(&self.manager),
                &config_with_steps(steps),
            )
            .await;
        assert_eq!(status, 201, "{config}");
        config["id"].clone()
    }

    pub(crate) async fn run(&self, fiche: &str, config: &serde_json::Value) -> String {
        let body = serde_json::json!({"fiche_id": fiche, "audit_config_id": config});
        self.run_body(&body).await["audit_id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Posts `body` to `/api/audits/run`; returns the 202 answer.
    pub(crate) async fn run_body(&self, body: &serde_json::Value) -> serde_json::Value {
        let (status, accepted) = self
            .api
            .send(
                reqwest::Method::POST,
                "/api/audits/run",
                Some(&self.auditor),
                body,
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        accepted
    }

    pub(crate) async fn audit(&self, id: &str) -> serde_json::Value {
        let (status, a) = self
            .api
            .get(&format!("/api/audits/{id}"), Some(&self.auditor))
            .await;
        assert_eq!(status, 200, "{a}");
        a
    }

    pub(crate) async fn completed(&self, id: &str) -> serde_json::Value {
        wait_for(
            "the audit to complete",
            Duration::from_secs(180),
            || async {
                let a = self.audit(id).await;
                assert_ne!(a["status"], "failed", "audit failed: {a}");
                (a["status"] == "completed").then_some(a)
            },
        )
        .await
    }

    pub(crate) async fn sim_stats(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/_sim/stats", self.sim))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }
}

pub(crate) async fn count(db_url: &str, sql: &str) -> i64 {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(db_url)
        .await
        .expect("connect");
    let rows: Vec<N> = diesel::sql_query(sql)
        .load(&mut conn)
        .await
        .expect("count query");
    rows[0].n
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_of_a_fiche_with_two_recordings_stores_four_steps_and_their_summary() {
    let sc = Scenario::without_api_crm("audit_e2e", Default::default()).await;
    let (api, token) = (&sc.api, &sc.auditor);
    let _worker = sc.worker(&[]);
    let config = sc.config(4).await;
    let accepted = sc
        .run_body(&serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config, "useRlm": false}))
        .await;
    let audit_id = accepted["audit_id"].as_str().expect("id").to_string();
    assert_eq!(accepted["workflow_id"], format!("audit:{audit_id}"));
    let events_path = accepted["links"]["events"].as_str().expect("events link");
    assert_eq!(events_path, format!("/api/audits/{audit_id}/events"));

    // A client reads two events live, drops, and reconnects with Last-Event-ID.
    let t = Duration::from_secs(120);
    let mut first = SseClient::open(api, events_path, token, None).await;
    assert_eq!(first.status, 200);
    let seen = vec![
        first.next(t).await.expect("event 1"),
        first.next(t).await.expect("event 2"),
    ];
    drop(first);
    let resume_from = seen[1].id.clone().expect("id");
    let mut resumed = SseClient::open(api, events_path, token, Some(&resume_from)).await;
    let missed = resumed.rest(t).await;

    let audit = wait_for(
        "the audit to complete",
        Duration::from_secs(120),
        || async {
            let a = sc.audit(&audit_id).await;
            assert_ne!(a["status"], "failed", "audit failed: {a}");
            (a["status"] == "completed").then_some(a)
        },
    )
    .await;

    let steps = audit["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4);

    // The whole stream: started → 4 step events → completed, and the resumed client got
    // exactly what it had not seen.
    let mut replay = SseClient::open(api, events_path, token, None).await;
    let all = replay.rest(t).await;
    let kinds: Vec<&str> = all.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(
        kinds,
        [
            "audit.started",
            "audit.step.completed",
            "audit.step.completed",
            "audit.step.completed",
            "audit.step.completed",
            "audit.completed"
        ]
    );
    let mut stitched = seen.clone();
    stitched.extend(missed);
    assert_eq!(stitched, all, "seen + resumed == the full stream");
    let recomputed = summarize(
        &steps
            .iter()
            .map(|s| StepForSummary {
                weight: s["weight"].as_f64().expect("weight"),
                critical: s["critical"].as_bool().expect("critical"),
                score: s["score"].as_f64().expect("score"),
                conforme: serde_json::from_value::<Conformite>(s["conforme"].clone())
                    .expect("conforme"),
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(audit["score"].as_f64(), Some(recomputed.score));
    assert_eq!(audit["niveau"], recomputed.niveau.as_str());
    assert_eq!(audit["critical"].as_bool(), Some(recomputed.critical));
    for s in steps {
        let points = s["raw_result"]["points_controle"]
            .as_array()
            .expect("points");
        assert!(!points.is_empty());
        for p in points {
            if p["statut"] == "PRESENT" {
                assert!(
                    p["citations"].as_array().is_some_and(|c| !c.is_empty()),
                    "PRESENT without citation: {p}"
                );
            }
        }
    }
    // One transcription per recording of the fiche, stored once.
    let stats = sc.sim_stats().await;
    assert_eq!(stats["stt_requests"], 2, "{stats}");
    assert_eq!(stats["llm_requests"], 4, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_with_use_rlm_reads_the_transcripts_through_tools_and_keeps_only_verified_evidence()
 {
    let sc = Scenario::new("audit_use_rlm", Default::default()).await;
    let config = sc.config(4).await;
    let _worker = sc.worker(&[]);
    let accepted = sc
        .run_body(
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config, "use_rlm": true}),
        )
        .await;
    let audit = sc
        .completed(accepted["audit_id"].as_str().expect("id"))
        .await;
    assert_eq!(audit["use_rlm"], true);
    let steps = audit["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4);

    let mut present = 0;
    let mut tool_calls_recorded = 0;
    for s in steps {
        let analysis = &s["raw_result"]["analysis"];
        assert_eq!(analysis["mode"], "tools", "{s}");
        assert!(
            analysis["tool_rounds"].as_u64().expect("rounds") >= 1,
            "{s}"
        );
        assert!(analysis["tool_chars"].as_u64().expect("chars") > 0, "{s}");
        assert_eq!(analysis["budget_exhausted"], false, "{s}");
        tool_calls_recorded += analysis["tool_calls"].as_u64().expect("calls");
        assert!(s["prompt_tokens"].as_i64().expect("tokens") > 0);
        let points = s["raw_result"]["points_controle"]
            .as_array()
            .expect("points");
        assert!(!points.is_empty());
        for p in points {
            if p["statut"] == "PRESENT" {
                present += 1;
                let checks = p["citation_checks"].as_array().expect("checks");
                assert!(
                    checks.iter().any(|c| c["verdict"] == "VERIFIED"),
                    "PRESENT without a verified citation: {p}"
                );
            }
        }
    }
    assert!(present > 0, "no PRESENT point at all: {audit}");

    // Every request was a tool-mode request, the model called tools, and the worker
    // answered each call.
    let stats = sc.sim_stats().await;
    let n = |k: &str| stats[k].as_u64().expect(k);
    assert!(n("llm_requests") >= 8, "{stats}");
    assert_eq!(n("llm_tool_requests"), n("llm_requests"), "{stats}");
    assert!(n("llm_tool_calls") > 0, "{stats}");
    assert_eq!(n("llm_tool_results"), n("llm_tool_calls"), "{stats}");
    assert_eq!(tool_calls_recorded, n("llm_tool_calls"), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn running_an_audit_with_an_unknown_config_or_a_malformed_body_is_a_4xx_and_creates_nothing()
{
    let db = test_db("audit_bad_input").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("auditor").await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("audit config")
    );
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &serde_json::json!({"fiche_id": "FICHE-1001"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &serde_json::json!({"fiche_id": "../etc", "audit_config_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 400);
    let (_, page) = api.get("/api/audits", Some(&token)).await;
    assert_eq!(page["total"], 0, "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_never_exceed_the_global_crm_fetch_cap() {
    // The api does not fetch here, so every fiche is fetched by one of the two workers.
    let sc = Scenario::slow("crm_cap", 300).await;
    let config = sc.config(1).await;
    let cap = [("FICHE_FETCH_CONCURRENCY", "3")];
    let _a = sc.worker(&cap);
    let _b = sc.worker(&cap);
    let fiches: Vec<String> = (1001..=1010).map(|n| format!("FICHE-{n}")).collect();
    let mut ids = vec![];
    for f in &fiches {
        ids.push(sc.run(f, &config).await);
    }
    for id in &ids {
        sc.completed(id).await;
    }
    let stats = sc.sim_stats().await;
    let max = stats["crm_detail_max_in_flight"]
        .as_u64()
        .expect("max in flight");
    assert!(
        max <= 3,
        "the CRM saw {max} concurrent detail requests: {stats}"
    );
    assert!(
        max >= 2,
        "the fetches never overlapped, the cap was not exercised: {stats}"
    );
    assert_eq!(stats["crm_detail_requests"], 10, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fabricated_citation_is_downgraded_and_marked_evidence_unverified() {
    let sc = Scenario::new(
        "fabricated",
        callaudit_sim::SimConfig {
            fabricate: callaudit_sim::Fabricate::Always,
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(6).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1003", &config).await;
    let audit = sc.completed(&id).await;
    let mut downgraded = 0;
    for step in audit["steps"].as_array().expect("steps") {
        for p in step["raw_result"]["points_controle"]
            .as_array()
            .expect("points")
        {
            let checks = p["citation_checks"].as_array().cloned().unwrap_or_default();
            let verified = checks.iter().any(|c| c["verdict"] == "VERIFIED");
            if p["statut"] == "PRESENT" {
                assert!(verified, "PRESENT backed only by invented quotes: {p}");
            }
            if p["evidence_unverified"] == true {
                assert!(!verified, "{p}");
                assert_ne!(p["statut"], "PRESENT", "{p}");
                assert!(
                    p["evidence_reason"].as_str().is_some_and(|r| !r.is_empty()),
                    "{p}"
                );
                if p["claimed_statut"] == "PRESENT" {
                    downgraded += 1;
                }
            }
        }
    }
    assert!(
        downgraded >= 1,
        "no fabricated claim was downgraded: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_point_the_model_leaves_out_is_stored_absent_and_one_it_repeats_counts_once() {
    // The simulated model skips the first control point and lists the second twice.
    let sc = Scenario::without_api_crm(
        "point_coverage",
        callaudit_sim::SimConfig {
            omit_points: vec![0],
            duplicate_points: vec![1],
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    let audit = sc.completed(&id).await;
    let steps = audit["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{audit}");
    let step = &steps[0];
    let points = step["raw_result"]["points_controle"]
        .as_array()
        .expect("points");
    let indexes: Vec<u64> = points
        .iter()
        .map(|p| p["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(
        indexes,
        [0, 1, 2],
        "each control point exactly once: {step}"
    );

    let omitted = &points[0];
    assert_eq!(
        omitted["point"],
        "Le conseiller se présente avec son nom et sa société"
    );
    assert_eq!(omitted["statut"], "ABSENT", "{omitted}");
    assert_eq!(omitted["evidence_unverified"], true, "{omitted}");
    assert_eq!(
        omitted["evidence_reason"], "not assessed by the model",
        "{omitted}"
    );
    assert_eq!(points[1]["statut"], "PRESENT", "{}", points[1]);
    assert_eq!(points[2]["statut"], "PRESENT", "{}", points[2]);

    // Step 1 weighs 10 and has three applicable points, two PRESENT: 10 × 2 / 3.
    // (Before, the omitted point did not count and the repeated one counted twice:
    // 10 × 3 / 3, CONFORME.)
    let score = step["score"].as_f64().expect("score");
    assert!((score - 20.0 / 3.0).abs() < 1e-9, "step score {score}");
    assert_eq!(step["conforme"], "PARTIEL");
    // The audit: 100 × (20 / 3) / 10 = 66.7, ACCEPTABLE (60 ≤ 66.7 < 75).
    assert_eq!(audit["score"].as_f64(), Some(66.7), "{audit}");
    assert_eq!(audit["niveau"], "ACCEPTABLE");
}

/// Serves `app` on a free local port; returns its origin (`http://127.0.0.1:{port}`).
pub(crate) fn serve_local(app: impl poem::Endpoint + 'static) -> String {
    let port = free_port();
    tokio::spawn(
        poem::Server::new(poem::listener::TcpListener::bind(format!(
            "127.0.0.1:{port}"
        )))
        .run(app),
    );
    format!("http://127.0.0.1:{port}")
}
