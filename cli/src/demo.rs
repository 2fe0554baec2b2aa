//! `callaudit demo`: drives a running api the way a user would — waits for readiness,
//! logs in, loads the sample audit configuration, runs one audit of a sample fiche and
//! prints its summary with a link to the run in the Temporal UI, then reruns and reviews
//! one of its control points ([`crate::demo_after`]); with `--batch`, audits three more
//! fiches as a batch ([`crate::demo_batch`]); with `--automation`, creates an automation
//! schedule, runs it now and follows its run ([`crate::demo_automation`]).

use crate::config::DemoArgs;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
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
        match call(http.get(format!("{base}/ready"))).await {
            Ok((200, _)) => break,
            Ok((_, body)) if started.elapsed() > Duration::from_secs(90) => {
                bail!("api not ready: {body}")
            }
            Err(e) if started.elapsed() > Duration::from_secs(90) => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }

    let (status, login) = call(
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
    let (status, accepted) = call(
        http.post(format!("{base}/api/audits/run"))
            .bearer_auth(&token)
            .json(&json!({"fiche_id": args.fiche_id, "audit_config_id": created["id"], "use_rlm": args.use_rlm})),
    )
    .await?;
    if status != 202 {
        bail!("starting the audit failed ({status}): {accepted}");
    }
    let audit_id = accepted["audit_id"]
        .as_str()
        .context("no audit id")?
        .to_string();
    let workflow_id = accepted["workflow_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!(
        "→ audit {audit_id} of fiche {} started (workflow {workflow_id})",
        args.fiche_id
    );
    let started = Instant::now();
    println!("→ following its events (GET /api/audits/{audit_id}/events, Server-Sent Events):");
    if let Err(e) = follow_stream(
        &http,
        base,
        &token,
        &format!("/api/audits/{audit_id}/events"),
        started,
        describe_audit,
    )
    .await
    {
        println!("  (event stream interrupted: {e:#}; polling instead)");
    }
    let audit = loop {
        let (_, a) = call(
            http.get(format!("{base}/api/audits/{audit_id}"))
                .bearer_auth(&token),
        )
        .await?;
        match a["status"].as_str() {
            Some("completed") => break a,
            Some("failed") => bail!("the audit failed: {}", a["error"]),
            _ if started.elapsed() > Duration::from_secs(300) => {
                bail!("the audit did not finish within 5 minutes: {a}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    println!(
        "\n✔ completed in {:.1} s — score {} / 100, niveau {}, critical failure: {}",
        started.elapsed().as_secs_f64(),
        audit["score"],
        audit["niveau"].as_str().unwrap_or("?"),
        audit["critical"]
    );
    let cost = &audit["cost"];
    println!(
        "   usage: {} LLM requests, {} prompt + {} completion tokens, {:.1} s of audio{}; configuration {:?} of {}",
        cost["llm_requests"],
        cost["prompt_tokens"],
        cost["completion_tokens"],
        cost["speech_to_text_seconds"].as_f64().unwrap_or(0.0),
        match (cost["estimated_cost"].as_f64(), cost["currency"].as_str()) {
            (Some(c), Some(cur)) => format!(" ≈ {c:.4} {cur}"),
            _ => " (set COST_PRICE_TABLE for an estimate)".to_string(),
        },
        audit["config_name"].as_str().unwrap_or("?"),
        audit["config_version"].as_str().unwrap_or("?"),
    );
    for step in audit["steps"].as_array().into_iter().flatten() {
        println!(
            "   {}. {:<45} {:>5.1}/{:<4} {}",
            step["position"],
            step["name"].as_str().unwrap_or("?"),
            step["score"].as_f64().unwrap_or(0.0),
            step["weight"],
            step["conforme"].as_str().unwrap_or("?")
        );
        for p in step["raw_result"]["points_controle"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let flag = if p["evidence_unverified"].as_bool() == Some(true) {
                "  (evidence unverified)"
            } else {
                ""
            };
            println!(
                "        - {} → {}{}",
                p["point"].as_str().unwrap_or("?"),
                p["statut"].as_str().unwrap_or("?"),
                flag
            );
        }
    }
    crate::demo_after::rerun_and_review(&http, base, &token, &audit).await?;
    if args.batch {
        crate::demo_batch::run(&http, base, &token, &created["id"]).await?;
    }
    if args.automation {
        let temporal = callaudit_api::temporal::TemporalSettings {
            address: args.temporal_address.clone(),
            namespace: args.temporal_namespace.clone(),
            task_queue: String::new(),
            api_key: None,
            tls: false,
            ui_url: args.temporal_ui_url.clone(),
        };
        crate::demo_automation::run(&http, base, &token, &created["id"], &temporal).await?;
    }
    println!(
        "\nTemporal UI: {}/namespaces/default/workflows/{}",
        args.temporal_ui_url.trim_end_matches('/'),
        workflow_id.replace(':', "%3A")
    );
    println!(
        "Real vendors: set CRM_BASE_URL, CRM_API_KEY, ELEVENLABS_API_KEY, OPENAI_API_KEY (and \
         OPENAI_BASE_URL / OPENAI_MODEL_AUDIT) before temporal-dev/demo.sh, and pass --fiche-id."
    );
    Ok(())
}

/// Prints the events of the stream at `path` as they arrive, each described by
/// `describe` (its type and payload), until the server closes the stream after the
/// terminal event: the audit's, the batch's and the automation run's streams alike.
pub(crate) async fn follow_stream(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    started: Instant,
    describe: fn(&str, &Value) -> String,
) -> anyhow::Result<()> {
    let mut resp = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .context("opening the event stream")?;
    if !resp.status().is_success() {
        bail!("HTTP {}", resp.status());
    }
    let mut decoder = callaudit_api::sse::SseDecoder::default();
    while let Some(chunk) = resp.chunk().await.context("reading the event stream")? {
        for frame in decoder.push(&chunk) {
            let Ok(event) = serde_json::from_str::<Value>(&frame.data) else {
                continue;
            };
            let what = describe(event["type"].as_str().unwrap_or("?"), &event["payload"]);
            println!(
                "  [{:>5.1} s] #{} {what}",
                started.elapsed().as_secs_f64(),
                event["id"]
            );
        }
    }
    Ok(())
}

/// One line for an event of an audit's stream.
fn describe_audit(kind: &str, p: &Value) -> String {
    match kind {
        "audit.started" => format!("started, {} steps", p["steps_total"]),
        "audit.step.completed" => format!(
            "step {} {} → {} ({})",
            p["position"],
            p["name"].as_str().unwrap_or("?"),
            p["conforme"].as_str().unwrap_or("?"),
            p["score"]
        ),
        "audit.completed" => format!(
            "completed: {} / 100, {}",
            p["score"],
            p["niveau"].as_str().unwrap_or("?")
        ),
        "audit.failed" => format!("failed: {}", p["error"].as_str().unwrap_or("?")),
        other => other.to_string(),
    }
}
