//! Automation schedules end to end: api → `automation_schedules` → Temporal Schedules
//! `automation:{id}` on the real dev server; updates, pause/resume, deletion and run-now
//! mirrored; validation on write (cron, time zone, configuration, SSRF guard); the
//! reconciler repairing drift made behind the api's back.

use crate::support::*;
use callaudit_api::automation::mirror;
use serde_json::{Value, json};
use std::time::Duration;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleDescription, ScheduleDescriptionAction,
    ScheduleError, ScheduleSpec,
};
use temporalio_client::tonic::Code;

const T: Duration = Duration::from_secs(30);

async fn describe(client: &temporalio_client::Client, id: &str) -> Option<ScheduleDescription> {
    match client
        .get_schedule_handle(format!("automation:{id}"))
        .describe(Default::default())
        .await
    {
        Ok(d) => Some(d),
        Err(ScheduleError::Rpc(s)) if s.code() == Code::NotFound => None,
        Err(e) => panic!("describe automation:{id}: {e}"),
    }
}

fn body(config_id: &Value, cron: &str, enabled: bool) -> Value {
    json!({
        "name": "Nightly MDP",
        "cron": cron,
        "timezone": "Europe/Paris",
        "enabled": enabled,
        "auditConfigId": config_id,
        "ficheSelection": {"daysBack": 2, "groupes": ["MDP", " MDP "], "onlyUnaudited": true,
                           "maxRecordingsPerFiche": 3, "useRlm": true},
        "controls": {"continueOnError": true, "retryFailed": true, "maxRetries": 2},
        "notifications": {"emails": ["ops@example.test"]}
    })
}

