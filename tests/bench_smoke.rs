//! `callaudit bench` keeps working: a tiny run of both the project and the bare baseline
//! against the test services prints positive figures. (Figures, not a timed test: the
//! numbers themselves are only checked for sanity.)

use crate::support::*;
use std::process::Command;

#[test]
fn a_bench_of_three_audits_prints_positive_figures_for_every_run_and_their_ratio() {
    let out = Command::new(bin())
        .args([
            "bench",
            "-n",
            "3",
            "-c",
            "3",
            "--timeout-s",
            "120",
            "--json",
        ])
        .env("DATABASE_URL", admin_database_url())
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("RUST_LOG", "warn")
        .env_remove("BENCH_TEMPORAL_PID")
        .output()
        .expect("run callaudit bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench did not print JSON ({e}): {stderr}"));

    assert_eq!(report["audits"], 3);
    // 6 steps, 2 recordings: the project's audits run 1 + 6 executions (transcriptions
    // are activities of the audit, start and finalize local), the default baseline the
    // older shape's 1 + 2 + 6.
    assert_eq!(report["workflow_executions_per_audit"], 7, "{report}");
    assert_eq!(report["activities_per_audit"], 11, "{report}");
    assert_eq!(report["local_activities_per_audit"], 2, "{report}");
    assert_eq!(report["bare_form"], "children", "{report}");
    assert_eq!(report["bare_workflow_executions_per_audit"], 9, "{report}");
    for run in ["project", "bare", "bare_after"] {
        let r = &report[run];
        assert_eq!(r["audits"], 3, "{run}: {report}");
        for field in [
            "audits_per_s",
            "workflow_executions_per_s",
            "p50_ms",
            "p99_ms",
            "worker_peak_rss_mib",
            "worker_cpu_s_per_audit",
        ] {
            let v = r[field].as_f64().unwrap_or(0.0);
            assert!(v > 0.0, "{run}.{field} = {v}: {report}");
        }
        assert!(r["p50_ms"].as_f64() <= r["p99_ms"].as_f64(), "{report}");
    }
    let baseline = report["baseline_audits_per_s"].as_f64().expect("baseline");
    assert!(baseline > 0.0, "{report}");
    let ratio = report["ratio"].as_f64().expect("ratio");
    assert!(ratio > 0.0, "{report}");
    assert_eq!(
        report["target_met"].as_bool(),
        Some(ratio >= 0.8),
        "{report}"
    );
}
