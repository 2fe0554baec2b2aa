//! The audit pipeline end to end: api → AuditWorkflow → children → activities → simulators.

use crate::support::*;
use callaudit_domain::analysis::Conformite;
use callaudit_domain::scoring::{StepForSummary, summarize};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A worker process wired to the simulators at `sim`.
fn spawn_worker(db_url: &str, queue: &str, sim: &str) -> ChildGuard {
    let child = Command::new(bin())
        .arg("worker")
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
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    ChildGuard(child)
}

fn four_step_config() -> serde_json::Value {
    let mut config: serde_json::Value =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample");
    let steps = config["steps"].as_array_mut().expect("steps");
    steps.truncate(4);
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_of_a_fiche_with_two_recordings_stores_four_steps_and_their_summary() {
    let db = test_db("audit_e2e").await;
    let queue = task_queue("audit");
    let (sim_addr, _sim) = callaudit_sim::spawn(
        "127.0.0.1:0",
        callaudit_sim::SimState::new(Default::default()),
    )
    .await
    .expect("sim");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let _worker = spawn_worker(&db.url, &queue, &sim_addr.to_string());
    let token = api.token_for("auditor").await;
    let manager = api.token_for("manager").await;

    let (status, config) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&manager),
            &four_step_config(),
        )
        .await;
    assert_eq!(status, 201, "{config}");
    let body = serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"], "useRlm": false});
    let (status, accepted) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &body,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let audit_id = accepted["audit_id"].as_str().expect("id").to_string();
    assert_eq!(accepted["workflow_id"], format!("audit:{audit_id}"));

    let audit = wait_for(
        "the audit to complete",
        Duration::from_secs(120),
        || async {
            let (_, a) = api
                .get(&format!("/api/audits/{audit_id}"), Some(&token))
                .await;
            assert_ne!(a["status"], "failed", "audit failed: {a}");
            (a["status"] == "completed").then_some(a)
        },
    )
    .await;

    let steps = audit["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4);
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
    let stats: serde_json::Value = reqwest::get(format!("http://{sim_addr}/_sim/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["stt_requests"], 2, "{stats}");
    assert_eq!(stats["llm_requests"], 4, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_with_use_rlm_reads_the_transcripts_through_tools_and_keeps_only_verified_evidence()
 {
    let db = test_db("audit_use_rlm").await;
    let queue = task_queue("audit-rlm");
    let (sim_addr, _sim) = callaudit_sim::spawn(
        "127.0.0.1:0",
        callaudit_sim::SimState::new(Default::default()),
    )
    .await
    .expect("sim");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let _worker = spawn_worker(&db.url, &queue, &sim_addr.to_string());
    let token = api.token_for("auditor").await;
    let manager = api.token_for("manager").await;
    let (status, config) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&manager),
            &four_step_config(),
        )
        .await;
    assert_eq!(status, 201, "{config}");

    let body = serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"], "use_rlm": true});
    let (status, accepted) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &body,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let audit_id = accepted["audit_id"].as_str().expect("id").to_string();
    let audit = wait_for(
        "the use_rlm audit to complete",
        Duration::from_secs(120),
        || async {
            let (_, a) = api
                .get(&format!("/api/audits/{audit_id}"), Some(&token))
                .await;
            assert_ne!(a["status"], "failed", "audit failed: {a}");
            (a["status"] == "completed").then_some(a)
        },
    )
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
    let stats: serde_json::Value = reqwest::get(format!("http://{sim_addr}/_sim/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
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
