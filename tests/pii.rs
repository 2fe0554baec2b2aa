//! Personal data never reaches the LLM (`PII_REDACTION=prompts`, the default), and
//! redaction changes no verdict.
//!
//! FICHE-1011's call holds an IBAN (read out twice), a birth date, a phone number and an
//! e-mail address, all said as speech-to-text writes them.

use crate::audit_pipeline::Scenario;
use crate::reruns::post;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const VALUES: &[&str] = &[
    "FR7630006000011234567890189",
    "0698765432",
    "camille.lefevre@example.fr",
    "1984-02-17",
];

async fn llm_requests(sc: &Scenario) -> Vec<Value> {
    let v: Value = reqwest::get(format!("http://{}/_sim/llm/requests", sc.sim))
        .await
        .expect("requests")
        .json()
        .await
        .expect("json");
    v["requests"].as_array().cloned().unwrap_or_default()
}

async fn reset(sc: &Scenario) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/_sim/reset-stats", sc.sim))
        .send()
        .await
        .expect("reset");
    assert!(r.status().is_success());
}

/// Which of `requests` (as the LLM received them) hold a known personal value.
fn leaking(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.to_string())
        .filter(|r| callaudit_domain::pii::contains_known_value(r, VALUES))
        .map(|r| r.chars().take(200).collect())
        .collect()
}

