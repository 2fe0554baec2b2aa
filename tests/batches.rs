//! Batch audits end to end: api → BatchAuditWorkflow → one AuditWorkflow per fiche →
//! activities → simulators; the batch's explicit state, its stream, cancellation,
//! idempotent resubmits, a worker killed mid-batch, continue-as-new, bad input.
//!
//! The fixture: the simulator's generated fiches `FICHE-GEN-1` … (two recordings each,
//! sold on 2026-11-10) audited with a one-step configuration (step 1 of the sample), so
//! each audit is one fiche fetch, two transcriptions and one LLM request.

use crate::audit_pipeline::{Scenario, count};
use crate::support::*;
use callaudit_api::state::ApiSettings;
use serde_json::{Value, json};
use std::time::Duration;
use temporalio_client::WorkflowHistory;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

const T: Duration = Duration::from_secs(240);

/// A scenario whose simulator also serves `generated` fiches, with the api's settings
/// adjusted by `tweak`; the api checks nothing against the CRM unless `api_crm`.
async fn scenario(
    label: &str,
    sim: callaudit_sim::SimConfig,
    generated: usize,
    api_crm: bool,
    tweak: impl FnOnce(&mut ApiSettings),
) -> Scenario {
    let db = test_db(label).await;
    let queue = task_queue(label);
    let (sim, _) = callaudit_sim::spawn(
        "127.0.0.1:0",
        callaudit_sim::SimState::with_generated_fiches(sim, generated),
    )
    .await
    .expect("sim");
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        api_crm.then(|| format!("http://{sim}/crm")),
        3,
    );
    tweak(&mut settings);
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

/// `FICHE-GEN-1` … `FICHE-GEN-n`.
fn generated(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("FICHE-GEN-{i}")).collect()
}

/// Posts `body` to `/api/audits/batch` as `token`, with an optional `Idempotency-Key`.
async fn post_batch(sc: &Scenario, token: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = sc
        .api
        .http
        .post(format!("{}/api/audits/batch", sc.api.base))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Starts a batch as the auditor; returns the 202 answer.
async fn start(sc: &Scenario, body: &Value) -> Value {
    let (status, accepted) = post_batch(sc, &sc.auditor, body, None).await;
    assert_eq!(status, 202, "{accepted}");
    accepted
}

async fn batch(sc: &Scenario, id: &str) -> Value {
    let (status, b) = sc
        .api
        .get(&format!("/api/audits/batch/{id}"), Some(&sc.auditor))
        .await;
    assert_eq!(status, 200, "{b}");
    b
}

/// Waits until batch `id` has ended; returns it.
async fn ended(sc: &Scenario, id: &str) -> Value {
    wait_for("the batch to end", T, || async {
        let b = batch(sc, id).await;
        let open = b["status"] == "pending" || b["status"] == "running";
        (!open).then_some(b)
    })
    .await
}

/// The events of the batch's stream, until it closes after its terminal event.
async fn stream(sc: &Scenario, id: &str) -> Vec<(String, Value)> {
    let mut s = SseClient::open(
        &sc.api,
        &format!("/api/audits/batch/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    assert_eq!(s.status, 200);
    s.rest(T)
        .await
        .into_iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("event json");
            (e.event.unwrap_or_default(), data["payload"].clone())
        })
        .collect()
}

fn counts(v: &Value) -> [u64; 6] {
    [
        "total",
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("count {k} in {v}")))
}

async fn temporal(sc: &Scenario) -> temporalio_client::Client {
    callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal")
}

