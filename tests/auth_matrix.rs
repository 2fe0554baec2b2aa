//! The auth matrix: every `/api` operation of `/openapi.json` × {no token, a forged
//! token, an expired token, a revoked token, viewer, auditor, manager, admin}. Each
//! operation's required permissions are written below by hand; whether a role holds them
//! comes from `domain`'s RBAC table. Expected: 401 without a valid token; 403 for a role
//! lacking a permission; anything but 401/403 (and never a 5xx but the documented 503s)
//! for a role holding them. An operation missing from the table fails the test, so a new
//! route must say which permission it needs.
//!
//! Requests carry valid shapes made from the spec (path ids are random, so a permitted
//! request mostly answers 404 — after the permission check, which is what is tested).

use crate::support::*;
use callaudit_domain::rbac::{Permission, role_grants};
use serde_json::{Map, Value, json};

/// operationId → the permissions it requires (all of them). `None`: any valid token.
const REQUIRED: &[(&str, &[&str])] = &[
    ("getMe", &[]),
    ("createAuditConfig", &["audit_configs:write"]),
    ("listAuditConfigs", &["audit_configs:read"]),
    ("getAuditConfig", &["audit_configs:read"]),
    ("replaceAuditConfig", &["audit_configs:write"]),
    ("deleteAuditConfig", &["audit_configs:delete"]),
    ("runAudit", &["audits:write"]),
    ("getAudit", &["audits:read"]),
    ("cancelAudit", &["audits:write"]),
    ("streamAuditEvents", &["audits:read"]),
    ("createAuditEventsToken", &["audits:read"]),
    ("listAudits", &["audits:read"]),
    ("rerunStep", &["audits:write"]),
    ("rerunControlPoint", &["audits:write"]),
    ("listAuditReruns", &["audits:read"]),
    ("getAuditRerun", &["audits:read"]),
    ("reviewControlPoint", &["reviews:write"]),
    ("withdrawControlPointReview", &["reviews:write"]),
    ("calibrationReport", &["reviews:read"]),
    ("chatAboutAudit", &["chat:write", "audits:read"]),
    ("chatAboutFiche", &["chat:write", "fiches:read"]),
    ("getAuditChatHistory", &["chat:read", "audits:read"]),
    ("getFicheChatHistory", &["chat:read", "fiches:read"]),
    ("startBatchAudit", &["batches:write"]),
    ("getBatchAudit", &["batches:read"]),
    ("listBatchAudits", &["batches:read"]),
    ("cancelBatchAudit", &["batches:write"]),
    ("streamBatchAuditEvents", &["batches:read"]),
    ("createBatchAuditEventsToken", &["batches:read"]),
    ("startFetchJob", &["fiches:write"]),
    ("listFetchJobs", &["fiches:read"]),
    ("getFetchJob", &["fiches:read"]),
    ("streamFetchJobEvents", &["fiches:read"]),
    ("retryFetchJob", &["fiches:write"]),
    ("listFiches", &["fiches:read"]),
    ("transcribeFiche", &["transcriptions:write"]),
    ("searchSales", &["fiches:read"]),
    ("getFiche", &["fiches:read"]),
    ("erasePersonalData", &["pii:delete"]),
    ("createAutomationSchedule", &["automation:write"]),
    ("listAutomationSchedules", &["automation:read"]),
    ("getAutomationSchedule", &["automation:read"]),
    ("updateAutomationSchedule", &["automation:write"]),
    ("deleteAutomationSchedule", &["automation:write"]),
    ("runAutomationSchedule", &["automation:write"]),
    ("listAutomationRuns", &["automation:read"]),
    ("getAutomationRun", &["automation:read"]),
    ("streamAutomationRunEvents", &["automation:read"]),
    // The permission depends on the channel's job (audits:read, batches:read, fiches:read,
    // automation:read): checked per kind in tests/realtime.rs. Unconfigured here: 503.
    ("authorizePusherChannel", &[]),
];

/// Operations outside the matrix: public ones, and logout (it revokes the token it is
/// called with; tested in auth_hardening).
const NOT_IN_MATRIX: &[&str] = &["health", "ready", "metrics", "login", "logout"];

