//! Trust, security and operability (issue 8).

mod platform;
mod runs;
mod streams;

use crate::audit_pipeline::count;
use crate::events_stream::emit;
use crate::support::*;
use callaudit_db::testing::create_empty_database;
use std::process::{Command, Stdio};

/// A Temporal client on the test server, for `queue`.
async fn temporal_client(queue: &str) -> temporalio_client::Client {
    callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), queue),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("temporal")
}

/// Runs an audit of FICHE-1001 with `config` through the api; returns its id.
async fn run_audit(api: &TestApi, token: &str, config: &serde_json::Value) -> String {
    let (status, run) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(token),
            &serde_json::json!({"fiche_id": "FICHE-1001", "audit_config_id": config["id"]}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    run["audit_id"].as_str().expect("id").to_string()
}

/// A pending audit of FICHE-1001 with `steps` steps, stored straight in Postgres.
async fn pending_audit(api: &TestApi, steps: i32) -> uuid::Uuid {
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    pending_audit_row(&mut conn, steps).await
}
