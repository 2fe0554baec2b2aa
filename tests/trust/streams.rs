//! Event streams: finished streams end, a cap per replica, commits in id order,
//! stream tokens for `EventSource`, CORS.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reconnecting_after_the_terminal_event_gets_the_rest_and_the_stream_closes_at_once()
 {
    let db = test_db("sse_finished").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api, 1).await;
    let started = emit(&api, audit, "audit.started", 0).await;
    let completed = emit(&api, audit, "audit.completed", 0).await;
    let path = format!("/api/audits/{audit}/events");
    // Streams re-read every 5 s without a notification: closing within 2 s means the
    // stream ended by itself, not after a poll.
    let quick = std::time::Duration::from_secs(2);

    let mut resumed = SseClient::open(&api, &path, &token, Some(&completed.to_string())).await;
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.rest(quick).await, vec![], "nothing follows the end");

    let mut before_end = SseClient::open(&api, &path, &token, Some(&started.to_string())).await;
    let rest = before_end.rest(quick).await;
    assert_eq!(
        rest.iter().filter_map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![completed.to_string()]
    );
    wait_for(
        "both streams released",
        std::time::Duration::from_secs(5),
        || async { (api.state.events.open_streams() == 0).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_its_cap_of_streams_a_replica_answers_503_and_a_closed_stream_frees_its_place() {
    let db = test_db("sse_cap").await;
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    settings.max_streams = 2;
    let api = spawn_api_from(settings).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api, 1).await;
    let path = format!("/api/audits/{audit}/events");
    let first = SseClient::open(&api, &path, &token, None).await;
    let second = SseClient::open(&api, &path, &token, None).await;
    assert_eq!((first.status, second.status), (200, 200));
    let (status, body) = api.get(&path, Some(&token)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_MAX_STREAMS")),
        "{body}"
    );
    // The server learns that a client left when it next writes to it: the keep-alive
    // comment comes every 5 s (the write after the client's reset fails).
    drop(first);
    let third = wait_for(
        "a place under the cap",
        std::time::Duration::from_secs(30),
        || {
            let api = &api;
            let path = &path;
            let token = &token;
            async move {
                let s = SseClient::open(api, path, token, None).await;
                (s.status == 200).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(third.status, 200);
    assert_eq!(api.state.events.open_streams(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_a_stream_commit_in_id_order_so_a_reader_never_skips_one() {
    use diesel_async::AsyncConnection;
    let db = test_db("sse_order").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api, 2).await;
    let topic = format!("audit:{audit}");
    let mut stream =
        SseClient::open(&api, &format!("/api/audits/{audit}/events"), &token, None).await;

    // Step A publishes in a transaction that commits late; step B publishes after A drew
    // its id. Without ordering, B's higher id commits first, the reader passes it, and
    // A's event is never sent.
    let (a_published, a_may_commit) = (
        tokio::sync::oneshot::channel::<()>(),
        tokio::sync::oneshot::channel::<()>(),
    );
    let (a_published_tx, a_published_rx) = a_published;
    let (commit_tx, commit_rx) = a_may_commit;
    let url = db.url.clone();
    let slow_topic = topic.clone();
    let step_a = tokio::spawn(async move {
        let mut conn = callaudit_db::establish(&url).await.expect("conn");
        conn.transaction::<_, callaudit_db::DbError, _>(async |conn| {
            callaudit_db::events::publish(
                conn,
                &slow_topic,
                "audit.step.completed",
                &serde_json::json!({"step": "A"}),
                None,
            )
            .await?;
            let _ = a_published_tx.send(());
            let _ = commit_rx.await;
            Ok(())
        })
        .await
        .expect("step A");
    });
    a_published_rx.await.expect("A published");
    let url = db.url.clone();
    let fast_topic = topic.clone();
    let step_b = tokio::spawn(async move {
        let mut conn = callaudit_db::establish(&url).await.expect("conn");
        callaudit_db::events::publish(
            &mut conn,
            &fast_topic,
            "audit.step.completed",
            &serde_json::json!({"step": "B"}),
            None,
        )
        .await
        .expect("step B")
    });
    // Give B every chance to commit first (it must not be able to), then let A commit.
    let raced = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while !step_b.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        raced.is_err(),
        "B committed while A, with a lower id, was still open"
    );
    commit_tx.send(()).expect("commit A");
    step_a.await.expect("A");
    step_b.await.expect("B");

    let first = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("A");
    let second = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("B");
    let step = |e: &SseEvent| {
        serde_json::from_str::<serde_json::Value>(&e.data).expect("json")["payload"]["step"].clone()
    };
    assert_eq!((step(&first), step(&second)), ("A".into(), "B".into()));
    let ids: Vec<i64> = [&first, &second]
        .iter()
        .map(|e| e.id.as_deref().and_then(|i| i.parse().ok()).expect("id"))
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_follows_a_stream_with_a_stream_token_and_no_authorization_header() {
    let db = test_db("stream_token").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let viewer = api.token_for("viewer").await;
    let (audit, other) = {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        (
            pending_audit_row(&mut conn, 1).await,
            pending_audit_row(&mut conn, 1).await,
        )
    };
    let started = emit(&api, audit, "audit.started", 0).await;
    let completed = emit(&api, audit, "audit.completed", 0).await;
    let (status, issued) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/audits/{audit}/events/token"),
            Some(&viewer),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let url = issued["url"].as_str().expect("url").to_string();
    let token = issued["token"].as_str().expect("token").to_string();

    // What EventSource does: a GET with no Authorization header.
    let resp = reqwest::Client::new()
        .get(format!("{}{url}", api.base))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), resp.text())
        .await
        .expect("the stream ends after audit.completed")
        .expect("body");
    let mut decoder = callaudit_api::sse::SseDecoder::default();
    let ids: Vec<String> = decoder
        .push(body.as_bytes())
        .into_iter()
        .filter_map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![started.to_string(), completed.to_string()]);

    let bare = |path: String| {
        let api = &api;
        async move {
            reqwest::Client::new()
                .get(format!("{}{path}", api.base))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        bare(format!("/api/audits/{other}/events?token={token}")).await,
        403,
        "a token opens its own stream only"
    );
    assert_eq!(
        bare(format!("/api/audits/{audit}/events?token=st_forged")).await,
        401
    );
    assert_eq!(bare(format!("/api/audits/{audit}/events")).await, 401);
    // An expired token opens nothing.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        diesel::sql_query("UPDATE stream_tokens SET expires_at = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .expect("expire");
    }
    assert_eq!(
        bare(format!("/api/audits/{audit}/events?token={token}")).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_lets_allowed_origins_call_the_api_and_follow_streams_and_no_one_else() {
    let db = test_db("cors").await;
    let mut settings = api_settings(
        &db.url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    settings.cors_allowed_origins = vec!["https://app.example".into()];
    let api = spawn_api_from(settings).await;
    let default_api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let preflight = |api: &TestApi, origin: &str| {
        api.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/audits/run", api.base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight(&api, "https://app.example")
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("idempotency-key"),
        "{headers}"
    );

    let token = api.token_for("viewer").await;
    let audit = pending_audit(&api, 1).await;
    emit(&api, audit, "audit.completed", 0).await;
    let stream = api
        .http
        .get(format!("{}/api/audits/{audit}/events", api.base))
        .bearer_auth(&token)
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    for (api, origin) in [
        (&api, "https://evil.example"),
        (&default_api, "https://app.example"),
    ] {
        let resp = preflight(api, origin).await.expect("preflight");
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{origin} must not be allowed: {:?}",
            resp.headers()
        );
        let resp = api
            .http
            .get(format!("{}/api/audits/{audit}", api.base))
            .bearer_auth(&token)
            .header("Origin", origin)
            .send()
            .await
            .expect("get");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
}
