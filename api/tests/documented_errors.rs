//! Each operation documents the error statuses it can actually return, no more, no fewer
//! (`operation_errors!` in `api/src/error.rs`). The table below is written by hand from
//! each handler and what it calls: a new operation, or a status added to or dropped from
//! one, must be reflected here.

use serde_json::Value;
use std::collections::BTreeSet;

/// operationId → the error statuses (≥ 400) it documents.
///
/// 400: poem's parse errors of parameters and bodies, or the handler's own checks; 401:
/// the bearer (or stream token) check; 413 / 415: a JSON body over `API_MAX_BODY_BYTES` /
/// not sent as `application/json`; 503: Postgres (any route that checks a token or reads
/// a row), Temporal (starting or cancelling a workflow), the CRM, the stream cap; 502:
/// the CRM refusing; 500: always, except for the routes that cannot fail.
const DOCUMENTED_ERRORS: &[(&str, &[u16])] = &[
    ("health", &[]),
    ("ready", &[503]),
    ("metrics", &[]),
    ("login", &[400, 401, 413, 415, 429, 500, 503]),
    ("logout", &[401, 500, 503]),
    ("getMe", &[401, 500, 503]),
    (
        "createAuditConfig",
        &[400, 401, 403, 413, 415, 422, 500, 503],
    ),
    ("listAuditConfigs", &[401, 403, 500, 503]),
    ("getAuditConfig", &[400, 401, 403, 404, 500, 503]),
    (
        "replaceAuditConfig",
        &[400, 401, 403, 404, 413, 415, 422, 500, 503],
    ),
    ("deleteAuditConfig", &[400, 401, 403, 404, 409, 500, 503]),
    (
        "runAudit",
        &[400, 401, 403, 404, 409, 413, 415, 422, 500, 502, 503],
    ),
    ("getAudit", &[400, 401, 403, 404, 500, 503]),
    ("cancelAudit", &[400, 401, 403, 404, 409, 500, 503]),
    ("streamAuditEvents", &[400, 401, 403, 404, 500, 503]),
    ("createAuditEventsToken", &[400, 401, 403, 404, 500, 503]),
    ("listAudits", &[400, 401, 403, 500, 503]),
    ("searchSales", &[400, 401, 403, 500, 502, 503]),
    ("getFiche", &[400, 401, 403, 404, 500, 502, 503]),
    ("listFiches", &[400, 401, 403, 500, 503]),
    ("transcribeFiche", &[400, 401, 403, 404, 500, 502, 503]),
    ("startFetchJob", &[400, 401, 403, 413, 415, 422, 500, 503]),
    ("listFetchJobs", &[400, 401, 403, 500, 503]),
    ("getFetchJob", &[400, 401, 403, 404, 500, 503]),
    ("streamFetchJobEvents", &[400, 401, 403, 404, 500, 503]),
    ("retryFetchJob", &[400, 401, 403, 404, 409, 500, 503]),
    (
        "chatAboutAudit",
        &[400, 401, 403, 404, 413, 415, 422, 500, 503],
    ),
    (
        "chatAboutFiche",
        &[400, 401, 403, 404, 413, 415, 422, 500, 502, 503],
    ),
    ("getAuditChatHistory", &[400, 401, 403, 404, 500, 503]),
    ("getFicheChatHistory", &[400, 401, 403, 404, 500, 503]),
    ("rerunStep", &[400, 401, 403, 404, 409, 413, 415, 500, 503]),
    (
        "rerunControlPoint",
        &[400, 401, 403, 404, 409, 413, 415, 500, 503],
    ),
    ("listAuditReruns", &[400, 401, 403, 404, 500, 503]),
    ("getAuditRerun", &[400, 401, 403, 404, 500, 503]),
    (
        "reviewControlPoint",
        &[400, 401, 403, 404, 409, 413, 415, 500, 503],
    ),
    (
        "withdrawControlPointReview",
        &[400, 401, 403, 404, 409, 500, 503],
    ),
    ("calibrationReport", &[400, 401, 403, 500, 503]),
    (
        "startBatchAudit",
        &[400, 401, 403, 404, 409, 413, 415, 422, 500, 503],
    ),
    ("getBatchAudit", &[400, 401, 403, 404, 500, 503]),
    ("listBatchAudits", &[400, 401, 403, 500, 503]),
    ("cancelBatchAudit", &[400, 401, 403, 404, 409, 500, 503]),
    ("streamBatchAuditEvents", &[400, 401, 403, 404, 500, 503]),
    (
        "createBatchAuditEventsToken",
        &[400, 401, 403, 404, 500, 503],
    ),
    ("erasePersonalData", &[400, 401, 403, 404, 500, 503]),
    (
        "createAutomationSchedule",
        &[400, 401, 403, 413, 415, 422, 500, 503],
    ),
    ("listAutomationSchedules", &[400, 401, 403, 500, 503]),
    ("getAutomationSchedule", &[400, 401, 403, 404, 500, 503]),
    (
        "updateAutomationSchedule",
        &[400, 401, 403, 404, 413, 415, 422, 500, 503],
    ),
    ("deleteAutomationSchedule", &[400, 401, 403, 404, 500, 503]),
    (
        "runAutomationSchedule",
        &[400, 401, 403, 404, 409, 500, 503],
    ),
    ("listAutomationRuns", &[400, 401, 403, 500, 503]),
    ("getAutomationRun", &[400, 401, 403, 404, 500, 503]),
    ("streamAutomationRunEvents", &[400, 401, 403, 404, 500, 503]),
    (
        "authorizePusherChannel",
        &[400, 401, 403, 404, 413, 415, 500, 503],
    ),
];

