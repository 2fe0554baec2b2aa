//! Trust, security and operability (issue 8): replicas starting together, finished
//! streams, transient CRM errors, idempotent starts, capped bodies, metrics labels.

use crate::audit_pipeline::count;
use crate::events_stream::emit;
use crate::support::*;
use callaudit_db::testing::create_empty_database;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn replicas_started_at_once_on_a_fresh_database_all_seed_the_admin_and_none_dies() {
    let db = create_empty_database(&admin_database_url(), "seed_race")
        .await
        .expect("db");
    // As a compose file or an orchestrator starts them: api and worker replicas, each
    // migrating and upserting the seeded admin at start (`seed-auth` does just that).
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(bin())
                .arg("seed-auth")
                .env("DATABASE_URL", &db.url)
                .env("AUTH_SEED_ADMIN_EMAIL", "ops@example.com")
                .env("AUTH_SEED_ADMIN_PASSWORD", "a-long-admin-password")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn seed-auth")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a replica died at start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) AS n FROM users WHERE lower(email) = 'ops@example.com'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) AS n FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             JOIN users u ON u.id = ur.user_id WHERE r.name = 'admin' AND u.email = 'ops@example.com'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reconnecting_after_the_terminal_event_gets_the_rest_and_the_stream_closes_at_once()
 {
    let db = test_db("sse_finished").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        pending_audit_row(&mut conn, 1).await
    };
    let started = emit(&api, audit, "audit.started", 0).await;
    let completed = emit(&api, audit, "audit.completed", 0).await;
    let path = format!("/api/audits/{audit}/events");
    // Streams re-read every 5 s without a notification: closing within 2 s means the
    // stream ended by itself, not after a poll.
    let quick = std::time::Duration::from_secs(2);

    let mut resumed = SseClient::open(&api, &path, &token, Some(&completed.to_string())).await;
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.rest(quick).await, vec![], "nothing follows the end");

    let mut before_end = SseClient::open(&api, &path, &token, Some(&started.to_string())).await;
    let rest = before_end.rest(quick).await;
    assert_eq!(
        rest.iter().filter_map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![completed.to_string()]
    );
    wait_for(
        "both streams released",
        std::time::Duration::from_secs(5),
        || async { (api.state.events.open_streams() == 0).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_its_cap_of_streams_a_replica_answers_503_and_a_closed_stream_frees_its_place() {
    let db = test_db("sse_cap").await;
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    settings.max_streams = 2;
    let api = spawn_api_from(settings).await;
    let token = api.token_for("viewer").await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        pending_audit_row(&mut conn, 1).await
    };
    let path = format!("/api/audits/{audit}/events");
    let first = SseClient::open(&api, &path, &token, None).await;
    let second = SseClient::open(&api, &path, &token, None).await;
    assert_eq!((first.status, second.status), (200, 200));
    let (status, body) = api.get(&path, Some(&token)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_MAX_STREAMS")),
        "{body}"
    );
    // The server learns that a client left when it next writes to it: the keep-alive
    // comment comes every 5 s (the write after the client's reset fails).
    drop(first);
    let third = wait_for(
        "a place under the cap",
        std::time::Duration::from_secs(30),
        || {
            let api = &api;
            let path = &path;
            let token = &token;
            async move {
                let s = SseClient::open(api, path, token, None).await;
                (s.status == 200).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(third.status, 200);
    assert_eq!(api.state.events.open_streams(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_body_past_the_cap_gets_413_with_the_json_error_whether_declared_or_chunked() {
    let db = test_db("body_cap").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("manager").await;
    let url = format!("{}/api/audit-configs", api.base);
    // A JSON body of 1 MiB + 1 KiB: one long string field.
    let big = serde_json::json!({"name": "x".repeat((1 << 20) + 1024), "steps": []}).to_string();

    let declared = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(declared.status(), 413);
    let body: serde_json::Value = declared.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_MAX_BODY_BYTES")),
        "{body}"
    );

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let chunked = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("request");
    assert_eq!(chunked.status(), 413);

    // Under the cap, chunked or not, requests go through (here: a validation error, 4xx
    // from the handler, not from the cap).
    let small = serde_json::json!({"name": "ok", "steps": []}).to_string();
    let chunked_small = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(vec![
            Ok::<_, std::io::Error>(small.into_bytes()),
        ])))
        .send()
        .await
        .expect("request");
    let status = chunked_small.status().as_u16();
    let body: serde_json::Value = chunked_small.json().await.expect("json");
    assert!(status == 400 || status == 422, "{status} {body}");
    assert_ne!(body["error"]["code"], "payload_too_large");
}

/// A CRM gateway whose first `fail_first` detail requests of each fiche answer 503 (then
/// 200 with a fiche of no recordings); counts requests per fiche.
type Counts = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>;

async fn flaky_crm(fail_first: usize) -> (String, Counts) {
    use poem::listener::{Acceptor, Listener};
    let counts: Counts = Default::default();
    let seen = counts.clone();
    let app = poem::Route::new().at(
        "/crm/fiches/:id",
        poem::get(poem::endpoint::make_sync(move |req: poem::Request| {
            let id = req.path_params::<String>().unwrap_or_default();
            let n = {
                let mut c = seen.lock().unwrap();
                let n = c.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            if n <= fail_first {
                return poem::Response::builder()
                    .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                    .content_type("application/json")
                    .body(r#"{"error":"gateway unavailable"}"#);
            }
            poem::Response::builder()
                .content_type("application/json")
                .body(
                    serde_json::json!({
                        "fiche_id": id, "cle": "c", "groupe": "NCA", "statut": "VALIDEE",
                        "date_vente": "2026-11-02T09:45:00+01:00", "client": {}, "recordings": []
                    })
                    .to_string(),
                )
        })),
    );
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = *acceptor.local_addr()[0].as_socket_addr().expect("addr");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}/crm"), counts)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_crm_failure_during_the_pre_check_is_retried_and_a_lasting_one_is_a_503() {
    let db = test_db("crm_retry").await;
    let (crm, counts) = flaky_crm(1).await;
    let queue = task_queue("crm_retry");
    let api = spawn_api_with_crm(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        Some(crm),
    )
    .await;
    let auditor = api.token_for("auditor").await;
    let config = sample_config(&api).await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &serde_json::json!({"fiche_id": "FICHE-7001", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 202, "one 503 of the CRM bounced the user: {body}");
    assert_eq!(counts.lock().unwrap().get("FICHE-7001"), Some(&2));

    // A CRM that keeps failing: three attempts, then 503, and nothing is stored.
    let (down, down_counts) = flaky_crm(usize::MAX).await;
    let api = spawn_api_with_crm(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        Some(down),
    )
    .await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &serde_json::json!({"fiche_id": "FICHE-7002", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(down_counts.lock().unwrap().get("FICHE-7002"), Some(&3));
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) AS n FROM audits WHERE fiche_id = 'FICHE-7002'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_and_body_return_the_same_audit_and_another_body_is_a_409() {
    let db = test_db("idempotency").await;
    let queue = task_queue("idempotency");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let auditor = api.token_for("auditor").await;
    let other_auditor = api.token_for("auditor").await;
    let config = sample_config(&api).await;
    let run = |token: &str, key: &str, body: serde_json::Value| {
        api.http
            .post(format!("{}/api/audits/run", api.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"]});
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.expect("json"))
    };

    let (status, first) = answer(run(&auditor, "key-1", body.clone()).await.expect("run")).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = answer(run(&auditor, "key-1", body.clone()).await.expect("run")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["audit_id"], first["audit_id"]);
    assert_eq!(again["workflow_id"], first["workflow_id"]);
    assert_eq!(
        count(&db.url, "SELECT count(*) AS n FROM audits").await,
        1,
        "a retried request creates nothing more"
    );

    let mut other_body = body.clone();
    other_body["use_rlm"] = serde_json::json!(true);
    let (status, conflict) = answer(run(&auditor, "key-1", other_body).await.expect("run")).await;
    assert_eq!(status, 409, "{conflict}");
    assert!(
        conflict["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("key-1") && m.contains("another request")),
        "{conflict}"
    );

    // Keys are per user: another user's key-1 is a new audit.
    let (status, theirs) = answer(
        run(&other_auditor, "key-1", body.clone())
            .await
            .expect("run"),
    )
    .await;
    assert_eq!(status, 202, "{theirs}");
    assert_ne!(theirs["audit_id"], first["audit_id"]);
    assert_eq!(count(&db.url, "SELECT count(*) AS n FROM audits").await, 2);

    let (status, bad) = answer(run(&auditor, &"k".repeat(201), body).await.expect("run")).await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_label_routes_by_template_ready_names_the_dependency_only_and_dot_ids_are_refused()
{
    let db = test_db("operability").await;
    // A Temporal address nothing listens on.
    let dead = format!("127.0.0.1:{}", free_port());
    let api = spawn_api(&db.url, temporal_settings(&dead, "unused")).await;
    let token = api.token_for("auditor").await;

    let (status, body) = api.get("/ready", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["postgres"]["status"], "ok");
    assert_eq!(
        body["temporal"]["error"],
        format!("Temporal does not answer at {dead}"),
        "no raw transport error in an unauthenticated answer: {body}"
    );

    for path in ["/wp-admin/setup.php", "/.env", "/api/audits/a/b/c/d"] {
        let (status, _) = api.get(path, Some(&token)).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = api
        .get(
            "/api/audits/0b9c7a52-6d1e-4a40-9d55-0d6a1f0e2b11",
            Some(&token),
        )
        .await;
    assert_eq!(status, 404);
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            r#"callaudit_http_requests_total{method="GET",route="unmatched",status="404"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/audits/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("wp-admin") && !text.contains(".env"),
        "{text}"
    );

    // Fiche ids made only of dots would name another path of the CRM gateway.
    let (status, body) = api.get("/api/fiches/...", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &serde_json::json!({"fiche_id": "..", "audit_config_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_audits_of_one_fiche_at_once_send_each_recording_to_speech_to_text_once() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors, so the second audit reaches transcription while the first one's
    // speech-to-text calls are still running.
    let sc = Scenario::without_api_crm(
        "stt_once",
        callaudit_sim::SimConfig {
            latency_ms: 400,
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(1).await;
    let _a = sc.worker(&[]);
    let _b = sc.worker(&[]);
    let first = sc.run("FICHE-1001", &config).await;
    let second = sc.run("FICHE-1001", &config).await;
    sc.completed(&first).await;
    sc.completed(&second).await;
    let stats = sc.sim_stats().await;
    // FICHE-1001 has 2 recordings.
    assert_eq!(stats["stt_requests"], 2, "{stats}");
    assert_eq!(
        count(
            &sc.db.url,
            "SELECT count(*) AS n FROM transcriptions WHERE recording_id LIKE 'REC-1001-%'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_runs_at_most_worker_max_concurrent_activities_at_once() {
    use crate::audit_pipeline::Scenario;
    let sc = Scenario::without_api_crm(
        "max_activities",
        callaudit_sim::SimConfig {
            latency_ms: 300,
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(1).await;
    // One activity at a time: the three fiche fetches (each an activity, under a CRM cap
    // of 3 that would let them overlap) run one after the other.
    let _worker = sc.worker(&[
        ("WORKER_MAX_CONCURRENT_ACTIVITIES", "1"),
        ("FICHE_FETCH_CONCURRENCY", "3"),
    ]);
    let mut ids = vec![];
    for fiche in ["FICHE-1001", "FICHE-1002", "FICHE-1003"] {
        ids.push(sc.run(fiche, &config).await);
    }
    for id in &ids {
        sc.completed(id).await;
    }
    let stats = sc.sim_stats().await;
    assert_eq!(stats["crm_detail_requests"], 3, "{stats}");
    assert_eq!(stats["crm_detail_max_in_flight"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_and_its_children_are_found_in_temporal_by_fiche_audit_and_run_kind() {
    use crate::audit_pipeline::Scenario;
    let sc = Scenario::without_api_crm("search_attrs", Default::default()).await;
    let config = sc.config(2).await;
    let _worker = sc.worker(&[]);
    let id = sc.run("FICHE-1004", &config).await;
    sc.completed(&id).await;
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let count = |query: String| {
        let client = client.clone();
        async move {
            client
                .count_workflows(query, Default::default())
                .await
                .expect("count")
                .count()
        }
    };
    // Visibility is eventually consistent: wait for the expected counts. The audit and
    // its 2 steps carry its id; FICHE-1004's 2 recordings were transcribed by runs that
    // carry the fiche (this audit's children, or those of a concurrent test's audit of
    // the same fiche, whose transcriptions this one then shares).
    wait_for(
        "the runs to be visible",
        std::time::Duration::from_secs(60),
        || async {
            let ours = (
                count(format!("AuditId = '{id}' AND RunKind = 'audit'")).await,
                count(format!("AuditId = '{id}' AND RunKind = 'step'")).await,
                count(format!("AuditId = '{id}' AND FicheId != 'FICHE-1004'")).await,
            );
            let transcriptions =
                count("FicheId = 'FICHE-1004' AND RunKind = 'transcription'".to_string()).await;
            (ours == (1, 2, 0) && transcriptions >= 2).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_audit_is_recorded_cancelled_its_stream_ends_and_its_workflow_stops() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors: the audit is still running when it is cancelled.
    let sc = Scenario::without_api_crm(
        "cancel",
        callaudit_sim::SimConfig {
            latency_ms: 1500,
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(6).await;
    let _worker = sc.worker(&[]);
    let viewer = sc.api.token_for("viewer").await;
    let id = sc.run("FICHE-1001", &config).await;
    wait_for(
        "the audit to run",
        std::time::Duration::from_secs(30),
        || async { (sc.audit(&id).await["status"] == "running").then_some(()) },
    )
    .await;
    let path = format!("/api/audits/{id}/cancel");
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &path,
            Some(&viewer),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 403, "viewers cannot cancel");
    let (status, cancelled) = sc
        .api
        .send(
            reqwest::Method::POST,
            &path,
            Some(&sc.auditor),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cancelled by ")),
        "{cancelled}"
    );
    let (status, again) = sc
        .api
        .send(
            reqwest::Method::POST,
            &path,
            Some(&sc.auditor),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{again}");

    let mut stream =
        SseClient::open(&sc.api, &format!("/api/audits/{id}/events"), &viewer, None).await;
    let events = stream.rest(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("audit.cancelled"),
        "{events:?}"
    );
    // The workflow was asked to stop, and does; the audit stays cancelled.
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let handle =
        client.get_workflow_handle::<callaudit_workflows::AuditWorkflow>(format!("audit:{id}"));
    wait_for(
        "the workflow to stop",
        std::time::Duration::from_secs(60),
        || async {
            let described = handle.describe(Default::default()).await.ok()?;
            (described.status() != temporalio_client::WorkflowExecutionStatus::Running)
                .then_some(described.status())
        },
    )
    .await;
    assert_eq!(sc.audit(&id).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_whose_workflow_was_terminated_is_reconciled_as_failed_with_the_reason() {
    let db = test_db("reconcile").await;
    let queue = task_queue("reconcile");
    // No worker: the audit stays pending until its workflow is terminated by an operator.
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let auditor = api.token_for("auditor").await;
    let config = sample_config(&api).await;
    let (status, run) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let id = run["audit_id"].as_str().expect("id").to_string();
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    client
        .get_workflow_handle::<callaudit_workflows::AuditWorkflow>(format!("audit:{id}"))
        .terminate(Default::default())
        .await
        .expect("terminate");

    let (status, audit) = api.get(&format!("/api/audits/{id}"), Some(&auditor)).await;
    assert_eq!(status, 200);
    assert_eq!(audit["status"], "failed", "{audit}");
    assert!(
        audit["error"]
            .as_str()
            .is_some_and(|e| e.contains("terminated")),
        "{audit}"
    );
    let mut stream =
        SseClient::open(&api, &format!("/api/audits/{id}/events"), &auditor, None).await;
    let events = stream.rest(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        events
            .iter()
            .filter_map(|e| e.event.as_deref())
            .collect::<Vec<_>>(),
        vec!["audit.failed"]
    );
}

/// The sample configuration, created through the api by a manager.
async fn sample_config(api: &TestApi) -> serde_json::Value {
    let manager = api.token_for("manager").await;
    let (status, config) = api
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

#[tokio::test(flavor = "multi_thread")]
async fn events_of_a_stream_commit_in_id_order_so_a_reader_never_skips_one() {
    use diesel_async::AsyncConnection;
    let db = test_db("sse_order").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        pending_audit_row(&mut conn, 2).await
    };
    let topic = format!("audit:{audit}");
    let mut stream =
        SseClient::open(&api, &format!("/api/audits/{audit}/events"), &token, None).await;

    // Step A publishes in a transaction that commits late; step B publishes after A drew
    // its id. Without ordering, B's higher id commits first, the reader passes it, and
    // A's event is never sent.
    let (a_published, a_may_commit) = (
        tokio::sync::oneshot::channel::<()>(),
        tokio::sync::oneshot::channel::<()>(),
    );
    let (a_published_tx, a_published_rx) = a_published;
    let (commit_tx, commit_rx) = a_may_commit;
    let url = db.url.clone();
    let slow_topic = topic.clone();
    let step_a = tokio::spawn(async move {
        let mut conn = callaudit_db::establish(&url).await.expect("conn");
        conn.transaction::<_, callaudit_db::DbError, _>(async |conn| {
            callaudit_db::events::publish(
                conn,
                &slow_topic,
                "audit.step.completed",
                &serde_json::json!({"step": "A"}),
                None,
            )
            .await?;
            let _ = a_published_tx.send(());
            let _ = commit_rx.await;
            Ok(())
        })
        .await
        .expect("step A");
    });
    a_published_rx.await.expect("A published");
    let url = db.url.clone();
    let fast_topic = topic.clone();
    let step_b = tokio::spawn(async move {
        let mut conn = callaudit_db::establish(&url).await.expect("conn");
        callaudit_db::events::publish(
            &mut conn,
            &fast_topic,
            "audit.step.completed",
            &serde_json::json!({"step": "B"}),
            None,
        )
        .await
        .expect("step B")
    });
    // Give B every chance to commit first (it must not be able to), then let A commit.
    let raced = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while !step_b.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        raced.is_err(),
        "B committed while A, with a lower id, was still open"
    );
    commit_tx.send(()).expect("commit A");
    step_a.await.expect("A");
    step_b.await.expect("B");

    let first = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("A");
    let second = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("B");
    let step = |e: &SseEvent| {
        serde_json::from_str::<serde_json::Value>(&e.data).expect("json")["payload"]["step"].clone()
    };
    assert_eq!((step(&first), step(&second)), ("A".into(), "B".into()));
    let ids: Vec<i64> = [&first, &second]
        .iter()
        .map(|e| e.id.as_deref().and_then(|i| i.parse().ok()).expect("id"))
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_follows_a_stream_with_a_stream_token_and_no_authorization_header() {
    let db = test_db("stream_token").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let viewer = api.token_for("viewer").await;
    let (audit, other) = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        (
            pending_audit_row(&mut conn, 1).await,
            pending_audit_row(&mut conn, 1).await,
        )
    };
    let started = emit(&api, audit, "audit.started", 0).await;
    let completed = emit(&api, audit, "audit.completed", 0).await;
    let (status, issued) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/{audit}/events/token"),
            Some(&viewer),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let url = issued["url"].as_str().expect("url").to_string();
    let token = issued["token"].as_str().expect("token").to_string();

    // What EventSource does: a GET with no Authorization header.
    let resp = reqwest::Client::new()
        .get(format!("{}{url}", api.base))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), resp.text())
        .await
        .expect("the stream ends after audit.completed")
        .expect("body");
    let mut decoder = callaudit_api::sse::SseDecoder::default();
    let ids: Vec<String> = decoder
        .push(body.as_bytes())
        .into_iter()
        .filter_map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![started.to_string(), completed.to_string()]);

    let bare = |path: String| {
        let api = &api;
        async move {
            reqwest::Client::new()
                .get(format!("{}{path}", api.base))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        bare(format!("/api/audits/{other}/events?token={token}")).await,
        403,
        "a token opens its own stream only"
    );
    assert_eq!(
        bare(format!("/api/audits/{audit}/events?token=st_forged")).await,
        401
    );
    assert_eq!(bare(format!("/api/audits/{audit}/events")).await, 401);
    // An expired token opens nothing.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        diesel::sql_query("UPDATE stream_tokens SET expires_at = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .expect("expire");
    }
    assert_eq!(
        bare(format!("/api/audits/{audit}/events?token={token}")).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_lets_allowed_origins_call_the_api_and_follow_streams_and_no_one_else() {
    let db = test_db("cors").await;
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    settings.cors_allowed_origins = vec!["https://app.example".into()];
    let api = spawn_api_from(settings).await;
    let default_api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let preflight = |api: &TestApi, origin: &str| {
        api.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/audits/run", api.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight(&api, "https://app.example")
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("idempotency-key"),
        "{headers}"
    );

    let token = api.token_for("viewer").await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        pending_audit_row(&mut conn, 1).await
    };
    emit(&api, audit, "audit.completed", 0).await;
    let stream = api
        .http
        .get(format!("{}/api/audits/{audit}/events", api.base))
        .bearer_auth(&token)
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    for (api, origin) in [
        (&api, "https://evil.example"),
        (&default_api, "https://app.example"),
    ] {
        let resp = preflight(api, origin).await.expect("preflight");
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{origin} must not be allowed: {:?}",
            resp.headers()
        );
        let resp = api
            .http
            .get(format!("{}/api/audits/{audit}", api.base))
            .bearer_auth(&token)
            .header("Origin", origin)
            .send()
            .await
            .expect("get");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_runs_with_its_configuration_as_it_was_when_it_started() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors, so the configuration is edited while the audit runs.
    let sc = Scenario::without_api_crm(
        "frozen_config",
        callaudit_sim::SimConfig {
            latency_ms: 800,
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(2).await;
    let config_id = config.as_str().expect("id").to_string();
    let (status, stored) = sc
        .api
        .get(
            &format!("/api/audit-configs/{config_id}"),
            Some(&sc.manager),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let original_name = stored["name"].as_str().expect("name").to_string();
    let original_steps: Vec<String> = stored["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("step name").to_string())
        .collect();
    assert_eq!(original_steps.len(), 2);
    let version = stored["updated_at"].clone();
    let _worker = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    wait_for(
        "the audit to run",
        std::time::Duration::from_secs(30),
        || async { (sc.audit(&id).await["status"] == "running").then_some(()) },
    )
    .await;

    // Meanwhile the configuration loses its second step and is renamed.
    let mut edited: serde_json::Value =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample");
    edited["name"] = "Renamed while an audit ran".into();
    edited["steps"].as_array_mut().expect("steps").truncate(1);
    edited["steps"][0]["name"] = "Another first step".into();
    let (status, body) = sc
        .api
        .send(
            reqwest::Method::PUT,
            &format!("/api/audit-configs/{config_id}"),
            Some(&sc.manager),
            &edited,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sc
        .api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/audit-configs/{config_id}"),
            Some(&sc.manager),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "a configuration in use is not deleted: {body}");

    let done = sc.completed(&id).await;
    let names: Vec<String> = done["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, original_steps, "{done}");
    assert_eq!(done["steps_total"], 2);
    assert_eq!(done["config_name"], original_name.as_str());
    assert_eq!(
        done["config_version"], version,
        "the audit names the version it ran with"
    );

    // An audit started now applies the edited configuration.
    let later = sc.run("FICHE-1002", &config).await;
    let later = sc.completed(&later).await;
    assert_eq!(later["steps_total"], 1);
    assert_eq!(later["steps"][0]["name"], "Another first step");
    assert_eq!(later["config_name"], "Renamed while an audit ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_shows_its_llm_requests_tokens_audio_and_cost_at_the_configured_prices() {
    use crate::audit_pipeline::Scenario;
    let sc = Scenario::without_api_crm("cost", Default::default()).await;
    let config = sc.config(2).await;
    let _worker = sc.worker(&[("OPENAI_MODEL_AUDIT", "priced-model")]);
    let id = sc.run("FICHE-1001", &config).await;
    let done = sc.completed(&id).await;
    // Without a price table: totals, no estimate.
    assert_eq!(
        done["cost"]["estimated_cost"],
        serde_json::Value::Null,
        "{done}"
    );

    let mut settings = api_settings(
        &sc.db.url,
        temporal_settings(&temporal_address(), &sc.queue),
        None,
        3,
    );
    settings.prices = Some(
        callaudit_domain::cost::PriceTable::parse(
            r#"{"currency": "EUR", "models": {"priced-model": {"input_per_1m_tokens": 2.0,
                "output_per_1m_tokens": 8.0}}, "speech_to_text_per_hour": 0.6}"#,
        )
        .expect("table"),
    );
    let priced = spawn_api_from(settings).await;
    let token = priced.token_for("viewer").await;
    let (status, audit) = priced.get(&format!("/api/audits/{id}"), Some(&token)).await;
    assert_eq!(status, 200, "{audit}");
    let cost = &audit["cost"];
    let steps = audit["steps"].as_array().expect("steps");
    let tokens = |k: &str| {
        steps
            .iter()
            .map(|s| s[k].as_i64().expect("tokens"))
            .sum::<i64>()
    };
    let (prompt, completion) = (tokens("prompt_tokens"), tokens("completion_tokens"));
    assert!(prompt > 0 && completion > 0, "{audit}");
    assert_eq!(cost["llm_requests"], 2, "prompt mode: one request per step");
    assert_eq!(cost["prompt_tokens"], prompt);
    assert_eq!(cost["completion_tokens"], completion);
    // FICHE-1001's two recordings last 193.7 s and 125.7 s (docs/CRM-CONTRACT.md).
    let audio = cost["speech_to_text_seconds"].as_f64().expect("audio");
    assert!((audio - 319.4).abs() < 1e-9, "{cost}");
    let expected = prompt as f64 * 2.0 / 1e6 + completion as f64 * 8.0 / 1e6 + 319.4 / 3600.0 * 0.6;
    let estimated = cost["estimated_cost"].as_f64().expect("estimate");
    assert!(
        (estimated - expected).abs() < 1e-6,
        "{estimated} vs {expected}"
    );
    assert_eq!(cost["currency"], "EUR");
}

#[test]
fn the_new_settings_are_documented_in_help_and_readme() {
    let help = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().expect("run");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (top, api, worker) = (
        help(&["--help"]),
        help(&["api", "--help"]),
        help(&["worker", "--help"]),
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    for var in [
        "API_RECONCILE_EVERY_S",
        "API_MAX_STREAMS",
        "API_MAX_BODY_BYTES",
        "API_CORS_ALLOWED_ORIGINS",
        "COST_PRICE_TABLE",
        "AUTH_LOGIN_MAX_FAILURES_PER_EMAIL",
        "AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS",
        "AUTH_LOGIN_FAILURE_WINDOW_S",
        "API_TRUSTED_PROXIES",
    ] {
        assert!(top.contains(var), "--help lacks {var}");
        assert!(api.contains(var), "api --help lacks {var}");
        assert!(readme.contains(var), "README lacks {var}");
    }
    for var in ["WORKER_MAX_CONCURRENT_ACTIVITIES", "WORKER_METRICS_ADDR"] {
        assert!(top.contains(var) && worker.contains(var), "{var}");
        assert!(readme.contains(var), "README lacks {var}");
    }
}

/// Whether this backend's connection is encrypted.
async fn encrypted(conn: &mut callaudit_db::AsyncPgConnection) -> bool {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(conn)
        .await
        .expect("pg_stat_ssl");
    row.ssl
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls_require_verify_ca_and_verify_full_behave_as_libpq_says() {
    use diesel_async::RunQueryDsl;
    let admin = admin_database_url();
    let mut plain = callaudit_db::establish(&admin).await.expect("plain");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let show =
        |name: &'static str| diesel::sql_query(format!("SELECT current_setting('{name}') AS v"));
    let ssl_on = show("ssl")
        .get_result::<Setting>(&mut plain)
        .await
        .expect("ssl")
        .v
        == "on";
    if !ssl_on {
        // A server without TLS (the embedded cluster of a laptop) cannot exercise this;
        // CI's server has TLS on and sets CALLAUDIT_TEST_REQUIRE_TLS so it never skips.
        assert!(
            std::env::var_os("CALLAUDIT_TEST_REQUIRE_TLS").is_none(),
            "CALLAUDIT_TEST_REQUIRE_TLS is set but the test server has ssl = off"
        );
        eprintln!("skipped: the test Postgres has ssl = off");
        return;
    }
    let cert = show("ssl_cert_file")
        .get_result::<Setting>(&mut plain)
        .await
        .expect("cert")
        .v;
    assert!(
        !encrypted(&mut plain).await,
        "without sslmode the connection is in clear"
    );
    let with = |params: &str| {
        let sep = if admin.contains('?') { '&' } else { '?' };
        format!("{admin}{sep}{params}")
    };

    let mut required = callaudit_db::establish(&with("sslmode=require"))
        .await
        .expect("sslmode=require connects");
    assert!(encrypted(&mut required).await);

    let mut chain =
        callaudit_db::establish(&with(&format!("sslmode=verify-ca&sslrootcert={cert}")))
            .await
            .expect("verify-ca with the server's own certificate as root connects");
    assert!(encrypted(&mut chain).await);

    // Debian's certificate names `localhost`, not 127.0.0.1: verify-full checks the name.
    let by_ip = with(&format!("sslmode=verify-full&sslrootcert={cert}"));
    match callaudit_db::establish(&by_ip).await {
        Ok(_) => panic!("verify-full accepted a certificate that does not name the host"),
        Err(e) => assert!(e.to_string().contains("TLS"), "{e}"),
    }
    if by_ip.contains("@127.0.0.1:") {
        let by_name = by_ip.replace("@127.0.0.1:", "@localhost:");
        let mut full = callaudit_db::establish(&by_name)
            .await
            .expect("verify-full with the name the certificate holds connects");
        assert!(encrypted(&mut full).await);
    }
    // Nor is it signed by a system root.
    assert!(
        callaudit_db::establish(&with("sslmode=verify-full"))
            .await
            .is_err()
    );

    // The pool the api and the worker use connects the same way.
    let pool = callaudit_db::connect_pool(&with("sslmode=require"), 2).expect("pool");
    let mut pooled = callaudit_db::pool::get(&pool)
        .await
        .expect("pooled over TLS");
    assert!(encrypted(&mut pooled).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_nobody_reads_is_reconciled_by_the_sweep_once_its_workflow_is_terminated() {
    let db = test_db("reconcile_sweep").await;
    let queue = task_queue("reconcile_sweep");
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        None,
        3,
    );
    settings.reconcile_every = std::time::Duration::from_secs(1);
    // No worker: the audit stays pending until its workflow is terminated.
    let api = spawn_api_from(settings).await;
    let config = sample_config(&api).await;
    let auditor = api.token_for("auditor").await;
    let (status, run) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let id = run["audit_id"].as_str().expect("id").to_string();
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    client
        .get_workflow_handle::<callaudit_workflows::AuditWorkflow>(format!("audit:{id}"))
        .terminate(Default::default())
        .await
        .expect("terminate");
    // Nobody reads the audit: the row itself turns failed, with the reason and its event.
    let failed = format!(
        "SELECT count(*) AS n FROM audits WHERE id = '{id}' AND status = 'failed' \
         AND error LIKE '%terminated%'"
    );
    wait_for(
        "the sweep to reconcile the audit",
        std::time::Duration::from_secs(30),
        || async { (count(&db.url, &failed).await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        count(
            &db.url,
            &format!("SELECT count(*) AS n FROM events WHERE topic = 'audit:{id}' AND type = 'audit.failed'")
        )
        .await,
        1
    );
}
