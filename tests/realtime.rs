//! Realtime over Pusher Channels, end to end: the worker's relay carries the events
//! table to a local Pusher-compatible endpoint (`callaudit_sim::pusher`) that verifies
//! every request's key, timestamp, body MD5 and HMAC signature as Pusher does and
//! records what it accepts; and `POST /api/realtime/pusher/auth` signs subscriptions,
//! checked here with an HMAC written in this file.

use crate::audit_pipeline::Scenario;
use crate::support::*;
use callaudit_sim::pusher::{Accepted, PusherApp, PusherSink};
use serde_json::{Value, json};
use std::time::Duration;

const APP_ID: &str = "4242";
const KEY: &str = "test-pusher-key";
const SECRET: &str = "the-right-pusher-secret";

async fn sink() -> (String, PusherSink) {
    let (addr, sink) =
        callaudit_sim::pusher::spawn("127.0.0.1:0", PusherApp::new(APP_ID, KEY, SECRET))
            .await
            .expect("pusher sink");
    (format!("http://{addr}"), sink)
}

fn pusher_env<'a>(base: &'a str, secret: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("PUSHER_APP_ID", APP_ID),
        ("PUSHER_KEY", KEY),
        ("PUSHER_SECRET", secret),
        ("PUSHER_BASE_URL", base),
    ]
}

/// The accepted events on `channel`, by event id, as (event id, name).
fn on_channel(sink: &PusherSink, channel: &str) -> Vec<(i64, String, Value)> {
    let mut got: Vec<(i64, String, Value)> = sink
        .events()
        .into_iter()
        .filter(|e: &Accepted| e.channels.iter().any(|c| c == channel))
        .map(|e| (e.data["event_id"].as_i64().unwrap_or(-1), e.name, e.data))
        .collect();
    got.sort_by_key(|(id, _, _)| *id);
    got
}

fn names(got: &[(i64, String, Value)]) -> Vec<&str> {
    got.iter().map(|(_, n, _)| n.as_str()).collect()
}

/// Every stored event of `topic` (ids, in order).
async fn stored_ids(sc: &Scenario, topic: &str) -> Vec<i64> {
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool).await.unwrap();
    callaudit_db::events::since(&mut conn, topic, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn relay_status(sc: &Scenario) -> callaudit_db::realtime::RelayStatus {
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool).await.unwrap();
    callaudit_db::realtime::status(&mut conn, "pusher")
        .await
        .unwrap()
        .expect("the relay's cursor row (created by the migration)")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_secret_loses_nothing_and_the_audit_s_events_arrive_once_after_the_fix() {
    let sc = Scenario::new("rt_audit", callaudit_sim::SimConfig::default()).await;
    let (base, sink) = sink().await;
    let before = relay_status(&sc).await;
    // A worker whose secret is not the app's: the endpoint refuses every request.
    let tampered = sc.worker(&pusher_env(&base, "a-tampered-secret"));
    let config = sc.config(1).await;
    let id = sc.run("FICHE-1001", &config).await;
    wait_for(
        "the audit to complete",
        Duration::from_secs(180),
        || async { (sc.audit(&id).await["status"] == "completed").then_some(()) },
    )
    .await;
    let status = wait_for("a recorded failure", Duration::from_secs(60), || async {
        let s = relay_status(&sc).await;
        (s.failures >= 1 && !sink.refused().is_empty()).then_some(s)
    })
    .await;
    let error = status.last_error.clone().unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert!(
        !error.contains(SECRET) && !error.contains("a-tampered-secret"),
        "{error}"
    );
    assert!(
        sink.refused()
            .iter()
            .all(|r| r.status == 401 && r.reason.starts_with("Invalid signature")),
        "{:?}",
        sink.refused()
    );
    assert!(
        sink.events().is_empty(),
        "nothing accepted with a wrong secret"
    );
    assert_eq!(
        (status.last_xact_id, status.last_event_id, status.delivered),
        (before.last_xact_id, before.last_event_id, before.delivered),
        "the cursor did not move"
    );
    drop(tampered);

    // Fixed: a new worker delivers everything that waited, each once.
    let _w = sc.worker(&pusher_env(&base, SECRET));
    let channel = format!("private-job-audit-{id}");
    let got = wait_for(
        "the audit's events on its channel",
        Duration::from_secs(90),
        || {
            let got = on_channel(&sink, &channel);
            async move {
                got.iter()
                    .any(|(_, n, _)| n == "audit.completed")
                    .then_some(got)
            }
        },
    )
    .await;
    // A one-step configuration: started, its step, completed.
    assert_eq!(
        names(&got),
        ["audit.started", "audit.step.completed", "audit.completed"]
    );
    let ids: Vec<i64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids,
        stored_ids(&sc, &format!("audit:{id}")).await,
        "each stored event once"
    );
    assert_eq!(got[0].2["audit_id"], id.as_str());
    assert_eq!(got[0].2["fiche_id"], "FICHE-1001");
    assert_eq!(got[1].2["position"], 1);
    let last = wait_for(
        "the cursor to record the deliveries",
        Duration::from_secs(30),
        || async {
            let s = relay_status(&sc).await;
            (s.last_event_id >= *ids.last().unwrap()).then_some(s)
        },
    )
    .await;
    assert_eq!(last.last_error, None, "cleared by the first delivery");
    assert!(last.failures >= status.failures);
}

