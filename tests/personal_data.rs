//! Personal data at rest, end to end: erasing a fiche's personal data on request.
//!
//! FICHE-1002's client is Roger Girard, roger.girard@example.fr, 06 45 78 12 90, born on
//! 1948-09-23 ("le vingt-trois septembre mille neuf cent quarante-huit" in the call).

use crate::audit_pipeline::{Scenario, count};
use crate::reruns::{post, set_sim};
use crate::support::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::{Value, json};

/// What of FICHE-1002's client can be found anywhere.
const KNOWN: &[&str] = &[
    "Girard",
    "roger.girard@example.fr",
    "0645781290",
    "06 45 78 12 90",
    "1948-09-23",
    "vingt-trois septembre",
];

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

/// Every (table.column, value) of the database's text and jsonb columns that holds one
/// of `values` (case-insensitively).
async fn places_holding(db_url: &str, values: &[&str]) -> Vec<String> {
    let mut conn = diesel_async::AsyncPgConnection::establish(db_url)
        .await
        .expect("connect");
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'character varying') \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .expect("columns");
    assert!(
        columns.len() > 40,
        "the schema's text columns: {}",
        columns.len()
    );
    let mut hits = Vec::new();
    for c in &columns {
        for v in values {
            let n = count(
                db_url,
                &format!(
                    "SELECT count(*) AS n FROM \"{}\" WHERE \"{}\"::text ILIKE '%{}%'",
                    c.table_name,
                    c.column_name,
                    v.replace('\'', "''")
                ),
            )
            .await;
            if n > 0 {
                hits.push(format!(
                    "{}.{} holds {v:?} ({n})",
                    c.table_name, c.column_name
                ));
            }
        }
    }
    hits
}

