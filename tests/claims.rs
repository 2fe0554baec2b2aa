//! What the README claims and nothing else proved: Temporal down answers 503 and leaves
//! no audit behind, `?after=` resumes a stream, the audit list pages newest first.

use crate::events_stream::emit;
use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn with_temporal_down_a_run_is_a_503_and_no_audit_row_is_left() {
    let db = test_db("temporal_down").await;
    // Nothing listens on this port.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let api = spawn_api(&db.url, temporal_settings(&nowhere, "unused")).await;
    let config = api.sample_config().await;
    let auditor = api.token_for("auditor").await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was started"),
        "{body}"
    );
    assert_eq!(
        crate::audit_pipeline::count(&db.url, "SELECT count(*) AS n FROM audits").await,
        0,
        "no audit row left behind"
    );
    let (status, ready) = api.get("/ready", None).await;
    assert_eq!(status, 503, "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_opened_with_after_replays_only_what_follows_that_id() {
    let db = test_db("sse_after").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    let audit = pending_audit_row(&mut conn, 6).await;
    drop(conn);
    let first = emit(&api, audit, "audit.started", 0).await;
    let second = emit(&api, audit, "audit.step.completed", 1).await;
    let last = emit(&api, audit, "audit.completed", 2).await;
    let mut sse = SseClient::open(
        &api,
        &format!("/api/audits/{audit}/events?after={first}"),
        &token,
        None,
    )
    .await;
    let ids: Vec<String> = sse
        .rest(Duration::from_secs(10))
        .await
        .into_iter()
        .filter_map(|e| e.id)
        .collect();
    assert_eq!(ids, [second.to_string(), last.to_string()]);
    let (status, body) = api
        .get(
            &format!("/api/audits/{audit}/events?after=-1"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_list_pages_newest_first_and_filters_by_fiche() {
    let db = test_db("audit_pages").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(pending_audit_row(&mut conn, 6).await.to_string());
    }
    drop(conn);
    let (status, page) = api.get("/api/audits?limit=2&offset=1", Some(&token)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3);
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    // Newest first: the second and the first created.
    assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
    let (_, other) = api
        .get("/api/audits?fiche_id=FICHE-9999", Some(&token))
        .await;
    assert_eq!(other["total"], 0);
    let (status, _) = api.get("/api/audits?limit=0", Some(&token)).await;
    assert_eq!(status, 400);
}
