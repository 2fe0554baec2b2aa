//! What an operator reads: log lines say which audit they belong to.

use crate::audit_pipeline::Scenario;
use serde_json::Value;

/// The `audit.id` a JSON log line carries in its current span or any enclosing one.
fn audit_id_of(line: &Value) -> Option<&str> {
    fn in_span(s: &Value) -> Option<&str> {
        s.get("audit.id").and_then(Value::as_str)
    }
    line.get("span").and_then(in_span).or_else(|| {
        line.get("spans")
            .and_then(Value::as_array)
            .and_then(|spans| spans.iter().find_map(in_span))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_written_while_an_audit_runs_carry_its_audit_id() {
    let sc = Scenario::without_api_crm("jsonlog", Default::default()).await;
    let config = sc.config(2).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let worker = sc.worker_logged(&[("LOG_FORMAT", "json"), ("RUST_LOG", "info")], &log);
    let id = sc.run("FICHE-1001", &config).await;
    sc.completed(&id).await;
    drop(worker);
    let logged = std::fs::read_to_string(&log).expect("worker log");
    let _ = std::fs::remove_file(&log);
    let lines: Vec<Value> = logged
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log line in: {logged}");
    let message = |l: &Value| {
        l["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let of_audit: Vec<&Value> = lines
        .iter()
        .filter(|l| audit_id_of(l) == Some(id.as_str()))
        .collect();
    let steps: Vec<&&Value> = of_audit
        .iter()
        .filter(|l| message(l) == "step stored")
        .collect();
    assert_eq!(
        steps.len(),
        2,
        "one 'step stored' line per step of {id}: {logged}"
    );
    let mut positions: Vec<i64> = steps
        .iter()
        .filter_map(|l| l["span"]["step.position"].as_i64())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, [1, 2], "each step line names its step: {logged}");
    assert!(
        steps
            .iter()
            .all(|l| l["span"]["fiche.id"].as_str() == Some("FICHE-1001")),
        "step lines name the fiche: {logged}"
    );
    assert_eq!(
        of_audit
            .iter()
            .filter(|l| message(l) == "audit completed")
            .count(),
        1,
        "{logged}"
    );
    // Lines of that kind never float without their audit.
    assert!(
        lines
            .iter()
            .filter(|l| ["step stored", "audit completed"].contains(&message(l).as_str()))
            .all(|l| audit_id_of(l).is_some()),
        "{logged}"
    );
}
