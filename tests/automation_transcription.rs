//! The automation run's transcription phase end to end (`skipIfTranscribed`, a failed
//! transcription under `continueOnError` on and off, `retryFailed`), counted at the
//! simulated speech-to-text; and the reconcile sweep ending a run whose workflow was
//! terminated or never started.
//!
//! The runs select the simulator's MDP fiches with at most one recording: FICHE-1002,
//! FICHE-1009 and FICHE-1008, one recording each (REC-1002-1, REC-1009-1, REC-1008-1).

use crate::automation::{days_back_to_first_sale, run_mdp_schedule_with};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const RECORDINGS: [&str; 3] = ["REC-1002-1", "REC-1009-1", "REC-1008-1"];

/// Speech-to-text requests the simulator received per recording of [`RECORDINGS`].
async fn stt_calls(sc: &crate::audit_pipeline::Scenario) -> Vec<u64> {
    let stats = sc.sim_stats().await;
    RECORDINGS
        .iter()
        .map(|r| stats["stt_requests_by_recording"][*r].as_u64().unwrap_or(0))
        .collect()
}

/// Speech-to-text requests the simulator received in all (those it refused for their key
/// included: it refuses them before reading which recording they name).
async fn stt_total(sc: &crate::audit_pipeline::Scenario) -> u64 {
    sc.sim_stats().await["stt_requests"].as_u64().unwrap()
}

/// FICHE-1002 transcribed before any run, by an audit of it. (Not by `POST
/// /api/fiches/{id}/transcribe`: workflow ids are the namespace's, so that request is
/// answered `already_running` while another test's `transcribe:REC-1002-1` runs, and
/// nothing would be stored here; an audit falls back to the idempotent activity.)
async fn pre_transcribe_fiche_1002(sc: &crate::audit_pipeline::Scenario, config: &Value) {
    let audit = sc.run("FICHE-1002", config).await;
    sc.completed(&audit).await;
    let (_, fiche) = sc
        .api
        .get("/api/fiches/FICHE-1002", Some(&sc.auditor))
        .await;
    assert_eq!(fiche["recordings"][0]["transcribed"], true, "{fiche}");
}

/// (selected, transcribed, transcriptionSkipped, transcriptionFailed, audited, failed).
fn counts(s: &Value) -> [Option<i64>; 6] {
    [
        "selected",
        "transcribed",
        "transcriptionSkipped",
        "transcriptionFailed",
        "audited",
        "failed",
    ]
    .map(|k| s[k].as_i64())
}

