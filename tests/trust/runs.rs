//! Starting and running audits: CRM retries, idempotent starts, one transcription per
//! recording, worker capacity, search attributes, cancel and reconciliation, frozen
//! configurations, cost.

use super::*;

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
    let config = api.sample_config().await;
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
    let config = api.sample_config().await;
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
async fn two_audits_of_one_fiche_at_once_send_each_recording_to_speech_to_text_once() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors, so the second audit reaches transcription while the first one's
    // speech-to-text calls are still running.
    let sc = Scenario::slow("stt_once", 400).await;
    let config = sc.config(1).await;
    let _a = sc.worker(&[]);
    let _b = sc.worker(&[]);
    let first = sc.run("FICHE-1001", &config).await;
    let second = sc.run("FICHE-1001", &config).await;
    assert_ne!(first, second);
    // Each audit gets its own verdict from the shared transcripts: FICHE-1001's step 1
    // (weight 10, every point found) CONFORME at 10, so 100.0 EXCELLENT, one row each.
    for id in [&first, &second] {
        let audit = sc.completed(id).await;
        assert_eq!(audit["score"].as_f64(), Some(100.0), "{audit}");
        assert_eq!(audit["niveau"], "EXCELLENT", "{audit}");
        assert_eq!(audit["steps_done"], 1, "{audit}");
        assert_eq!(audit["steps"][0]["conforme"], "CONFORME", "{audit}");
        let rows = format!("SELECT count(*) AS n FROM audit_step_results WHERE audit_id = '{id}'");
        assert_eq!(count(&sc.db.url, &rows).await, 1);
    }
    let stats = sc.sim_stats().await;
    assert_eq!(stats["llm_requests"], 2, "one analysis per audit: {stats}");
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
    let sc = Scenario::slow("max_activities", 300).await;
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
    let client = temporal_client(&sc.queue).await;
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
    // its 2 steps carry its id, all three the fiche; FICHE-1004's 2 recordings are
    // transcribed by activities of the audit itself (audit-fewer-round-trips patch), so
    // no transcription run carries the audit.
    wait_for(
        "the runs to be visible",
        std::time::Duration::from_secs(60),
        || async {
            let ours = (
                count(format!("AuditId = '{id}' AND RunKind = 'audit'")).await,
                count(format!("AuditId = '{id}' AND RunKind = 'step'")).await,
                count(format!("AuditId = '{id}' AND FicheId = 'FICHE-1004'")).await,
                count(format!("AuditId = '{id}' AND FicheId != 'FICHE-1004'")).await,
                count(format!("AuditId = '{id}' AND RunKind = 'transcription'")).await,
            );
            (ours == (1, 2, 3, 0, 0)).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_audit_is_recorded_cancelled_its_stream_ends_and_its_workflow_stops() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors: the audit is still running when it is cancelled.
    let sc = Scenario::slow("cancel", 1500).await;
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
    let client = temporal_client(&sc.queue).await;
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
    let config = api.sample_config().await;
    let id = run_audit(&api, &auditor, &config).await;
    temporal_client(&queue)
        .await
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

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_runs_with_its_configuration_as_it_was_when_it_started() {
    use crate::audit_pipeline::Scenario;
    // Slow vendors, so the configuration is edited while the audit runs.
    let sc = Scenario::slow("frozen_config", 800).await;
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
    let config = api.sample_config().await;
    let auditor = api.token_for("auditor").await;
    let id = run_audit(&api, &auditor, &config).await;
    temporal_client(&queue)
        .await
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