/// Per step: score, verdict, and per point its status and the recordings and times of
/// its verified citations (the words of a quote differ by placeholders, not where it is).
fn verdicts(audit: &Value) -> Vec<Value> {
    audit["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let points: Vec<Value> = s["raw_result"]["points_controle"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let verified: Vec<Value> = p["citation_checks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["verdict"] == "VERIFIED")
                        .map(|c| json!([c["recording_id"], c["matched_start_s"]]))
                        .collect();
                    json!({"statut": p["statut"], "verified": verified})
                })
                .collect();
            json!({"position": s["position"], "score": s["score"], "conforme": s["conforme"], "points": points})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_personal_value_of_a_fiche_reaches_the_llm_and_redaction_changes_no_verdict() {
    let sc = Scenario::without_api_crm("pii", Default::default()).await;
    let config = sc.config(6).await;
    let run = |use_rlm: bool| json!({"fiche_id": "FICHE-1011", "audit_config_id": config, "use_rlm": use_rlm});

    // Redaction off: the LLM reads the call as said (the check below sees it).
    let off = sc.worker(&[("PII_REDACTION", "off")]);
    let a = sc.run_body(&run(false)).await["audit_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = sc.completed(&a).await;
    let b = sc.run_body(&run(true)).await["audit_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain_tools = sc.completed(&b).await;
    let sent = llm_requests(&sc).await;
    assert!(!sent.is_empty());
    assert!(
        !leaking(&sent).is_empty(),
        "with redaction off the calls' personal data reaches the LLM"
    );
    assert!(
        sent.iter()
            .any(|r| r.to_string().contains("dix-sept février"))
    );
    drop(off);

    // The default: prompts redacted.
    reset(&sc).await;
    let _on = sc.worker(&[]);
    let c = sc.run_body(&run(false)).await["audit_id"]
        .as_str()
        .unwrap()
        .to_string();
    let redacted = sc.completed(&c).await;
    let d = sc.run_body(&run(true)).await["audit_id"]
        .as_str()
        .unwrap()
        .to_string();
    let redacted_tools = sc.completed(&d).await;
    assert!(
        sc.sim_stats().await["llm_tool_calls"].as_u64().unwrap() > 0,
        "tools mode ran"
    );
    // A rerun whose reviewer's hint names the birth date.
    let (status, rerun) = post(
        &sc,
        &format!("/api/audits/{c}/steps/1/control-points/2/rerun"),
        &sc.auditor,
        &json!({"instructions": "Elle est née le 17/02/1984, vérifie la date de naissance."}),
    )
    .await;
    assert_eq!(status, 202, "{rerun}");
    wait_for("the rerun", Duration::from_secs(60), || async {
        let (_, r) = sc
            .api
            .get(&format!("/api/audits/{c}/reruns"), Some(&sc.auditor))
            .await;
        (r["items"][0]["status"] == "completed").then_some(())
    })
    .await;

    // A chat about the fiche, whose question says the phone number again.
    let mut settings = api_settings(
        &sc.db.url,
        temporal_settings(&temporal_address(), &sc.queue),
        None,
        3,
    );
    settings.chat = Some(callaudit_api::state::ChatLlm {
        client: callaudit_upstream::openai::OpenAiClient::new(
            &format!("http://{}/openai/v1", sc.sim),
            callaudit_domain::secret::Secret::normalized("sim-llm"),
            Duration::from_secs(30),
        ),
        model: "gpt-4.1-mini".into(),
        pii_redaction: callaudit_domain::personal_data::PiiRedaction::Prompts,
    });
    let chat_api = spawn_api_from(settings).await;
    let token = chat_api.token_for("auditor").await;
    let answer = chat_api
        .http
        .post(format!("{}/api/fiches/FICHE-1011/chat", chat_api.base))
        .bearer_auth(&token)
        .json(&json!({"message": "Son numéro est bien le 06 98 76 54 32 ? Et son IBAN ?"}))
        .send()
        .await
        .expect("chat")
        .text()
        .await
        .expect("stream");
    assert!(answer.contains("chat.completed"), "{answer}");

    let sent = llm_requests(&sc).await;
    // 6 steps in prompt mode, at least 12 requests in tools mode, 1 rerun, 1 chat.
    assert!(sent.len() >= 20, "{} requests", sent.len());
    assert!(
        sent.iter().any(|r| r.to_string().contains("[IBAN_1]")),
        "the LLM saw the placeholders"
    );
    assert_eq!(
        leaking(&sent),
        Vec::<String>::new(),
        "personal values sent to the LLM"
    );
    // A birth date said with its month's name, which the digit comparison cannot see.
    let said = sent
        .iter()
        .filter(|r| r.to_string().to_lowercase().contains("dix-sept février"))
        .count();
    assert_eq!(said, 0, "the spoken birth date reached the LLM");

    // Redaction changes no verdict: the same scores, statuses and verified citations
    // (found in the same recordings at the same times) in both modes.
    assert_eq!(verdicts(&redacted), verdicts(&plain));
    assert_eq!(verdicts(&redacted_tools), verdicts(&plain_tools));
    assert_eq!(redacted["score"], plain["score"]);
    assert_eq!(redacted_tools["score"], plain_tools["score"]);
    // The citations stored for the redacted audit hold placeholders, not the values.
    let stored = redacted["steps"].to_string();
    assert!(
        !callaudit_domain::pii::contains_known_value(&stored, VALUES),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_stored_redaction_transcripts_are_kept_redacted_at_rest() {
    let sc = Scenario::without_api_crm("pii_stored", Default::default()).await;
    let config = sc.config(6).await;
    let _w = sc.worker(&[("PII_REDACTION", "stored")]);
    let id = sc.run("FICHE-1011", &config).await;
    let audit = sc.completed(&id).await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        body: String,
    }
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = diesel_async::AsyncPgConnection::establish(&sc.db.url)
        .await
        .expect("connect");
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT coalesce(text, '') || ' ' || coalesce(words::text, '') AS body FROM transcriptions \
         WHERE recording_id = 'REC-1011-1'",
    )
    .load(&mut conn)
    .await
    .expect("transcript");
    assert_eq!(rows.len(), 1);
    let stored = &rows[0].body;
    assert!(
        stored.contains("[IBAN_1]") && stored.contains("[TELEPHONE_1]"),
        "{stored}"
    );
    assert!(!callaudit_domain::pii::contains_known_value(stored, VALUES));
    assert!(!stored.to_lowercase().contains("dix-sept février"));
    // The audit still finds what the call says (the recording's words are all there but
    // the values): step 6 confirms the e-mail and the phone number.
    let step6 = &audit["steps"][5];
    assert_eq!(
        step6["raw_result"]["points_controle"][0]["statut"], "PRESENT",
        "{step6}"
    );
}

/// The quotes of step 6 ("Conclusion et confirmation des coordonnées") as `token` sees
/// them.
async fn step6_quotes(sc: &Scenario, token: &str, audit: &str) -> String {
    let (status, a) = sc
        .api
        .get(&format!("/api/audits/{audit}"), Some(token))
        .await;
    assert_eq!(status, 200, "{a}");
    a["steps"][5]["raw_result"]["points_controle"][0]["citations"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_sees_placeholders_an_admin_the_values_and_the_admins_read_is_logged() {
    let sc = Scenario::without_api_crm("pii_read", Default::default()).await;
    let config = sc.config(6).await;
    let viewer = sc.api.token_for("viewer").await;
    let admin = sc.api.token_for("admin").await;
    let reads = "SELECT count(*) AS n FROM pii_access_log WHERE action = 'read'";

    // Stored as said (redaction off): the viewer gets placeholders, the admin the words.
    let off = sc.worker(&[("PII_REDACTION", "off")]);
    let plain = sc.run("FICHE-1011", &config).await;
    sc.completed(&plain).await;
    drop(off);
    let seen = step6_quotes(&sc, &viewer, &plain).await;
    assert!(
        seen.contains("[EMAIL_1]") && seen.contains("[TELEPHONE_1]"),
        "{seen}"
    );
    assert!(
        !callaudit_domain::pii::contains_known_value(&seen, VALUES),
        "{seen}"
    );
    assert_eq!(
        crate::audit_pipeline::count(&sc.db.url, reads).await,
        0,
        "a redacted read is not logged"
    );
    let seen = step6_quotes(&sc, &admin, &plain).await;
    assert!(
        seen.contains("camille point lefevre arobase example point fr"),
        "{seen}"
    );
    assert_eq!(crate::audit_pipeline::count(&sc.db.url, reads).await, 1);

    // Stored with placeholders (what the LLM saw): the admin gets the values back.
    let _on = sc.worker(&[]);
    let redacted = sc.run("FICHE-1011", &config).await;
    sc.completed(&redacted).await;
    let seen = step6_quotes(&sc, &viewer, &redacted).await;
    assert!(seen.contains("[EMAIL_1]"), "{seen}");
    let seen = step6_quotes(&sc, &admin, &redacted).await;
    assert!(
        callaudit_domain::pii::contains_known_value(&seen, &["camille.lefevre@example.fr"]),
        "{seen}"
    );
    assert!(!seen.contains("[EMAIL_1]"), "{seen}");
    assert_eq!(
        crate::audit_pipeline::count(
            &sc.db.url,
            &format!(
                "SELECT count(*) AS n FROM pii_access_log WHERE action = 'read' \
                 AND subject_kind = 'audit' AND subject_id = '{redacted}' AND user_email LIKE 'admin-%'"
            )
        )
        .await,
        1,
        "who read what is in the access log"
    );
}