async fn erase(sc: &Scenario, token: &str, fiche: &str) -> (u16, Value) {
    sc.api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/fiches/{fiche}/personal-data"),
            Some(token),
            &Value::Null,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_fiches_personal_data_keeps_its_audit_summary_and_leaves_no_value_in_the_database()
 {
    let sc = Scenario::without_api_crm("erasure", Default::default()).await;
    let config = sc.config(2).await;
    let _w = sc.worker(&[]);
    let id = sc.run("FICHE-1002", &config).await;
    let before = sc.completed(&id).await;
    assert_eq!(before["score"].as_f64(), Some(33.3), "{before}");
    // A review and a rerun whose words name the client, and a chat about the audit.
    let (status, body) = sc
        .api
        .send(
            reqwest::Method::PUT,
            &format!("/api/audits/{id}/steps/1/control-points/0/review"),
            Some(&sc.auditor),
            &json!({"statut": "PRESENT", "comment": "M. Girard confirme"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, rerun) = post(
        &sc,
        &format!("/api/audits/{id}/steps/1/control-points/2/rerun"),
        &sc.auditor,
        &json!({"instructions": "Girard Roger donne sa date de naissance"}),
    )
    .await;
    assert_eq!(status, 202, "{rerun}");
    wait_for("the rerun", std::time::Duration::from_secs(60), || async {
        let (_, r) = sc
            .api
            .get(&format!("/api/audits/{id}/reruns"), Some(&sc.auditor))
            .await;
        (r["items"][0]["status"] == "completed").then_some(())
    })
    .await;
    let mut conn = diesel_async::AsyncPgConnection::establish(&sc.db.url)
        .await
        .expect("connect");
    diesel::sql_query(format!(
        "WITH u AS (SELECT id FROM users LIMIT 1), c AS ( \
           INSERT INTO chat_conversations (id, audit_id, user_id) \
           SELECT gen_random_uuid(), '{id}', u.id FROM u RETURNING id) \
         INSERT INTO chat_messages (conversation_id, role, content) \
         SELECT c.id, r, t FROM c, (VALUES ('user', 'Que dit Roger Girard ?'), \
           ('assistant', 'Il dit « Girard Roger, né le vingt-trois septembre »')) AS m(r, t)"
    ))
    .execute(&mut conn)
    .await
    .expect("chat");
    drop(conn);
    let steps_before = sc.audit(&id).await["steps"].clone();

    let held = places_holding(&sc.db.url, KNOWN).await;
    for table in [
        "transcriptions",
        "fiches",
        "audit_step_results",
        "chat_messages",
        "audit_reruns",
    ] {
        assert!(
            held.iter().any(|h| h.starts_with(&format!("{table}."))),
            "before erasure {table} holds the client's data: {held:?}"
        );
    }

    // Only admins may erase.
    let viewer = sc.api.token_for("viewer").await;
    assert_eq!(erase(&sc, &viewer, "FICHE-1002").await.0, 403);
    assert_eq!(erase(&sc, &sc.manager, "FICHE-1002").await.0, 403);
    let admin = sc.api.token_for("admin").await;
    assert_eq!(erase(&sc, &admin, "FICHE-0404").await.0, 404);
    assert_eq!(erase(&sc, &admin, "...").await.0, 400);

    let (status, erased) = erase(&sc, &admin, "FICHE-1002").await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(
        erased["transcripts"], 1,
        "FICHE-1002 has one recording: {erased}"
    );
    assert_eq!(erased["audio_urls"], 1);
    assert_eq!(erased["chat_messages"], 2);
    assert_eq!(
        erased["step_results"], 3,
        "2 steps + 1 rerun analysis: {erased}"
    );
    assert_eq!(erased["fiche_details"], 1);

    let held = places_holding(&sc.db.url, KNOWN).await;
    assert!(
        held.is_empty(),
        "personal data left after erasure: {held:?}"
    );

    // The audit still adds up: same summary, same scores and verdicts per point.
    let after = sc.audit(&id).await;
    // The review kept step 1 CONFORME (PRESENT reviewed PRESENT); step 2 is NON_CONFORME:
    // 100 × 10 / 30 = 33.3, REJET — as before the erasure.
    assert_eq!(after["score"].as_f64(), Some(33.3), "{after}");
    assert_eq!(after["niveau"], "REJET");
    for (b, a) in steps_before
        .as_array()
        .unwrap()
        .iter()
        .zip(after["steps"].as_array().unwrap())
    {
        assert_eq!(a["score"], b["score"]);
        assert_eq!(a["conforme"], b["conforme"]);
        let statuts = |s: &Value| -> Vec<Value> {
            s["control_points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| json!([p["ai_statut"], p["counted_statut"]]))
                .collect()
        };
        assert_eq!(statuts(a), statuts(b));
    }
    assert_eq!(
        after["steps"][0]["raw_result"]["points_controle"][0]["citations"][0]["quote"],
        "[effacé]"
    );

    // Idempotent, logged, announced.
    let (status, again) = erase(&sc, &admin, "FICHE-1002").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            again["transcripts"].as_u64(),
            again["chat_messages"].as_u64(),
            again["fiche_details"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM pii_access_log WHERE action = 'erase' AND subject_id = 'FICHE-1002' AND user_email LIKE 'admin-%'").await,
        2
    );
    assert_eq!(
        count(&sc.db.url, "SELECT count(*) AS n FROM events WHERE topic = 'personal_data' AND type = 'personal_data.erased'").await,
        2
    );

    // A later audit of the fiche fetches it from the CRM and transcribes it again.
    let stats = sc.sim_stats().await;
    set_sim(&sc, json!({})).await;
    let again = sc.run("FICHE-1002", &config).await;
    let done = sc.completed(&again).await;
    assert_eq!(done["score"].as_f64(), Some(33.3));
    let now = sc.sim_stats().await;
    assert_eq!(
        now["crm_detail_requests"].as_u64().unwrap(),
        stats["crm_detail_requests"].as_u64().unwrap() + 1
    );
    assert_eq!(
        now["stt_requests"].as_u64().unwrap(),
        stats["stt_requests"].as_u64().unwrap() + 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retention_run_purges_exactly_what_is_older_than_the_limits() {
    let sc = Scenario::without_api_crm("retention", Default::default()).await;
    let config = sc.config(6).await;
    // Limits of 30 days (transcripts), 7 (chat) and 90 (audio URLs); the schedule's own
    // cron never fires during the test: the run is triggered.
    let _w = sc.worker(&[
        ("RETENTION_DAYS_TRANSCRIPTS", "30"),
        ("RETENTION_DAYS_CHAT", "7"),
        ("RETENTION_DAYS_AUDIO_URLS", "90"),
        ("RETENTION_CRON", "0 3 1 1 *"),
        // The LLM reads the calls as said, so the stored citations hold personal values
        // that retention must redact.
        ("PII_REDACTION", "off"),
    ]);
    let a = sc.run("FICHE-1001", &config).await;
    let audit = sc.completed(&a).await;
    let b = sc.run("FICHE-1002", &config).await;
    sc.completed(&b).await;
    // FICHE-1001's step 6 quotes the client confirming her e-mail and phone number.
    let mut conn = diesel_async::AsyncPgConnection::establish(&sc.db.url)
        .await
        .expect("connect");
    for sql in [
        // REC-1001-1 transcribed 31 days ago (goes), REC-1001-2 29 days ago (stays),
        // REC-1002-1 now (stays).
        "UPDATE transcriptions SET completed_at = now() - interval '31 days' WHERE recording_id = 'REC-1001-1'".to_string(),
        "UPDATE transcriptions SET completed_at = now() - interval '29 days' WHERE recording_id = 'REC-1001-2'".to_string(),
        // Audio URL of REC-1002-1 stored 91 days ago (goes), the others now (stay).
        "UPDATE recordings SET created_at = now() - interval '91 days' WHERE recording_id = 'REC-1002-1'".to_string(),
        // Two chat messages 8 days old (go), one 6 days old (stays).
        format!(
            "WITH u AS (SELECT id FROM users LIMIT 1), c AS ( \
               INSERT INTO chat_conversations (id, audit_id, user_id) \
               SELECT gen_random_uuid(), '{a}', u.id FROM u RETURNING id) \
             INSERT INTO chat_messages (conversation_id, role, content, created_at) \
             SELECT c.id, r, t, now() - d * interval '1 day' FROM c, \
               (VALUES ('user', 'q1', 8), ('assistant', 'a1', 8), ('user', 'q2', 6)) AS m(r, t, d)"
        ),
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.expect("backdate");
    }
    drop(conn);
    let quoted = |v: &str| {
        format!(
            "SELECT count(*) AS n FROM audit_step_results WHERE audit_id = '{a}' AND raw_result::text ILIKE '%{v}%'"
        )
    };
    assert!(
        count(&sc.db.url, &quoted("arobase example point fr")).await > 0,
        "the citation quotes the e-mail"
    );

    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let schedule = client.get_schedule_handle(format!("callaudit-retention:{}", sc.queue));
    schedule
        .trigger(
            temporalio_client::schedules::ScheduleOverlapPolicy::AllowAll,
            Default::default(),
        )
        .await
        .expect("the worker created the retention schedule");
    let purged = "SELECT count(*) AS n FROM events WHERE topic = 'personal_data' AND type = 'personal_data.purged'";
    wait_for(
        "the retention run",
        std::time::Duration::from_secs(60),
        || async { (count(&sc.db.url, purged).await == 1).then_some(()) },
    )
    .await;

    let db = sc.db.url.clone();
    let left = |sql: &'static str| {
        let db = db.clone();
        async move { count(&db, sql).await }
    };
    assert_eq!(
        left("SELECT count(*) AS n FROM transcriptions WHERE recording_id = 'REC-1001-1'").await,
        0
    );
    assert_eq!(left("SELECT count(*) AS n FROM transcriptions WHERE recording_id IN ('REC-1001-2', 'REC-1002-1')").await, 2);
    assert_eq!(left("SELECT count(*) AS n FROM chat_messages").await, 1);
    assert_eq!(
        left("SELECT count(*) AS n FROM chat_messages WHERE content = 'q2'").await,
        1
    );
    assert_eq!(
        left("SELECT count(*) AS n FROM recordings WHERE url = ''").await,
        1
    );
    assert_eq!(
        left("SELECT count(*) AS n FROM recordings WHERE recording_id = 'REC-1002-1' AND url = ''")
            .await,
        1
    );
    assert_eq!(
        left("SELECT count(*) AS n FROM pii_access_log WHERE action = 'purge' AND subject_kind = 'retention'").await,
        1
    );
    // The event says exactly that.
    #[derive(diesel::QueryableByName)]
    struct Payload {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&sc.db.url)
        .await
        .expect("connect");
    let p: Vec<Payload> =
        diesel::sql_query("SELECT payload FROM events WHERE type = 'personal_data.purged'")
            .load(&mut conn)
            .await
            .expect("payload");
    let removed = &p[0].payload["removed"];
    assert_eq!(removed["transcripts"], 1, "{removed}");
    assert_eq!(removed["chat_messages"], 2);
    assert_eq!(removed["audio_urls"], 1);

    // FICHE-1001's audit keeps its scores and verdicts; its citations keep their words but
    // not the client's e-mail and phone number.
    let after = sc.audit(&a).await;
    assert_eq!(after["score"], audit["score"]);
    for (x, y) in audit["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["steps"].as_array().unwrap())
    {
        assert_eq!(x["score"], y["score"]);
        assert_eq!(x["conforme"], y["conforme"]);
    }
    assert_eq!(
        count(&sc.db.url, &quoted("arobase example point fr")).await,
        0
    );
    assert_eq!(
        count(&sc.db.url, &quoted("zéro six douze trente-quatre")).await,
        0
    );
    assert!(
        count(&sc.db.url, &quoted("Je confirme vos coordonnées")).await > 0,
        "the rest of the quote stays"
    );
}

/// Records `tests/histories/retention.json` from a real run, with
/// `CALLAUDIT_RECORD_HISTORIES=retention`:
/// `CALLAUDIT_RECORD_HISTORIES=retention cargo test -p callaudit --test e2e personal_data::record -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately"]
async fn record() {
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "retention" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=retention"
    );
    let sc = Scenario::without_api_crm("record_retention", Default::default()).await;
    let _w = sc.worker(&[]);
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let id = format!("retention:{}", sc.queue);
    let handle = client
        .start_workflow(
            callaudit_workflows::RetentionWorkflow::run,
            callaudit_domain::personal_data::RetentionLimits {
                transcripts_days: Some(30),
                chat_days: Some(7),
                audio_urls_days: None,
            },
            temporalio_client::WorkflowStartOptions::new(sc.queue.clone(), id.clone()).build(),
        )
        .await
        .expect("start");
    temporalio_client::WorkflowHandle::get_result(&handle, Default::default())
        .await
        .expect("result");
    let json = crate::replay::fetch(&client, &id, None).await;
    std::fs::write(crate::replay::history_path("retention.json"), json).expect("write");
}
