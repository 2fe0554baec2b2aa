//! The evidence gate end to end on realistic near misses: the simulated auditor claims
//! the same verdicts (all three points of step 1 PRESENT for FICHE-1001) but words its
//! citations as `quote_mode` says, and the gate decides.
//!
//! By the rules (DESIGN "Evidence gating"): a quote found but with the wrong speaker, the
//! wrong time, or in the fiche's other recording is *close*: PRESENT → PARTIEL, so step 1
//! (weight 10, three points) scores 10 × (3 × ½) / 3 = 5.0 and the audit 100 × 5 / 10 =
//! 50.0, INSUFFISANT (40 ≤ 50 < 60). ASR spelling noise stays within the tolerance:
//! VERIFIED, 10.0, 100.0 EXCELLENT.

use crate::audit_pipeline::Scenario;
use crate::reruns::set_sim;
use serde_json::{Value, json};

/// Per point: (status, claimed status, verdicts of its citation checks).
fn points(audit: &Value) -> Vec<(String, String, Vec<String>)> {
    audit["steps"][0]["raw_result"]["points_controle"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["statut"].as_str().unwrap_or("").to_string(),
                p["claimed_statut"].as_str().unwrap_or("").to_string(),
                p["citation_checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["verdict"].as_str().unwrap_or("").to_string())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn near_misses_are_partial_asr_noise_verifies_and_a_paraphrase_is_not_evidence() {
    let sc = Scenario::without_api_crm("gate_modes", Default::default()).await;
    let config = sc.config(1).await;
    let _w = sc.worker(&[]);
    let mut outcomes = Vec::new();
    for mode in [
        "verbatim",
        "wrong_speaker",
        "shift_time",
        "other_recording",
        "asr_noise",
        "paraphrase",
    ] {
        set_sim(&sc, json!({"quote_mode": mode})).await;
        let id = sc.run("FICHE-1001", &config).await;
        let audit = sc.completed(&id).await;
        outcomes.push((mode, audit));
    }
    let by = |mode: &str| {
        outcomes
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, a)| a)
            .unwrap()
    };

    for mode in ["verbatim", "asr_noise"] {
        let a = by(mode);
        for (statut, claimed, checks) in points(a) {
            assert_eq!(
                (statut.as_str(), claimed.as_str()),
                ("PRESENT", ""),
                "{mode}: {a}"
            );
            assert!(checks.iter().all(|c| c == "VERIFIED"), "{mode}: {checks:?}");
        }
        assert_eq!(a["steps"][0]["score"].as_f64(), Some(10.0), "{mode}");
        assert_eq!(a["score"].as_f64(), Some(100.0), "{mode}");
        assert_eq!(a["niveau"], "EXCELLENT");
    }
    for (mode, verdict) in [
        ("wrong_speaker", "WRONG_SPEAKER"),
        ("shift_time", "WRONG_TIME"),
        ("other_recording", "WRONG_RECORDING"),
    ] {
        let a = by(mode);
        for (statut, claimed, checks) in points(a) {
            assert_eq!(
                (statut.as_str(), claimed.as_str()),
                ("PARTIEL", "PRESENT"),
                "{mode}: {a}"
            );
            assert!(
                !checks.is_empty() && checks.iter().all(|c| c == verdict),
                "{mode}: {checks:?}"
            );
        }
        assert_eq!(a["steps"][0]["score"].as_f64(), Some(5.0), "{mode}");
        assert_eq!(a["steps"][0]["conforme"], "PARTIEL", "{mode}");
        assert_eq!(a["score"].as_f64(), Some(50.0), "{mode}");
        assert_eq!(a["niveau"], "INSUFFISANT", "{mode}");
    }
    // A paraphrase keeps the first half of each quote and rewords the rest: what is left
    // of the two short quotes is too far from the call (NOT_FOUND → ABSENT); the longest
    // quote stays close (CLOSE → PARTIEL). Step 1: 10 × ½ / 3 = 5/3; audit 16.7, REJET.
    let p = by("paraphrase");
    let got: Vec<(String, Vec<String>)> = points(p).into_iter().map(|(s, _, c)| (s, c)).collect();
    let want = |s: &str, c: &str| (s.to_string(), vec![c.to_string()]);
    assert_eq!(
        got,
        [
            want("ABSENT", "NOT_FOUND"),
            want("ABSENT", "NOT_FOUND"),
            want("PARTIEL", "CLOSE")
        ],
        "{p}"
    );
    let score = p["steps"][0]["score"].as_f64().unwrap();
    assert!((score - 5.0 / 3.0).abs() < 1e-9, "{score}");
    assert_eq!(p["score"].as_f64(), Some(16.7));
    assert_eq!(p["niveau"], "REJET");
}