/// (recordingsSent, recordingsReused, retries) of the phase.
fn recordings(s: &Value) -> [Option<i64>; 3] {
    ["recordingsSent", "recordingsReused", "retries"].map(|k| s["transcription"][k].as_i64())
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_if_transcribed_skips_a_transcribed_fiche_and_without_it_the_stored_transcript_is_reused()
 {
    let sc = crate::audit_pipeline::Scenario::new("auto_tx_skip", Default::default()).await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    pre_transcribe_fiche_1002(&sc, &config).await;
    assert_eq!(stt_calls(&sc).await, [1, 0, 0]);

    // Without skipIfTranscribed: FICHE-1002 goes through the phase too, its transcript
    // reused (no second speech-to-text call); the two others are sent once each.
    let off = run_mdp_schedule_with(&sc, &config, json!({"skipIfTranscribed": false})).await;
    assert_eq!(
        off.status, "completed",
        "{:?} {}",
        off.error, off.result_summary
    );
    let s = &off.result_summary;
    assert_eq!(
        counts(s),
        [Some(3), Some(3), Some(0), Some(0), Some(3), Some(0)],
        "{s}"
    );
    assert_eq!(recordings(s), [Some(2), Some(1), Some(0)], "{s}");
    assert!(s["durations"]["transcriptionMs"].as_i64().is_some(), "{s}");
    assert_eq!(stt_calls(&sc).await, [1, 1, 1]);

    // With it: every fiche is transcribed now, so all three are skipped; nothing is sent
    // and the audits read the stored transcripts.
    let on = run_mdp_schedule_with(&sc, &config, json!({"skipIfTranscribed": true})).await;
    assert_eq!(
        on.status, "completed",
        "{:?} {}",
        on.error, on.result_summary
    );
    let s = &on.result_summary;
    assert_eq!(
        counts(s),
        [Some(3), Some(0), Some(3), Some(0), Some(3), Some(0)],
        "{s}"
    );
    assert_eq!(recordings(s), [Some(0), Some(0), Some(0)], "{s}");
    assert_eq!(stt_calls(&sc).await, [1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_transcription_fails_its_fiche_continue_on_error_decides_and_retry_failed_sends_it_again()
 {
    let sc = crate::audit_pipeline::Scenario::new("auto_tx_fail", Default::default()).await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    pre_transcribe_fiche_1002(&sc, &config).await;
    assert_eq!(stt_total(&sc).await, 1);
    // Speech-to-text now refuses the worker's key (401: permanent, one attempt per
    // dispatch); the CRM and the LLM still accept theirs.
    crate::reruns::set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "another-key", "openai": "sim-llm"}}),
    )
    .await;
    let skip = json!(true);

    // continueOnError: FICHE-1002 (skipped, transcribed before) is audited; the two others
    // failed their transcription and are not audited. The run is partial.
    let on = run_mdp_schedule_with(
        &sc,
        &config,
        json!({"skipIfTranscribed": skip, "continueOnError": true}),
    )
    .await;
    assert_eq!(on.status, "partial", "{:?} {}", on.error, on.result_summary);
    let s = &on.result_summary;
    assert_eq!(
        counts(s),
        [Some(3), Some(0), Some(1), Some(2), Some(1), Some(2)],
        "{s}"
    );
    let failed: Vec<&str> = s["transcription"]["failedFiches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fiche_id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["FICHE-1009", "FICHE-1008"], "{s}");
    let error = s["transcription"]["failedFiches"][0]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("sim-stt"), "the key is not echoed: {error}");
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool).await.unwrap();
    let items = callaudit_db::batches::items(&mut conn, on.id, 10, 0)
        .await
        .unwrap();
    let audited: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.fiche_id.as_str(), i.status.as_str()))
        .collect();
    assert_eq!(audited, [("FICHE-1002", "completed")]);
    // One refused request each for REC-1009-1 and REC-1008-1 (after FICHE-1002's one).
    assert_eq!(stt_total(&sc).await, 1 + 2);

    // Without continueOnError: the run fails after the phase, nothing is audited (its
    // batch is dropped), automation/failed.
    let off = run_mdp_schedule_with(
        &sc,
        &config,
        json!({"skipIfTranscribed": skip, "continueOnError": false}),
    )
    .await;
    assert_eq!(off.status, "failed", "{}", off.result_summary);
    assert_eq!(
        off.error.as_deref(),
        Some("2 fiche(s) failed transcription and continueOnError is off")
    );
    let s = &off.result_summary;
    assert_eq!(
        counts(s),
        [Some(3), Some(0), Some(1), Some(2), Some(0), Some(2)],
        "{s}"
    );
    assert_eq!(s["batchId"], Value::Null, "{s}");
    assert!(
        callaudit_db::batches::get(&mut conn, off.id)
            .await
            .unwrap()
            .is_none(),
        "the run's batch was dropped"
    );
    assert_eq!(stt_total(&sc).await, 3 + 2);
    let (_, events) = sc
        .api
        .get(
            &format!("/api/automation/runs/{}", off.id),
            Some(&sc.manager),
        )
        .await;
    assert_eq!(events["status"], "failed", "{events}");

    // retryFailed, maxRetries 2: each failed recording dispatched twice more (3 calls).
    let retried = run_mdp_schedule_with(
        &sc,
        &config,
        json!({"skipIfTranscribed": skip, "continueOnError": true,
               "retryFailed": true, "maxRetries": 2}),
    )
    .await;
    assert_eq!(retried.status, "partial", "{}", retried.result_summary);
    let s = &retried.result_summary;
    assert_eq!(
        counts(s),
        [Some(3), Some(0), Some(1), Some(2), Some(1), Some(2)],
        "{s}"
    );
    assert_eq!(recordings(s), [Some(0), Some(0), Some(2)], "{s}");
    assert_eq!(stt_total(&sc).await, 5 + 2 * 3);

    // Speech-to-text accepts the key again: with skipIfTranscribed the two fiches left
    // are transcribed (one call each), FICHE-1002 skipped, all three audited.
    crate::reruns::set_sim(&sc, json!({})).await;
    let healed = run_mdp_schedule_with(
        &sc,
        &config,
        json!({"skipIfTranscribed": skip, "continueOnError": false}),
    )
    .await;
    assert_eq!(healed.status, "completed", "{}", healed.result_summary);
    assert_eq!(
        counts(&healed.result_summary),
        [Some(3), Some(2), Some(1), Some(0), Some(3), Some(0)],
        "{}",
        healed.result_summary
    );
    assert_eq!(stt_total(&sc).await, 11 + 2);
    // Each recording got its transcript from speech-to-text exactly once.
    assert_eq!(stt_calls(&sc).await, [1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_fails_a_run_whose_workflow_was_terminated_or_never_started() {
    let label = "auto_reconcile";
    let db = test_db(label).await;
    let queue = task_queue(label);
    // A slow CRM keeps the run in its day fetches long enough to terminate it there.
    let (sim, _) = callaudit_sim::spawn(
        "127.0.0.1:0",
        callaudit_sim::SimState::new(callaudit_sim::SimConfig {
            latency_ms: 3000,
            ..Default::default()
        }),
    )
    .await
    .expect("sim");
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        Some(format!("http://{sim}/crm")),
        3,
    );
    settings.reconcile_every = Duration::from_secs(1);
    let api = spawn_api_from(settings).await;
    let _w = crate::audit_pipeline::spawn_worker_with(&db.url, &queue, &sim.to_string(), &[]);
    let manager = api.token_for("manager").await;
    let config = api.sample_config().await["id"].clone();
    let (status, created) = api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&manager),
            &json!({
                "name": "terminated", "cron": "0 6 * * *", "enabled": false,
                "auditConfigId": config,
                "ficheSelection": {"daysBack": days_back_to_first_sale(), "groupes": ["MDP"]}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = api.state.pool.clone();
    let runs = |pool: callaudit_db::pool::Pool| async move {
        let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
        let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(id), 10, 0)
            .await
            .ok()?;
        Some(runs)
    };
    let running = wait_for("the run recorded", Duration::from_secs(60), || {
        let pool = pool.clone();
        async move { runs(pool).await?.into_iter().next() }
    })
    .await;
    assert_eq!(running.status, "running");
    let client = api.state.temporal.client().await.unwrap();
    client
        .get_workflow_handle::<temporalio_common::UntypedWorkflow>(running.workflow_id.clone())
        .terminate(Default::default())
        .await
        .expect("terminate");
    let failed = wait_for("the sweep to fail the run", Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            runs(pool)
                .await?
                .into_iter()
                .find(|r| r.id == running.id && r.status == "failed")
        }
    })
    .await;
    assert_eq!(
        failed.error.as_deref(),
        Some(
            format!(
                "the workflow {} was terminated without recording an outcome (reconciled)",
                running.workflow_id
            )
            .as_str()
        )
    );
    assert!(failed.completed_at.is_some());
    let n = crate::audit_pipeline::count(
        &db.url,
        &format!(
            "SELECT count(*) AS n FROM events WHERE topic = 'automation-run:{}' \
             AND type = 'automation/failed'",
            running.id
        ),
    )
    .await;
    assert_eq!(n, 1);

    // A run row whose workflow Temporal never saw.
    let mut conn = callaudit_db::pool::get(&pool).await.unwrap();
    let ghost = callaudit_db::automation::start_run(
        &mut conn,
        id,
        &format!("automation:{id}-never"),
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    drop(conn);
    let failed = wait_for(
        "the sweep to fail the ghost",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move {
                runs(pool)
                    .await?
                    .into_iter()
                    .find(|r| r.id == ghost.id && r.status == "failed")
            }
        },
    )
    .await;
    assert_eq!(
        failed.error.as_deref(),
        Some(format!("the workflow automation:{id}-never was never started (reconciled)").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_whose_transcription_workflow_already_runs_is_not_dispatched_again() {
    // A fiche of this test's own (FICHE-1002's copy under a fresh id), so no other test
    // shares its `transcribe:{recording}` workflow id (ids are the namespace's).
    let tag = format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut fiche = callaudit_sim::dataset()
        .fiche("FICHE-1002")
        .expect("FICHE-1002")
        .clone();
    fiche.fiche_id = format!("FICHE-{tag}");
    let recording = format!("REC-{tag}-1");
    fiche.recordings[0].recording_id = recording.clone();
    let label = "auto_tx_shared";
    let db = test_db(label).await;
    let queue = task_queue(label);
    let state = callaudit_sim::SimState::with_dataset(
        Default::default(),
        callaudit_sim::Dataset {
            fiches: vec![fiche],
        },
    );
    let (sim, _) = callaudit_sim::spawn("127.0.0.1:0", state.clone())
        .await
        .expect("sim");
    let api = spawn_api_with_crm(
        &db.url,
        temporal_settings(&temporal_address(), &queue),
        Some(format!("http://{sim}/crm")),
    )
    .await;
    let auditor = api.token_for("auditor").await;
    let manager = api.token_for("manager").await;
    let sc = crate::audit_pipeline::Scenario {
        db,
        queue,
        sim,
        api,
        auditor,
        manager,
    };
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    // The recording's TranscriptionWorkflow is running already — started by someone else
    // on a queue no worker polls, so it stays running.
    let client = sc.api.state.temporal.client().await.unwrap();
    let blocker_id = format!("transcribe:{recording}");
    let blocker = client
        .start_workflow(
            callaudit_workflows::TranscriptionWorkflow::run,
            callaudit_domain::workflow_io::TranscribeInput {
                recording_id: recording.clone(),
            },
            temporalio_client::WorkflowStartOptions::new(
                format!("{}-nobody", sc.queue),
                blocker_id.clone(),
            )
            .build(),
        )
        .await
        .expect("start the other transcription");
    let blocker_run = blocker.run_id().map(str::to_string);

    let run = run_mdp_schedule_with(&sc, &config, json!({"skipIfTranscribed": true})).await;
    assert_eq!(
        run.status, "completed",
        "{:?} {}",
        run.error, run.result_summary
    );
    let s = &run.result_summary;
    assert_eq!(
        counts(s),
        [Some(1), Some(1), Some(0), Some(0), Some(1), Some(0)],
        "{s}"
    );
    assert_eq!(recordings(s), [Some(1), Some(0), Some(0)], "{s}");
    // Transcribed once, by the run's activity under the recording's lease; no second
    // TranscriptionWorkflow was started under the id: the other one is the same run, still
    // running.
    let stats = sc.sim_stats().await;
    assert_eq!(stats["stt_requests_by_recording"][&recording], 1, "{stats}");
    let described = client
        .get_workflow_handle::<temporalio_common::UntypedWorkflow>(blocker_id.clone())
        .describe(Default::default())
        .await
        .expect("describe");
    assert_eq!(
        described.status(),
        temporalio_client::WorkflowExecutionStatus::Running
    );
    let info = described
        .raw_description
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.execution.as_ref())
        .map(|e| e.run_id.clone());
    assert_eq!(info, blocker_run);
    client
        .get_workflow_handle::<temporalio_common::UntypedWorkflow>(blocker_id)
        .terminate(Default::default())
        .await
        .expect("terminate");
}

#[test]
fn the_recorded_run_goes_through_the_transcription_phase_and_the_older_one_does_not() {
    let read = |f: &str| std::fs::read_to_string(crate::replay::history_path(f)).expect(f);
    let now = read("automation_run.json");
    for name in [
        "automation.transcription_plan",
        "automation.settle_transcriptions",
        "TranscriptionWorkflow",
    ] {
        assert!(now.contains(name), "automation_run.json lacks {name}");
    }
    let before = read("automation_run_before_transcription_phase.json");
    assert!(!before.contains("automation.transcription_plan"));
    assert!(before.contains("BatchAuditWorkflow"));
}
