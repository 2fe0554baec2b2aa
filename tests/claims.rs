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

/// (position, score, conforme) of each step of an audit.
fn steps(audit: &serde_json::Value) -> Vec<(i64, f64, String)> {
    audit["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["position"].as_i64().unwrap(),
                s["score"].as_f64().unwrap(),
                s["conforme"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_fiches_score_as_it_says_with_the_sample_configuration() {
    let sc =
        crate::audit_pipeline::Scenario::without_api_crm("readme_fiches", Default::default()).await;
    let config = sc.config(6).await;
    let _w = sc.worker(&[]);
    let full = |p: i64, w: f64| (p, w, "CONFORME".to_string());
    // Weights 10, 20 (critical), 15, 20, 20 (critical), 15: 100 in all.
    // FICHE-1001: every point found: 100.0 EXCELLENT.
    // FICHE-1002: the recording is never announced, step 2 (critical) NON_CONFORME:
    //   100 × 80 / 100 = 80.0, and the critical failure forces REJET.
    // FICHE-1003: step 5 has one of its three points missing: 20 × 2/3 = 13.33…;
    //   100 × 93.33 / 100 = 93.3 EXCELLENT (no critical step NON_CONFORME).
    let expected = [
        (
            "FICHE-1001",
            100.0,
            "EXCELLENT",
            false,
            vec![
                full(1, 10.0),
                full(2, 20.0),
                full(3, 15.0),
                full(4, 20.0),
                full(5, 20.0),
                full(6, 15.0),
            ],
        ),
        (
            "FICHE-1002",
            80.0,
            "REJET",
            true,
            vec![
                full(1, 10.0),
                (2, 0.0, "NON_CONFORME".to_string()),
                full(3, 15.0),
                full(4, 20.0),
                full(5, 20.0),
                full(6, 15.0),
            ],
        ),
        (
            "FICHE-1003",
            93.3,
            "EXCELLENT",
            false,
            vec![
                full(1, 10.0),
                full(2, 20.0),
                full(3, 15.0),
                full(4, 20.0),
                (5, 40.0 / 3.0, "PARTIEL".to_string()),
                full(6, 15.0),
            ],
        ),
    ];
    for (fiche, score, niveau, critical, want) in expected {
        let id = sc.run(fiche, &config).await;
        let a = sc.completed(&id).await;
        assert_eq!(a["score"].as_f64(), Some(score), "{fiche}: {a}");
        assert_eq!(a["niveau"], niveau, "{fiche}");
        assert_eq!(a["critical"], critical, "{fiche}");
        let got = steps(&a);
        assert_eq!(got.len(), want.len(), "{fiche}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{fiche}");
            assert!(
                (g.1 - w.1).abs() < 1e-9,
                "{fiche} step {}: {} vs {}",
                g.0,
                g.1,
                w.1
            );
            assert_eq!(g.2, w.2, "{fiche} step {}", g.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_is_replaced_and_deleted_through_the_api_and_bad_edits_change_nothing() {
    let db = test_db("config_put_delete").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let manager = api.token_for("manager").await;
    let config = api.sample_config().await;
    let path = format!("/api/audit-configs/{}", config["id"].as_str().unwrap());

    let mut edited: serde_json::Value =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).unwrap();
    edited["name"] = "Deux étapes".into();
    edited["steps"].as_array_mut().unwrap().truncate(2);
    edited["steps"][1]["weight"] = 35.into();
    edited["steps"][1]["critical"] = false.into();
    let (status, put) = api
        .send(reqwest::Method::PUT, &path, Some(&manager), &edited)
        .await;
    assert_eq!(status, 200, "{put}");
    let (status, read) = api.get(&path, Some(&manager)).await;
    assert_eq!(status, 200);
    assert_eq!(read["name"], "Deux étapes", "{read}");
    let steps = read["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{read}");
    assert_eq!(steps[1]["weight"].as_f64(), Some(35.0), "{read}");
    assert_eq!(steps[1]["critical"], false, "{read}");

    // An invalid replacement is a 422 naming the field, and the stored one is unchanged.
    let mut bad = edited.clone();
    bad["name"] = "Never stored".into();
    bad["steps"][0]["weight"] = (-1).into();
    let (status, body) = api
        .send(reqwest::Method::PUT, &path, Some(&manager), &bad)
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("steps[0].weight"),
        "{body}"
    );
    assert_eq!(api.get(&path, Some(&manager)).await.1, read);
    let missing = format!("/api/audit-configs/{}", uuid::Uuid::new_v4());
    let (status, body) = api
        .send(reqwest::Method::PUT, &missing, Some(&manager), &edited)
        .await;
    assert_eq!(status, 404, "{body}");

    // Unused, it is deleted: gone from the list and its URL, and a second delete is a 404.
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&manager),
            &serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(api.get(&path, Some(&manager)).await.0, 404);
    let (_, list) = api.get("/api/audit-configs", Some(&manager)).await;
    assert_eq!(list, serde_json::json!([]));
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &path,
            Some(&manager),
            &serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_in_stored_text_is_a_400_with_a_message_not_a_500() {
    // Found by temporal-dev/fuzz.sh: Postgres text cannot hold U+0000.
    let db = test_db("nul_text").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/auth/login",
            None,
            &serde_json::json!({"email": "a\u{0}b@example.test", "password": "x\u{0}y"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("NUL"),
        "{body}"
    );
}