/// Waits until Temporal's visibility counts `expected` runs for `query`.
async fn visible(client: &temporalio_client::Client, query: String, expected: usize) {
    wait_for(&format!("{expected} runs for {query}"), T, || async {
        let n = client
            .count_workflows(query.clone(), Default::default())
            .await
            .expect("count")
            .count();
        (n == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_twenty_fiches_completes_with_twenty_audits_and_a_progress_event_after_each() {
    let sc = scenario("batch_twenty", Default::default(), 20, false, |_| {}).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let mut fiches = generated(20);
    // A fiche listed twice is audited once.
    fiches.push("FICHE-GEN-3".into());
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": fiches, "window": 4}),
    )
    .await;
    let id = accepted["batch_id"].as_str().expect("id").to_string();
    assert_eq!(accepted["workflow_id"], format!("batch:{id}"));
    assert_eq!(accepted["total"], 20);
    assert_eq!(accepted["window"], 4);
    assert_eq!(
        accepted["links"]["events"],
        format!("/api/audits/batch/{id}/events")
    );

    let events = stream(&sc, &id).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec!["batch.started"];
    expected.extend(std::iter::repeat_n("batch.progress", 20));
    expected.push("batch.completed");
    assert_eq!(kinds, expected, "{events:?}");
    assert_eq!(events[0].1["total"], 20);
    assert_eq!(events[0].1["window"], 4);
    // The counts after each audit: one more finished each time, all completed.
    for (i, (_, p)) in events[1..=20].iter().enumerate() {
        let n = u64::try_from(i + 1).unwrap();
        let [total, pending, running, completed, failed, cancelled] = counts(&p["counts"]);
        assert_eq!((total, completed, failed, cancelled), (20, n, 0, 0), "{p}");
        assert_eq!(pending + running, 20 - n, "{p}");
        assert!(running <= 4, "never more than the window at once: {p}");
        assert_eq!(p["item"]["status"], "completed");
    }
    let done = &events[21].1;
    assert_eq!(done["status"], "completed");
    assert_eq!(counts(&done["counts"]), [20, 0, 0, 20, 0, 0]);

    let b = batch(&sc, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b["counts"]), [20, 0, 0, 20, 0, 0]);
    assert_eq!(b["workflow_runs"], 1);
    let items = b["items"].as_array().expect("items");
    assert_eq!(items.len(), 20);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["position"], i + 1);
        assert_eq!(item["fiche_id"], format!("FICHE-GEN-{}", i + 1));
        assert_eq!(item["status"], "completed");
        assert_eq!(item["audit_status"], "completed");
        assert!(item["score"].is_number(), "{item}");
    }
    // Each audit is a plain audit carrying the batch: readable, with its one step.
    let audit_id = items[4]["audit_id"].as_str().expect("audit id");
    let audit = sc.audit(audit_id).await;
    assert_eq!(audit["fiche_id"], "FICHE-GEN-5");
    assert_eq!(audit["steps"].as_array().map(Vec::len), Some(1));
    let db = &sc.db.url;
    let q = |sql: String| async move { count(db, &sql).await };
    assert_eq!(
        q(format!(
            "SELECT count(*) AS n FROM audits WHERE batch_id = '{id}' AND status = 'completed'"
        ))
        .await,
        20
    );
    assert_eq!(
        q(format!(
            "SELECT count(*) AS n FROM audit_step_results s JOIN audits a ON a.id = s.audit_id \
             WHERE a.batch_id = '{id}'"
        ))
        .await,
        20
    );
    assert_eq!(
        q(format!("SELECT count(*) AS n FROM events WHERE topic = 'audit:{audit_id}' AND type = 'audit.completed'")).await,
        1
    );

    // In Temporal: the batch and its 20 audits carry BatchId; the audits their own ids.
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("BatchId = '{id}' AND RunKind = 'batch'"),
        1,
    )
    .await;
    visible(
        &client,
        format!("BatchId = '{id}' AND RunKind = 'audit'"),
        20,
    )
    .await;
    visible(
        &client,
        format!("BatchId = '{id}' AND AuditId = '{audit_id}' AND FicheId = 'FICHE-GEN-5'"),
        1,
    )
    .await;

    let (status, page) = sc
        .api
        .get("/api/audits/batches?limit=10", Some(&sc.auditor))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_batch_midway_keeps_the_finished_audits_and_starts_no_other() {
    // Each audit takes a few seconds (four vendor round trips of 700 ms); two at once.
    let sim = callaudit_sim::SimConfig {
        latency_ms: 700,
        ..Default::default()
    };
    let sc = scenario("batch_cancel", sim, 20, false, |_| {}).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": generated(20), "window": 2}),
    )
    .await;
    let id = accepted["batch_id"].as_str().expect("id").to_string();

    // Two audits finished and the next two started: cancel before either of those ends.
    let seen = wait_for("2 audits completed and 2 running", T, || async {
        let b = batch(&sc, &id).await;
        let c = counts(&b["counts"]);
        (c[3] >= 2 && c[2] == 2).then_some(c)
    })
    .await;
    assert_eq!(
        seen,
        [20, 16, 2, 2, 0, 0],
        "the next audit ends seconds later"
    );
    let (status, cancelling) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{id}/cancel"),
            Some(&sc.auditor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{cancelling}");
    let by = cancelling["cancel_requested_by"]
        .as_str()
        .expect("by")
        .to_string();
    assert!(by.starts_with("auditor-"), "{cancelling}");

    let b = ended(&sc, &id).await;
    assert_eq!(b["status"], "cancelled", "{b}");
    // The two running audits finished; the 16 others never started.
    assert_eq!(counts(&b["counts"]), [20, 0, 0, 4, 0, 16]);
    let items = b["items"].as_array().expect("items");
    for item in &items[..4] {
        assert_eq!(item["status"], "completed", "{item}");
        assert_eq!(item["audit_status"], "completed", "{item}");
    }
    for item in &items[4..] {
        assert_eq!(item["status"], "cancelled", "{item}");
        assert!(item["audit_id"].is_null(), "{item}");
        assert!(
            item["error"]
                .as_str()
                .unwrap_or_default()
                .contains("cancelled by"),
            "{item}"
        );
    }
    assert_eq!(
        count(
            &sc.db.url,
            &format!("SELECT count(*) AS n FROM audits WHERE batch_id = '{id}'")
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &sc.db.url,
            &format!(
                "SELECT count(*) AS n FROM audits WHERE batch_id = '{id}' AND status = 'completed'"
            )
        )
        .await,
        4
    );
    let events = stream(&sc, &id).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "batch.started",
            "batch.progress",
            "batch.progress",
            "batch.progress",
            "batch.progress",
            "batch.cancelled"
        ]
    );
    assert_eq!(events[5].1["by"], by.as_str());
    assert_eq!(counts(&events[5].1["counts"]), [20, 0, 0, 4, 0, 16]);
    // No workflow for the cancelled fiches.
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("BatchId = '{id}' AND RunKind = 'audit'"),
        4,
    )
    .await;

    let (again, refused) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{id}/cancel"),
            Some(&sc.auditor),
            &json!({}),
        )
        .await;
    assert_eq!(again, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("has ended")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resubmit_with_the_same_idempotency_key_returns_the_same_batch() {
    let sc = scenario("batch_idem", Default::default(), 0, false, |_| {}).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let body = json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001", "FICHE-1002"]});
    let (s1, first) = post_batch(&sc, &sc.auditor, &body, Some("batch-key-1")).await;
    assert_eq!(s1, 202, "{first}");
    let (s2, second) = post_batch(&sc, &sc.auditor, &body, Some("batch-key-1")).await;
    assert_eq!(s2, 202, "{second}");
    assert_eq!(second["batch_id"], first["batch_id"]);
    assert_eq!(second["workflow_id"], first["workflow_id"]);
    let id = first["batch_id"].as_str().expect("id").to_string();
    // The same key with another body is refused, naming the batch.
    let other = json!({"audit_config_id": config, "fiche_ids": ["FICHE-1003"]});
    let (s3, refused) = post_batch(&sc, &sc.auditor, &other, Some("batch-key-1")).await;
    assert_eq!(s3, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&id)
    );

    let b = ended(&sc, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b["counts"]), [2, 0, 0, 2, 0, 0]);
    // Resubmitted after the end: still the same batch, as it stands.
    let (s4, late) = post_batch(&sc, &sc.auditor, &body, Some("batch-key-1")).await;
    assert_eq!(s4, 202, "{late}");
    assert_eq!(late["batch_id"], id.as_str());
    assert_eq!(late["status"], "completed");
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM audit_batches").await,
        1
    );
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM audits").await,
        2
    );
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("BatchId = '{id}' AND RunKind = 'batch'"),
        1,
    )
    .await;
    visible(&client, format!("WorkflowId = 'batch:{id}'"), 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_batch_loses_no_audit_and_duplicates_none() {
    let sim = callaudit_sim::SimConfig {
        latency_ms: 300,
        ..Default::default()
    };
    let sc = scenario("batch_kill", sim, 20, false, |_| {}).await;
    let config = sc.config(1).await;
    let mut first = sc.worker(&[]);
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": generated(20), "window": 4}),
    )
    .await;
    let id = accepted["batch_id"].as_str().expect("id").to_string();
    wait_for("5 audits completed", T, || async {
        (batch(&sc, &id).await["counts"]["completed"].as_u64() >= Some(5)).then_some(())
    })
    .await;
    first.0.kill().expect("kill -9 the worker");
    first.0.wait().expect("reap");
    let at_kill = batch(&sc, &id).await;
    let done_at_kill = at_kill["counts"]["completed"].as_u64().unwrap_or(0);
    assert!(
        done_at_kill < 20,
        "the batch finished before the kill: {at_kill}"
    );
    eprintln!(
        "worker killed with {done_at_kill} of 20 audits completed: {}",
        at_kill["counts"]
    );

    let _fresh = sc.worker(&[]);
    let b = ended(&sc, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b["counts"]), [20, 0, 0, 20, 0, 0]);
    let db = &sc.db.url;
    assert_eq!(
        count(
            db,
            &format!("SELECT count(*) AS n FROM audits WHERE batch_id = '{id}'")
        )
        .await,
        20,
        "one audit per fiche, none lost, none twice"
    );
    assert_eq!(
        count(db, &format!("SELECT count(DISTINCT fiche_id) AS n FROM audits WHERE batch_id = '{id}' AND status = 'completed'")).await,
        20
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) AS n FROM audits WHERE batch_id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT count(*) AS n FROM audit_step_results s JOIN audits a ON a.id = s.audit_id \
                 WHERE a.batch_id = '{id}'"
            )
        )
        .await,
        20,
        "each audit's step stored once"
    );
    let topic = format!("batch:{id}");
    let of = |kind: &str| {
        format!("SELECT count(*) AS n FROM events WHERE topic = '{topic}' AND type = '{kind}'")
    };
    assert_eq!(count(db, &of("batch.progress")).await, 20);
    assert_eq!(count(db, &of("batch.completed")).await, 1);
    assert_eq!(count(db, &of("batch.started")).await, 1);
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT count(*) AS n FROM events e JOIN audits a ON e.topic = 'audit:' || a.id \
                      WHERE a.batch_id = '{id}' AND e.type = 'audit.completed'"
            )
        )
        .await,
        20
    );
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("BatchId = '{id}' AND RunKind = 'audit'"),
        20,
    )
    .await;
}

