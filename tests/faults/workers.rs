//! A worker killed (SIGKILL) or stopped (SIGTERM) while two steps wait for the LLM.
//!
//! Both tests hold the 3rd and 4th chat completion requests at the proxy: with 4 steps
//! analysed 3 at once, the first two answers store two steps, and the two steps left are
//! then provably in flight (their requests received, unanswered) when the signal lands.

use super::{LlmProxy, Seen};
use crate::audit_pipeline::{Scenario, count};
use crate::support::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Waits until the audit has stored 2 steps and the proxy holds 2 requests; returns the
/// stored positions and the held requests' steps.
async fn two_stored_two_held(
    sc: &Scenario,
    llm: &LlmProxy,
    id: &str,
) -> (BTreeSet<i64>, BTreeSet<i64>) {
    wait_for(
        "2 steps stored and 2 LLM requests held",
        Duration::from_secs(120),
        || async {
            let a = sc.audit(id).await;
            (a["steps_done"] == 2 && llm.in_flight() == 2).then_some(())
        },
    )
    .await;
    let audit = sc.audit(id).await;
    let stored: BTreeSet<i64> = audit["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["position"].as_i64().expect("position"))
        .collect();
    let held: BTreeSet<i64> = llm
        .seen()
        .iter()
        .filter(|s| !s.answered)
        .map(|s| s.step)
        .collect();
    assert_eq!(stored.len(), 2, "{audit}");
    assert_eq!(held.len(), 2, "{:?}", llm.seen());
    assert!(stored.is_disjoint(&held), "{stored:?} {held:?}");
    let all: BTreeSet<i64> = stored.union(&held).copied().collect();
    assert_eq!(all, BTreeSet::from([1, 2, 3, 4]));
    (stored, held)
}

/// What every test of this file checks once the audit completed: 4 steps, one row each,
/// `steps_done` 4, one transcription per recording, one terminal event.
async fn completed_once(sc: &Scenario, id: &str) {
    let audit = sc.completed(id).await;
    assert_eq!(audit["steps_done"], 4, "{audit}");
    let positions: Vec<i64> = audit["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(positions, [1, 2, 3, 4], "{audit}");
    let rows = format!("SELECT count(*) AS n FROM audit_step_results WHERE audit_id = '{id}'");
    assert_eq!(count(&sc.db.url, &rows).await, 4);
    // FICHE-1001 has 2 recordings, transcribed once each.
    assert_eq!(sc.sim_stats().await["stt_requests"], 2);
    let terminal = format!(
        "SELECT count(*) AS n FROM events WHERE topic = 'audit:{id}' AND type = 'audit.completed'"
    );
    assert_eq!(count(&sc.db.url, &terminal).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_while_two_steps_await_the_llm_is_replaced_and_only_those_two_are_asked_again()
 {
    let sc = Scenario::without_api_crm("audit_kill", Default::default()).await;
    let llm = LlmProxy::start(sc.sim).await;
    llm.hold([3, 4]);
    let config = sc.config(4).await;
    let env = [("OPENAI_BASE_URL", llm.base.as_str())];
    let mut first = sc.worker(&env);
    let id = sc.run("FICHE-1001", &config).await;
    let (stored, held) = two_stored_two_held(&sc, &llm, &id).await;

    first.0.kill().expect("kill -9 the worker");
    first.0.wait().expect("reap");
    let at_kill = llm.seen().len();
    assert_eq!(at_kill, 4, "{:?}", llm.seen());
    assert_eq!(
        sc.audit(&id).await["steps_done"],
        2,
        "nothing stored by a dead worker"
    );

    // The held answers now go to a dead connection; a new worker retries the two steps.
    llm.release();
    let _fresh = sc.worker(&env);
    completed_once(&sc, &id).await;

    let seen = llm.seen();
    let again: Vec<&Seen> = seen[at_kill..].iter().collect();
    let asked_again: BTreeSet<i64> = again.iter().map(|s| s.step).collect();
    assert_eq!(
        again.len(),
        2,
        "one new request per step in flight at the kill: {seen:?}"
    );
    assert_eq!(
        asked_again, held,
        "the steps stored before the kill ({stored:?}) were asked again"
    );
    // Upper bound on what the simulated LLM received: the 4 steps, plus the 2 held
    // requests forwarded after the kill (a proxy may drop them with their connection).
    let sim = sc.sim_stats().await["llm_requests"].as_u64().expect("n");
    assert!((4..=6).contains(&sim), "{sim} LLM requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopped_with_sigterm_finishes_its_two_llm_calls_exits_0_and_nothing_is_asked_again()
 {
    let grace = Duration::from_secs(20);
    let sc = Scenario::without_api_crm("audit_drain", Default::default()).await;
    let llm = LlmProxy::start(sc.sim).await;
    llm.hold([3, 4]);
    let config = sc.config(4).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let grace_s = grace.as_secs().to_string();
    let mut first = sc.worker_logged(
        &[
            ("OPENAI_BASE_URL", llm.base.as_str()),
            ("WORKER_SHUTDOWN_GRACE_S", &grace_s),
            ("RUST_LOG", "info"),
        ],
        &log,
    );
    let id = sc.run("FICHE-1001", &config).await;
    two_stored_two_held(&sc, &llm, &id).await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &first.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let signalled = Instant::now();
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the worker to start draining",
        Duration::from_secs(30),
        || async { logged().contains("SIGTERM: draining").then_some(()) },
    )
    .await;
    // Draining, it waits for its two activities: it has not exited.
    assert!(
        first.0.try_wait().expect("try_wait").is_none(),
        "the worker exited with two activities in flight: {}",
        logged()
    );
    llm.release();
    let exit = wait_for(
        "the worker to exit",
        grace + Duration::from_secs(10),
        || {
            let exited = first.0.try_wait().expect("try_wait");
            async move { exited }
        },
    )
    .await;
    let took = signalled.elapsed();
    let text = logged();
    let _ = std::fs::remove_file(&log);
    assert!(exit.success(), "exit status {exit:?}: {text}");
    assert!(
        took < grace,
        "exited after {took:?}, past its {grace:?} drain"
    );
    assert!(text.contains("worker stopped cleanly"), "{text}");
    assert!(
        llm.seen().iter().all(|s| s.answered),
        "the held calls were answered to the draining worker"
    );
    println!(
        "drained in {took:?}; steps_done at exit: {}",
        sc.audit(&id).await["steps_done"]
    );

    let _fresh = sc.worker(&[("OPENAI_BASE_URL", llm.base.as_str())]);
    completed_once(&sc, &id).await;
    // The two analyses finished while draining were kept: nothing was asked again.
    let seen = llm.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(sc.sim_stats().await["llm_requests"], 4);
}
