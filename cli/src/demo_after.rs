//! The demo's second part, after the audit: a control-point rerun with a reviewer's hint
//! (followed on the audit's stream) and a human review, each printing what changed.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let resp = req.send().await.context("calling the api")?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// The point to work on: the first one the audit did not find PRESENT, else the first.
fn pick(audit: &Value) -> Option<(i64, i64, Value)> {
    let steps = audit["steps"].as_array()?;
    let all = steps.iter().flat_map(|s| {
        let position = s["position"].as_i64().unwrap_or(0);
        s["control_points"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |p| (position, p["index"].as_i64().unwrap_or(0), p.clone()))
    });
    let all: Vec<_> = all.collect();
    all.iter()
        .find(|(_, _, p)| p["counted_statut"] != "PRESENT")
        .or_else(|| all.first())
        .cloned()
}

/// Reruns one control point of `audit` and reviews it; prints each change.
pub async fn rerun_and_review(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    audit: &Value,
) -> anyhow::Result<()> {
    let id = audit["id"].as_str().context("no audit id")?;
    let Some((position, index, point)) = pick(audit) else {
        return Ok(());
    };
    println!(
        "\n→ rerun of step {position}, control point {index} (\"{}\", now {}) with a reviewer's hint:",
        point["point"].as_str().unwrap_or("?"),
        point["ai_statut"].as_str().unwrap_or("?")
    );
    let (status, rerun) = call(
        http.post(format!(
            "{base}/api/audits/{id}/steps/{position}/control-points/{index}/rerun"
        ))
        .bearer_auth(token)
        .json(&json!({"instructions": "Relis tout l'appel, fin comprise, avant de conclure."})),
    )
    .await?;
    if status != 202 {
        bail!("the rerun was refused ({status}): {rerun}");
    }
    println!(
        "   POST …/control-points/{index}/rerun → 202, workflow {}",
        rerun["workflow_id"].as_str().unwrap_or("?")
    );
    let rerun_id = rerun["id"].as_str().context("no rerun id")?.to_string();
    let started = Instant::now();
    let done = loop {
        let (_, r) = call(
            http.get(format!("{base}/api/audits/{id}/reruns/{rerun_id}"))
                .bearer_auth(token),
        )
        .await?;
        match r["status"].as_str() {
            Some("completed") => break r,
            Some("failed") => bail!("the rerun failed: {}", r["error"]),
            _ if started.elapsed() > Duration::from_secs(120) => {
                bail!("the rerun did not finish within 2 minutes: {r}")
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let (_, after) = call(
        http.get(format!("{base}/api/audits/{id}"))
            .bearer_auth(token),
    )
    .await?;
    let entry = after["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["position"].as_i64() == Some(position)))
        .and_then(|s| s["raw_result"]["rerun_history"].as_array())
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or(Value::Null);
    println!(
        "   ✔ applied in {:.1} s: point {} → {}; step {:.1}, audit {} / 100, {} (rerun_history: {} by {})",
        started.elapsed().as_secs_f64(),
        entry["previous"]["statut"].as_str().unwrap_or("?"),
        entry["new"]["statut"].as_str().unwrap_or("?"),
        done["outcome"]["step_score"].as_f64().unwrap_or(0.0),
        done["outcome"]["audit_score"],
        done["outcome"]["audit_niveau"].as_str().unwrap_or("?"),
        entry["kind"].as_str().unwrap_or("?"),
        entry["by"].as_str().unwrap_or("?"),
    );

    // A reviewer who listened to the call disagrees with the AI on that point.
    let ai = entry["new"]["statut"].as_str().unwrap_or("ABSENT");
    let human = if ai == "PRESENT" {
        "PARTIEL"
    } else {
        "PRESENT"
    };
    let (status, reviewed) = call(
        http.put(format!(
            "{base}/api/audits/{id}/steps/{position}/control-points/{index}/review"
        ))
        .bearer_auth(token)
        .json(&json!({"statut": human, "comment": "Écouté : voir 02:10 de l'enregistrement."})),
    )
    .await?;
    if status != 200 {
        bail!("the review was refused ({status}): {reviewed}");
    }
    println!(
        "→ human review of the same point: {human} (AI said {ai}, kept visible) → step {:.1} {}, audit {} / 100, {}",
        reviewed["step_score"].as_f64().unwrap_or(0.0),
        reviewed["step_conforme"].as_str().unwrap_or("?"),
        reviewed["audit_score"],
        reviewed["audit_niveau"].as_str().unwrap_or("?"),
    );
    println!(
        "   (DELETE …/review withdraws it; GET /api/reports/calibration?audit_config_id={}&from=…&to=… compares AI and reviewers)",
        audit["audit_config_id"].as_str().unwrap_or("?")
    );
    Ok(())
}
