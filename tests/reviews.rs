//! Human review of control points and the calibration report, end to end.

use crate::audit_pipeline::Scenario;
use crate::reruns::{points, set_sim};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn review(
    sc: &Scenario,
    token: &str,
    audit: &str,
    step: i32,
    index: i32,
    body: Value,
) -> (u16, Value) {
    sc.api
        .send(
            reqwest::Method::PUT,
            &format!("/api/audits/{audit}/steps/{step}/control-points/{index}/review"),
            Some(token),
            &body,
        )
        .await
}

async fn withdraw(sc: &Scenario, token: &str, audit: &str, step: i32, index: i32) -> (u16, Value) {
    sc.api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/audits/{audit}/steps/{step}/control-points/{index}/review"),
            Some(token),
            &Value::Null,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_changes_the_score_keeps_the_ai_verdict_visible_and_is_refused_for_a_viewer() {
    // FICHE-1002 never mentions the recording: step 2 (weight 20, critical, 2 points) is
    // NON_CONFORME, step 1 (weight 10) CONFORME: 100 × 10 / 30 = 33.3, REJET (critical).
    let sc = Scenario::without_api_crm("review", Default::default()).await;
    let config = sc.config(2).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1002", &config).await;
    let before = sc.completed(&id).await;
    assert_eq!(before["score"].as_f64(), Some(33.3), "{before}");
    assert_eq!(before["niveau"], "REJET");

    let viewer = sc.api.token_for("viewer").await;
    let (status, body) = review(&sc, &viewer, &id, 2, 0, json!({"statut": "PRESENT"})).await;
    assert_eq!(status, 403, "{body}");

    // The reviewer heard the recording announced: PRESENT on point 0 of step 2.
    let (status, body) = review(
        &sc,
        &sc.auditor,
        &id,
        2,
        0,
        json!({"statut": "PRESENT", "comment": "annoncé à 0:45, mal transcrit"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ai_statut"], "ABSENT");
    assert_eq!(body["review"]["statut"], "PRESENT");
    assert_eq!(body["counted_statut"], "PRESENT");
    // Step 2: 20 × 1 / 2 = 10, PARTIEL (no longer NON_CONFORME, so not critical).
    // Audit: 100 × (10 + 10) / 30 = 66.7 → ACCEPTABLE.
    assert_eq!(body["step_score"].as_f64(), Some(10.0));
    assert_eq!(body["step_conforme"], "PARTIEL");
    assert_eq!(body["audit_score"].as_f64(), Some(66.7));
    assert_eq!(body["audit_niveau"], "ACCEPTABLE");
    assert_eq!(body["audit_critical"], false);

    let after = sc.audit(&id).await;
    assert_eq!(after["score"].as_f64(), Some(66.7), "{after}");
    assert_eq!(after["niveau"], "ACCEPTABLE");
    assert_eq!(after["critical"], false);
    let cp = &after["steps"][1]["control_points"][0];
    assert_eq!(cp["ai_statut"], "ABSENT", "{cp}");
    assert_eq!(cp["human_statut"], "PRESENT");
    assert_eq!(cp["counted_statut"], "PRESENT");
    assert_eq!(cp["counts"], "human");
    assert_eq!(cp["review_comment"], "annoncé à 0:45, mal transcrit");
    let other = &after["steps"][1]["control_points"][1];
    assert_eq!(other["counts"], "ai");
    assert_eq!(other["human_statut"], Value::Null);
    // The AI verdict stays in the stored analysis; the review sits beside it.
    let p = &points(&after, 1)[0];
    assert_eq!(p["statut"], "ABSENT");
    assert_eq!(p["review"]["statut"], "PRESENT");
    let history = after["steps"][1]["raw_result"]["rerun_history"]
        .as_array()
        .expect("history")
        .clone();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["kind"], "review");
    assert_eq!(history[0]["control_point_index"], 0);
    assert_eq!(history[0]["previous"], Value::Null);
    assert_eq!(history[0]["new"]["statut"], "PRESENT");
    assert_eq!(history[0]["previous_score"]["score"].as_f64(), Some(0.0));
    assert_eq!(history[0]["new_score"]["score"].as_f64(), Some(10.0));

    // A manager withdraws it: the AI verdict counts again.
    let (status, body) = withdraw(&sc, &viewer, &id, 2, 0).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = withdraw(&sc, &sc.manager, &id, 2, 0).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counted_statut"], "ABSENT");
    assert_eq!(body["review"], Value::Null);
    assert_eq!(body["audit_score"].as_f64(), Some(33.3));
    assert_eq!(body["audit_niveau"], "REJET");
    let again = sc.audit(&id).await;
    assert_eq!(again["critical"], true);
    assert_eq!(again["steps"][1]["control_points"][0]["counts"], "ai");
    assert_eq!(
        again["steps"][1]["raw_result"]["rerun_history"][1]["kind"],
        "review_withdrawn"
    );
    let (status, body) = withdraw(&sc, &sc.manager, &id, 2, 0).await;
    assert_eq!(status, 404, "nothing to withdraw: {body}");

    // Bad input.
    let (status, body) = review(&sc, &sc.auditor, &id, 2, 0, json!({"statut": "MAYBE"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = review(&sc, &sc.auditor, &id, 2, 7, json!({"statut": "PRESENT"})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = review(&sc, &sc.auditor, &id, 9, 0, json!({"statut": "PRESENT"})).await;
    assert_eq!(status, 404, "{body}");

    // Each change is on the audit's stream.
    let mut stream = SseClient::open(
        &sc.api,
        &format!("/api/audits/{id}/events"),
        &sc.auditor,
        None,
    )
    .await;
    let reviewed: Vec<Value> = stream
        .rest(Duration::from_secs(30))
        .await
        .into_iter()
        .filter(|e| e.event.as_deref() == Some("audit.reviewed"))
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect();
    assert_eq!(reviewed.len(), 2);
    assert_eq!(reviewed[0]["payload"]["review"]["human_statut"], "PRESENT");
    assert_eq!(
        reviewed[0]["payload"]["audit"]["score"].as_f64(),
        Some(66.7)
    );
    assert_eq!(
        reviewed[1]["payload"]["review"]["human_statut"],
        Value::Null
    );

    // An audit that has not completed cannot be reviewed.
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool)
        .await
        .expect("conn");
    let pending = pending_audit_row(&mut conn, 6).await;
    drop(conn);
    let (status, body) = review(
        &sc,
        &sc.auditor,
        &pending.to_string(),
        1,
        0,
        json!({"statut": "PRESENT"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calibration_report_gives_the_agreement_and_kappa_of_a_set_of_reviewed_audits() {
    // Two audits of FICHE-1001 with step 1 (3 points). A: the model finds all three
    // PRESENT. B: the model skips point 0 (ABSENT), finds 1 and 2 PRESENT.
    let sc = Scenario::without_api_crm("calibration", Default::default()).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let a = sc.run("FICHE-1001", &config).await;
    sc.completed(&a).await;
    set_sim(&sc, json!({"omit_points": [0]})).await;
    let b = sc.run("FICHE-1001", &config).await;
    sc.completed(&b).await;
    assert_eq!(points(&sc.audit(&b).await, 0)[0]["statut"], "ABSENT");

    // Human verdicts (AI → human):
    //   A: p0 P→P, p1 P→A, p2 not reviewed;   B: p0 A→A, p1 P→P, p2 P→P.
    for (audit, index, statut) in [
        (&a, 0, "PRESENT"),
        (&a, 1, "ABSENT"),
        (&b, 0, "ABSENT"),
        (&b, 1, "PRESENT"),
        (&b, 2, "PRESENT"),
    ] {
        let (status, body) =
            review(&sc, &sc.auditor, audit, 1, index, json!({"statut": statut})).await;
        assert_eq!(status, 200, "{body}");
    }

    let today = chrono::Utc::now().date_naive();
    let (status, report) = sc
        .api
        .get(
            &format!(
                "/api/reports/calibration?audit_config_id={}&from={today}&to={today}",
                config.as_str().unwrap()
            ),
            Some(&sc.auditor),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["audits"], 2);
    // Overall: 5 reviewed, 4 agreed: pₒ = 0.8. AI rows P 4, A 1; human columns P 3, A 2.
    // pₑ = 4/5·3/5 + 1/5·2/5 = 14/25 = 0.56; κ = (0.8 − 0.56) / 0.44 = 6/11.
    let overall = &report["overall"];
    assert_eq!(overall["reviewed"], 5, "{overall}");
    assert_eq!(overall["agreed"], 4);
    assert_eq!(overall["agreement_rate"].as_f64(), Some(0.8));
    let kappa = overall["kappa"].as_f64().expect("kappa");
    assert!((kappa - 6.0 / 11.0).abs() < 1e-9, "{kappa}");
    let row = |ai: &str| -> Value {
        overall["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ai"] == ai)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("PRESENT")["present"], 3);
    assert_eq!(row("PRESENT")["absent"], 1);
    assert_eq!(row("ABSENT")["absent"], 1);
    assert_eq!(row("ABSENT")["present"], 0);
    assert_eq!(row("PARTIEL")["present"], 0);

    let pts = report["points"].as_array().expect("points");
    assert_eq!(pts.len(), 3, "{report}");
    // p0: (P,P), (A,A): both agree; pₑ = ½·½ + ½·½ = ½; κ = 1.
    assert_eq!(pts[0]["index"], 0);
    assert_eq!(pts[0]["audited"], 2);
    assert_eq!(pts[0]["agreement"]["reviewed"], 2);
    assert_eq!(pts[0]["agreement"]["agreement_rate"].as_f64(), Some(1.0));
    assert_eq!(pts[0]["agreement"]["kappa"].as_f64(), Some(1.0));
    // p1: (P,A), (P,P): pₒ = ½; rows P 2; columns P 1, A 1; pₑ = ½; κ = 0.
    assert_eq!(pts[1]["agreement"]["agreement_rate"].as_f64(), Some(0.5));
    assert_eq!(pts[1]["agreement"]["kappa"].as_f64(), Some(0.0));
    // p2: one review, both PRESENT: pₑ = 1, κ undefined.
    assert_eq!(pts[2]["agreement"]["reviewed"], 1);
    assert_eq!(pts[2]["audited"], 2);
    assert_eq!(pts[2]["agreement"]["kappa"], Value::Null);
    assert_eq!(pts[2]["step_name"], "Présentation et cadre de l'appel");

    // Another window has none of these audits; a reversed one is refused.
    let tomorrow = today + chrono::Days::new(1);
    let (status, empty) = sc
        .api
        .get(
            &format!(
                "/api/reports/calibration?audit_config_id={}&from={tomorrow}&to={tomorrow}",
                config.as_str().unwrap()
            ),
            Some(&sc.auditor),
        )
        .await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["audits"], 0);
    assert_eq!(empty["overall"]["reviewed"], 0);
    assert_eq!(empty["overall"]["kappa"], Value::Null);
    let (status, body) = sc
        .api
        .get(
            &format!(
                "/api/reports/calibration?audit_config_id={}&from={tomorrow}&to={today}",
                config.as_str().unwrap()
            ),
            Some(&sc.auditor),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
