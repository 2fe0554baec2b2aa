//! The global caps under failure, against a real Postgres: a holder that loses its lease
//! stops, and a permit dropped without release frees its slot at once.

use callaudit_db::testing::{TestDatabase, create_test_database};
use callaudit_upstream::heartbeat::Unsupervised;
use callaudit_upstream::leases::{self, LeaseError};
use diesel_async::RunQueryDsl;
use std::time::Duration;

async fn db(label: &str) -> (TestDatabase, callaudit_db::Pool) {
    let admin = std::env::var("CALLAUDIT_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = create_test_database(&admin, label).await.expect("test db");
    let pool = callaudit_db::connect_pool(&db.url, 4).expect("pool");
    (db, pool)
}

async fn holders(pool: &callaudit_db::Pool, name: &str) -> Vec<Option<String>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        holder: Option<String>,
    }
    let mut conn = callaudit_db::pool::get(pool).await.expect("conn");
    let rows: Vec<Row> =
        diesel::sql_query("SELECT holder FROM crm_permit_leases WHERE pool = $1 ORDER BY slot")
            .bind::<diesel::sql_types::Text, _>(name)
            .load(&mut conn)
            .await
            .expect("holders");
    rows.into_iter().map(|r| r.holder).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_whose_slot_was_taken_over_stops_its_work_instead_of_exceeding_the_cap() {
    let (_db, pool) = db("lease_lost").await;
    let permit = leases::acquire(&pool, &Unsupervised, "test_pool", 1, "me", None)
        .await
        .expect("slot");
    // Another holder takes the slot over (as after our lease ran out during a pause).
    {
        let mut conn = callaudit_db::pool::get(&pool).await.expect("conn");
        diesel::sql_query(
            "UPDATE crm_permit_leases SET holder = 'someone-else' WHERE pool = 'test_pool'",
        )
        .execute(&mut conn)
        .await
        .expect("take over");
    }
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        permit.hold(&Unsupervised, std::future::pending::<()>()),
    )
    .await
    .expect("the work must be stopped at the next extension, not run on");
    assert!(matches!(outcome, Err(LeaseError::Lost(_))), "{outcome:?}");
    permit.release().await;
    assert_eq!(
        holders(&pool, "test_pool").await,
        vec![Some("someone-else".to_string())],
        "releasing a lost permit does not free the new holder's slot"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permit_dropped_without_release_frees_its_slot_at_once() {
    let (_db, pool) = db("lease_dropped").await;
    let permit = leases::acquire(&pool, &Unsupervised, "test_pool", 1, "me", None)
        .await
        .expect("slot");
    assert!(holders(&pool, "test_pool").await[0].is_some());
    // The holder is cancelled: its future, and the permit with it, is dropped.
    drop(permit);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while holders(&pool, "test_pool").await[0].is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot stayed taken (it would only expire after the 30 s lease)"
        );
        tokio::task::yield_now().await;
    }
    // And another holder gets it without waiting for the lease to run out.
    let next = leases::acquire(
        &pool,
        &Unsupervised,
        "test_pool",
        1,
        "next",
        Some(Duration::from_secs(2)),
    )
    .await
    .expect("the freed slot");
    next.release().await;
}