/// Days from 2026-11-02 (the simulator's first built-in sale day) to yesterday in
/// Europe/Paris (as tests/automation.rs).
fn days_back_to_first_sale() -> i64 {
    let today_paris = (chrono::Utc::now() + chrono::Duration::hours(1)).date_naive();
    (today_paris - chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()).num_days()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_automation_run_s_events_and_audit_progress_reach_the_run_s_channel() {
    let sc = Scenario::new("rt_run", callaudit_sim::SimConfig::default()).await;
    let (base, sink) = sink().await;
    let _w = sc.worker(&pusher_env(&base, SECRET));
    let config = sc.config(1).await;
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&sc.manager),
            &json!({
                "name": "MDP, realtime", "cron": "0 6 * * *", "enabled": false,
                "auditConfigId": config,
                "ficheSelection": {"daysBack": days_back_to_first_sale(), "groupes": ["MDP"],
                                   "maxRecordingsPerFiche": 1},
                "controls": {"continueOnError": true},
                "notifications": {"realtime": true}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let schedule = created["id"].as_str().unwrap().to_string();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{schedule}/run"),
            Some(&sc.manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = sc.api.state.pool.clone();
    let sid: uuid::Uuid = schedule.parse().unwrap();
    let run = wait_for("the run ended", Duration::from_secs(240), || {
        let pool = pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
            let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(sid), 10, 0)
                .await
                .ok()?;
            runs.into_iter().find(|r| r.status != "running")
        }
    })
    .await;
    assert_eq!(run.status, "completed");
    // FICHE-1002, FICHE-1009 and FICHE-1008 (see tests/automation.rs).
    assert_eq!(run.result_summary["audited"], 3);
    let channel = format!("private-job-automation-run-{}", run.id);
    let got = wait_for(
        "the run's end on its channel",
        Duration::from_secs(60),
        || {
            let got = on_channel(&sink, &channel);
            async move {
                got.iter()
                    .any(|(_, n, _)| n == "automation.run.completed")
                    .then_some(got)
            }
        },
    )
    .await;
    // Started; the batch's start and one progress per audit; completed.
    assert_eq!(
        names(&got),
        [
            "automation.run.started",
            "automation.run.progress",
            "automation.run.progress",
            "automation.run.progress",
            "automation.run.progress",
            "automation.run.completed"
        ]
    );
    let run_id = run.id.to_string();
    for (_, _, data) in &got {
        assert_eq!(data["run_id"], run_id.as_str(), "{data}");
    }
    assert_eq!(got[1].2["stage"], "batch.started");
    assert_eq!(got[1].2["total"], 3);
    let done: Vec<i64> = got[2..5]
        .iter()
        .map(|(_, _, d)| d["counts"]["completed"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(done, [1, 2, 3], "the audits completed one by one");
    assert_eq!(got[5].2["status"], "completed");
    assert_eq!(got[5].2["summary"]["audited"], 3);
    // The run's batch has its own channel too, with every batch event once.
    let batch_channel = format!("private-job-batch-{run_id}");
    wait_for(
        "the batch's end on its channel",
        Duration::from_secs(60),
        || {
            let got = on_channel(&sink, &batch_channel);
            async move {
                got.iter()
                    .any(|(_, n, _)| n == "batch.completed")
                    .then_some(())
            }
        },
    )
    .await;
    let stored = stored_ids(&sc, &format!("batch:{run_id}")).await;
    let batch = on_channel(&sink, &format!("private-job-batch-{run_id}"));
    assert_eq!(
        names(&batch),
        [
            "batch.started",
            "batch.progress",
            "batch.progress",
            "batch.progress",
            "batch.completed"
        ]
    );
    let batch_ids: Vec<i64> = batch.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(batch_ids, stored);
    // Nothing was refused, and every accepted data is under Pusher's 10 KB.
    assert_eq!(sink.refused(), vec![]);
    for e in sink.events() {
        assert!(e.data.to_string().len() <= 10_240, "{}", e.name);
    }
}

/// HMAC-SHA256 (RFC 2104), written here independently of the api's.
fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner = Sha256::digest(
        k.iter()
            .map(|b| b ^ 0x36)
            .chain(msg.iter().copied())
            .collect::<Vec<u8>>(),
    );
    hex::encode(Sha256::digest(
        k.iter()
            .map(|b| b ^ 0x5c)
            .chain(inner.iter().copied())
            .collect::<Vec<u8>>(),
    ))
}

/// `k=v&…`, form-encoded (what pusher-js posts).
fn urlencoded(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn authorize(api: &TestApi, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = api
        .http
        .post(format!("{}/api/realtime/pusher/auth", api.base))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(form))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_endpoint_signs_only_private_channels_of_jobs_the_caller_may_read() {
    let db = test_db("rt_auth").await;
    let queue = task_queue("rt_auth");
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        None,
        3,
    );
    settings.automation.pusher = callaudit_upstream::pusher::PusherSettings::from_parts(
        Some(APP_ID),
        Some(KEY),
        Some(&callaudit_domain::secret::Secret::normalized(SECRET)),
        None,
        Some("http://127.0.0.1:9"),
        Duration::from_secs(5),
    );
    let api = spawn_api_from(settings).await;
    let viewer = api.token_for("viewer").await;
    let audit = {
        let mut conn = callaudit_db::pool::get(&api.state.pool).await.unwrap();
        pending_audit_row(&mut conn, 6).await
    };
    let channel = format!("private-job-audit-{audit}");
    let (status, body) = authorize(
        &api,
        &viewer,
        &[("socket_id", "1234.5678"), ("channel_name", &channel)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected = format!(
        "{KEY}:{}",
        hmac_hex(SECRET.as_bytes(), format!("1234.5678:{channel}").as_bytes())
    );
    assert_eq!(body["auth"], expected.as_str());
    // The same as JSON.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/realtime/pusher/auth",
            Some(&viewer),
            &json!({"socket_id": "1234.5678", "channel_name": channel}),
        )
        .await;
    assert_eq!(
        (status, body["auth"].as_str()),
        (200, Some(expected.as_str()))
    );

    // A job that does not exist, of each kind.
    for kind in ["audit", "batch", "fetch-job", "automation-run"] {
        let other = format!("private-job-{kind}-{}", uuid::Uuid::new_v4());
        let (status, body) = authorize(
            &api,
            &viewer,
            &[("socket_id", "1.2"), ("channel_name", &other)],
        )
        .await;
        assert_eq!(status, 404, "{other}: {body}");
    }
    // Not private, not a job's, or not a socket id.
    for (socket, ch, want) in [
        ("1.2", format!("job-audit-{audit}"), 403),
        ("1.2", format!("presence-job-audit-{audit}"), 403),
        ("1.2", "private-foobar".to_string(), 403),
        ("1.2", format!("private-job-user-{audit}"), 403),
        ("12", channel.clone(), 400),
        ("1.2;drop", channel.clone(), 400),
    ] {
        let (status, body) = authorize(
            &api,
            &viewer,
            &[("socket_id", socket), ("channel_name", &ch)],
        )
        .await;
        assert_eq!(status, want, "{socket} {ch}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(!body.to_string().contains(SECRET));
    }

    // A user without audits:read (their roles taken away) is refused that audit's channel.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = callaudit_db::pool::get(&api.state.pool).await.unwrap();
        diesel::sql_query(
            "DELETE FROM user_roles WHERE user_id IN (SELECT id FROM users WHERE email LIKE 'viewer-%')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (status, body) = authorize(
        &api,
        &viewer,
        &[("socket_id", "1234.5678"), ("channel_name", &channel)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("audits:read"), "{body}");

    // Without Pusher configured: 503.
    let plain = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let auditor = plain.token_for("auditor").await;
    let (status, body) = authorize(
        &plain,
        &auditor,
        &[("socket_id", "1234.5678"), ("channel_name", &channel)],
    )
    .await;
    assert_eq!(status, 503, "{body}");
}

/// Publishes `n` events on `audit:{t}` for each topic `t`, one task per topic, at once.
async fn publish_burst(pool: &callaudit_db::Pool, topics: &[String], from: usize, n: usize) {
    let tasks: Vec<_> = topics
        .iter()
        .cloned()
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = callaudit_db::pool::get(&pool).await.unwrap();
                for i in from..from + n {
                    callaudit_db::events::publish(
                        &mut conn,
                        &format!("audit:{t}"),
                        "audit.step.completed",
                        &json!({"audit_id": t, "position": i}),
                        None,
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_mid_stream_is_taken_over_and_nothing_is_lost() {
    let sc = Scenario::new("rt_restart", callaudit_sim::SimConfig::default()).await;
    let (base, sink) = sink().await;
    let env = pusher_env(&base, SECRET);
    let first = sc.worker(&env);
    let pool = sc.api.state.pool.clone();
    let topics: Vec<String> = (0..4).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let channels: Vec<String> = topics
        .iter()
        .map(|t| format!("private-job-audit-{t}"))
        .collect();
    let ours = |sink: &PusherSink| -> Vec<Accepted> {
        sink.events()
            .into_iter()
            .filter(|e| e.channels.iter().any(|c| channels.contains(c)))
            .collect()
    };
    // Four writers at once (ids commit out of order across topics), 50 events each.
    publish_burst(&pool, &topics, 0, 50).await;
    wait_for("the first relay under way", Duration::from_secs(90), || {
        let n = ours(&sink).len();
        async move { (n >= 20).then_some(()) }
    })
    .await;
    // A second worker stands by; the first is killed mid-stream.
    let _second = sc.worker(&env);
    drop(first);
    let at_kill = ours(&sink).len();
    // Pusher then fails twice with a 503 and once with a 429: retried, not lost.
    sink.fail_next(2, 503);
    sink.fail_next(1, 429);
    // More events while no relay holds the lease, one of them over Pusher's 10 KB.
    publish_burst(&pool, &topics, 50, 25).await;
    {
        let mut conn = callaudit_db::pool::get(&pool).await.unwrap();
        callaudit_db::events::publish(
            &mut conn,
            &format!("audit:{}", topics[0]),
            "audit.failed",
            &json!({"audit_id": topics[0], "error": "x".repeat(20_000)}),
            None,
        )
        .await
        .unwrap();
    }
    let mut stored = vec![];
    for t in &topics {
        stored.extend(stored_ids(&sc, &format!("audit:{t}")).await);
    }
    stored.sort_unstable();
    assert_eq!(stored.len(), 4 * 75 + 1);
    let got = wait_for("every event delivered", Duration::from_secs(120), || {
        let got = ours(&sink);
        let stored = stored.clone();
        async move {
            let mut ids: Vec<i64> = got
                .iter()
                .map(|e| e.data["event_id"].as_i64().unwrap_or(-1))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            (ids == stored).then_some(got)
        }
    })
    .await;
    // At most the one event in flight when the relay was killed is sent twice.
    let duplicates = got.len() - stored.len();
    println!(
        "{} events, {at_kill} delivered before the kill, {duplicates} sent twice",
        stored.len()
    );
    assert!(duplicates <= 1, "{duplicates} duplicates");
    assert!(
        at_kill < 200,
        "the kill happened mid-stream ({at_kill} of the first 200)"
    );
    let large = got.iter().find(|e| e.name == "audit.failed").unwrap();
    assert_eq!(large.data["truncated"], true);
    assert_eq!(large.data["audit_id"], topics[0].as_str());
    assert!(large.data.get("error").is_none());
    assert!(large.data.to_string().len() <= 10_000);
    let refused: Vec<u16> = sink.refused().iter().map(|r| r.status).collect();
    assert_eq!(refused, [503, 503, 429], "only the forced failures");
}
