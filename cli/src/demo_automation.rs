//! `callaudit demo --automation`: an automation schedule created through the api (MDP
//! sales of the simulated CRM's window, one recording at most, two fiches), visible as
//! the Temporal Schedule `automation:{id}`; run now, its run's stream followed to the end
//! (`automation/started`, then `automation/completed` or `automation/failed`) and its
//! summary printed — selection, transcription phase, audits.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The simulated CRM's first built-in sale day (FICHE-1002's).
const FIRST_SALE: (i32, u32, u32) = (2026, 11, 2);

/// Most days a schedule's window may span (the api refuses more).
const MAX_DAYS_BACK: i64 = 366;

async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let resp = req.send().await.context("calling the api")?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// Days from the simulator's first sale day to yesterday in Europe/Paris, the schedule's
/// time zone: the window that holds the built-in sales.
fn days_back() -> i64 {
    let (y, m, d) = FIRST_SALE;
    let first = chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
    // Europe/Paris is UTC+1 in winter, UTC+2 in summer: the later day is taken, so the
    // window holds the first sale day either way.
    let today_paris = (chrono::Utc::now() + chrono::Duration::hours(2)).date_naive();
    (today_paris - first).num_days()
}

/// Creates the schedule with configuration `config_id`, runs it now, follows the run and
/// prints its summary and where to see the schedule in Temporal.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    config_id: &Value,
    temporal: &callaudit_api::temporal::TemporalSettings,
) -> anyhow::Result<()> {
    let days = days_back();
    if !(1..=MAX_DAYS_BACK).contains(&days) {
        println!(
            "\n→ automation skipped: the simulated CRM's sales are {days} days back, beyond a \
             schedule's {MAX_DAYS_BACK}-day window"
        );
        return Ok(());
    }
    let (status, schedule) = call(
        http.post(format!("{base}/api/automation/schedules"))
            .bearer_auth(token)
            .json(&json!({
                "name": "demo: MDP sales, one recording at most",
                "cron": "0 6 * * *",
                "timezone": "Europe/Paris",
                "enabled": false,
                "auditConfigId": config_id,
                "ficheSelection": {"daysBack": days, "groupes": ["MDP"],
                                   "maxRecordingsPerFiche": 1, "limit": 2},
                "controls": {"skipIfTranscribed": true, "continueOnError": true}
            })),
    )
    .await?;
    if status != 201 {
        bail!("creating the automation schedule failed ({status}): {schedule}");
    }
    let id = schedule["id"]
        .as_str()
        .context("no schedule id")?
        .to_string();
    let temporal_id = schedule["temporalScheduleId"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    println!(
        "\n→ automation schedule {id} created: cron \"0 6 * * *\" Europe/Paris, paused (enabled \
         false), the MDP sales of the last {days} days with at most one recording, 2 fiches"
    );
    println!("   Temporal Schedule {temporal_id} (overlap skip, catch-up window 10 min)");
    let (status, triggered) = call(
        http.post(format!("{base}/api/automation/schedules/{id}/run"))
            .bearer_auth(token)
            .json(&json!({})),
    )
    .await?;
    if status != 202 {
        bail!("running the schedule now failed ({status}): {triggered}");
    }
    let started = Instant::now();
    println!("→ run now (POST /api/automation/schedules/{id}/run): Temporal starts the run");
    let run_id = loop {
        let (_, page) = call(
            http.get(format!("{base}/api/automation/runs?schedule_id={id}"))
                .bearer_auth(token),
        )
        .await?;
        if let Some(run) = page["items"].as_array().and_then(|r| r.first()) {
            println!(
                "   run {} (workflow {})",
                run["id"].as_str().unwrap_or("?"),
                run["workflowId"].as_str().unwrap_or("?")
            );
            break run["id"].as_str().unwrap_or_default().to_string();
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the schedule's run did not start within a minute");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    println!("→ following its events (GET /api/automation/runs/{run_id}/events):");
    if let Err(e) = crate::demo::follow_stream(
        http,
        base,
        token,
        &format!("/api/automation/runs/{run_id}/events"),
        started,
        describe_run,
    )
    .await
    {
        println!("  (event stream interrupted: {e:#}; polling instead)");
    }
    let run = loop {
        let (_, run) = call(
            http.get(format!("{base}/api/automation/runs/{run_id}"))
                .bearer_auth(token),
        )
        .await?;
        match run["status"].as_str() {
            Some("running") if started.elapsed() > Duration::from_secs(300) => {
                bail!("the run did not finish within 5 minutes: {run}")
            }
            Some("running") => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => break run,
        }
    };
    print_summary(&run, started);
    show_temporal_schedule(temporal, &temporal_id).await;
    println!(
        "   Temporal UI: {}/namespaces/{}/schedules/{}",
        temporal.ui_url.trim_end_matches('/'),
        temporal.namespace,
        temporal_id.replace(':', "%3A")
    );
    Ok(())
}

/// Reads the Temporal Schedule back from Temporal itself and prints what it holds: an
/// operator sees the same in the Temporal UI.
async fn show_temporal_schedule(
    temporal: &callaudit_api::temporal::TemporalSettings,
    temporal_id: &str,
) {
    let described = match callaudit_api::temporal::connect(temporal, Duration::from_secs(5)).await {
        Ok(client) => client
            .get_schedule_handle(temporal_id.to_string())
            .describe(Default::default())
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match described {
        Ok(d) => {
            let runs: Vec<String> = d
                .recent_actions()
                .iter()
                .map(|a| a.workflow_id.clone())
                .collect();
            println!(
                "   Temporal Schedule {temporal_id} (read from Temporal at {}): {}, {} action(s) \
                 taken: {}",
                temporal.address,
                if d.paused() { "paused" } else { "active" },
                d.action_count(),
                runs.join(", ")
            );
        }
        Err(e) => println!(
            "   (the Temporal Schedule {temporal_id} could not be read from {}: {e})",
            temporal.address
        ),
    }
}

/// Prints how the run ended: selection, transcription phase, audits, durations.
fn print_summary(run: &Value, started: Instant) {
    let s = &run["resultSummary"];
    println!(
        "\n✔ automation run {} in {:.1} s{}",
        run["status"].as_str().unwrap_or("?"),
        started.elapsed().as_secs_f64(),
        run["error"]
            .as_str()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    );
    println!(
        "   selection: {} sales found over {} days, {} selected, {} ignored",
        s["fetch"]["found"], s["fetch"]["days"], s["selected"], s["ignoredCount"]
    );
    for f in s["ignored"].as_array().into_iter().flatten() {
        println!(
            "     - {} ignored: {}",
            f["fiche_id"].as_str().unwrap_or("?"),
            f["reason"].as_str().unwrap_or("?")
        );
    }
    let t = &s["transcription"];
    println!(
        "   transcription: {} fiches transcribed ({} recordings sent to speech-to-text, {} \
         reused), {} skipped, {} failed, {} ms",
        s["transcribed"],
        t["recordingsSent"],
        t["recordingsReused"],
        s["transcriptionSkipped"],
        s["transcriptionFailed"],
        s["durations"]["transcriptionMs"]
    );
    println!(
        "   audits: {} audited, {} failed (batch {}); total {} ms",
        s["audited"],
        s["failed"],
        s["batchId"].as_str().unwrap_or("none"),
        s["durations"]["totalMs"]
    );
}

/// One line for an event of an automation run's stream.
fn describe_run(kind: &str, p: &Value) -> String {
    match kind {
        "automation/started" => format!("started, {} days to fetch", p["days"]),
        "automation/completed" => format!("completed ({})", p["status"]),
        "automation/failed" => format!("failed: {}", p["error"].as_str().unwrap_or("?")),
        other => other.to_string(),
    }
}