fn permission(name: &str) -> Permission {
    Permission::all()
        .find(|p| p.to_string() == name)
        .unwrap_or_else(|| panic!("no permission {name}"))
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            resolve(spec, &spec["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A minimal instance of `schema`: its required fields, each a plausible value.
fn example(spec: &Value, schema: &Value, name: &str) -> Value {
    let schema = resolve(spec, schema);
    if let Some(all) = schema["allOf"].as_array()
        && let Some(first) = all.first()
    {
        return example(spec, first, name);
    }
    if let Some(one) = schema["oneOf"].as_array().or(schema["anyOf"].as_array())
        && let Some(first) = one.first()
    {
        return example(spec, first, name);
    }
    if let Some(values) = schema["enum"].as_array()
        && let Some(v) = values.first()
    {
        return v.clone();
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("string"), Some("uuid")) => json!(uuid::Uuid::new_v4()),
        (Some("string"), Some("date" | "naive-date")) => json!("2026-11-02"),
        (Some("string"), Some("date-time")) => json!("2026-11-02T10:00:00Z"),
        (Some("string"), _) if name.contains("fiche") => json!("FICHE-1001"),
        (Some("string"), _) => json!("x"),
        (Some("integer"), _) => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        (Some("number"), _) => json!(1.0),
        (Some("boolean"), _) => json!(false),
        (Some("array"), _) => {
            let min = schema["minItems"].as_u64().unwrap_or(0);
            if min == 0 {
                json!([])
            } else {
                json!([example(spec, &schema["items"], name)])
            }
        }
        _ => {
            let mut out = Map::new();
            let props = &schema["properties"];
            for field in schema["required"].as_array().into_iter().flatten() {
                let field = field.as_str().unwrap_or_default();
                out.insert(field.to_string(), example(spec, &props[field], field));
            }
            Value::Object(out)
        }
    }
}

/// One request per operation: (operationId, method, path with parameters, JSON body).
fn requests(spec: &Value) -> Vec<(String, reqwest::Method, String, Option<Value>)> {
    let mut out = Vec::new();
    for (path, methods) in spec["paths"].as_object().expect("paths") {
        for (method, op) in methods.as_object().expect("operations") {
            let id = op["operationId"].as_str().unwrap().to_string();
            let mut url = path.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                let value = example(spec, &p["schema"], name);
                let text = match &value {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                match p["in"].as_str() {
                    Some("path") => {
                        let text = match name {
                            "position" => "1".to_string(),
                            "index" => "0".to_string(),
                            _ => text,
                        };
                        url = url.replace(&format!("{{{name}}}"), &text);
                    }
                    Some("query") if p["required"] == true => query.push(format!("{name}={text}")),
                    _ => {}
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| {
                    c.iter()
                        .find(|(k, _)| k.starts_with("application/json"))
                        .map(|(_, v)| v["schema"].clone())
                })
                .map(|s| example(spec, &s, ""));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            out.push((id, method, url, body));
        }
    }
    out
}

async fn call(
    api: &TestApi,
    req: &(String, reqwest::Method, String, Option<Value>),
    token: Option<&str>,
) -> u16 {
    let (_, method, url, body) = req;
    let mut r = api
        .http
        .request(method.clone(), format!("{}{url}", api.base))
        .timeout(std::time::Duration::from_secs(20));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send()
        .await
        .map(|resp| resp.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_answers_401_without_a_valid_token_and_403_to_a_role_without_its_permissions()
 {
    let db = test_db("auth_matrix").await;
    let queue = task_queue("auth_matrix");
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), &queue)).await;
    let spec: Value = serde_json::from_str(&callaudit_api::openapi_json()).expect("spec");
    let reqs = requests(&spec);

    let mut problems = Vec::new();
    for (id, _, _, _) in &reqs {
        if !NOT_IN_MATRIX.contains(&id.as_str()) && !REQUIRED.iter().any(|(op, _)| op == id) {
            problems.push(format!(
                "{id} is not in the auth matrix: say which permission it needs"
            ));
        }
    }
    for (op, _) in REQUIRED {
        if !reqs.iter().any(|(id, _, _, _)| id == op) {
            problems.push(format!("{op} is in the matrix but not in the spec"));
        }
    }

    // Tokens that must not open anything.
    let forged = "forged-token-0000000000000000000000000000";
    let expired = api.token_for("admin").await;
    let revoked = api.token_for("admin").await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        diesel::sql_query(
            "UPDATE api_tokens SET expires_at = now() - interval '1 minute' \
             WHERE id = (SELECT id FROM api_tokens ORDER BY created_at ASC LIMIT 1)",
        )
        .execute(&mut conn)
        .await
        .expect("expire");
    }
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&revoked),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 204, "logout");
    let roles = ["viewer", "auditor", "manager", "admin"];
    let mut tokens = Vec::new();
    for role in roles {
        tokens.push((role, api.token_for(role).await));
    }

    let mut checked = 0;
    for req in reqs
        .iter()
        .filter(|(id, ..)| !NOT_IN_MATRIX.contains(&id.as_str()))
    {
        let Some((_, required)) = REQUIRED.iter().find(|(op, _)| *op == req.0) else {
            continue;
        };
        for (who, token) in [
            ("no token", None),
            ("a forged token", Some(forged)),
            ("an expired token", Some(expired.as_str())),
            ("a revoked token", Some(revoked.as_str())),
        ] {
            let status = call(&api, req, token).await;
            if status != 401 {
                problems.push(format!("{} with {who}: {status}, want 401", req.0));
            }
            checked += 1;
        }
        for (role, token) in &tokens {
            let allowed = required.iter().all(|p| role_grants(role, permission(p)));
            let status = call(&api, req, Some(token)).await;
            let ok = if allowed {
                status != 401 && status != 403 && status != 0 && (status < 500 || status == 503)
            } else {
                status == 403
            };
            if !ok {
                problems.push(format!(
                    "{} {} as {role}: {status}, want {}",
                    req.1,
                    req.2,
                    if allowed {
                        "neither 401 nor 403 nor 5xx"
                    } else {
                        "403"
                    }
                ));
            }
            checked += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked >= 8 * 40, "{checked} requests checked");
}
