//! Fiches through the api against the simulated CRM: cache, forced refresh with its
//! cooldown, sales search (`_salesListOnly`), and the unknown-fiche check before audits.

use crate::support::*;
use std::net::SocketAddr;

async fn setup(
    label: &str,
    sim: callaudit_sim::SimConfig,
) -> (TestApi, SocketAddr, callaudit_db::testing::TestDatabase) {
    let db = test_db(label).await;
    let (sim, _) = callaudit_sim::spawn("127.0.0.1:0", callaudit_sim::SimState::new(sim))
        .await
        .expect("sim");
    let api = spawn_api_with_crm(
        &db.url,
        temporal_settings(&temporal_address(), &task_queue(label)),
        Some(format!("http://{sim}/crm")),
    )
    .await;
    (api, sim, db)
}

async fn stats(sim: SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{sim}/_sim/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fiche_is_fetched_once_then_served_from_the_cache_and_force_refreshed_at_most_once_per_cooldown()
 {
    let (api, sim, _db) = setup("fiche_cache", Default::default()).await;
    let auditor = api.token_for("auditor").await;
    let viewer = api.token_for("viewer").await;

    let (status, f) = api.get("/api/fiches/FICHE-1001", Some(&viewer)).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["fetched"], true);
    assert_eq!(f["_salesListOnly"], false);
    assert_eq!(f["recordings"].as_array().map(Vec::len), Some(2), "{f}");
    assert!(f["details"]["recordings"].is_array(), "{f}");

    let (_, f) = api.get("/api/fiches/FICHE-1001", Some(&viewer)).await;
    assert_eq!(f["fetched"], false, "served from the cache");
    assert_eq!(stats(sim).await["crm_detail_requests"], 1);

    let (status, body) = api
        .get("/api/fiches/FICHE-1001?force_refresh=true", Some(&viewer))
        .await;
    assert_eq!(status, 403, "a viewer cannot force a refresh: {body}");

    let (status, f) = api
        .get("/api/fiches/FICHE-1001?force_refresh=true", Some(&auditor))
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["force_refresh"], "done");
    assert_eq!(f["fetched"], true);
    let (_, f) = api
        .get("/api/fiches/FICHE-1001?force_refresh=true", Some(&auditor))
        .await;
    assert_eq!(f["force_refresh"], "cooldown", "{f}");
    assert_eq!(f["fetched"], false);
    let retry = f["force_refresh_retry_after_s"]
        .as_u64()
        .expect("retry after");
    assert!((1..=60).contains(&retry), "{f}");
    assert_eq!(stats(sim).await["crm_detail_requests"], 2);

    let (status, body) = api.get("/api/fiches/FICHE-0404", Some(&viewer)).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not found in the CRM")),
        "{body}"
    );
    let (status, _) = api.get("/api/fiches/bad%20id", Some(&viewer)).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sales_search_stores_partial_fiches_that_are_completed_on_demand() {
    let (api, sim, _db) = setup("fiche_sales", Default::default()).await;
    let viewer = api.token_for("viewer").await;
    // FICHE-1001's details are cached before the search: the search must not downgrade them.
    let (status, _) = api.get("/api/fiches/FICHE-1001", Some(&viewer)).await;
    assert_eq!(status, 200);

    let (status, page) = api
        .get("/api/fiches/sales?date=2026-11-02", Some(&viewer))
        .await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["fiches"]
        .as_array()
        .expect("fiches")
        .iter()
        .filter_map(|f| f["fiche_id"].as_str())
        .collect();
    assert_eq!(ids, ["FICHE-1001", "FICHE-1002"], "{page}");
    assert!(
        page["fiches"]
            .as_array()
            .expect("fiches")
            .iter()
            .all(|f| f["_salesListOnly"] == true)
    );
    assert_eq!(stats(sim).await["crm_sales_requests"], 1);

    let (_, f) = api.get("/api/fiches/FICHE-1001", Some(&viewer)).await;
    assert_eq!(
        f["fetched"], false,
        "cached details survive a sales search: {f}"
    );
    assert_eq!(f["_salesListOnly"], false);

    let (_, f) = api.get("/api/fiches/FICHE-1002", Some(&viewer)).await;
    assert_eq!(
        f["fetched"], true,
        "a sales-list-only fiche is completed on read: {f}"
    );
    assert_eq!(f["_salesListOnly"], false);
    assert_eq!(f["recordings"].as_array().map(Vec::len), Some(1));

    for bad in ["2026-13-45", "02/11/2026", ""] {
        let (status, body) = api
            .get(&format!("/api/fiches/sales?date={bad}"), Some(&viewer))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_of_an_unknown_fiche_or_with_the_crm_down_is_refused_and_creates_nothing() {
    let (api, sim, _db) = setup("fiche_audit_check", Default::default()).await;
    let auditor = api.token_for("auditor").await;
    let config = api.sample_config().await;
    let run = |fiche: &str| serde_json::json!({"fiche_id": fiche, "audit_config_id": config["id"]});

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &run("FICHE-0404"),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("FICHE-0404") && m.contains("CRM")),
        "{body}"
    );

    let knobs = serde_json::json!({"error_rate": 1.0});
    let resp = reqwest::Client::new()
        .post(format!("http://{sim}/_sim/config"))
        .json(&knobs)
        .send()
        .await
        .expect("sim config");
    assert!(resp.status().is_success());
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&auditor),
            &run("FICHE-1001"),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CRM"), "{body}");
    assert!(!message.contains("sim-crm"), "no key in errors: {body}");

    let (_, page) = api.get("/api/audits", Some(&auditor)).await;
    assert_eq!(page["total"], 0, "nothing half-created: {page}");
    let (status, _) = api.get("/api/fiches/FICHE-0404", Some(&auditor)).await;
    assert_eq!(
        status, 503,
        "the CRM is still down, and FICHE-0404 was never stored"
    );
}
