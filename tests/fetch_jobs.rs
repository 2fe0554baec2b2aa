//! Progressive fiche fetch jobs end to end: api → ProgressiveFetchWorkflow → one
//! DayFetchWorkflow per day → activities → the simulated CRM (sales search, details),
//! the job's row, its stream, its retry; and on-demand transcription of a fiche.
//!
//! Expected fiches are counted from the simulator's dataset with a date filter written
//! here (the `date_vente` prefix), and the counts pinned by hand: the built-in fiches
//! FICHE-1001 … FICHE-1010 are sold from 2026-11-02 to 2026-11-06 (two a day) and
//! FICHE-1011 on 2026-10-15, the generated ones (`FICHE-GEN-{i}`) on 2026-11-10, odd `i`
//! in group NCA, even in MDP.

use crate::audit_pipeline::{Scenario, count};
use crate::support::*;
use callaudit_sim::{Dataset, SimConfig, SimState};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

/// A scenario whose simulator serves `data`, with an api that reads the simulated CRM.
async fn scenario(label: &str, data: Dataset, cfg: SimConfig) -> (Scenario, Arc<SimState>) {
    let db = test_db(label).await;
    let queue = task_queue(label);
    let state = SimState::with_dataset(cfg, data);
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
    (
        Scenario {
            db,
            queue,
            sim,
            api,
            auditor,
            manager,
        },
        state,
    )
}

/// The ids of the fiches with calls the simulator sells from `from` to `to` (both
/// included), by the day written at the start of their `date_vente`.
fn sold_between(data: &Dataset, from: &str, to: &str) -> BTreeSet<String> {
    data.fiches
        .iter()
        .filter(|f| !f.recordings.is_empty())
        .filter(|f| {
            let day = &f.date_vente[..10];
            day >= from && day <= to
        })
        .map(|f| f.fiche_id.clone())
        .collect()
}

async fn post(sc: &Scenario, path: &str, token: &str, body: &Value) -> (u16, Value) {
    sc.api
        .send(reqwest::Method::POST, path, Some(token), body)
        .await
}

/// Starts a job; returns the 202 answer.
async fn start_job(sc: &Scenario, body: Value) -> Value {
    let (status, job) = post(sc, "/api/fiches/progressive-fetch", &sc.auditor, &body).await;
    assert_eq!(status, 202, "{job}");
    job
}

async fn job(sc: &Scenario, id: &str) -> Value {
    let (status, job) = sc
        .api
        .get(&format!("/api/fiches/jobs/{id}"), Some(&sc.auditor))
        .await;
    assert_eq!(status, 200, "{job}");
    job
}

/// The job once its current attempt `attempt` has ended and its run has closed (the
/// row is finalised by the run's last activity, just before the run completes).
async fn ended(sc: &Scenario, id: &str, attempt: i64, timeout: Duration) -> Value {
    wait_for("the job to end", timeout, || async {
        let j = job(sc, id).await;
        let over = ["completed", "partial", "failed"].contains(&j["status"].as_str().unwrap());
        let closed = j["workflow_status"] != "running";
        (over && closed && j["attempt"] == attempt).then_some(j)
    })
    .await
}

/// Values of the first column of `sql`'s rows (text).
async fn strings(db_url: &str, sql: &str) -> Vec<String> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(db_url)
        .await
        .expect("connect");
    let rows: Vec<S> = diesel::sql_query(sql).load(&mut conn).await.expect("query");
    rows.into_iter().map(|r| r.s).collect()
}

async fn temporal(sc: &Scenario) -> temporalio_client::Client {
    callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal")
}

/// How many runs match `query` once visibility has caught up with `expected`.
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

