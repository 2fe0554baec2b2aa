//! Rows read back from Postgres: enum columns are parsed strictly, never guessed.

use crate::support::*;
use callaudit_db::audits;
use callaudit_db::step_results::{self, NewStepResult};
use callaudit_domain::analysis::Conformite;
use callaudit_domain::status::AuditStatus;
use diesel_async::RunQueryDsl;

#[tokio::test]
async fn a_stored_verdict_reads_back_as_itself_and_an_unknown_one_is_an_error() {
    let db = test_db("stored_rows").await;
    let mut conn = callaudit_db::establish(&db.url).await.expect("conn");
    let id = pending_audit_row(&mut conn, 2).await;
    let raw = serde_json::json!({});
    for (position, conforme) in [(1, "PARTIEL"), (2, "CONFORME")] {
        let inserted = step_results::insert(
            &mut conn,
            &NewStepResult {
                audit_id: id,
                position,
                step_name: "s",
                weight: 1.0,
                critical: false,
                score: 0.5,
                conforme,
                raw_result: &raw,
                model: None,
                prompt_tokens: 0,
                completion_tokens: 0,
            },
        )
        .await
        .expect("insert");
        assert!(inserted);
    }
    let rows = step_results::of_audit(&mut conn, id).await.expect("rows");
    let verdicts: Vec<Conformite> = rows.iter().map(|r| r.conforme).collect();
    assert_eq!(verdicts, [Conformite::Partiel, Conformite::Conforme]);
    let audit = audits::get(&mut conn, id).await.expect("get").expect("row");
    assert_eq!(audit.status, AuditStatus::Pending);
    assert_eq!(audit.steps_done, 2);

    // A value no code writes (a manual edit past a dropped check constraint, a bad
    // migration) is reported, not read as NON_CONFORME or any other verdict.
    for sql in [
        "ALTER TABLE audit_step_results DROP CONSTRAINT audit_step_results_conforme_check",
        "UPDATE audit_step_results SET conforme = 'conforme' WHERE position = 2",
    ] {
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("corrupt");
    }
    let err = step_results::of_audit(&mut conn, id)
        .await
        .expect_err("an unknown verdict must not be read");
    assert!(err.to_string().contains("conforme"), "{err}");
    for sql in [
        "ALTER TABLE audits DROP CONSTRAINT IF EXISTS audits_status_check",
        "UPDATE audits SET status = 'done'",
    ] {
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("corrupt");
    }
    assert!(audits::get(&mut conn, id).await.is_err());
}
