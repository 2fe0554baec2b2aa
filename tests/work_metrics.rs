//! The worker's own `/metrics` (`WORKER_METRICS_ADDR`): the work it did (audits started,
//! completed by niveau, failed; step durations), its vendor calls (durations, errors by
//! vendor and kind, LLM tokens by model) and the Temporal SDK's worker metrics.

use crate::audit_pipeline::Scenario;
use crate::support::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// One sample of a Prometheus text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of `text` (comments skipped; label values hold no `,` or `"` here).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest
                        .trim_end_matches('}')
                        .split(',')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').expect("label");
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            Sample {
                name,
                labels,
                value: value.parse().expect("sample value"),
            }
        })
        .collect()
}

/// The worker's `/metrics`, scraped.
struct Scraped(Vec<Sample>);

impl Scraped {
    async fn from(port: u16) -> Option<Scraped> {
        let resp = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .ok()?;
        assert_eq!(resp.status(), 200);
        Some(Scraped(samples(&resp.text().await.ok()?)))
    }

    /// Sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

/// Scrapes until `ready` holds (counters move right after the activity's write).
async fn scrape_until(port: u16, what: &str, ready: impl Fn(&Scraped) -> bool) -> Scraped {
    wait_for(what, Duration::from_secs(90), || async {
        Scraped::from(port).await.filter(|m| ready(m))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_counts_an_audit_its_steps_vendor_calls_and_tokens() {
    let sc = Scenario::without_api_crm("work_metrics", Default::default()).await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _worker = sc.worker(&[
        ("WORKER_METRICS_ADDR", &addr),
        ("OPENAI_MODEL_AUDIT", "sim-audit-model"),
    ]);
    let config = sc.config(2).await;
    let id = sc.run("FICHE-1001", &config).await;
    let audit = sc.completed(&id).await;
    let niveau = audit["niveau"].as_str().expect("niveau");

    let m = scrape_until(port, "the completed audit in the metrics", |m| {
        m.sum("callaudit_audits_completed_total", &[]) >= 1.0
    })
    .await;
    assert_eq!(m.sum("callaudit_audits_started_total", &[]), 1.0);
    assert_eq!(
        m.sum("callaudit_audits_completed_total", &[("niveau", niveau)]),
        1.0,
        "completed under its niveau {niveau}"
    );
    assert_eq!(m.sum("callaudit_audits_completed_total", &[]), 1.0);
    assert_eq!(m.sum("callaudit_audits_failed_total", &[]), 0.0);
    assert_eq!(
        m.sum(
            "callaudit_step_duration_seconds_count",
            &[("mode", "prompt")]
        ),
        2.0,
        "one observation per step"
    );
    assert!(m.sum("callaudit_step_duration_seconds_sum", &[]) > 0.0);

    // FICHE-1001's recordings last 193.7 s and 125.7 s (docs/CRM-CONTRACT.md).
    let audio = m.sum("callaudit_speech_to_text_audio_seconds_total", &[]);
    assert!(
        (audio - 319.4).abs() < 1e-9,
        "audio seconds sent to STT: {audio}"
    );

    let calls = "callaudit_vendor_call_duration_seconds_count";
    // FICHE-1001 has two recordings: one speech-to-text call each.
    assert_eq!(
        m.sum(
            calls,
            &[("vendor", "elevenlabs"), ("operation", "speech_to_text")]
        ),
        2.0
    );
    assert_eq!(
        m.sum(
            calls,
            &[
                ("vendor", "elevenlabs"),
                ("operation", "speech_to_text"),
                ("outcome", "ok")
            ]
        ),
        2.0
    );
    assert_eq!(
        m.sum(
            calls,
            &[
                ("vendor", "crm"),
                ("operation", "fiche_details"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.sum(
            calls,
            &[
                ("vendor", "openai"),
                ("operation", "chat_completion"),
                ("outcome", "ok")
            ]
        ),
        2.0,
        "one completion per step in prompt mode"
    );
    assert_eq!(m.sum("callaudit_vendor_errors_total", &[]), 0.0);
    for kind in ["prompt", "completion"] {
        let tokens = m.sum(
            "callaudit_llm_tokens_total",
            &[("model", "sim-audit-model"), ("kind", kind)],
        );
        assert!(tokens > 0.0, "{kind} tokens of the audit model: {tokens}");
    }
    assert_eq!(
        m.sum("callaudit_llm_tokens_total", &[]),
        m.sum(
            "callaudit_llm_tokens_total",
            &[("model", "sim-audit-model")]
        ),
        "every token is the audit model's"
    );

    // The Temporal SDK's worker metrics are on the same endpoint.
    let sdk =
        m.0.iter()
            .filter(|s| s.name.starts_with("temporal_"))
            .count();
    assert!(sdk > 0, "no Temporal SDK metric on the worker's /metrics");
    assert!(
        m.sum(
            "temporal_activity_execution_latency_seconds_count",
            &[("activity_type", "transcription.transcribe")]
        ) >= 2.0,
        "the SDK timed both transcriptions"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vendor_failures_are_counted_by_vendor_and_kind_and_the_failed_audit_too() {
    let sc = Scenario::without_api_crm(
        "work_metrics_errors",
        callaudit_sim::SimConfig {
            expected_api_keys: Some(callaudit_sim::ExpectedKeys {
                crm: "sim-crm".into(),
                elevenlabs: "sim-stt".into(),
                openai: "sim-llm".into(),
            }),
            ..Default::default()
        },
    )
    .await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // A wrong speech-to-text key: the vendor's 401 is permanent, the audit fails.
    let _worker = sc.worker(&[
        ("WORKER_METRICS_ADDR", &addr),
        ("ELEVENLABS_API_KEY", "wrong-stt-key"),
    ]);
    let config = sc.config(2).await;
    let id = sc.run("FICHE-1001", &config).await;
    wait_for("the audit to fail", Duration::from_secs(120), || async {
        (sc.audit(&id).await["status"] == "failed").then_some(())
    })
    .await;
    let m = scrape_until(port, "the failed audit in the metrics", |m| {
        m.sum("callaudit_audits_failed_total", &[]) >= 1.0
    })
    .await;
    assert_eq!(m.sum("callaudit_audits_started_total", &[]), 1.0);
    assert_eq!(m.sum("callaudit_audits_failed_total", &[]), 1.0);
    assert_eq!(m.sum("callaudit_audits_completed_total", &[]), 0.0);
    assert!(
        m.sum(
            "callaudit_vendor_errors_total",
            &[("vendor", "elevenlabs"), ("kind", "permanent")]
        ) >= 1.0
    );
    assert!(
        m.sum(
            "callaudit_vendor_call_duration_seconds_count",
            &[("vendor", "elevenlabs"), ("outcome", "permanent")]
        ) >= 1.0
    );
    assert_eq!(
        m.sum(
            "callaudit_vendor_errors_total",
            &[("vendor", "elevenlabs"), ("kind", "transient")]
        ),
        0.0
    );
    assert_eq!(
        m.sum("callaudit_vendor_errors_total", &[("vendor", "crm")]),
        0.0
    );

    // Every vendor answer a 5xx, then a 429: a fiche not cached yet meets both at the
    // CRM while Temporal retries its fetch.
    let sim = sc.sim;
    let sim_config = move |knobs: serde_json::Value| async move {
        let resp = reqwest::Client::new()
            .post(format!("http://{sim}/_sim/config"))
            .json(&knobs)
            .send()
            .await
            .expect("sim config");
        assert!(resp.status().is_success());
    };
    sim_config(serde_json::json!({"error_rate": 1.0})).await;
    sc.run("FICHE-1002", &config).await;
    scrape_until(port, "a transient CRM error in the metrics", |m| {
        m.sum(
            "callaudit_vendor_errors_total",
            &[("vendor", "crm"), ("kind", "transient")],
        ) >= 1.0
    })
    .await;
    sim_config(serde_json::json!({"rate_limit_rate": 1.0})).await;
    let m = scrape_until(port, "a rate-limited CRM call in the metrics", |m| {
        m.sum(
            "callaudit_vendor_errors_total",
            &[("vendor", "crm"), ("kind", "rate_limited")],
        ) >= 1.0
    })
    .await;
    assert!(
        m.sum(
            "callaudit_vendor_call_duration_seconds_count",
            &[
                ("vendor", "crm"),
                ("operation", "fiche_details"),
                ("outcome", "rate_limited")
            ]
        ) >= 1.0
    );
    assert_eq!(m.sum("callaudit_audits_started_total", &[]), 2.0);
    assert_eq!(
        m.sum("callaudit_audits_failed_total", &[]),
        1.0,
        "the second audit is still retrying its fiche"
    );
}