/// Run ids of batch `id`'s workflow, oldest first, walking back from the latest run
/// through `continued_execution_run_id`; and whether each run ended by continuing as new.
async fn runs_of(client: &temporalio_client::Client, id: &str) -> Vec<(String, bool)> {
    let wf = format!("batch:{id}");
    let mut runs = vec![];
    let mut run: Option<String> = None;
    loop {
        let json = crate::replay::fetch(client, &wf, run.clone()).await;
        let events = WorkflowHistory::from_json(&json)
            .expect("history")
            .into_events()
            .await
            .expect("events");
        let (this_run, previous) = match &events[0].attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => (
                a.original_execution_run_id.clone(),
                Some(a.continued_execution_run_id.clone()).filter(|r| !r.is_empty()),
            ),
            other => panic!("a history starts with its start, not {other:?}"),
        };
        let continued = events.iter().any(|e| {
            matches!(
                e.attributes,
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                    _
                ))
            )
        });
        runs.push((run.unwrap_or(this_run), continued));
        match previous {
            Some(p) => run = Some(p),
            None => break,
        }
    }
    runs.reverse();
    runs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_continues_as_new_past_its_threshold_and_keeps_its_counts() {
    // At most 4 audits per run: 10 fiches take runs of 4, 4 and 2.
    let sc = scenario("batch_can", Default::default(), 10, false, |s| {
        s.batches.continue_as_new_after = 4;
    })
    .await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": generated(10), "window": 2}),
    )
    .await;
    let id = accepted["batch_id"].as_str().expect("id").to_string();
    let events = stream(&sc, &id).await;
    let progress: Vec<u64> = events
        .iter()
        .filter(|(k, _)| k == "batch.progress")
        .map(|(_, p)| p["counts"]["completed"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(progress, (1..=10).collect::<Vec<u64>>(), "{events:?}");
    assert_eq!(
        events.last().map(|(k, _)| k.as_str()),
        Some("batch.completed")
    );
    assert_eq!(
        events.iter().filter(|(k, _)| k == "batch.started").count(),
        1,
        "a continued run does not start the batch again"
    );
    let b = batch(&sc, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b["counts"]), [10, 0, 0, 10, 0, 0]);
    assert_eq!(b["workflow_runs"], 3);
    assert_eq!(
        count(
            &sc.db.url,
            &format!("SELECT count(*) AS n FROM audits WHERE batch_id = '{id}'")
        )
        .await,
        10
    );
    // In Temporal: three runs of batch:{id}, the first two ended by continuing as new.
    let client = temporal(&sc).await;
    let runs = runs_of(&client, &id).await;
    let continued: Vec<bool> = runs.iter().map(|(_, c)| *c).collect();
    assert_eq!(continued, [true, true, false], "{runs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_date_range_selects_the_cached_fiches_sold_those_days() {
    // The api searches the CRM's sales to fill the cache for 2026-11-02 … 2026-11-04:
    // FICHE-1001 (NCA), 1002 (MDP), 1003 (NCA), 1004 (MDP), 1005 (NCA), 1009 (MDP).
    let sc = scenario("batch_range", Default::default(), 0, true, |_| {}).await;
    let config = sc.config(1).await;
    for day in ["2026-11-02", "2026-11-03", "2026-11-04"] {
        let (status, sales) = sc
            .api
            .get(&format!("/api/fiches/sales?date={day}"), Some(&sc.auditor))
            .await;
        assert_eq!(status, 200, "{sales}");
    }
    let _w = sc.worker(&[]);
    let range = |extra: Value| {
        let mut body = json!({
            "audit_config_id": config,
            "from": "2026-11-02",
            "to": "2026-11-04",
            "only_with_recordings": true,
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let accepted = start(&sc, &range(json!({"groupes": ["MDP"]}))).await;
    assert_eq!(accepted["total"], 3);
    let id = accepted["batch_id"].as_str().expect("id").to_string();
    let b = ended(&sc, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    let fiches: Vec<&str> = b["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["fiche_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fiches,
        ["FICHE-1002", "FICHE-1004", "FICHE-1009"],
        "by sale time"
    );
    assert_eq!(b["selection"]["groupes"], json!(["MDP"]));
    assert_eq!(b["selection"]["from"], "2026-11-02");

    // Only the fiches not audited yet with this configuration: the three NCA ones.
    let second = start(&sc, &range(json!({"only_unaudited": true}))).await;
    assert_eq!(second["total"], 3);
    let b2 = ended(&sc, second["batch_id"].as_str().unwrap()).await;
    let fiches: Vec<&str> = b2["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["fiche_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fiches, ["FICHE-1001", "FICHE-1003", "FICHE-1005"]);
    // Nothing is left to audit in those days.
    let (status, none) = post_batch(
        &sc,
        &sc.auditor,
        &range(json!({"only_unaudited": true})),
        None,
    )
    .await;
    assert_eq!(status, 422, "{none}");
    assert!(
        none["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no cached fiche")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_batch_requests_are_refused_with_a_clear_error_and_store_nothing() {
    let sc = scenario("batch_bad", Default::default(), 0, false, |_| {}).await;
    let config = sc.config(1).await;
    let many: Vec<String> = (0..=1000).map(|i| format!("F-{i}")).collect();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"fiche_ids": ["FICHE-1001"]}), 400, ""),
        (
            json!({"audit_config_id": config, "fiche_ids": []}),
            400,
            "at least one",
        ),
        (
            json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001", "no way"]}),
            400,
            "\"no way\"",
        ),
        (
            json!({"audit_config_id": config, "fiche_ids": many}),
            400,
            "at most 1000",
        ),
        (
            json!({"audit_config_id": config}),
            400,
            "fiche_ids, or a date range",
        ),
        (
            json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001"], "from": "2026-11-02", "to": "2026-11-02"}),
            400,
            "not both",
        ),
        (
            json!({"audit_config_id": config, "from": "2026-11-02"}),
            400,
            "both from and to",
        ),
        (
            json!({"audit_config_id": config, "from": "2026-11-05", "to": "2026-11-02"}),
            400,
            "is after",
        ),
        (
            json!({"audit_config_id": config, "from": "2025-01-01", "to": "2026-02-04"}),
            400,
            "at most 366",
        ),
        (
            json!({"audit_config_id": config, "from": "2026-11-02", "to": "2026-11-02", "groupes": []}),
            400,
            "groupes",
        ),
        (
            json!({"audit_config_id": config, "from": "2026-13-02", "to": "2026-11-02"}),
            400,
            "",
        ),
        (
            json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001"], "window": 0}),
            400,
            "",
        ),
        (
            json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001"], "window": 51}),
            400,
            "",
        ),
        (
            json!({"audit_config_id": uuid::Uuid::new_v4(), "fiche_ids": ["FICHE-1001"]}),
            404,
            "not found",
        ),
        (
            json!({"audit_config_id": config, "from": "2026-11-02", "to": "2026-11-04"}),
            422,
            "no cached fiche",
        ),
    ];
    for (body, status, says) in &cases {
        let (got, answer) = post_batch(&sc, &sc.auditor, body, None).await;
        assert_eq!(got, *status, "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(answer["error"]["status"], *status, "{answer}");
        assert!(message.contains(says), "{body}: {message:?} lacks {says:?}");
    }
    let ok = json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001"]});
    let (got, answer) = post_batch(&sc, &sc.auditor, &ok, Some("  ")).await;
    assert_eq!(got, 400, "{answer}");

    // An inactive configuration.
    diesel_exec(&sc.db.url, "UPDATE audit_configs SET active = false").await;
    let (got, answer) = post_batch(&sc, &sc.auditor, &ok, None).await;
    assert_eq!(got, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("inactive")
    );

    // Viewers read batches but neither start nor cancel them.
    let viewer = sc.api.token_for("viewer").await;
    let (got, answer) = post_batch(&sc, &viewer, &ok, None).await;
    assert_eq!(got, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batches:write")
    );
    let (got, _) = sc.api.get("/api/audits/batches", Some(&viewer)).await;
    assert_eq!(got, 200);
    let unknown = uuid::Uuid::new_v4();
    let (got, answer) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{unknown}/cancel"),
            Some(&viewer),
            &json!({}),
        )
        .await;
    assert_eq!(got, 403, "{answer}");
    let (got, _) = sc
        .api
        .get(&format!("/api/audits/batch/{unknown}"), Some(&viewer))
        .await;
    assert_eq!(got, 404);
    let (got, _) = sc
        .api
        .get("/api/audits/batch/not-a-uuid", Some(&viewer))
        .await;
    assert_eq!(got, 400);
    let (got, _) = sc
        .api
        .get(
            &format!("/api/audits/batch/{unknown}/events"),
            Some(&viewer),
        )
        .await;
    assert_eq!(got, 404);
    let (got, _) = sc.api.get("/api/audits/batches", None).await;
    assert_eq!(got, 401);
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM audit_batches").await,
        0
    );
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM audits").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_workflow_was_terminated_is_recorded_failed_when_read() {
    // No worker: the batch's workflow never runs; an operator terminates it.
    let sc = scenario("batch_terminated", Default::default(), 0, false, |_| {}).await;
    let config = sc.config(1).await;
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": ["FICHE-1001", "FICHE-1002"]}),
    )
    .await;
    let id = accepted["batch_id"].as_str().expect("id").to_string();
    assert_eq!(accepted["status"], "pending");
    let client = temporal(&sc).await;
    client
        .get_workflow_handle::<callaudit_workflows::BatchAuditWorkflow>(format!("batch:{id}"))
        .terminate(Default::default())
        .await
        .expect("terminate");
    let b = batch(&sc, &id).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap_or_default()
            .contains("was terminated"),
        "{b}"
    );
    assert_eq!(counts(&b["counts"]), [2, 0, 0, 0, 0, 2]);
    // A browser follows the stream with a stream token and no Authorization header.
    let (status, token) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{id}/events/token"),
            Some(&sc.auditor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let url = token["url"].as_str().expect("url");
    let resp = reqwest::get(format!("{}{url}", sc.api.base))
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    assert!(body.contains("event: batch.failed"), "{body}");
    assert!(!body.contains("batch.started"), "it never started: {body}");
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{id}/cancel"),
            Some(&sc.auditor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409);
}

/// Runs one SQL statement.
async fn diesel_exec(db_url: &str, sql: &str) {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = diesel_async::AsyncPgConnection::establish(db_url)
        .await
        .expect("connect");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("statement");
}

/// Records `tests/histories/batch_*.json` from real runs, with
/// `CALLAUDIT_RECORD_HISTORIES=batches` (or `all`): a batch of 5 fiches continuing as new
/// after 3 (its first run, ended by continuing as new, and its last run, which finishes
/// the batch with the carried counts), and a batch cancelled by the `cancel` signal.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately (see tests/replay.rs)"]
async fn record() {
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "batches" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=batches to write tests/histories"
    );
    let sc = scenario("record_batch", Default::default(), 5, false, |s| {
        s.batches.continue_as_new_after = 3;
    })
    .await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let accepted = start(
        &sc,
        &json!({"audit_config_id": config, "fiche_ids": generated(5), "window": 2}),
    )
    .await;
    let id = accepted["batch_id"].as_str().unwrap().to_string();
    assert_eq!(ended(&sc, &id).await["status"], "completed");
    let client = temporal(&sc).await;
    let runs = runs_of(&client, &id).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let wf = format!("batch:{id}");
    let first = crate::replay::fetch(&client, &wf, Some(runs[0].0.clone())).await;
    let last = crate::replay::fetch(&client, &wf, Some(runs[1].0.clone())).await;

    // Cancelled after its first audit: one at a time, slow vendors.
    let slow = scenario(
        "record_batch_cancel",
        callaudit_sim::SimConfig {
            latency_ms: 500,
            ..Default::default()
        },
        4,
        false,
        |_| {},
    )
    .await;
    let config = slow.config(1).await;
    let _w2 = slow.worker(&[]);
    let accepted = start(
        &slow,
        &json!({"audit_config_id": config, "fiche_ids": generated(4), "window": 1}),
    )
    .await;
    let cid = accepted["batch_id"].as_str().unwrap().to_string();
    wait_for("one audit completed", T, || async {
        (batch(&slow, &cid).await["counts"]["completed"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let (status, _) = slow
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/batch/{cid}/cancel"),
            Some(&slow.auditor),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(ended(&slow, &cid).await["status"], "cancelled");
    let ctemporal = temporal(&slow).await;
    let cancelled = wait_for("the cancelled batch's workflow to close", T, || async {
        let h = crate::replay::fetch(&ctemporal, &format!("batch:{cid}"), None).await;
        let text = String::from_utf8_lossy(&h).to_string();
        (text.contains("WORKFLOW_EXECUTION_COMPLETED")
            || text.contains("WorkflowExecutionCompleted"))
        .then_some(h)
    })
    .await;
    for (file, json) in [
        ("batch_continued_as_new.json", first),
        ("batch_completed.json", last),
        ("batch_cancelled.json", cancelled),
    ] {
        std::fs::write(crate::replay::history_path(file), json).expect("write history");
    }
}

/// The cancelled history replays as recorded; with its `cancel` signal renamed to one the
/// workflow does not know, it does not: the window would have started the next audit where
/// the recorded run went on to finish the batch.
#[tokio::test]
async fn the_cancelled_history_replays_only_with_its_cancel_signal() {
    use temporalio_common::protos::temporal::api::history::v1::History;
    use temporalio_sdk::workflow_replayer::{
        WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
    };
    let replayer = || {
        WorkflowReplayer::new(
            WorkflowReplayerOptions::new()
                .register_workflow::<callaudit_workflows::BatchAuditWorkflow>()
                .expect("register")
                .build(),
        )
        .expect("replayer")
    };
    let bytes = std::fs::read(crate::replay::history_path("batch_cancelled.json")).expect("read");
    let mut events = WorkflowHistory::from_json(&bytes)
        .expect("history")
        .into_events()
        .await
        .expect("events");
    replayer()
        .replay_workflow(WorkflowHistory::from(History {
            events: events.clone(),
        }))
        .await
        .expect("the recorded history replays");
    let mut renamed = 0;
    for e in &mut events {
        if let Some(Attributes::WorkflowExecutionSignaledEventAttributes(s)) = &mut e.attributes {
            assert_eq!(s.signal_name, "cancel");
            s.signal_name = "not-cancel".into();
            renamed += 1;
        }
    }
    assert_eq!(renamed, 1, "one cancel signal");
    let result = replayer()
        .replay_workflow(WorkflowHistory::from(History { events }))
        .await;
    assert!(
        matches!(
            result,
            Err(WorkflowReplayError::Replay(
                WorkflowReplayFailure::Nondeterminism { .. }
            ))
        ),
        "expected a nondeterminism error, got {result:?}"
    );
}
