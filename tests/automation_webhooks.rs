//! Webhook refusals at delivery, end to end: a run's webhook on an allowlisted origin
//! that answers every delivery with a redirect to another local port. The worker (the
//! real binary, `WEBHOOK_ALLOWED_ORIGINS` naming only the hook's origin) does not follow
//! it: the redirect's target never accepts a connection, and each delivery is recorded
//! failed, with the reason, after its 5 attempts; the run itself completes.

use crate::audit_pipeline::Scenario;
use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_redirecting_to_a_local_port_is_not_followed_and_recorded_failed() {
    use poem::EndpointExt;
    // The redirect's target: a local port nobody allowlisted; it must see no connection.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let location = format!(
        "http://127.0.0.1:{}/steal",
        target.local_addr().unwrap().port()
    );
    // The hook, on an allowlisted origin, answering 307 to every POST.
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let to = location.clone();
    let app = poem::Route::new()
        .at(
            "/hook",
            poem::endpoint::make(move |_req: poem::Request| {
                let (counted, to) = (counted.clone(), to.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    poem::Response::builder()
                        .status(poem::http::StatusCode::TEMPORARY_REDIRECT)
                        .header("location", to)
                        .finish()
                }
            }),
        )
        .data(());
    let origin = crate::audit_pipeline::serve_local(app);

    let sc = Scenario::with_webhook_origin("auto_hook307", &origin).await;
    let manager = sc.manager.clone();
    let config = sc.api.sample_config().await;
    let _w = sc.worker(&[("WEBHOOK_ALLOWED_ORIGINS", origin.as_str())]);
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&manager),
            &json!({
                "name": "redirected", "cron": "0 6 * * *", "enabled": false,
                "auditConfigId": config["id"],
                "ficheSelection": {"daysBack": 1, "groupes": ["NOBODY"]},
                "notifications": {"webhookUrl": format!("{origin}/hook")}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    // Both events (started, completed) end failed after their 5 attempts (1 + 2 + 4 + 8 s
    // of backoff each).
    let run = wait_for(
        "both deliveries failed for good",
        Duration::from_secs(120),
        || {
            let manager = manager.clone();
            let api = &sc.api;
            let id = id.clone();
            async move {
                let (_, page) = api
                    .get(
                        &format!("/api/automation/runs?schedule_id={id}"),
                        Some(&manager),
                    )
                    .await;
                let run_id = page["items"][0]["id"].as_str()?.to_string();
                let (_, run) = api
                    .get(&format!("/api/automation/runs/{run_id}"), Some(&manager))
                    .await;
                let done = run["webhookDeliveries"].as_array().is_some_and(|d| {
                    d.len() == 2
                        && d.iter()
                            .all(|d| d["attempts"] == 5 && d["status"] == "failed")
                });
                done.then_some(run)
            }
        },
    )
    .await;
    assert_eq!(run["status"], "completed", "{run}");
    for d in run["webhookDeliveries"].as_array().unwrap() {
        assert_eq!(d["responseStatus"], 307, "{d}");
        let error = d["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("redirects are not followed") && error.contains(&location),
            "{d}"
        );
    }
    assert_eq!(
        posts.load(Ordering::SeqCst),
        10,
        "5 attempts of each of 2 events"
    );
    assert!(
        matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the redirect's target was connected to"
    );
}