fn start_action(d: &ScheduleDescription) -> (String, String, String) {
    match d.action() {
        ScheduleDescriptionAction::StartWorkflow(a) => (
            a.workflow_type().to_string(),
            a.task_queue().to_string(),
            a.workflow_id().to_string(),
        ),
        other => panic!("unexpected action {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_is_mirrored_as_a_temporal_schedule() {
    let db = test_db("auto_mirror").await;
    let queue = task_queue("auto_mirror");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let config = api.sample_config().await;
    let manager = api.token_for("manager").await;
    let auditor = api.token_for("auditor").await;
    let viewer = api.token_for("viewer").await;
    let client = api.state.temporal.client().await.expect("temporal");

    // Only automation:write creates.
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&auditor),
            &body(&config["id"], "0 6 * * *", true),
        )
        .await;
    assert_eq!(status, 403);

    let (status, created) = api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&manager),
            &body(&config["id"], "0 6 * * *", true),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["temporalScheduleId"], format!("automation:{id}"));
    assert_eq!(created["enabled"], true);
    // Groupes trimmed and de-duplicated; controls and selection in the seed's names.
    assert_eq!(created["ficheSelection"]["groupes"], json!(["MDP"]));
    assert_eq!(created["ficheSelection"]["maxRecordingsPerFiche"], 3);
    assert_eq!(created["controls"]["maxRetries"], 2);

    let d = describe(&client, &id)
        .await
        .expect("the Temporal Schedule exists");
    assert_eq!(
        start_action(&d),
        (
            "AutomationRunWorkflow".to_string(),
            queue.clone(),
            format!("automation:{id}")
        )
    );
    assert!(!d.paused());
    let schedule = d.raw().schedule.as_ref().unwrap();
    let spec = schedule.spec.as_ref().unwrap();
    assert_eq!(spec.timezone_name, "Europe/Paris");
    let policies = schedule.policies.as_ref().unwrap();
    assert_eq!(policies.overlap_policy, 1, "overlap: skip");
    assert_eq!(policies.catchup_window.as_ref().unwrap().seconds, 600);

    // Viewers read.
    let (status, got) = api
        .get(&format!("/api/automation/schedules/{id}"), Some(&viewer))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["cron"], "0 6 * * *");
    let (status, page) = api.get("/api/automation/schedules", Some(&viewer)).await;
    assert_eq!((status, page["total"].as_i64()), (200, Some(1)));

    // Disabled: paused, with the new cron.
    let (status, updated) = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/automation/schedules/{id}"),
            Some(&manager),
            &body(&config["id"], "30 7 * * 1-5", false),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    let d = describe(&client, &id).await.unwrap();
    assert!(d.paused(), "disabled → paused");
    let row = callaudit_db::automation::get(
        &mut callaudit_db::pool::get(&api.state.pool).await.unwrap(),
        id.parse().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(d.note(), Some(mirror::note_of(&row).as_str()));
    // Temporal runs the new cron: its next fires are at 07:30 Paris time on weekdays.
    let next = d.future_action_times();
    assert!(!next.is_empty());
    for t in next {
        let t: chrono::DateTime<chrono::Utc> = t.into();
        let minute = t.format("%M").to_string();
        assert_eq!(minute, "30", "{t}");
        let hour: u32 = t.format("%H").to_string().parse().unwrap();
        assert!(
            hour == 6 || hour == 5,
            "07:30 Paris is 06:30 UTC in winter: {t}"
        );
    }

    // Enabled again: resumed.
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/automation/schedules/{id}"),
            Some(&manager),
            &body(&config["id"], "30 7 * * 1-5", true),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!describe(&client, &id).await.unwrap().paused());

    // Run now: Temporal starts a run whose id is the schedule's prefix plus the time.
    let (status, triggered) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{triggered}");
    let run = wait_for("the triggered run", T, || {
        let client = client.clone();
        let id = id.clone();
        async move {
            let d = describe(&client, &id).await?;
            (!d.recent_actions().is_empty()).then_some(d)
        }
    })
    .await;
    assert_eq!(run.action_count(), 1);
    let started = run.raw().info.as_ref().unwrap().recent_actions[0]
        .start_workflow_result
        .as_ref()
        .unwrap()
        .workflow_id
        .clone();
    assert!(
        started.starts_with(&format!("automation:{id}-")),
        "{started}"
    );
    // Run now again while that run is going (no worker polls this queue: it goes on
    // until it is ended here): the trigger waits for it instead of being dropped, and
    // starts its own run once the first has ended.
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let terminate = |wf: String| {
        let client = client.clone();
        async move {
            client
                .get_workflow_handle::<temporalio_common::UntypedWorkflow>(wf)
                .terminate(Default::default())
                .await
        }
    };
    // The trigger is a signal to the Temporal Schedule: processed, it is buffered.
    wait_for("the second trigger buffered", T, || {
        let (client, id) = (client.clone(), id.clone());
        async move {
            let d = describe(&client, &id).await?;
            (d.raw().info.as_ref()?.buffer_size == 1).then_some(())
        }
    })
    .await;
    terminate(started.clone())
        .await
        .expect("the first run ended");
    let second = wait_for("the waiting trigger's run", T, || {
        let client = client.clone();
        let (id, first) = (id.clone(), started.clone());
        async move {
            let d = describe(&client, &id).await?;
            d.raw()
                .info
                .as_ref()?
                .recent_actions
                .iter()
                .filter_map(|a| a.start_workflow_result.as_ref())
                .map(|r| r.workflow_id.clone())
                .find(|wf| *wf != first)
        }
    })
    .await;
    assert!(second.starts_with(&format!("automation:{id}-")), "{second}");
    terminate(second.clone())
        .await
        .expect("the second run ended");

    // A run recorded as still going (as a worker records it) refuses another, naming it.
    let mut conn = callaudit_db::pool::get(&api.state.pool).await.unwrap();
    let going = callaudit_db::automation::start_run(
        &mut conn,
        id.parse().unwrap(),
        &format!("{second}-seeded"),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (status, refused) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&going.id.to_string()) && message.contains("still going"),
        "{refused}"
    );
    let d = describe(&client, &id).await.unwrap();
    assert_eq!(
        d.raw().info.as_ref().unwrap().recent_actions.len(),
        2,
        "no third run was started"
    );
    callaudit_db::automation::fail_run(&mut conn, going.id, "ended by the test")
        .await
        .unwrap();
    drop(conn);

    // Deleted with it.
    let resp = api
        .http
        .delete(format!("{}/api/automation/schedules/{id}", api.base))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(
        describe(&client, &id).await.is_none(),
        "the Temporal Schedule is gone"
    );
    let (status, _) = api
        .get(&format!("/api/automation/schedules/{id}"), Some(&viewer))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_schedules_are_refused_with_the_reason_and_nothing_is_kept() {
    let db = test_db("auto_refused").await;
    let queue = task_queue("auto_refused");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let config = api.sample_config().await;
    let manager = api.token_for("manager").await;
    let post = |b: Value| {
        let api = &api;
        let manager = manager.clone();
        async move {
            api.send(
                reqwest::Method::POST,
                "/api/automation/schedules",
                Some(&manager),
                &b,
            )
            .await
        }
    };
    let with = |patch: Value| {
        let mut b = body(&config["id"], "0 6 * * *", true);
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (with(json!({"cron": "61 * * * *"})), 400, "Temporal refuses"),
        (with(json!({"cron": "not a cron"})), 400, "Temporal refuses"),
        (
            with(json!({"timezone": "Mars/Olympus_Mons"})),
            400,
            "Temporal refuses",
        ),
        (with(json!({"cron": "  "})), 400, "must not be blank"),
        (
            with(json!({"ficheSelection": {"daysBack": 0}})),
            400,
            "daysBack",
        ),
        (
            with(json!({"controls": {"maxRetries": 11}})),
            400,
            "maxRetries",
        ),
        (
            with(json!({"auditConfigId": uuid::Uuid::new_v4()})),
            422,
            "unknown audit configuration",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "http://hooks.example.com/x"}})),
            422,
            "https",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "https://user:pw@example.com/x"}})),
            422,
            "credentials",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "https://127.0.0.1/x"}})),
            422,
            "127.0.0.1, a non-public address",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "https://10.1.2.3/x"}})),
            422,
            "10.1.2.3, a non-public address",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "https://169.254.169.254/latest"}})),
            422,
            "169.254.169.254, a non-public address",
        ),
        (
            with(json!({"notifications": {"webhookUrl": "https://localhost:8443/x"}})),
            422,
            "non-public address",
        ),
    ];
    for (b, want, reason) in cases {
        let (status, answer) = post(b.clone()).await;
        assert_eq!(status, want, "{b} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{b} → {message}");
    }
    // Nothing kept: no row (so no Temporal Schedule either, see the next test).
    let (_, page) = api.get("/api/automation/schedules", Some(&manager)).await;
    assert_eq!(page["total"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconciler_repairs_drift() {
    let db = test_db("auto_drift").await;
    let queue = task_queue("auto_drift");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let config = api.sample_config().await;
    let manager = api.token_for("manager").await;
    let client = api.state.temporal.client().await.expect("temporal");
    let mut ids = vec![];
    for _ in 0..3 {
        let (status, created) = api
            .send(
                reqwest::Method::POST,
                "/api/automation/schedules",
                Some(&manager),
                &body(&config["id"], "0 6 * * *", true),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // Behind the api's back: one schedule deleted, one paused, one left alone, and an
    // orphan on this task queue with no row.
    client
        .get_schedule_handle(format!("automation:{}", ids[0]))
        .delete(Default::default())
        .await
        .unwrap();
    client
        .get_schedule_handle(format!("automation:{}", ids[1]))
        .pause(Some("by hand".to_string()), Default::default())
        .await
        .unwrap();
    let orphan = uuid::Uuid::new_v4().to_string();
    client
        .create_schedule(
            format!("automation:{orphan}"),
            CreateScheduleOptions::builder()
                .action(ScheduleAction::StartWorkflow {
                    workflow_type: "AutomationRunWorkflow".into(),
                    task_queue: queue.clone(),
                    workflow_id: format!("automation:{orphan}"),
                    input: None,
                })
                .spec(
                    ScheduleSpec::builder()
                        .cron_strings(vec!["0 6 * * *".to_string()])
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();

    let mut conn = callaudit_db::pool::get(&api.state.pool).await.unwrap();
    let first = mirror::reconcile(&mut conn, &client, &queue).await.unwrap();
    assert_eq!(
        (first.created, first.repaired, first.failed),
        (1, 1, 0),
        "{first:?}"
    );
    for id in &ids {
        let d = describe(&client, id)
            .await
            .expect("every row has its schedule");
        assert!(!d.paused(), "{id} runs");
    }
    // The orphan goes once the list of schedules shows it (Temporal's visibility lags
    // a little).
    let deleted = if first.deleted > 0 {
        first.deleted
    } else {
        wait_for("the orphan deleted", T, || {
            let (client, queue, pool) = (client.clone(), queue.clone(), api.state.pool.clone());
            async move {
                let mut conn = callaudit_db::pool::get(&pool).await.unwrap();
                let report = mirror::reconcile(&mut conn, &client, &queue).await.unwrap();
                (report.deleted > 0).then_some(report.deleted)
            }
        })
        .await
    };
    assert!(
        describe(&client, &orphan).await.is_none(),
        "the orphan is gone"
    );
    assert_eq!(deleted, 1);
    // In line now: a second pass changes nothing.
    let again = mirror::reconcile(&mut conn, &client, &queue).await.unwrap();
    assert_eq!(again, mirror::ReconcileReport::default());
    for id in &ids {
        mirror::remove(&client, id).await.unwrap();
    }
}

/// Days from 2026-11-02 (the simulator's first built-in sale day) to yesterday in
/// Europe/Paris (UTC+1 in winter), so a run's window holds every built-in sale but
/// FICHE-1011 (2026-10-15).
pub(crate) fn days_back_to_first_sale() -> i64 {
    let today_paris = (chrono::Utc::now() + chrono::Duration::hours(1)).date_naive();
    (today_paris - chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()).num_days()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_selects_the_matching_fiches_ignores_the_over_limit_ones_and_audits_the_rest() {
    let sc =
        crate::audit_pipeline::Scenario::new("auto_run", callaudit_sim::SimConfig::default()).await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    let days_back = days_back_to_first_sale();
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&sc.manager),
            &json!({
                "name": "MDP, one recording at most",
                "cron": "0 6 * * *",
                "enabled": false,
                "auditConfigId": config,
                "ficheSelection": {"daysBack": days_back, "groupes": ["MDP"],
                                   "maxRecordingsPerFiche": 1},
                "controls": {"continueOnError": true}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&sc.manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = sc.api.state.pool.clone();
    let run = wait_for("the run ended", Duration::from_secs(240), || {
        let pool = pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
            let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(id), 10, 0)
                .await
                .ok()?;
            runs.into_iter().find(|r| r.status != "running")
        }
    })
    .await;
    // The simulator's MDP sales of the window: FICHE-1002 (1 recording), FICHE-1004 (2),
    // FICHE-1009 (1), FICHE-1006 (3), FICHE-1008 (1); the NCA ones are left out by
    // groupes. Over the limit of one recording: FICHE-1004 and FICHE-1006.
    assert_eq!(
        run.status, "completed",
        "{:?} {}",
        run.error, run.result_summary
    );
    let s = &run.result_summary;
    assert_eq!(s["selected"], 3, "{s}");
    assert_eq!(s["audited"], 3, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["transcribed"], 3, "{s}");
    assert_eq!(s["fetch"]["days"], days_back, "{s}");
    assert_eq!(s["fetch"]["daysFailed"], 0, "{s}");
    assert_eq!(s["fetch"]["found"], 5, "{s}");
    assert_eq!(
        run.ignored_fiches,
        json!([
            {"fiche_id": "FICHE-1004", "reason": "2 recordings, above maxRecordingsPerFiche 1"},
            {"fiche_id": "FICHE-1006", "reason": "3 recordings, above maxRecordingsPerFiche 1"},
        ])
    );
    assert_eq!(s["ignored"], run.ignored_fiches);
    assert!(
        run.workflow_id.starts_with(&format!("automation:{id}-")),
        "{}",
        run.workflow_id
    );
    // The audits are the batch's (same id as the run), one per selected fiche, completed.
    let mut conn = callaudit_db::pool::get(&pool).await.unwrap();
    let items = callaudit_db::batches::items(&mut conn, run.id, 10, 0)
        .await
        .unwrap();
    let fiches: Vec<&str> = items.iter().map(|i| i.fiche_id.as_str()).collect();
    assert_eq!(fiches, ["FICHE-1002", "FICHE-1009", "FICHE-1008"]);
    // Through the api: the run in its schedule's list, the run itself, and its stream
    // (replayed from the start: started, then completed; then it closes).
    let viewer = sc.api.token_for("viewer").await;
    let (status, page) = sc
        .api
        .get(
            &format!("/api/automation/runs?schedule_id={id}"),
            Some(&viewer),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], run.id.to_string());
    let (status, got) = sc
        .api
        .get(&format!("/api/automation/runs/{}", run.id), Some(&viewer))
        .await;
    assert_eq!((status, got["status"].as_str()), (200, Some("completed")));
    assert_eq!(got["resultSummary"]["audited"], 3);
    let (status, _) = sc
        .api
        .get(
            &format!("/api/automation/runs/{}", uuid::Uuid::new_v4()),
            Some(&viewer),
        )
        .await;
    assert_eq!(status, 404);
    let mut sse = SseClient::open(
        &sc.api,
        &format!("/api/automation/runs/{}/events", run.id),
        &viewer,
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    let events = sse.rest(Duration::from_secs(10)).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(kinds, ["automation/started", "automation/completed"]);
    let done: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(done["payload"]["summary"]["selected"], 3, "{done}");
    // Search attributes set by the run on itself.
    let client = sc.api.state.temporal.client().await.unwrap();
    let described = client
        .get_workflow_handle::<temporalio_common::UntypedWorkflow>(run.workflow_id.clone())
        .describe(Default::default())
        .await
        .unwrap();
    let attrs = described
        .raw_description
        .workflow_execution_info
        .as_ref()
        .unwrap()
        .search_attributes
        .as_ref()
        .unwrap();
    let keyword = |k: &str| {
        attrs
            .indexed_fields
            .get(k)
            .map(|p| String::from_utf8_lossy(&p.data).to_string())
    };
    assert_eq!(keyword("ScheduleId"), Some(format!("\"{id}\"")));
    assert_eq!(keyword("RunKind"), Some("\"automation\"".to_string()));
}

/// Writes `tests/histories/automation_run.json` (replayed by `tests/replay.rs`):
/// `CALLAUDIT_RECORD_HISTORIES=automation cargo test -p callaudit --test e2e
/// automation::record -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes tests/histories; run on purpose"]
async fn record() {
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "automation" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=automation to write tests/histories"
    );
    let sc =
        crate::audit_pipeline::Scenario::new("record_auto", callaudit_sim::SimConfig::default())
            .await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&sc.manager),
            &json!({
                "name": "record", "cron": "0 6 * * *", "enabled": false,
                "auditConfigId": config,
                "ficheSelection": {"daysBack": days_back_to_first_sale(), "groupes": ["MDP"], "limit": 1}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&sc.manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = sc.api.state.pool.clone();
    let run = wait_for("the run ended", Duration::from_secs(240), || {
        let pool = pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
            let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(id), 10, 0)
                .await
                .ok()?;
            runs.into_iter().find(|r| r.status != "running")
        }
    })
    .await;
    assert_eq!(run.status, "completed", "{}", run.result_summary);
    let client = sc.api.state.temporal.client().await.unwrap();
    // Closed, not merely past `automation.finish_run` (its last notifications follow);
    // the history's text alone cannot tell: a child's completion names
    // "WorkflowExecutionCompleted" too.
    wait_for(
        "the run's workflow to close",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            let wf = run.workflow_id.clone();
            async move {
                let d = client
                    .get_workflow_handle::<temporalio_common::UntypedWorkflow>(wf)
                    .describe(Default::default())
                    .await
                    .ok()?;
                (d.status() == temporalio_client::WorkflowExecutionStatus::Completed).then_some(())
            }
        },
    )
    .await;
    let json = crate::replay::fetch(&client, &run.workflow_id, None).await;
    std::fs::write(crate::replay::history_path("automation_run.json"), json)
        .expect("write history");
}

/// Creates a schedule for `sc` (MDP, at most one recording: FICHE-1002, 1009, 1008),
/// runs it now and waits for the run's end.
async fn run_mdp_schedule(
    sc: &crate::audit_pipeline::Scenario,
    config: &Value,
    continue_on_error: bool,
) -> callaudit_db::automation::RunRow {
    run_mdp_schedule_with(sc, config, json!({"continueOnError": continue_on_error})).await
}

/// Like [`run_mdp_schedule`], with `controls`.
pub(crate) async fn run_mdp_schedule_with(
    sc: &crate::audit_pipeline::Scenario,
    config: &Value,
    controls: Value,
) -> callaudit_db::automation::RunRow {
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&sc.manager),
            &json!({
                "name": format!("controls {controls}"),
                "cron": "0 6 * * *",
                "enabled": false,
                "auditConfigId": config,
                "ficheSelection": {"daysBack": days_back_to_first_sale(), "groupes": ["MDP"],
                                   "maxRecordingsPerFiche": 1},
                "controls": controls
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&sc.manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = sc.api.state.pool.clone();
    wait_for("the run ended", Duration::from_secs(240), || {
        let pool = pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
            let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(id), 10, 0)
                .await
                .ok()?;
            runs.into_iter().find(|r| r.status != "running")
        }
    })
    .await
}

/// The kinds of a run's events, replayed to its end.
async fn run_event_kinds(sc: &crate::audit_pipeline::Scenario, run_id: uuid::Uuid) -> Vec<String> {
    let mut sse = SseClient::open(
        &sc.api,
        &format!("/api/automation/runs/{run_id}/events"),
        &sc.manager,
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    sse.rest(Duration::from_secs(10))
        .await
        .into_iter()
        .filter_map(|e| e.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_audits_make_a_run_partial_with_continue_on_error_and_failed_without() {
    let sc = crate::audit_pipeline::Scenario::new("auto_fail", callaudit_sim::SimConfig::default())
        .await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    // The LLM now refuses the worker's key: every audit fails (permanently, at once).
    crate::reruns::set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "sim-stt", "openai": "another-key"}}),
    )
    .await;
    let on = run_mdp_schedule(&sc, &config, true).await;
    assert_eq!(on.status, "partial", "{:?} {}", on.error, on.result_summary);
    assert_eq!(on.error, None);
    let s = &on.result_summary;
    assert_eq!(
        (
            s["selected"].as_i64(),
            s["audited"].as_i64(),
            s["failed"].as_i64()
        ),
        (Some(3), Some(0), Some(3)),
        "{s}"
    );
    assert_eq!(
        run_event_kinds(&sc, on.id).await,
        ["automation/started", "automation/completed"]
    );

    let off = run_mdp_schedule(&sc, &config, false).await;
    assert_eq!(off.status, "failed", "{}", off.result_summary);
    assert_eq!(
        off.error.as_deref(),
        Some("3 audit(s) failed and continueOnError is off")
    );
    assert_eq!(off.result_summary["failed"], 3);
    assert_eq!(
        run_event_kinds(&sc, off.id).await,
        ["automation/started", "automation/failed"]
    );
}

/// HMAC-SHA256, written here from RFC 2104 (independent of the worker's).
pub(crate) fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let inner = Sha256::digest(&ipad);
    let opad: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner.iter().copied())
        .collect();
    hex::encode(Sha256::digest(&opad))
}

