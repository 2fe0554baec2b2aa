//! The OpenAPI document is part of the contract: it must match the committed snapshot.
//! After an intended change: `UPDATE_SNAPSHOTS=1 cargo test -p callaudit-api --test openapi_snapshot`.

#[test]
fn openapi_spec_matches_the_committed_snapshot() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.snapshot.json");
    let current = callaudit_api::openapi_json();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &current).expect("write snapshot");
        return;
    }
    let committed = std::fs::read_to_string(path)
        .expect("api/openapi.snapshot.json missing: run with UPDATE_SNAPSHOTS=1 once");
    assert!(
        committed == current,
        "the OpenAPI spec changed; review it and rerun with UPDATE_SNAPSHOTS=1 to accept"
    );
}

#[test]
fn every_api_route_declares_bearer_auth_except_login() {
    let spec: serde_json::Value =
        serde_json::from_str(&callaudit_api::openapi_json()).expect("json");
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/") || path == "/api/auth/login" {
            continue;
        }
        for (method, op) in ops.as_object().expect("ops") {
            assert!(
                op.get("security").is_some(),
                "{method} {path} has no security requirement"
            );
        }
    }
}

#[test]
fn every_operation_has_a_stable_unique_operation_id() {
    let spec: serde_json::Value =
        serde_json::from_str(&callaudit_api::openapi_json()).expect("json");
    let mut seen = std::collections::BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("ops") {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric())
                    && id.chars().next().is_some_and(|c| c.is_ascii_lowercase()),
                "{method} {path}: operationId {id:?} is not lowerCamelCase"
            );
            assert!(seen.insert(id.to_string()), "operationId {id} used twice");
        }
    }
    // Which operations exist is pinned by the table of tests/documented_errors.rs (every
    // operation of the spec is in it, and nothing else).
    assert!(!seen.is_empty());
}
