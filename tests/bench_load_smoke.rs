//! The load modes of `callaudit bench` (api, sse, worker, scale, long) keep working: tiny
//! runs against the test services print their figures and the machine. Not timed: what is
//! checked is what each mode counts (requests answered, deliveries, audits, tokens), never
//! how fast.

use crate::support::*;
use serde_json::Value;
use std::process::Command;

/// `callaudit bench --json <mode> <args>` → its JSON.
fn load_mode(mode_args: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(["bench", "--json", "--timeout-s", "300"])
        .args(mode_args)
        .env("DATABASE_URL", admin_database_url())
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("RUST_LOG", "warn")
        .env_remove("BENCH_TEMPORAL_PID")
        .output()
        .expect("run callaudit bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {mode_args:?} failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench {mode_args:?} did not print JSON ({e}): {stderr}"));
    let machine = &report["machine"];
    assert!(machine["cores"].as_u64() >= Some(1), "{report}");
    assert!(machine["ram_gib"].as_f64() > Some(0.0), "{report}");
    assert!(machine["load_after"].is_array(), "{report}");
    assert!(
        ["debug", "release"].contains(&machine["profile"].as_str().unwrap_or_default()),
        "{report}"
    );
    report
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(-1.0)
}

#[test]
fn bench_api_answers_every_post_from_the_fiche_cache_and_reads_audits() {
    let r = load_mode(&[
        "api",
        "--clients",
        "3",
        "--posts",
        "6",
        "--fiches",
        "2",
        "--get-seconds",
        "0.5",
    ]);
    assert_eq!(r["post"]["requests"], 6, "{r}");
    // The pre-check found both fiches in the cache the warm-up audits filled.
    assert_eq!(r["crm_detail_requests_during_posts"], 0, "{r}");
    assert!(r["get"]["requests"].as_u64() >= Some(1), "{r}");
    for phase in ["post", "get"] {
        assert!(f(&r[phase]["p50_ms"]) > 0.0, "{r}");
        assert!(f(&r[phase]["p50_ms"]) <= f(&r[phase]["p99_ms"]), "{r}");
    }
    assert!(f(&r["api_peak_rss_mib"]) > 0.0, "{r}");
}

#[test]
fn bench_sse_delivers_every_event_to_every_subscriber_of_its_audit() {
    let r = load_mode(&[
        "sse",
        "--subscribers",
        "6",
        "--topics",
        "2",
        "--rate",
        "20",
        "--seconds",
        "0.5",
    ]);
    // 10 events over 2 audits, 3 subscribers each: 30 deliveries.
    assert_eq!(r["events"], 10, "{r}");
    assert_eq!(r["deliveries"], 30, "{r}");
    assert!(
        f(&r["p50_ms"]) >= 0.0 && f(&r["p50_ms"]) <= f(&r["p99_ms"]),
        "{r}"
    );
    assert!(f(&r["api_rss_mib"]) > 0.0, "{r}");

    // 20 streams of one audit share their reads; with a 10-minute poll only LISTEN/NOTIFY
    // can bring each of them all 10 events within the bench's 30 s.
    let r = load_mode(&[
        "sse",
        "--subscribers",
        "20",
        "--topics",
        "1",
        "--rate",
        "20",
        "--seconds",
        "0.5",
        "--poll-ms",
        "600000",
    ]);
    assert_eq!(r["deliveries"], 200, "{r}");
}

#[test]
fn bench_worker_and_scale_complete_every_audit_of_every_level() {
    let r = load_mode(&["worker", "--in-flight", "3"]);
    let level = &r["levels"][0];
    assert_eq!(level["in_flight"], 3, "{r}");
    assert_eq!(level["audits"], 3, "{r}");
    assert!(f(&level["worker_peak_rss_mib"]) > 0.0, "{r}");
    assert!(f(&level["worker_cpu_s_per_audit"]) > 0.0, "{r}");
    assert_eq!(r["worker_rss_target_mib"], 150.0, "{r}");

    let r = load_mode(&["scale", "--levels", "1,2", "--audits", "2"]);
    let levels = r["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2, "{r}");
    for (level, in_flight) in levels.iter().zip([1, 2]) {
        assert_eq!(level["in_flight"], in_flight, "{r}");
        assert_eq!(level["audits"], 2, "{r}");
        assert!(f(&level["audits_per_s"]) > 0.0, "{r}");
    }
}

#[test]
fn bench_long_audits_a_long_call_in_both_modes_and_its_prompts_are_longer() {
    let r = load_mode(&["long", "--minutes", "20"]);
    let rows = r["rows"].as_array().expect("rows");
    let row = |fiche: &str, mode: &str| {
        rows.iter()
            .find(|x| x["fiche_id"] == fiche && x["mode"] == mode)
            .unwrap_or_else(|| panic!("no {fiche} {mode} row: {r}"))
    };
    assert_eq!(rows.len(), 4, "{r}");
    let (short, long) = (row("FICHE-1001", "prompt"), row("FICHE-LONG-1", "prompt"));
    assert!(f(&long["audio_minutes"]) >= 20.0, "{r}");
    // Six steps, one request each, with the transcript in the prompt.
    assert_eq!(long["llm_requests"], 6, "{r}");
    assert_eq!(long["tool_calls"], 0, "{r}");
    assert!(
        f(&long["prompt_tokens"]) > f(&short["prompt_tokens"]),
        "{r}"
    );
    // Tools mode: the model reads the transcript through tool calls, in more rounds.
    let tools = row("FICHE-LONG-1", "tools");
    assert!(tools["tool_calls"].as_u64() >= Some(1), "{r}");
    assert!(tools["llm_requests"].as_u64() > Some(6), "{r}");
}