/// The sim's searches per day.
fn searched(state: &SimState) -> BTreeMap<String, u64> {
    state.stats().crm_sales_requests_by_date
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_day_range_stores_exactly_the_simulators_fiches_of_those_days() {
    let data = Dataset::with_generated(6);
    let (sc, sim) = scenario("fetch_ten_days", data.clone(), SimConfig::default()).await;
    let _worker = sc.worker(&[]);
    let expected = sold_between(&data, "2026-11-01", "2026-11-10");
    // FICHE-1001 … FICHE-1010 and FICHE-GEN-1 … FICHE-GEN-6.
    assert_eq!(expected.len(), 16);

    let accepted = start_job(&sc, json!({"from": "2026-11-01", "to": "2026-11-10"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(accepted["workflow_id"], format!("fiche-fetch-job:{id}"));
    assert_eq!(accepted["days_total"], 10);
    assert_eq!(
        accepted["links"]["events"],
        format!("/api/fiches/jobs/{id}/events")
    );

    let done = ended(&sc, &id, 1, T).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["workflow_status"], "completed", "{done}");
    assert_eq!(done["repaired"], Value::Null);
    assert_eq!(
        (
            &done["days_done"],
            &done["days_failed"],
            &done["fiches_found"],
            &done["fiches_fetched"],
            &done["fiches_failed"]
        ),
        (&json!(10), &json!(0), &json!(16), &json!(16), &json!(0)),
        "{done}"
    );
    assert_eq!(done["failed_days"], json!([]));
    let days = done["days"].as_array().unwrap();
    assert_eq!(days.len(), 10);
    for d in days {
        let day = d["day"].as_str().unwrap();
        let on_day = sold_between(&data, day, day).len();
        assert_eq!(d["status"], "completed", "{d}");
        assert_eq!(d["fiches_found"], on_day, "{d}");
        assert_eq!(d["fiches_fetched"], on_day, "{d}");
    }
    assert_eq!(
        days[1]["fiches_found"], 2,
        "2026-11-02: FICHE-1001, FICHE-1002"
    );
    assert_eq!(
        days[9]["fiches_found"], 6,
        "2026-11-10: the generated fiches"
    );

    // Exactly those fiches are stored, with their details.
    let stored: BTreeSet<String> = strings(
        &sc.db.url,
        "SELECT fiche_id AS s FROM fiches WHERE NOT sales_list_only AND details IS NOT NULL",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(stored, expected);
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM fiches").await,
        16
    );
    let stats = sim.stats();
    assert_eq!(stats.crm_sales_requests, 10);
    assert_eq!(stats.crm_detail_requests, 16);
    assert!(searched(&sim).values().all(|n| *n == 1));

    // The cached fiches, by day and group, paged.
    let (status, tenth) = sc
        .api
        .get("/api/fiches?date=2026-11-10&limit=50", Some(&sc.auditor))
        .await;
    assert_eq!(status, 200, "{tenth}");
    assert_eq!(tenth["total"], 6);
    let (_, nca) = sc
        .api
        .get(
            "/api/fiches?date=2026-11-10&groupe=NCA&limit=2",
            Some(&sc.auditor),
        )
        .await;
    assert_eq!(nca["total"], 3, "FICHE-GEN-1, -3, -5: {nca}");
    assert_eq!(nca["items"].as_array().unwrap().len(), 2);
    assert_eq!(nca["items"][0]["fiche_id"], "FICHE-GEN-1");
    assert_eq!(nca["items"][0]["_salesListOnly"], false);
    let (_, second) = sc
        .api
        .get("/api/fiches?date=2026-11-02", Some(&sc.auditor))
        .await;
    let ids: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fiche_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["FICHE-1001", "FICHE-1002"]);
    let (_, all) = sc.api.get("/api/fiches", Some(&sc.auditor)).await;
    assert_eq!(all["total"], 16);

    // Listed, and found in Temporal by its JobId: the parent and its ten days.
    let (_, list) = sc.api.get("/api/fiches/jobs", Some(&sc.auditor)).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["status"], "completed");
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("JobId = '{id}' AND RunKind = 'fetch_job'"),
        1,
    )
    .await;
    visible(
        &client,
        format!("JobId = '{id}' AND RunKind = 'fetch_day'"),
        10,
    )
    .await;
    visible(
        &client,
        format!("WorkflowId = 'fiche-fetch-job:{id}:day:2026-11-04'"),
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn groupes_select_the_fiches_whose_details_are_fetched() {
    let data = Dataset::with_generated(6);
    let (sc, sim) = scenario("fetch_groupes", data, SimConfig::default()).await;
    let _worker = sc.worker(&[]);
    let accepted = start_job(
        &sc,
        json!({"from": "2026-11-10", "to": "2026-11-10", "groupes": ["MDP", " MDP "]}),
    )
    .await;
    assert_eq!(accepted["groupes"], json!(["MDP"]), "trimmed, once");
    let id = accepted["id"].as_str().unwrap();
    let done = ended(&sc, id, 1, T).await;
    assert_eq!(done["status"], "completed", "{done}");
    // FICHE-GEN-2, -4 and -6 are MDP; the NCA ones are stored as sales-list entries only.
    assert_eq!(
        (&done["fiches_found"], &done["fiches_fetched"]),
        (&json!(3), &json!(3))
    );
    let full = strings(
        &sc.db.url,
        "SELECT fiche_id AS s FROM fiches WHERE NOT sales_list_only ORDER BY fiche_id",
    )
    .await;
    assert_eq!(full, ["FICHE-GEN-2", "FICHE-GEN-4", "FICHE-GEN-6"]);
    let partial = strings(
        &sc.db.url,
        "SELECT fiche_id AS s FROM fiches WHERE sales_list_only ORDER BY fiche_id",
    )
    .await;
    assert_eq!(partial, ["FICHE-GEN-1", "FICHE-GEN-3", "FICHE-GEN-5"]);
    assert_eq!(sim.stats().crm_detail_requests, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_that_keeps_failing_is_listed_and_a_retry_fetches_only_that_day() {
    let data = Dataset::with_generated(0);
    let (sc, sim) = scenario(
        "fetch_failed_day",
        data.clone(),
        SimConfig {
            fail_sales_dates: vec!["2026-11-04".into()],
            ..SimConfig::default()
        },
    )
    .await;
    let _worker = sc.worker(&[]);
    let fourth = sold_between(&data, "2026-11-04", "2026-11-04");
    assert_eq!(fourth.len(), 2);
    let accepted = start_job(&sc, json!({"from": "2026-11-01", "to": "2026-11-10"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();

    let first = ended(&sc, &id, 1, T).await;
    assert_eq!(first["status"], "partial", "{first}");
    assert_eq!(first["failed_days"], json!(["2026-11-04"]));
    assert_eq!(
        (
            &first["days_done"],
            &first["days_failed"],
            &first["fiches_fetched"]
        ),
        (&json!(9), &json!(1), &json!(8)),
        "{first}"
    );
    let day = &first["days"][3];
    assert_eq!(day["day"], "2026-11-04");
    assert_eq!(day["status"], "failed");
    assert!(
        day["error"].as_str().unwrap().contains("HTTP 500"),
        "the root cause is recorded: {day}"
    );
    // The search was retried by the activity's policy: 4 attempts, then the day failed.
    assert_eq!(
        searched(&sim)["2026-11-04"],
        u64::from(callaudit_workflows::JOB_CRM_ATTEMPTS)
    );
    let stored_fourth = count(
        &sc.db.url,
        "SELECT count(*) AS n FROM fiches WHERE (date_vente AT TIME ZONE 'Europe/Paris')::date = '2026-11-04'",
    )
    .await;
    assert_eq!(stored_fourth, 0, "nothing of the failed day is stored");

    // The CRM heals; the retry searches only the failed day, as attempt 2.
    sim.set_config(SimConfig::default());
    sim.reset_stats();
    let (status, retry) = post(
        &sc,
        &format!("/api/fiches/jobs/{id}/retry"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["status"], "pending");
    let second = ended(&sc, &id, 2, T).await;
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(
        (
            &second["days_done"],
            &second["days_failed"],
            &second["fiches_found"],
            &second["fiches_fetched"]
        ),
        (&json!(10), &json!(0), &json!(10), &json!(10)),
        "{second}"
    );
    assert_eq!(second["failed_days"], json!([]));
    assert_eq!(second["days"][3]["attempt"], 2);
    assert_eq!(second["days"][2]["attempt"], 1);
    assert_eq!(
        searched(&sim),
        BTreeMap::from([("2026-11-04".to_string(), 1)]),
        "only the failed day was searched again"
    );
    assert_eq!(sim.stats().crm_detail_requests, 2, "{fourth:?}");
    let stored: BTreeSet<String> = strings(
        &sc.db.url,
        "SELECT fiche_id AS s FROM fiches WHERE NOT sales_list_only",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(stored, sold_between(&data, "2026-11-01", "2026-11-10"));

    // The retry's child has its own id; the first one's is kept.
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("WorkflowId = 'fiche-fetch-job:{id}:day:2026-11-04:retry:2'"),
        1,
    )
    .await;
    visible(
        &client,
        format!(
            "WorkflowId = 'fiche-fetch-job:{id}:day:2026-11-04' AND ExecutionStatus = 'Failed'"
        ),
        1,
    )
    .await;
    visible(&client, format!("WorkflowId = 'fiche-fetch-job:{id}'"), 2).await;

    // Nothing left to retry.
    let (status, again) = post(
        &sc,
        &format!("/api/fiches/jobs/{id}/retry"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 409, "{again}");

    // The stream replays both attempts and ends after the second's end.
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/fiches/jobs/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    let events = stream.rest(T).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(kinds[0], "fetch_job.started");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "fetch_job.day.completed")
            .count(),
        10
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "fetch_job.day.failed")
            .count(),
        1
    );
    let tail = &kinds[kinds.len() - 4..];
    assert_eq!(
        tail,
        [
            "fetch_job.completed",
            "fetch_job.started",
            "fetch_job.day.completed",
            "fetch_job.completed"
        ]
    );
    let data_of = |i: usize| -> Value { serde_json::from_str(&events[i].data).unwrap() };
    let first_end = data_of(kinds.len() - 4);
    assert_eq!(first_end["payload"]["status"], "partial");
    assert_eq!(first_end["payload"]["failed_days"], json!(["2026-11-04"]));
    assert_eq!(data_of(kinds.len() - 3)["payload"]["attempt"], 2);
    assert_eq!(data_of(kinds.len() - 1)["payload"]["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_four_hundred_day_range_completes_by_continuing_as_new() {
    let data = Dataset::with_generated(4);
    let (sc, sim) = scenario("fetch_400_days", data.clone(), SimConfig::default()).await;
    let _worker = sc.worker(&[]);
    // 2026-01-01 + 399 days = 2027-02-04 (2026 has 365 days).
    let expected = sold_between(&data, "2026-01-01", "2027-02-04");
    // FICHE-1001 … FICHE-1011 and FICHE-GEN-1 … FICHE-GEN-4.
    assert_eq!(expected.len(), 15);
    let began = std::time::Instant::now();
    let accepted = start_job(&sc, json!({"from": "2026-01-01", "to": "2027-02-04"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(accepted["days_total"], 400);
    let done = ended(&sc, &id, 1, Duration::from_secs(900)).await;
    eprintln!("400 days fetched in {:?}", began.elapsed());
    assert_eq!(done["status"], "completed", "{}", done["failed_days"]);
    assert_eq!(
        (
            &done["days_done"],
            &done["fiches_found"],
            &done["fiches_fetched"]
        ),
        (&json!(400), &json!(15), &json!(15))
    );
    assert_eq!(sim.stats().crm_sales_requests, 400);
    let stored: BTreeSet<String> = strings(
        &sc.db.url,
        "SELECT fiche_id AS s FROM fiches WHERE NOT sales_list_only",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(stored, expected);

    // 100 days per run: four runs, the first three continued as new, each history small.
    let client = temporal(&sc).await;
    let wf = format!("fiche-fetch-job:{id}");
    visible(&client, format!("WorkflowId = '{wf}'"), 4).await;
    let runs: Vec<_> = client
        .list_workflows(format!("WorkflowId = '{wf}'"), Default::default())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|r| r.expect("run"))
        .collect();
    let continued: Vec<_> = runs
        .iter()
        .filter(|r| r.status() == temporalio_client::WorkflowExecutionStatus::ContinuedAsNew)
        .collect();
    assert_eq!(continued.len(), 3, "{runs:?}");
    for r in &runs {
        assert!(
            r.history_length() < 2000,
            "a run's history stays small: {} events",
            r.history_length()
        );
    }
    let history = crate::replay::fetch(&client, &wf, Some(continued[0].run_id().to_string())).await;
    let text = String::from_utf8_lossy(&history);
    assert!(
        text.contains("ContinuedAsNew") || text.contains("CONTINUED_AS_NEW"),
        "the run's history ends by continuing as new"
    );
    visible(
        &client,
        format!("JobId = '{id}' AND RunKind = 'fetch_day'"),
        400,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_never_exceed_the_global_search_and_fetch_caps() {
    let data = Dataset::with_generated(12);
    let (sc, sim) = scenario(
        "fetch_caps",
        data.clone(),
        SimConfig {
            latency_ms: 150,
            ..SimConfig::default()
        },
    )
    .await;
    let caps = [
        ("FICHE_SALES_SEARCH_CONCURRENCY", "2"),
        ("FICHE_FETCH_CONCURRENCY", "3"),
    ];
    let _a = sc.worker(&caps);
    let _b = sc.worker(&caps);
    let accepted = start_job(&sc, json!({"from": "2026-11-01", "to": "2026-11-10"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let done = ended(&sc, &id, 1, T).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["fiches_fetched"], 22);
    let stats = sim.stats();
    assert_eq!(stats.crm_sales_requests, 10, "{stats:?}");
    assert_eq!(stats.crm_detail_requests, 22, "{stats:?}");
    assert!(
        stats.crm_sales_max_in_flight <= 2,
        "the CRM saw {} concurrent searches: {stats:?}",
        stats.crm_sales_max_in_flight
    );
    assert!(
        stats.crm_detail_max_in_flight <= 3,
        "the CRM saw {} concurrent detail fetches: {stats:?}",
        stats.crm_detail_max_in_flight
    );
    assert_eq!(
        stats.crm_sales_max_in_flight, 2,
        "the searches never overlapped, the cap was not exercised: {stats:?}"
    );
    assert!(
        stats.crm_detail_max_in_flight >= 2,
        "the fetches never overlapped, the cap was not exercised: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stream_sends_started_one_event_per_day_then_completed_and_resumes() {
    let data = Dataset::with_generated(0);
    let (sc, _sim) = scenario("fetch_stream", data, SimConfig::default()).await;
    let accepted = start_job(&sc, json!({"from": "2026-11-02", "to": "2026-11-06"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let path = format!("/api/fiches/jobs/{id}/events");
    // Opened before any worker runs the job: it waits, then follows it live.
    let mut live = SseClient::open(&sc.api, &path, &sc.auditor, None).await;
    assert_eq!(live.status, 200);
    let _worker = sc.worker(&[]);
    let events = live.rest(T).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "fetch_job.started",
            "fetch_job.day.completed",
            "fetch_job.day.completed",
            "fetch_job.day.completed",
            "fetch_job.day.completed",
            "fetch_job.day.completed",
            "fetch_job.completed"
        ]
    );
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let payload = |i: usize| -> Value {
        serde_json::from_str::<Value>(&events[i].data).unwrap()["payload"].clone()
    };
    assert_eq!(payload(0)["days"], 5);
    let mut days: Vec<String> = (1..=5)
        .map(|i| payload(i)["day"].as_str().unwrap().to_string())
        .collect();
    days.sort();
    assert_eq!(
        days,
        [
            "2026-11-02",
            "2026-11-03",
            "2026-11-04",
            "2026-11-05",
            "2026-11-06"
        ]
    );
    assert!((1..=5).all(|i| payload(i)["fetched"] == 2));
    assert_eq!(payload(6)["status"], "completed");
    assert_eq!(payload(6)["counts"]["fiches_fetched"], 10);

    // Resuming after the third event replays the rest and closes.
    let mut resumed = SseClient::open(&sc.api, &path, &sc.auditor, events[2].id.as_deref()).await;
    let rest: Vec<Option<String>> = resumed.rest(T).await.into_iter().map(|e| e.id).collect();
    let want: Vec<Option<String>> = events[3..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(rest, want);
    // A viewer may follow it too (fiches:read).
    let viewer = sc.api.token_for("viewer").await;
    let mut v = SseClient::open(&sc.api, &path, &viewer, events[5].id.as_deref()).await;
    assert_eq!(v.rest(T).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_workflow_was_terminated_is_shown_and_recorded_failed() {
    let (sc, _sim) = scenario(
        "fetch_reconcile",
        Dataset::with_generated(0),
        SimConfig::default(),
    )
    .await;
    // No worker: the job's workflow waits; then an operator terminates it.
    let accepted = start_job(&sc, json!({"from": "2026-11-02", "to": "2026-11-03"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let running = job(&sc, &id).await;
    assert_eq!(running["status"], "pending");
    assert_eq!(running["workflow_status"], "running");
    let client = temporal(&sc).await;
    client
        .get_workflow_handle::<callaudit_workflows::ProgressiveFetchWorkflow>(format!(
            "fiche-fetch-job:{id}"
        ))
        .terminate(Default::default())
        .await
        .expect("terminate");
    let read = wait_for("the termination to show", T, || async {
        let j = job(&sc, &id).await;
        (j["workflow_status"] == "terminated").then_some(j)
    })
    .await;
    assert_eq!(read["status"], "failed", "{read}");
    assert!(
        read["repaired"]
            .as_str()
            .unwrap()
            .contains("was terminated"),
        "{read}"
    );
    assert_eq!(read["failed_days"], json!(["2026-11-02", "2026-11-03"]));
    // Repaired once: the next read finds it recorded.
    let again = job(&sc, &id).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["repaired"], Value::Null);
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/fiches/jobs/{id}/events"),
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
        kinds,
        ["fetch_job.failed"],
        "the stream ends with the repair"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ranges_are_refused_and_a_viewer_cannot_start_or_retry_a_job() {
    let (sc, _sim) = scenario(
        "fetch_refusals",
        Dataset::with_generated(0),
        SimConfig::default(),
    )
    .await;
    let viewer = sc.api.token_for("viewer").await;
    let start = "/api/fiches/progressive-fetch";
    for (body, status) in [
        (json!({"from": "2026-11-10", "to": "2026-11-01"}), 422),
        (json!({"from": "2024-01-01", "to": "2027-01-03"}), 422),
        (
            json!({"from": "2026-11-01", "to": "2026-11-02", "groupes": [" "]}),
            422,
        ),
        (json!({"from": "2026-13-01", "to": "2026-11-02"}), 400),
        (json!({"from": "2026-11-01"}), 400),
        (json!({"from": "01/11/2026", "to": "2026-11-02"}), 400),
    ] {
        let (got, answer) = post(&sc, start, &sc.auditor, &body).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["status"], status, "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    let (got, answer) = post(
        &sc,
        start,
        &viewer,
        &json!({"from": "2026-11-01", "to": "2026-11-02"}),
    )
    .await;
    assert_eq!(got, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fiches:write")
    );
    let unauthenticated = sc
        .api
        .http
        .post(format!("{}{start}", sc.api.base))
        .json(&json!({"from": "2026-11-01", "to": "2026-11-02"}))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM fiche_fetch_jobs").await,
        0,
        "nothing stored"
    );
    // The longest range allowed is accepted (three years of 366 days).
    let longest = start_job(&sc, json!({"from": "2024-01-01", "to": "2027-01-02"})).await;
    assert_eq!(longest["days_total"], 1098);
    let id = longest["id"].as_str().unwrap();
    let (got, _) = post(
        &sc,
        &format!("/api/fiches/jobs/{id}/retry"),
        &viewer,
        &json!({}),
    )
    .await;
    assert_eq!(got, 403);
    let (got, answer) = post(
        &sc,
        &format!("/api/fiches/jobs/{id}/retry"),
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(got, 409, "a job that has not ended: {answer}");
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        sc.api
            .get(&format!("/api/fiches/jobs/{unknown}"), Some(&viewer))
            .await
            .0,
        404
    );
    assert_eq!(
        post(
            &sc,
            &format!("/api/fiches/jobs/{unknown}/retry"),
            &sc.auditor,
            &json!({})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        sc.api
            .get("/api/fiches/jobs/not-a-uuid", Some(&viewer))
            .await
            .0,
        400
    );
    assert_eq!(
        sc.api
            .get("/api/fiches?date=2026-13-01", Some(&viewer))
            .await
            .0,
        400
    );
    let (got, list) = sc.api.get("/api/fiches/jobs?limit=1", Some(&viewer)).await;
    assert_eq!(got, 200, "viewers read jobs");
    assert_eq!(list["total"], 1);
    // The job nobody runs is stopped (no worker in this test).
    let client = temporal(&sc).await;
    client
        .get_workflow_handle::<callaudit_workflows::ProgressiveFetchWorkflow>(format!(
            "fiche-fetch-job:{id}"
        ))
        .terminate(Default::default())
        .await
        .expect("terminate");
}

/// A dataset of one fiche, a copy of FICHE-1001 (two recordings) under ids no other test
/// uses: transcription workflow ids (`transcribe:{recording_id}`) are shared by the whole
/// Temporal namespace.
fn one_fiche_of_its_own(tag: &str) -> Dataset {
    let mut f = callaudit_sim::dataset()
        .fiche("FICHE-1001")
        .expect("FICHE-1001")
        .clone();
    f.fiche_id = format!("FICHE-{tag}");
    for (i, r) in f.recordings.iter_mut().enumerate() {
        r.recording_id = format!("REC-{tag}-{}", i + 1);
    }
    Dataset { fiches: vec![f] }
}

#[tokio::test(flavor = "multi_thread")]
async fn transcribing_a_fiche_on_demand_transcribes_each_recording_once() {
    let tag = format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let fiche = format!("FICHE-{tag}");
    let (sc, sim) = scenario(
        "transcribe",
        one_fiche_of_its_own(&tag),
        SimConfig::default(),
    )
    .await;
    let _worker = sc.worker(&[]);
    let path = format!("/api/fiches/{fiche}/transcribe");
    // Two requests at once: each recording's transcription is started once.
    let empty = json!({});
    let (a, b) = tokio::join!(
        post(&sc, &path, &sc.auditor, &empty),
        post(&sc, &path, &sc.auditor, &empty)
    );
    assert_eq!((a.0, b.0), (202, 202), "{} {}", a.1, b.1);
    for (i, rec) in a.1["recordings"].as_array().unwrap().iter().enumerate() {
        assert_eq!(rec["recording_id"], format!("REC-{tag}-{}", i + 1));
        assert_eq!(
            rec["workflow_id"],
            format!("transcribe:REC-{tag}-{}", i + 1)
        );
    }
    let started = [&a.1, &b.1]
        .iter()
        .flat_map(|r| r["recordings"].as_array().unwrap().clone())
        .filter(|r| r["state"] == "started")
        .count();
    assert_eq!(started, 2, "one start per recording: {} {}", a.1, b.1);

    let shown = wait_for("both recordings transcribed", T, || async {
        let (_, f) = sc
            .api
            .get(&format!("/api/fiches/{fiche}"), Some(&sc.auditor))
            .await;
        let recs = f["recordings"].as_array().cloned().unwrap_or_default();
        (recs.len() == 2 && recs.iter().all(|r| r["transcribed"] == true)).then_some(f)
    })
    .await;
    assert_eq!(shown["recordings"][0]["transcription"], "completed");
    assert_eq!(sim.stats().stt_requests, 2);

    // Asked again: nothing to do, nothing sent to speech-to-text.
    let (status, again) = post(&sc, &path, &sc.auditor, &json!({})).await;
    assert_eq!(status, 202, "{again}");
    assert!(
        again["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "transcribed"),
        "{again}"
    );
    assert_eq!(sim.stats().stt_requests, 2);
    assert_eq!(
        count(
            &sc.db.url,
            "SELECT count(*) AS n FROM transcriptions WHERE status = 'completed'"
        )
        .await,
        2
    );
    let client = temporal(&sc).await;
    visible(
        &client,
        format!("FicheId = '{fiche}' AND RunKind = 'transcription'"),
        2,
    )
    .await;

    // Viewers cannot; an unknown fiche is a 404.
    let viewer = sc.api.token_for("viewer").await;
    assert_eq!(post(&sc, &path, &viewer, &json!({})).await.0, 403);
    let (status, unknown) = post(
        &sc,
        "/api/fiches/FICHE-0000/transcribe",
        &sc.auditor,
        &json!({}),
    )
    .await;
    assert_eq!(status, 404, "{unknown}");
}

/// Records `tests/histories/progressive_fetch.json` (a job of three days, the second
/// failing: each day's child and record, the failed day recorded, finish),
/// `progressive_fetch_continued.json` and `progressive_fetch_last_run.json` (a job of
/// five days run two days per run: the first run continues as new, the last finishes),
/// `day_fetch.json` and `day_fetch_failed.json` (a day's search and detail fetches; a
/// day whose search fails after its retries), with `CALLAUDIT_RECORD_HISTORIES=fetch_jobs`
/// (or `all`):
/// `CALLAUDIT_RECORD_HISTORIES=fetch_jobs cargo test -p callaudit --test e2e fetch_jobs::record -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately"]
async fn record() {
    use callaudit_domain::fetch_job::{FetchDays, FetchTotals, ProgressiveFetchInput};
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "fetch_jobs" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=fetch_jobs to write tests/histories"
    );
    let (sc, _sim) = scenario(
        "record_fetch",
        Dataset::with_generated(0),
        SimConfig {
            fail_sales_dates: vec!["2026-11-03".into()],
            ..SimConfig::default()
        },
    )
    .await;
    let _worker = sc.worker(&[]);
    let client = temporal(&sc).await;
    let accepted = start_job(&sc, json!({"from": "2026-11-02", "to": "2026-11-04"})).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(ended(&sc, &id, 1, T).await["status"], "partial");
    let wf = format!("fiche-fetch-job:{id}");
    let closed = |wf: String, run: Option<String>| {
        let client = client.clone();
        async move {
            wait_for("the run to close", T, || async {
                let h = crate::replay::fetch(&client, &wf, run.clone()).await;
                let text = String::from_utf8_lossy(&h).to_string();
                [
                    "COMPLETED",
                    "FAILED",
                    "CONTINUED_AS_NEW",
                    "Completed",
                    "Failed",
                    "ContinuedAsNew",
                ]
                .iter()
                .any(|k| {
                    text.contains(&format!("WorkflowExecution{k}"))
                        || text.contains(&format!("WORKFLOW_EXECUTION_{k}"))
                })
                .then_some(h)
            })
            .await
        }
    };
    let parent = closed(wf.clone(), None).await;
    let day = closed(format!("{wf}:day:2026-11-02"), None).await;
    let failed_day = closed(format!("{wf}:day:2026-11-03"), None).await;

    // Two days per run over five days, started straight on Temporal for a small history.
    let job_id = uuid::Uuid::new_v4();
    let workflow_id = format!("fiche-fetch-job:{job_id}");
    let from = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let range: Vec<_> = (0..5).map(|i| from + chrono::Days::new(i)).collect();
    {
        let mut conn = callaudit_db::pool::get(&sc.api.state.pool)
            .await
            .expect("conn");
        callaudit_db::fetch_jobs::create(
            &mut conn,
            &callaudit_db::fetch_jobs::NewFetchJob {
                id: job_id,
                date_from: range[0],
                date_to: range[4],
                workflow_id: &workflow_id,
                groupes: &[],
                force_refresh: false,
                created_by: None,
            },
            &range,
        )
        .await
        .expect("job row");
    }
    let handle = client
        .start_workflow(
            callaudit_workflows::ProgressiveFetchWorkflow::run,
            ProgressiveFetchInput {
                job_id: job_id.to_string(),
                attempt: 1,
                days: FetchDays::Range {
                    from: range[0],
                    to: range[4],
                },
                groupes: vec![],
                force_refresh: false,
                day_window: 2,
                fiche_window: 2,
                days_per_run: 2,
                cursor: 0,
                totals: FetchTotals::default(),
            },
            temporalio_client::WorkflowStartOptions::new(sc.queue.clone(), workflow_id.clone())
                .search_attributes(callaudit_domain::search::of_fetch_job(
                    &job_id.to_string(),
                    callaudit_domain::search::RunKind::FetchJob,
                ))
                .build(),
        )
        .await
        .expect("start");
    let first_run = handle.run_id().map(str::to_string);
    assert_eq!(
        ended(&sc, &job_id.to_string(), 1, T).await["status"],
        "partial"
    );
    let continued = closed(workflow_id.clone(), first_run).await;
    let last = closed(workflow_id.clone(), None).await;
    assert!(
        String::from_utf8_lossy(&continued).contains("ContinuedAsNew")
            || String::from_utf8_lossy(&continued).contains("CONTINUED_AS_NEW")
    );

    for (file, json) in [
        ("progressive_fetch.json", parent),
        ("progressive_fetch_continued.json", continued),
        ("progressive_fetch_last_run.json", last),
        ("day_fetch.json", day),
        ("day_fetch_failed.json", failed_day),
    ] {
        std::fs::write(crate::replay::history_path(file), json).expect("write history");
    }
}
