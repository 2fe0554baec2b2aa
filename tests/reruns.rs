//! Step and control-point reruns of finished audits, end to end: api → AuditRerunWorkflow
//! → activities → simulated LLM, the stored step and summary, `rerun_history`, and the
//! audit's stream.
//!
//! The fixture: FICHE-1001 audited with step 1 of the sample configuration ("Présentation
//! et cadre de l'appel", weight 10, three control points the simulated auditor finds
//! PRESENT in the call). The audit scores 10/10 → 100.0 EXCELLENT; with the model skipping
//! point 0 it scores 10 × 2/3 → 66.7 ACCEPTABLE (see audit_pipeline).

use crate::audit_pipeline::{Scenario, count};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

pub(crate) async fn set_sim(sc: &Scenario, cfg: Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/_sim/config", sc.sim))
        .json(&cfg)
        .send()
        .await
        .expect("sim config");
    assert!(resp.status().is_success(), "sim config refused");
}

async fn llm_requests(sc: &Scenario) -> Vec<Value> {
    let v: Value = reqwest::get(format!("http://{}/_sim/llm/requests", sc.sim))
        .await
        .expect("llm requests")
        .json()
        .await
        .expect("json");
    v["requests"].as_array().cloned().unwrap_or_default()
}

pub(crate) async fn post(sc: &Scenario, path: &str, token: &str, body: &Value) -> (u16, Value) {
    sc.api
        .send(reqwest::Method::POST, path, Some(token), body)
        .await
}