/// What the local receiver got: (timestamp header, signature header, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_recorded_and_refused_urls_get_nothing() {
    use poem::EndpointExt;
    // The receiver, on an allowlisted http origin of 127.0.0.1.
    let got: Received = Default::default();
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
                    store.lock().unwrap().push((ts, sig, body));
                    "ok"
                }
            }),
        )
        .data(());
    let origin = crate::audit_pipeline::serve_local(app);
    // A second local port nobody allowlisted: it must never see a connection.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    refused.set_nonblocking(true).unwrap();
    let refused_port = refused.local_addr().unwrap().port();

    let sc = crate::audit_pipeline::Scenario::with_webhook_origin("auto_hooks", &origin).await;
    let manager = sc.manager.clone();
    let config = sc.api.sample_config().await;
    let _w = sc.worker(&[("WEBHOOK_ALLOWED_ORIGINS", origin.as_str())]);
    let api = &sc.api;

    let schedule = |url: String| {
        json!({
            "name": "hooked", "cron": "0 6 * * *", "enabled": false,
            "auditConfigId": config["id"],
            "ficheSelection": {"daysBack": 1, "groupes": ["NOBODY"]},
            "notifications": {"webhookUrl": url}
        })
    };
    for url in [
        format!("https://127.0.0.1:{refused_port}/hook"),
        format!("http://127.0.0.1:{refused_port}/hook"),
        format!("https://localhost:{refused_port}/hook"),
    ] {
        let (status, answer) = api
            .send(
                reqwest::Method::POST,
                "/api/automation/schedules",
                Some(&manager),
                &schedule(url.clone()),
            )
            .await;
        assert_eq!(status, 422, "{url}: {answer}");
    }
    let (status, created) = api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&manager),
            &schedule(format!("{origin}/hook")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhookSecret"]
        .as_str()
        .expect("the secret, shown once")
        .to_string();
    assert_eq!(secret.len(), 64);
    let id = created["id"].as_str().unwrap().to_string();
    let (_, again) = api
        .get(&format!("/api/automation/schedules/{id}"), Some(&manager))
        .await;
    assert!(
        again.get("webhookSecret").is_none(),
        "never shown again: {again}"
    );
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    // Two events (started, completed), each delivered once and correctly signed.
    let deliveries = wait_for("two deliveries", Duration::from_secs(60), || {
        let got = got.clone();
        async move {
            let g = got.lock().unwrap();
            (g.len() >= 2).then(|| g.clone())
        }
    })
    .await;
    let mut events = vec![];
    for (ts, sig, body) in &deliveries {
        let mut msg = format!("{ts}.").into_bytes();
        msg.extend_from_slice(body);
        assert_eq!(
            *sig,
            format!("sha256={}", hmac_hex(secret.as_bytes(), &msg))
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["schedule_id"], id);
        events.push(v["event"].as_str().unwrap().to_string());
    }
    assert_eq!(events, ["automation/started", "automation/completed"]);
    let run_id = serde_json::from_slice::<Value>(&deliveries[0].2).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Recorded on the run, with their attempts.
    let run = wait_for("both deliveries recorded", Duration::from_secs(30), || {
        let manager = manager.clone();
        let run_id = run_id.clone();
        async move {
            let (_, run) = api
                .get(&format!("/api/automation/runs/{run_id}"), Some(&manager))
                .await;
            (run["webhookDeliveries"].as_array().map(Vec::len) == Some(2)).then_some(run)
        }
    })
    .await;
    for d in run["webhookDeliveries"].as_array().unwrap() {
        assert_eq!(
            (
                d["status"].as_str(),
                d["attempts"].as_i64(),
                d["responseStatus"].as_i64()
            ),
            (Some("delivered"), Some(1), Some(200)),
            "{d}"
        );
    }
    assert_eq!(run["status"], "completed");
    // The refused port never saw a connection.
    assert!(matches!(refused.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_failed_dispatches_the_failed_audits_again_max_retries_times() {
    use diesel::{ExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    let sc =
        crate::audit_pipeline::Scenario::new("auto_retry", callaudit_sim::SimConfig::default())
            .await;
    let _w = sc.worker(&[]);
    let config = sc.config(1).await;
    crate::reruns::set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "sim-stt", "openai": "another-key"}}),
    )
    .await;
    let run = run_mdp_schedule_with(
        &sc,
        &config,
        json!({"continueOnError": true, "retryFailed": true, "maxRetries": 2}),
    )
    .await;
    assert_eq!(run.status, "partial", "{}", run.result_summary);
    let s = &run.result_summary;
    assert_eq!(
        (
            s["selected"].as_i64(),
            s["failed"].as_i64(),
            s["retries"].as_i64()
        ),
        (Some(3), Some(3), Some(2)),
        "{s}"
    );
    // Each selected fiche was audited three times: once, then twice again.
    let config_id: uuid::Uuid = config.as_str().unwrap().parse().unwrap();
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool).await.unwrap();
    for fiche in ["FICHE-1002", "FICHE-1009", "FICHE-1008"] {
        use callaudit_db::schema::audits::dsl as a;
        let n: i64 = a::audits
            .filter(a::fiche_id.eq(fiche))
            .filter(a::audit_config_id.eq(config_id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 3, "{fiche}");
    }
}
