//! `GET /api/audits/{id}/events`: replay from `Last-Event-ID`, live follow through
//! LISTEN/NOTIFY, close after the terminal event. Events are published straight into the
//! events table here (as the worker's activities do), so no workflow is needed.

use crate::support::*;
use callaudit_db::events::publish;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

async fn pending_audit(api: &TestApi) -> uuid::Uuid {
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    pending_audit_row(&mut conn, 6).await
}

pub(crate) async fn emit(api: &TestApi, audit: uuid::Uuid, kind: &str, n: i64) -> i64 {
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    publish(
        &mut conn,
        &format!("audit:{audit}"),
        kind,
        &serde_json::json!({"n": n}),
        None,
    )
    .await
    .expect("publish")
    .expect("stored")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_follows_live_events_and_closes_after_the_terminal_one() {
    let db = test_db("sse_live").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api).await;
    let other = pending_audit(&api).await;
    let path = format!("/api/audits/{audit}/events");

    // A second api replica on the same database serves the same stream.
    let replica = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;

    let first = emit(&api, audit, "audit.started", 0).await;
    let mut sse = SseClient::open(&api, &path, &token, None).await;
    assert_eq!(sse.status, 200);
    let mut on_replica = SseClient::open(&replica, &path, &token, None).await;
    assert_eq!(on_replica.status, 200);
    let e = sse.next(T).await.expect("replayed event");
    assert_eq!(e.id.as_deref(), Some(first.to_string().as_str()));
    assert_eq!(e.event.as_deref(), Some("audit.started"));

    // Live: each event published after the stream is open arrives, in order, and events
    // of another audit never do.
    for n in 1..=3 {
        emit(&api, other, "audit.step.completed", n).await;
        let id = emit(&api, audit, "audit.step.completed", n).await;
        let e = sse.next(T).await.expect("live event");
        assert_eq!(e.id, Some(id.to_string()));
        let data: serde_json::Value = serde_json::from_str(&e.data).expect("json data");
        assert_eq!(data["type"], "audit.step.completed");
        assert_eq!(data["payload"]["n"], n);
    }
    let last = emit(&api, audit, "audit.completed", 9).await;
    let e = sse.next(T).await.expect("terminal event");
    assert_eq!(e.id, Some(last.to_string()));
    assert_eq!(
        sse.next(T).await,
        None,
        "the stream closes after audit.completed"
    );

    let seen_on_replica = on_replica.rest(T).await;
    let ids: Vec<String> = seen_on_replica
        .iter()
        .filter_map(|e| e.id.clone())
        .collect();
    assert_eq!(ids.len(), 5, "{seen_on_replica:?}");
    assert_eq!(ids.first(), Some(&first.to_string()));
    assert_eq!(ids.last(), Some(&last.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_rejects_bad_requests_with_clear_4xx() {
    let db = test_db("sse_bad").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api).await;

    let (status, body) = api
        .get(
            &format!("/api/audits/{}/events", uuid::Uuid::new_v4()),
            Some(&token),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = api.get(&format!("/api/audits/{audit}/events"), None).await;
    assert_eq!(status, 401);
    let resp = api
        .http
        .get(format!("{}/api/audits/{audit}/events", api.base))
        .bearer_auth(&token)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Last-Event-ID")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_events_arrive_within_a_second_through_notify_without_waiting_for_the_poll() {
    let db = test_db("sse_notify").await;
    // A poll of a minute: only LISTEN/NOTIFY can deliver within the second.
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    settings.sse_poll_every = Duration::from_secs(60);
    let api = spawn_api_from(settings).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api).await;
    let path = format!("/api/audits/{audit}/events");
    let first = emit(&api, audit, "audit.started", 0).await;
    let mut sse = SseClient::open(&api, &path, &token, None).await;
    let e = sse.next(T).await.expect("replayed");
    assert_eq!(e.id, Some(first.to_string()));
    for n in 1..=5 {
        let published = std::time::Instant::now();
        let id = emit(&api, audit, "audit.step.completed", n).await;
        let e = sse
            .next(Duration::from_secs(1))
            .await
            .expect("live within a second");
        assert_eq!(e.id, Some(id.to_string()));
        let delay = published.elapsed();
        assert!(delay < Duration::from_secs(1), "event {n} took {delay:?}");
    }
}