/// Waits until rerun `rerun_id` of `audit` has ended; returns it.
async fn rerun_ended(sc: &Scenario, audit: &str, rerun_id: &str) -> Value {
    wait_for("the rerun to end", T, || async {
        let (status, r) = sc
            .api
            .get(
                &format!("/api/audits/{audit}/reruns/{rerun_id}"),
                Some(&sc.auditor),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        (r["status"] == "completed" || r["status"] == "failed").then_some(r)
    })
    .await
}

pub(crate) fn points(audit: &Value, step: usize) -> Vec<Value> {
    audit["steps"][step]["raw_result"]["points_controle"]
        .as_array()
        .cloned()
        .expect("points")
}

/// The step score by the design's formula, written out here: weight × (present + ½
/// partiel) / applicable.
fn hand_score(weight: f64, statuts: &[&str]) -> f64 {
    let applicable = statuts.iter().filter(|s| **s != "NON_APPLICABLE").count();
    let present = statuts.iter().filter(|s| **s == "PRESENT").count();
    let partiel = statuts.iter().filter(|s| **s == "PARTIEL").count();
    weight * (present as f64 + 0.5 * partiel as f64) / applicable as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_rerun_replaces_the_step_recomputes_the_summary_and_keeps_old_and_new() {
    // The model skips control point 0 during the audit: 66.7 ACCEPTABLE.
    let sc = Scenario::without_api_crm(
        "rerun_step",
        callaudit_sim::SimConfig {
            omit_points: vec![0],
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    let before = sc.completed(&id).await;
    assert_eq!(before["score"].as_f64(), Some(66.7), "{before}");
    assert_eq!(before["niveau"], "ACCEPTABLE");

    // The model now answers for every point; the reviewer adds a hint.
    set_sim(&sc, json!({})).await;
    let hint = "Le conseiller se présente au tout début de l'appel";
    let (status, accepted) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!({"instructions": hint}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["workflow_id"],
        format!("audit:{id}:rerun-step:1:1")
    );
    assert_eq!(accepted["n"], 1);
    assert_eq!(accepted["kind"], "step");
    let rerun_id = accepted["id"].as_str().expect("id").to_string();

    // The audit's stream, opened after the rerun was accepted, replays the audit, then
    // follows the rerun and ends once it completed.
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/audits/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    assert_eq!(stream.status, 200);
    let events = stream.rest(T).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(
        kinds,
        [
            "audit.started",
            "audit.step.completed",
            "audit.completed",
            "audit.rerun.started",
            "audit.rerun.completed"
        ],
        "{events:?}"
    );
    let done: Value = serde_json::from_str(&events[4].data).expect("json");
    assert_eq!(done["payload"]["rerun"]["rerun_id"], rerun_id.as_str());
    assert_eq!(
        done["payload"]["step"]["score"].as_f64(),
        Some(10.0),
        "{done}"
    );
    assert_eq!(done["payload"]["step"]["conforme"], "CONFORME");
    assert_eq!(done["payload"]["audit"]["score"].as_f64(), Some(100.0));
    assert_eq!(done["payload"]["audit"]["niveau"], "EXCELLENT");

    let after = sc.audit(&id).await;
    assert_eq!(after["score"].as_f64(), Some(100.0), "{after}");
    assert_eq!(after["niveau"], "EXCELLENT");
    let step = &after["steps"][0];
    assert_eq!(step["score"].as_f64(), Some(10.0));
    assert_eq!(step["conforme"], "CONFORME");
    let p = points(&after, 0);
    assert_eq!(p[0]["statut"], "PRESENT", "{}", p[0]);
    assert_eq!(p[0]["evidence_unverified"], false);

    let history = step["raw_result"]["rerun_history"]
        .as_array()
        .expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    let e = &history[0];
    assert_eq!(e["kind"], "step_rerun");
    assert_eq!(e["rerun_id"], rerun_id.as_str());
    assert_eq!(e["workflow_id"], format!("audit:{id}:rerun-step:1:1"));
    let by = e["by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("auditor-") && by.ends_with("@example.test"),
        "{e}"
    );
    assert_eq!(e["mode"], "prompt");
    assert_eq!(e["use_rlm"], false);
    assert_eq!(e["model"], "gpt-4.1-mini");
    assert_eq!(e["instructions"], hint);
    assert!(e["usage"]["prompt_tokens"].as_i64().unwrap_or(0) > 0, "{e}");
    assert_eq!(e["previous"]["points_controle"][0]["statut"], "ABSENT");
    assert_eq!(
        e["previous"]["points_controle"][0]["evidence_reason"],
        "not assessed by the model"
    );
    assert_eq!(e["new"]["points_controle"][0]["statut"], "PRESENT");
    let prev_score = e["previous_score"]["score"].as_f64().expect("score");
    assert!((prev_score - 20.0 / 3.0).abs() < 1e-9, "{e}");
    assert_eq!(e["new_score"]["score"].as_f64(), Some(10.0));

    // The hint reached the model, in the rerun's prompt only.
    let requests = llm_requests(&sc).await;
    let with_hint = requests
        .iter()
        .filter(|r| r.to_string().contains(hint))
        .count();
    assert_eq!(with_hint, 1, "one LLM request carried the hint");

    let (status, list) = sc
        .api
        .get(&format!("/api/audits/{id}/reruns"), Some(&sc.auditor))
        .await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "completed");
    assert_eq!(items[0]["outcome"]["audit_score"].as_f64(), Some(100.0));
    assert_eq!(items[0]["outcome"]["step_conforme"], "CONFORME");

    // Operators find the rerun in Temporal by its audit and kind.
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let query = format!("AuditId = '{id}' AND RunKind = 'rerun' AND FicheId = 'FICHE-1001'");
    wait_for("the rerun to be visible", T, || async {
        let n = client
            .count_workflows(query.clone(), Default::default())
            .await
            .expect("count")
            .count();
        (n == 1).then_some(())
    })
    .await;

    // The audit's cost counts the rerun's LLM use: one request for the step, one for the
    // rerun, and their tokens added up.
    assert_eq!(before["cost"]["llm_requests"], 1, "{}", before["cost"]);
    assert_eq!(after["cost"]["llm_requests"], 2, "{}", after["cost"]);
    let tokens = |v: &Value| v.as_i64().expect("tokens");
    assert_eq!(
        tokens(&after["cost"]["prompt_tokens"]),
        tokens(&before["cost"]["prompt_tokens"]) + tokens(&items[0]["prompt_tokens"])
    );
    assert!(tokens(&items[0]["prompt_tokens"]) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_point_rerun_changes_only_that_point_and_a_fabricated_quote_is_downgraded() {
    // FICHE-1002 never mentions the recording: step 2 ("Consentement et enregistrement",
    // weight 20, critical, 2 points) is NON_CONFORME; step 1 (weight 10) is CONFORME.
    // Audit: 100 × 10 / 30 = 33.3, and the critical failure forces REJET.
    let sc = Scenario::without_api_crm("rerun_cp", Default::default()).await;
    let config = sc.config(2).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1002", &config).await;
    let before = sc.completed(&id).await;
    assert_eq!(before["score"].as_f64(), Some(33.3), "{before}");
    assert_eq!(before["niveau"], "REJET");
    assert_eq!(before["critical"], true);
    let old = points(&before, 1);
    assert_eq!(old[0]["statut"], "ABSENT", "{}", old[0]);

    // The model now invents its quotes: it claims point 0 of step 2 PRESENT.
    set_sim(&sc, json!({"fabricate": "Always"})).await;
    let (status, accepted) = post(
        &sc,
        &format!("/api/audits/{id}/steps/2/control-points/0/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["workflow_id"],
        format!("audit:{id}:rerun-cp:2:0:1")
    );
    let rerun = rerun_ended(&sc, &id, accepted["id"].as_str().expect("id")).await;
    assert_eq!(rerun["status"], "completed", "{rerun}");

    let after = sc.audit(&id).await;
    assert_eq!(after["steps"][0], before["steps"][0], "step 1 untouched");
    let new = points(&after, 1);
    assert_eq!(new[1], old[1], "point 1 untouched");
    // Claimed PRESENT with an invented quote, not in the call: ABSENT and unverified.
    assert_eq!(new[0]["statut"], "ABSENT", "{}", new[0]);
    assert_eq!(new[0]["claimed_statut"], "PRESENT");
    assert_eq!(new[0]["evidence_unverified"], true);
    assert_eq!(new[0]["index"], 0);
    assert_eq!(new[0]["point"], old[0]["point"]);
    assert_eq!(
        new[0]["citation_checks"][0]["verdict"], "NOT_FOUND",
        "{}",
        new[0]
    );

    // The step's score is the recomputation from its points: nothing applicable present.
    let statuts: Vec<&str> = new.iter().map(|p| p["statut"].as_str().unwrap()).collect();
    assert_eq!(statuts, ["ABSENT", "ABSENT"]);
    let step = &after["steps"][1];
    assert_eq!(step["score"].as_f64(), Some(hand_score(20.0, &statuts)));
    assert_eq!(step["score"].as_f64(), Some(0.0));
    assert_eq!(step["conforme"], "NON_CONFORME");
    // Believed, the invented quote would have made step 2 PARTIEL (20 × 1/2 = 10) and the
    // audit 100 × 20 / 30 = 66.7 ACCEPTABLE with no critical failure.
    assert_eq!(after["score"].as_f64(), Some(33.3));
    assert_eq!(after["niveau"], "REJET");
    assert_eq!(after["critical"], true);
    let e = &step["raw_result"]["rerun_history"][0];
    assert_eq!(e["kind"], "control_point_rerun");
    assert_eq!(e["control_point_index"], 0);
    assert_eq!(e["previous"], old[0]);
    assert_eq!(e["new"], new[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_point_rerun_in_transcript_tools_mode_reads_through_tool_calls() {
    let sc = Scenario::without_api_crm("rerun_rlm", Default::default()).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    sc.completed(&id).await;
    let tool_calls_before = sc.sim_stats().await["llm_tool_calls"].as_u64().unwrap();
    assert_eq!(tool_calls_before, 0, "the audit ran in prompt mode");

    let (status, accepted) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/control-points/0/rerun"),
        &sc.auditor,
        &json!({"useRlm": true}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["use_rlm"], true);
    let rerun = rerun_ended(&sc, &id, accepted["id"].as_str().expect("id")).await;
    assert_eq!(rerun["status"], "completed", "{rerun}");
    let stats = sc.sim_stats().await;
    assert!(stats["llm_tool_calls"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["llm_tool_results"].as_u64().unwrap() >= 1, "{stats}");

    let after = sc.audit(&id).await;
    let e = &after["steps"][0]["raw_result"]["rerun_history"][0];
    assert_eq!(e["mode"], "tools", "{e}");
    assert_eq!(e["use_rlm"], true);
    // Found through the tools and quoted from their results: verified.
    assert_eq!(e["new"]["statut"], "PRESENT", "{e}");
    assert_eq!(e["new"]["evidence_unverified"], false);
    assert_eq!(after["score"].as_f64(), Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_reruns_of_one_point_apply_one_after_the_other_with_two_ordered_entries() {
    // The audit's model skips point 2 (ABSENT, not assessed); both reruns find it.
    let sc = Scenario::without_api_crm(
        "rerun_concurrent",
        callaudit_sim::SimConfig {
            omit_points: vec![2],
            ..Default::default()
        },
    )
    .await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    let before = sc.completed(&id).await;
    assert_eq!(points(&before, 0)[2]["statut"], "ABSENT");
    set_sim(&sc, json!({"latency_ms": 300})).await;

    let path = format!("/api/audits/{id}/steps/1/control-points/2/rerun");
    let body = json!({});
    let (a, b) = tokio::join!(
        post(&sc, &path, &sc.auditor, &body),
        post(&sc, &path, &sc.manager, &body)
    );
    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
    let mut ids = [
        a.1["workflow_id"].as_str().unwrap().to_string(),
        b.1["workflow_id"].as_str().unwrap().to_string(),
    ];
    ids.sort();
    assert_eq!(
        ids,
        [
            format!("audit:{id}:rerun-cp:1:2:1"),
            format!("audit:{id}:rerun-cp:1:2:2")
        ],
        "distinct numbers"
    );
    for r in [&a.1, &b.1] {
        let done = rerun_ended(&sc, &id, r["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
    }

    let after = sc.audit(&id).await;
    let step = &after["steps"][0];
    let h = step["raw_result"]["rerun_history"]
        .as_array()
        .expect("history");
    assert_eq!(h.len(), 2, "{h:?}");
    // Applied one after the other: the second starts from the first one's result, not
    // from the point as it was before both (no lost update).
    assert_eq!(h[0]["previous"]["statut"], "ABSENT");
    assert_eq!(
        h[0]["previous"]["evidence_reason"],
        "not assessed by the model"
    );
    assert_eq!(h[1]["previous"], h[0]["new"]);
    assert_eq!(h[1]["new"], points(&after, 0)[2]);
    assert_eq!(
        points(&after, 0)[..2],
        points(&before, 0)[..2],
        "points 0 and 1 untouched"
    );
    assert_eq!(
        h[0]["previous_score"]["score"]
            .as_f64()
            .map(|s| (s * 1e6).round()),
        Some((20.0f64 / 3.0 * 1e6).round())
    );
    assert_eq!(h[1]["new_score"]["score"].as_f64(), Some(10.0));
    let mut rerun_ids = [
        h[0]["rerun_id"].as_str().unwrap().to_string(),
        h[1]["rerun_id"].as_str().unwrap().to_string(),
    ];
    rerun_ids.sort();
    let mut asked = [
        a.1["id"].as_str().unwrap().to_string(),
        b.1["id"].as_str().unwrap().to_string(),
    ];
    asked.sort();
    assert_eq!(rerun_ids, asked, "one entry per rerun");
    assert!(
        h[0]["at"].as_str().unwrap() <= h[1]["at"].as_str().unwrap(),
        "in the order they applied"
    );
    assert_eq!(step["score"].as_f64(), Some(10.0));
    assert_eq!(after["score"].as_f64(), Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_whose_llm_refuses_the_key_fails_with_its_reason_and_changes_nothing() {
    let sc = Scenario::without_api_crm("rerun_fail", Default::default()).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    let before = sc.completed(&id).await;
    // From now on the LLM accepts another key only: a permanent 401.
    set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "sim-stt", "openai": "another-key"}}),
    )
    .await;
    let (status, accepted) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!(null),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let rerun = rerun_ended(&sc, &id, accepted["id"].as_str().unwrap()).await;
    assert_eq!(rerun["status"], "failed", "{rerun}");
    let reason = rerun["error"].as_str().unwrap_or_default();
    assert!(reason.contains("401"), "{reason}");
    assert!(
        !reason.contains("sim-llm"),
        "no key in the reason: {reason}"
    );

    let after = sc.audit(&id).await;
    assert_eq!(after["steps"], before["steps"], "nothing changed");
    assert_eq!(after["score"], before["score"]);
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/audits/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    let kinds: Vec<String> = stream
        .rest(T)
        .await
        .into_iter()
        .filter_map(|e| e.event)
        .collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        [
            "audit.rerun.started".to_string(),
            "audit.rerun.failed".to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reruns_are_refused_while_the_audit_runs_for_unknown_targets_and_for_viewers() {
    // No worker: the audit stays pending.
    let sc = Scenario::without_api_crm("rerun_refused", Default::default()).await;
    let config = sc.config(2).await;
    let id = sc.run("FICHE-1001", &config).await;
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only a completed audit can be rerun"),
        "{body}"
    );
    let viewer = sc.api.token_for("viewer").await;
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &viewer,
        &json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = post(
        &sc,
        &format!("/api/audits/{unknown}/steps/1/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/9/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/control-points/3/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no control point 3"),
        "{body}"
    );
    let long = "x".repeat(4001);
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!({"instructions": long}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!({"use_rlm": "yes"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM audit_reruns").await,
        0,
        "nothing stored"
    );
}

/// Records `tests/histories/rerun_completed.json` and `rerun_failed.json` from real runs,
/// with `CALLAUDIT_RECORD_HISTORIES=reruns` (or `all`):
/// `CALLAUDIT_RECORD_HISTORIES=reruns cargo test -p callaudit --test e2e reruns::record -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately"]
async fn record() {
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "reruns" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=reruns to write tests/histories"
    );
    let sc = Scenario::without_api_crm("record_rerun", Default::default()).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    sc.completed(&id).await;
    let path = format!("/api/audits/{id}/steps/1/control-points/1/rerun");
    let (_, ok) = post(&sc, &path, &sc.auditor, &json!({})).await;
    assert_eq!(
        rerun_ended(&sc, &id, ok["id"].as_str().unwrap()).await["status"],
        "completed"
    );
    set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "sim-stt", "openai": "another-key"}}),
    )
    .await;
    let (_, failed) = post(&sc, &path, &sc.auditor, &json!({})).await;
    assert_eq!(
        rerun_ended(&sc, &id, failed["id"].as_str().unwrap()).await["status"],
        "failed"
    );
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), "record"),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    for (file, r) in [
        ("rerun_completed.json", &ok),
        ("rerun_failed.json", &failed),
    ] {
        let wf = r["workflow_id"].as_str().unwrap();
        // The failed run's last event may still be in flight: wait for its close.
        let json = wait_for("the rerun workflow to close", T, || async {
            let h = crate::replay::fetch(&client, wf, None).await;
            let text = String::from_utf8_lossy(&h).to_string();
            (text.contains("WORKFLOW_EXECUTION_COMPLETED")
                || text.contains("WORKFLOW_EXECUTION_FAILED")
                || text.contains("WorkflowExecutionCompleted")
                || text.contains("WorkflowExecutionFailed"))
            .then_some(h)
        })
        .await;
        std::fs::write(crate::replay::history_path(file), json).expect("write history");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_whose_workflow_was_terminated_or_never_started_is_reconciled_to_failed() {
    let sc = Scenario::without_api_crm("rerun_reconcile", Default::default()).await;
    let config = sc.config(1).await;
    let worker = sc.worker(&[]);
    let id = sc.run("FICHE-1001", &config).await;
    sc.completed(&id).await;
    drop(worker); // nobody runs the rerun's workflow now
    let (status, accepted) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/rerun"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    client
        .get_workflow_handle::<callaudit_workflows::AuditRerunWorkflow>(
            accepted["workflow_id"].as_str().unwrap().to_string(),
        )
        .terminate(Default::default())
        .await
        .expect("terminate");
    // A rerun stored by an api that stopped before starting its workflow.
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool)
        .await
        .expect("conn");
    let audit_id = uuid::Uuid::parse_str(&id).unwrap();
    let orphan = callaudit_db::reruns::create(
        &mut conn,
        &callaudit_db::reruns::NewRerun {
            audit_id,
            kind: callaudit_domain::rerun::RerunKind::Step,
            position: 1,
            control_point_index: None,
            use_rlm: false,
            instructions: None,
            requested_by: None,
            requested_by_email: None,
        },
        |n| format!("audit:{id}:rerun-step:1:{n}"),
    )
    .await
    .expect("orphan rerun");
    drop(conn);
    assert_eq!(orphan.n, 2);

    // A replica sweeping every second reconciles both, nobody reading them.
    let mut settings = api_settings(
        &sc.db.url,
        temporal_settings(&temporal_address(), &sc.queue),
        None,
        3,
    );
    settings.reconcile_every = Duration::from_secs(1);
    let _sweeper = spawn_api_from(settings).await;
    let terminated = rerun_ended(&sc, &id, accepted["id"].as_str().unwrap()).await;
    assert_eq!(terminated["status"], "failed", "{terminated}");
    assert!(
        terminated["error"]
            .as_str()
            .unwrap()
            .contains("was terminated"),
        "{terminated}"
    );
    let never = rerun_ended(&sc, &id, &orphan.id.to_string()).await;
    assert_eq!(never["status"], "failed", "{never}");
    assert!(
        never["error"].as_str().unwrap().contains("never started"),
        "{never}"
    );

    // The audit's stream is settled again: it replays and ends.
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/audits/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    let kinds: Vec<String> = stream
        .rest(T)
        .await
        .into_iter()
        .filter_map(|e| e.event)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "audit.rerun.failed").count(),
        2,
        "{kinds:?}"
    );
    let after = sc.audit(&id).await;
    assert_eq!(after["score"].as_f64(), Some(100.0), "nothing applied");
}
