//! A vendor that rate limits, fails, breaks its JSON, cuts its body or stops on its token
//! limit: the audit still completes with the scores it has without faults; a refusal is
//! asked once more, and two in a row fail the audit with the reason, unretried. And the step-parallelism window, seen as
//! the LLM requests in flight at once.

use super::{Fault, LlmProxy};
use crate::audit_pipeline::Scenario;
use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_completes_through_a_429_a_500_broken_json_a_cut_body_and_a_length_cut_with_its_pinned_scores()
 {
    let sc = Scenario::without_api_crm("flaky_llm", Default::default()).await;
    let llm = LlmProxy::start(sc.sim).await;
    let faults = [
        Fault::RateLimited(1),
        Fault::ServerError,
        Fault::MalformedContent,
        Fault::TruncatedBody,
        Fault::LengthCut,
    ];
    for (i, f) in faults.iter().enumerate() {
        llm.fault(i as u64 + 1, *f);
    }
    let config = sc.config(6).await;
    let _w = sc.worker(&[("OPENAI_BASE_URL", llm.base.as_str())]);
    let id = sc.run("FICHE-1003", &config).await;
    let audit = sc.completed(&id).await;

    // FICHE-1003 with the sample configuration, as without faults (tests/claims.rs):
    // every step CONFORME at its weight but step 5, one of three points missing,
    // 20 × 2/3; 100 × 93.33 / 100 = 93.3 EXCELLENT, no critical failure.
    assert_eq!(audit["score"].as_f64(), Some(93.3), "{audit}");
    assert_eq!(audit["niveau"], "EXCELLENT");
    assert_eq!(audit["critical"], false);
    let steps: Vec<(i64, f64, String)> = audit["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["position"].as_i64().expect("position"),
                s["score"].as_f64().expect("score"),
                s["conforme"].as_str().expect("conforme").to_string(),
            )
        })
        .collect();
    let want = [
        (1, 10.0, "CONFORME"),
        (2, 20.0, "CONFORME"),
        (3, 15.0, "CONFORME"),
        (4, 20.0, "CONFORME"),
        (5, 40.0 / 3.0, "PARTIEL"),
        (6, 15.0, "CONFORME"),
    ];
    assert_eq!(steps.len(), want.len(), "{audit}");
    for (got, want) in steps.iter().zip(want) {
        assert_eq!(got.0, want.0);
        assert!((got.1 - want.1).abs() < 1e-9, "step {}: {}", got.0, got.1);
        assert_eq!(got.2, want.2, "step {}", got.0);
    }

    // Each faulted request was followed by another for its step, and every step got
    // exactly one clean answer: 6 + 5 requests, no more.
    let seen = llm.seen();
    assert_eq!(seen.len(), 11, "{seen:?}");
    for f in seen.iter().filter(|s| s.fault.is_some()) {
        let retry = seen
            .iter()
            .find(|s| s.ordinal > f.ordinal && s.step == f.step)
            .unwrap_or_else(|| panic!("{f:?} was not retried: {seen:?}"));
        if f.fault == Some(Fault::RateLimited(1)) {
            let after = retry.at.duration_since(f.at);
            assert!(
                after >= Duration::from_secs(1),
                "retried {after:?} after a 429 with Retry-After: 1"
            );
        }
    }
    for (position, _) in super::SAMPLE_STEPS {
        let clean = seen
            .iter()
            .filter(|s| s.step == position && s.fault.is_none())
            .count();
        assert_eq!(clean, 1, "step {position}: {seen:?}");
    }
    // The simulator answered the 6 clean requests and the 3 the proxy spoiled.
    assert_eq!(sc.sim_stats().await["llm_requests"], 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_refusal_is_asked_once_more_and_the_audit_completes() {
    let sc = Scenario::without_api_crm("refusal_once", Default::default()).await;
    let llm = LlmProxy::start(sc.sim).await;
    llm.fault(1, Fault::Refusal);
    // One step: the refused request is the audit's only analysis.
    let config = sc.config(1).await;
    let _w = sc.worker(&[("OPENAI_BASE_URL", llm.base.as_str())]);
    let id = sc.run("FICHE-1001", &config).await;
    let audit = sc.completed(&id).await;
    // FICHE-1001's first step is CONFORME at its full weight (tests/claims.rs): alone,
    // 100.0 EXCELLENT.
    assert_eq!(audit["steps_done"], 1, "{audit}");
    assert_eq!(audit["score"].as_f64(), Some(100.0), "{audit}");
    assert_eq!(audit["niveau"], "EXCELLENT");
    // The refusal, then its resample: two requests, the second answered.
    let seen = llm.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].fault, Some(Fault::Refusal));
    assert_eq!(seen[1].fault, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_refusals_in_a_row_fail_the_audit_with_the_reason_and_are_not_asked_again() {
    let sc = Scenario::without_api_crm("refusal", Default::default()).await;
    let llm = LlmProxy::start(sc.sim).await;
    llm.fault(1, Fault::Refusal);
    llm.fault(2, Fault::Refusal);
    let config = sc.config(1).await;
    let _w = sc.worker(&[("OPENAI_BASE_URL", llm.base.as_str())]);
    let id = sc.run("FICHE-1001", &config).await;
    let audit = wait_for("the audit to fail", Duration::from_secs(120), || async {
        let a = sc.audit(&id).await;
        assert_ne!(a["status"], "completed", "{a}");
        (a["status"] == "failed").then_some(a)
    })
    .await;
    let error = audit["error"].as_str().expect("error");
    assert!(error.contains("refused"), "{error}");
    assert_eq!(audit["steps_done"], 0, "{audit}");
    // The second refusal is permanent: the activity does not retry it.
    assert_eq!(llm.seen().len(), 2, "{:?}", llm.seen());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_has_at_most_its_step_parallelism_llm_calls_in_flight_and_fills_its_window() {
    // Slow vendors, so the steps' LLM calls overlap when they may.
    let sim = callaudit_sim::SimConfig {
        latency_ms: 300,
        ..Default::default()
    };
    let sc = Scenario::without_api_crm_stepping("step_window", sim, 2).await;
    let llm = LlmProxy::start(sc.sim).await;
    let config = sc.config(6).await;
    let _w = sc.worker(&[("OPENAI_BASE_URL", llm.base.as_str())]);
    let id = sc.run("FICHE-1001", &config).await;
    let audit = sc.completed(&id).await;
    assert_eq!(audit["steps_done"], 6, "{audit}");
    assert_eq!(llm.seen().len(), 6);
    assert_eq!(
        llm.max_in_flight(),
        2,
        "6 steps under AUDIT_STEP_PARALLELISM 2: {:?}",
        llm.seen()
    );
}
