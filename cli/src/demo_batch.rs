//! `callaudit demo --batch`: after the single audit, a batch audit of three sample fiches
//! through `POST /api/audits/batch`, its stream followed live (`batch.started`, one
//! `batch.progress` per audit with the counts after it, `batch.completed`), then each
//! audit's outcome.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The fiches of the demo's batch (built-in fiches of the simulated CRM).
pub const DEMO_BATCH_FICHES: [&str; 3] = ["FICHE-1003", "FICHE-1004", "FICHE-1005"];

/// Runs the batch with configuration `config_id` and prints it.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    config_id: &Value,
) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{base}/api/audits/batch"))
        .bearer_auth(token)
        .json(&json!({"audit_config_id": config_id, "fiche_ids": DEMO_BATCH_FICHES, "window": 2}))
        .send()
        .await
        .context("starting the batch")?;
    let status = resp.status().as_u16();
    let accepted: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 202 {
        bail!("starting the batch failed ({status}): {accepted}");
    }
    let id = accepted["batch_id"]
        .as_str()
        .context("no batch id")?
        .to_string();
    println!(
        "\n→ batch {id} of {} fiches started, 2 audits at once (workflow {})",
        accepted["total"],
        accepted["workflow_id"].as_str().unwrap_or("?")
    );
    let started = Instant::now();
    println!("→ following its events (GET /api/audits/batch/{id}/events):");
    if let Err(e) = crate::demo::follow_stream(
        http,
        base,
        token,
        &format!("/api/audits/batch/{id}/events"),
        started,
        describe_batch,
    )
    .await
    {
        println!("  (event stream interrupted: {e:#}; polling instead)");
    }
    let batch = loop {
        let b: Value = http
            .get(format!("{base}/api/audits/batch/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .context("reading the batch")?
            .json()
            .await
            .context("batch json")?;
        match b["status"].as_str() {
            Some("pending" | "running") if started.elapsed() > Duration::from_secs(300) => {
                bail!("the batch did not finish within 5 minutes: {b}")
            }
            Some("pending" | "running") => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => break b,
        }
    };
    let c = &batch["counts"];
    println!(
        "✔ batch {} in {:.1} s — {} completed, {} failed, {} cancelled of {}",
        batch["status"].as_str().unwrap_or("?"),
        started.elapsed().as_secs_f64(),
        c["completed"],
        c["failed"],
        c["cancelled"],
        c["total"]
    );
    for item in batch["items"].as_array().into_iter().flatten() {
        println!(
            "   {}. {:<11} {:<9} score {:>5} {}  (audit {})",
            item["position"],
            item["fiche_id"].as_str().unwrap_or("?"),
            item["status"].as_str().unwrap_or("?"),
            item["score"],
            item["niveau"].as_str().unwrap_or("-"),
            item["audit_id"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

/// One line for an event of a batch's stream.
fn describe_batch(kind: &str, p: &Value) -> String {
    let c = &p["counts"];
    match kind {
        "batch.started" => format!("started, {} fiches", p["total"]),
        "batch.progress" => format!(
            "{} {} → counts: {} completed, {} failed, {} running, {} pending",
            p["item"]["fiche_id"].as_str().unwrap_or("?"),
            p["item"]["status"].as_str().unwrap_or("?"),
            c["completed"],
            c["failed"],
            c["running"],
            c["pending"]
        ),
        "batch.completed" => format!(
            "{}: {} of {} completed",
            p["status"].as_str().unwrap_or("?"),
            c["completed"],
            c["total"]
        ),
        other => other.to_string(),
    }
}
