//! `callaudit demo`: drives a running api the way a user would — waits for readiness,
//! logs in, loads the sample audit configuration, runs one audit of a sample fiche and
//! prints its summary with a link to the run in the Temporal UI.

use crate::config::DemoArgs;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn call(
    http: &reqwest::Client,
    req: reqwest::RequestBuilder,
) -> anyhow::Result<(u16, Value)> {
    let _ = http;
    let resp = req.send().await.context("calling the api")?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.api_url.trim_end_matches('/');
    let password = crate::config::present(&args.password)
        .context("missing AUTH_SEED_ADMIN_PASSWORD (the demo logs in as the seeded admin)")?;

    println!("→ waiting for {base}/ready (Postgres + Temporal)");
    let started = Instant::now();
    loop {
        match call(&http, http.get(format!("{base}/ready"))).await {
            Ok((200, _)) => break,
            Ok((_, body)) if started.elapsed() > Duration::from_secs(90) => {
                bail!("api not ready: {body}")
            }
            Err(e) if started.elapsed() > Duration::from_secs(90) => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }

    let (status, login) = call(
        &http,
        http.post(format!("{base}/api/auth/login"))
            .json(&json!({"email": args.email, "password": password.expose()})),
    )
    .await?;
    if status != 200 {
        bail!("login failed ({status}): {}", login["error"]["message"]);
    }
    let token = login["token"]
        .as_str()
        .context("no token in login answer")?
        .to_string();
    println!("→ logged in as {} ({})", args.email, login["user"]["roles"]);

    let config: Value = serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON)?;
    let (status, created) = call(
        &http,
        http.post(format!("{base}/api/audit-configs"))
            .bearer_auth(&token)
            .json(&config),
    )
    .await?;
    if status != 201 {
        bail!("loading the sample configuration failed ({status}): {created}");
    }
    println!(
        "→ audit configuration \"{}\" loaded: {} steps (id {})",
        created["name"].as_str().unwrap_or("?"),
        created["steps"].as_array().map(Vec::len).unwrap_or(0),
        created["id"].as_str().unwrap_or("?")
    );
    for step in created["steps"].as_array().into_iter().flatten() {
        println!(
            "   {}. {} (weight {}{}) — {} control points",
            step["position"],
            step["name"].as_str().unwrap_or("?"),
            step["weight"],
            if step["critical"].as_bool() == Some(true) {
                ", critical"
            } else {
                ""
            },
            step["control_points"].as_array().map(Vec::len).unwrap_or(0)
        );
    }
    println!(
        "\nThe audit run itself (fiche {} → transcription → per-step LLM audit → evidence gating → \
         summary) is coming with the audit pipeline (issue 3).\nTemporal UI: {}",
        args.fiche_id, args.temporal_ui_url
    );
    Ok(())
}
