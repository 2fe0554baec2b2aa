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
