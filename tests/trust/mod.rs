//! Trust, security and operability (issue 8).

mod platform;
mod runs;
mod streams;

use crate::audit_pipeline::count;
use crate::events_stream::emit;
use crate::support::*;
use callaudit_db::testing::create_empty_database;
use std::process::{Command, Stdio};

/// The sample configuration, created through the api by a manager.
async fn sample_config(api: &TestApi) -> serde_json::Value {
    let manager = api.token_for("manager").await;
    let (status, config) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&manager),
            &serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("sample"),
        )
        .await;
    assert_eq!(status, 201, "{config}");
    config
}
