//! Secrets after a run with failing vendors: no log line, error body, event row or
//! Temporal payload holds one (the histories are fetched and their payloads decoded).

use crate::audit_pipeline::{Scenario, count};
use crate::support::*;
use std::time::Duration;

/// Standard base64 (with or without padding) decoded, `None` when `s` is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Every string of a history's JSON, each base64 one also decoded (payload data is
/// base64 in the JSON form of a history), joined by newlines.
fn history_text(json: &serde_json::Value, out: &mut String) {
    match json {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
            if let Some(bytes) = base64_decode(s) {
                out.push_str(&String::from_utf8_lossy(&bytes));
                out.push('\n');
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| history_text(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| history_text(v, out)),
        _ => {}
    }
}

#[test]
fn the_history_decoder_reads_payload_data() {
    // {"a":"secret"} as a payload's data, base64 with padding.
    let mut text = String::new();
    history_text(
        &serde_json::json!({"payloads": [{"data": "eyJhIjoic2VjcmV0In0="}]}),
        &mut text,
    );
    assert!(text.contains(r#"{"a":"secret"}"#), "{text}");
}

/// The decoded histories of every workflow of `queue` (the audit's own at least).
async fn histories(queue: &str, audit_workflow: &str) -> (usize, String) {
    use futures::StreamExt;
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let query = format!("TaskQueue = '{queue}'");
    let mut ids: Vec<(String, String)> = wait_for(
        "the audit's workflows to be visible",
        Duration::from_secs(60),
        || async {
            let runs: Vec<_> = client
                .list_workflows(query.clone(), Default::default())
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .filter_map(Result::ok)
                .map(|r| (r.id().to_string(), r.run_id().to_string()))
                .collect();
            runs.iter()
                .any(|(id, _)| id == audit_workflow)
                .then_some(runs)
        },
    )
    .await;
    ids.sort();
    let mut text = String::new();
    for (id, run) in &ids {
        let raw = crate::replay::fetch(&client, id, Some(run.clone())).await;
        let json: serde_json::Value = serde_json::from_slice(&raw).expect("history json");
        history_text(&json, &mut text);
    }
    (ids.len(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn vendor_keys_are_normalised_and_never_leak_even_when_the_vendor_echoes_them() {
    let keys = callaudit_sim::ExpectedKeys {
        crm: "sim-crm".into(),
        elevenlabs: "the-right-stt-key".into(),
        openai: "the-right-llm-key".into(),
    };
    let sc = Scenario::new(
        "secrets",
        callaudit_sim::SimConfig {
            expected_api_keys: Some(keys),
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(2).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let wrong_stt_key = "wrong-stt-key-5f1c9e";
    // Every other secret the worker is given, with its vendor unreachable (nothing
    // listens on that port): none may be written anywhere either.
    let (smtp_pass, pusher_secret) = ("smtp-pass-9d2e71", "pusher-secret-40b3aa");
    let nowhere = free_port().to_string();
    let pusher_url = format!("http://127.0.0.1:{nowhere}");
    // The LLM key arrives with surrounding whitespace and quotes, as copied from a
    // dashboard: normalised, it is right. The speech-to-text key is wrong, and the
    // vendor's 401 echoes it back.
    let worker = sc.worker_logged(
        &[
            ("ELEVENLABS_API_KEY", wrong_stt_key),
            ("OPENAI_API_KEY", "  \"the-right-llm-key\"\n"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &nowhere),
            ("SMTP_USER", "callaudit"),
            ("SMTP_PASS", smtp_pass),
            ("SMTP_FROM", "callaudit@example.test"),
            ("PUSHER_APP_ID", "4242"),
            ("PUSHER_KEY", "public-pusher-key"),
            ("PUSHER_SECRET", pusher_secret),
            ("PUSHER_BASE_URL", &pusher_url),
            ("RUST_LOG", "debug"),
        ],
        &log,
    );
    let secrets = [
        wrong_stt_key,
        "the-right-llm-key",
        "the-right-stt-key",
        smtp_pass,
        pusher_secret,
        sc.auditor.as_str(),
        sc.manager.as_str(),
    ];
    let leaked = |text: &str| -> Vec<&str> {
        secrets
            .iter()
            .copied()
            .filter(|s| text.contains(s))
            .collect()
    };
    let id = sc.run("FICHE-1001", &config).await;
    let audit = wait_for("the audit to fail", Duration::from_secs(120), || async {
        let a = sc.audit(&id).await;
        (a["status"] == "failed").then_some(a)
    })
    .await;
    let error = audit["error"].as_str().expect("error");
    println!("recorded failure: {error}");
    assert!(
        error.contains("elevenlabs") && error.contains("401"),
        "{error}"
    );
    assert_eq!(leaked(&audit.to_string()), Vec::<&str>::new(), "{audit}");
    let mut events = SseClient::open(
        &sc.api,
        &format!("/api/audits/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    let events = events.rest(Duration::from_secs(30)).await;
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("audit.failed")
    );
    for e in &events {
        assert_eq!(leaked(&e.data), Vec::<&str>::new(), "{e:?}");
    }
    // The stored rows: every column of every table.
    for secret in secrets {
        assert_eq!(
            tables_holding(&sc.db.url, secret).await,
            0,
            "a secret is stored"
        );
    }
    // Temporal: every workflow of the run, inputs, results, failures and activity
    // payloads included.
    let (workflows, history) = histories(&sc.queue, &format!("audit:{id}")).await;
    println!(
        "{workflows} workflow histories, {} bytes decoded",
        history.len()
    );
    assert!(
        history.contains("elevenlabs") && history.contains("401"),
        "the histories hold the failure, so they were read"
    );
    assert_eq!(
        leaked(&history),
        Vec::<&str>::new(),
        "a secret is in Temporal"
    );

    drop(worker);
    let logged = std::fs::read_to_string(&log).expect("worker log");
    let _ = std::fs::remove_file(&log);
    // The failure itself is logged (not only a line that names the vendor's URL), and
    // with the status the vendor answered.
    assert!(
        logged
            .lines()
            .any(|l| l.contains("elevenlabs") && l.contains("401") && !l.contains("http://")),
        "the failure is logged: {logged}"
    );
    assert_eq!(
        leaked(&logged),
        Vec::<&str>::new(),
        "a secret leaked into the worker log"
    );

    // With both keys right once normalised (quotes, spaces, newline), the audit completes.
    let sc2 = Scenario::new(
        "secrets_ok",
        callaudit_sim::SimConfig {
            expected_api_keys: Some(callaudit_sim::ExpectedKeys {
                crm: "sim-crm".into(),
                elevenlabs: "the-right-stt-key".into(),
                openai: "the-right-llm-key".into(),
            }),
            ..Default::default()
        },
    )
    .await;
    let config = sc2.config(2).await;
    let _ok = sc2.worker(&[
        ("ELEVENLABS_API_KEY", " 'the-right-stt-key' "),
        ("OPENAI_API_KEY", "  \"the-right-llm-key\"\n"),
    ]);
    let id = sc2.run("FICHE-1001", &config).await;
    sc2.completed(&id).await;
}

/// How many tables of the database at `db_url` hold `secret` in any column of any row,
/// leaving out `automation_schedules.webhook_secret`, where a schedule's own webhook
/// secret is kept to sign with.
async fn tables_holding(db_url: &str, secret: &str) -> i64 {
    let sql = format!(
        "SELECT count(*)::bigint AS n FROM information_schema.tables t \
         WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
         AND (xpath('/row/c/text()', query_to_xml(format( \
           'SELECT count(*) AS c FROM %I x WHERE (to_jsonb(x) - ''webhook_secret'')::text LIKE %L', \
           t.table_name, '%{secret}%'), false, true, '')))[1]::text::int > 0"
    );
    count(db_url, &sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_holding_finds_a_value_in_any_table_but_the_webhook_secret_column() {
    let db = test_db("secrets_tables").await;
    let value = "needle-6c1f0a";
    assert_eq!(tables_holding(&db.url, value).await, 0);
    let insert = format!(
        "INSERT INTO audit_configs (id, name, description) \
         VALUES (gen_random_uuid(), 'c', '{value}')"
    );
    let n = count(
        &db.url,
        &format!("WITH i AS ({insert} RETURNING 1) SELECT count(*)::bigint AS n FROM i"),
    )
    .await;
    assert_eq!(n, 1);
    assert_eq!(tables_holding(&db.url, value).await, 1);
}

/// The webhook secret a schedule is given is shown once, signs every delivery, and is
/// nowhere else: not in later reads of the schedule, the run, its deliveries or events,
/// any table, any Temporal payload of the run's workflows, or the worker's debug log —
/// even when the receiver answers with the signature it got.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_secret_is_shown_once_and_is_in_no_answer_row_history_or_log() {
    use poem::EndpointExt;
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    type Got = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;
    // The receiver: the first delivery of each event is answered 500, its body echoing
    // the signature and timestamp; every later one 200.
    let got: Got = Arc::default();
    let store = got.clone();
    let app = poem::Route::new()
        .at(
            "/hook",
            poem::endpoint::make(move |req: poem::Request| {
                let store = store.clone();
                async move {
                    let h = |n: &str| req.header(n).unwrap_or_default().to_string();
                    let (ts, sig) = (h("x-callaudit-timestamp"), h("x-callaudit-signature"));
                    let body = req.into_body().into_vec().await.unwrap_or_default();
                    let mut store = store.lock().unwrap();
                    let seen = store.iter().filter(|(_, _, b)| *b == body).count();
                    store.push((ts.clone(), sig.clone(), body));
                    if seen == 0 {
                        poem::Response::builder()
                            .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                            .body(format!("rejected signature {sig} at {ts}"))
                    } else {
                        poem::Response::builder().body("ok")
                    }
                }
            }),
        )
        .data(());
    let origin = crate::audit_pipeline::serve_local(app);
    let sc = Scenario::with_webhook_origin("secrets_hook", &origin).await;
    let manager = sc.manager.clone();
    let config = sc.api.sample_config().await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let worker = sc.worker_logged(
        &[
            ("WEBHOOK_ALLOWED_ORIGINS", origin.as_str()),
            ("RUST_LOG", "debug"),
        ],
        &log,
    );
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&manager),
            &json!({
                "name": "signed", "cron": "0 6 * * *", "enabled": false,
                "auditConfigId": config["id"],
                "ficheSelection": {"daysBack": 1, "groupes": ["NOBODY"]},
                "notifications": {"webhookUrl": format!("{origin}/hook")}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhookSecret"]
        .as_str()
        .expect("the secret, shown once")
        .to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    // Both events (started, completed) delivered at their second attempt.
    let run = wait_for("both deliveries sent", Duration::from_secs(120), || {
        let (api, manager, id) = (&sc.api, manager.clone(), id.clone());
        async move {
            let (_, page) = api
                .get(
                    &format!("/api/automation/runs?schedule_id={id}"),
                    Some(&manager),
                )
                .await;
            let run_id = page["items"][0]["id"].as_str()?.to_string();
            let (_, run) = api
                .get(&format!("/api/automation/runs/{run_id}"), Some(&manager))
                .await;
            let done = run["webhookDeliveries"].as_array().is_some_and(|d| {
                d.len() == 2
                    && d.iter()
                        .all(|d| d["status"] == "delivered" && d["attempts"] == 2)
            });
            done.then_some(run)
        }
    })
    .await;
    // The secret was used: every request the receiver got is signed with it.
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 4, "2 events × 2 attempts");
    for (ts, sig, body) in &received {
        let mut message = format!("{ts}.").into_bytes();
        message.extend_from_slice(body);
        let expected = crate::automation::hmac_hex(secret.as_bytes(), &message);
        assert_eq!(sig, &format!("sha256={expected}"));
    }

    // Nowhere else.
    let (_, schedule) = sc
        .api
        .get(&format!("/api/automation/schedules/{id}"), Some(&manager))
        .await;
    let (_, schedules) = sc
        .api
        .get("/api/automation/schedules", Some(&manager))
        .await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/automation/runs/{run_id}/events"),
        &manager,
        None,
    )
    .await;
    let events = stream.rest(Duration::from_secs(30)).await;
    assert!(!events.is_empty());
    for (what, text) in [
        ("the schedule", schedule.to_string()),
        ("the schedules", schedules.to_string()),
        ("the run", run.to_string()),
        (
            "the run's events",
            events.iter().map(|e| e.data.as_str()).collect::<String>(),
        ),
    ] {
        assert!(!text.contains(&secret), "the secret is in {what}: {text}");
    }
    assert_eq!(
        tables_holding(&sc.db.url, &secret).await,
        0,
        "a table holds the secret"
    );
    let workflow = run["workflowId"].as_str().unwrap();
    let (workflows, history) = histories(&sc.queue, workflow).await;
    println!("{workflows} workflow histories, {} bytes", history.len());
    assert!(
        history.contains("the receiver answered 500"),
        "the histories hold the failed attempt, so they were read"
    );
    assert!(!history.contains(&secret), "the secret is in Temporal");
    drop(worker);
    let logged = std::fs::read_to_string(&log).expect("worker log");
    let _ = std::fs::remove_file(&log);
    assert!(
        logged.contains("automation.notify_webhook"),
        "the deliveries are logged: {logged}"
    );
    assert!(!logged.contains(&secret), "the secret is in the worker log");
}