/// Every operation of the spec: (operationId, "METHOD path", operation).
fn operations() -> Vec<(String, String, Value)> {
    let spec: Value = serde_json::from_str(&callaudit_api::openapi_json()).expect("json");
    let mut ops = Vec::new();
    for (path, methods) in spec["paths"].as_object().expect("paths") {
        for (method, op) in methods.as_object().expect("operations") {
            let id = op["operationId"].as_str().expect("operationId").to_string();
            ops.push((id, format!("{} {path}", method.to_uppercase()), op.clone()));
        }
    }
    ops
}

fn error_statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(|s| s.parse::<u16>().expect("numeric status"))
        .filter(|s| *s >= 400)
        .collect()
}

#[test]
fn every_operation_documents_exactly_the_error_statuses_of_the_table() {
    let mut problems = Vec::new();
    let ops = operations();
    for (id, route, op) in &ops {
        let documented = error_statuses(op);
        match DOCUMENTED_ERRORS.iter().find(|(name, _)| name == id) {
            None => problems.push(format!(
                "{id} ({route}) is not in DOCUMENTED_ERRORS; it documents {documented:?}: \
                 declare its errors with operation_errors! and add it to the table"
            )),
            Some((_, expected)) => {
                let expected: BTreeSet<u16> = expected.iter().copied().collect();
                if documented != expected {
                    problems.push(format!(
                        "{id} ({route}) documents {documented:?}, the table says {expected:?}"
                    ));
                }
            }
        }
    }
    for (name, _) in DOCUMENTED_ERRORS {
        if !ops.iter().any(|(id, _, _)| id == name) {
            problems.push(format!("{name} is in the table but not in the spec"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_login_documents_429_and_it_documents_retry_after() {
    let throttled: Vec<String> = operations()
        .into_iter()
        .filter(|(_, _, op)| error_statuses(op).contains(&429))
        .map(|(id, _, op)| {
            let header = &op["responses"]["429"]["headers"]["RETRY-AFTER"];
            assert_eq!(header["schema"]["type"], "integer", "{id}: {op}");
            assert_eq!(header["required"], true, "{id}");
            id
        })
        .collect();
    assert_eq!(throttled, ["login"]);
}

#[test]
fn every_documented_error_has_its_own_description_and_the_json_error_body() {
    for (id, route, op) in operations() {
        for status in error_statuses(&op) {
            let response = &op["responses"][status.to_string()];
            let description = response["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{id} {status} has no description");
            let schema = &response["content"]["application/json; charset=utf-8"]["schema"];
            let expected = if id == "ready" {
                "#/components/schemas/Readiness"
            } else {
                "#/components/schemas/ErrorBody"
            };
            assert_eq!(
                schema["$ref"], expected,
                "{id} ({route}) {status}: {response}"
            );
        }
    }
    // What a 404 means is the operation's own, not one sentence shared by all.
    let not_found = |name: &str| {
        let (_, _, op) = operations()
            .into_iter()
            .find(|(id, _, _)| id == name)
            .expect(name);
        op["responses"]["404"]["description"]
            .as_str()
            .expect("404")
            .to_string()
    };
    assert_eq!(not_found("getAudit"), "No audit with this id.");
    assert_eq!(
        not_found("getAuditConfig"),
        "No configuration with this id."
    );
    assert_eq!(not_found("getFiche"), "The CRM does not know this fiche.");
}
