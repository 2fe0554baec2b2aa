use super::*;
use crate::analysis::{Citation, ControlPointStatus, StepAnalysis};

fn point(index: usize, statut: ControlPointStatus) -> ControlPointVerdict {
    ControlPointVerdict {
        index,
        point: format!("point {index}"),
        statut,
        commentaire: String::new(),
        citations: vec![],
        evidence_unverified: false,
        evidence_reason: None,
        claimed_statut: None,
        citation_checks: vec![],
        review: None,
    }
}

fn step(statuts: &[ControlPointStatus]) -> StepResult {
    StepResult {
        gated: StepAnalysis {
            points_controle: statuts
                .iter()
                .enumerate()
                .map(|(i, s)| point(i, *s))
                .collect(),
            commentaire: "avant".into(),
        },
        analysis: AnalysisMode::Prompt,
        rerun_history: vec![],
    }
}

fn meta(by: &str) -> ChangeMeta {
    ChangeMeta {
        by: Some(by.into()),
        requested_at: Some("2026-12-04T10:00:00Z".into()),
        applied_at: "2026-12-04T10:00:05Z".into(),
        rerun: Some(RerunTrail {
            rerun_id: "r1".into(),
            workflow_id: "audit:a:rerun-cp:1:1:1".into(),
            use_rlm: false,
            model: "gpt-4.1-mini".into(),
            usage: TokenUsage {
                prompt_tokens: 120,
                completion_tokens: 30,
            },
            instructions: Some("regarde la fin de l'appel".into()),
            analysis: AnalysisMode::Prompt,
        }),
    }
}

fn review(statut: ControlPointStatus) -> Review {
    Review {
        statut,
        comment: "entendu à 3:10".into(),
        by: "qa@example.com".into(),
        at: "2026-12-04T11:00:00Z".into(),
    }
}

use ControlPointStatus::{Absent, NonApplicable, Partiel, Present};

#[test]
fn a_control_point_rerun_patches_only_that_point_and_rescores_the_step() {
    // Weight 10, PRESENT / ABSENT / PARTIEL: 10 × 1.5 / 3 = 5.
    let stored = step(&[Present, Absent, Partiel]);
    let mut fresh = point(0, Present); // analysed alone: index 0 of a one-point step
    fresh.point = "wording the model echoed".into();
    fresh.citations = vec![Citation {
        quote: "je vous rappelle vos droits".into(),
        recording_id: "rec-1".into(),
        start_s: Some(3.0),
        speaker: None,
    }];
    let done = apply_control_point_rerun(&stored, 1, fresh, 10.0, &meta("a@x")).unwrap();
    // PRESENT / PRESENT / PARTIEL: 10 × 2.5 / 3.
    assert!((done.score.score - 25.0 / 3.0).abs() < 1e-9);
    assert_eq!(done.score.conforme, Conformite::Partiel);
    let points = &done.result.gated.points_controle;
    assert_eq!(points[1].statut, Present);
    assert_eq!(points[1].index, 1, "keeps its own index");
    assert_eq!(
        points[1].point, "point 1",
        "keeps the configuration's wording"
    );
    assert_eq!(points[0], stored.gated.points_controle[0]);
    assert_eq!(points[2], stored.gated.points_controle[2]);
    assert_eq!(done.result.gated.commentaire, "avant");
    let history = &done.result.rerun_history;
    assert_eq!(history.len(), 1);
    let e: HistoryEntry = serde_json::from_value(history[0].clone()).unwrap();
    assert_eq!(e.kind, HistoryKind::ControlPointRerun);
    assert_eq!(e.control_point_index, Some(1));
    assert_eq!(e.previous["statut"], "ABSENT");
    assert_eq!(e.new["statut"], "PRESENT");
    assert_eq!(e.previous_score.score, 5.0);
    assert_eq!(e.by.as_deref(), Some("a@x"));
    assert_eq!(e.mode.as_deref(), Some("prompt"));
    assert_eq!(e.model.as_deref(), Some("gpt-4.1-mini"));
    assert_eq!(e.usage.unwrap().prompt_tokens, 120);
    assert_eq!(e.instructions.as_deref(), Some("regarde la fin de l'appel"));
    assert_eq!(history[0]["kind"], "control_point_rerun");
}

#[test]
fn two_control_point_reruns_chain_their_history() {
    let stored = step(&[Present, Absent]);
    let first = apply_control_point_rerun(&stored, 1, point(0, Partiel), 4.0, &meta("a")).unwrap();
    let second =
        apply_control_point_rerun(&first.result, 1, point(0, Present), 4.0, &meta("b")).unwrap();
    let h = &second.result.rerun_history;
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[0]["new"], h[1]["previous"],
        "the second starts where the first ended"
    );
    assert_eq!(h[1]["new"]["statut"], "PRESENT");
    // 4 × 1.5 / 2 = 3 after the first, 4 after the second.
    assert_eq!(h[0]["new_score"]["score"], 3.0);
    assert_eq!(second.score.score, 4.0);
    assert_eq!(second.score.conforme, Conformite::Conforme);
}

#[test]
fn an_unknown_control_point_is_refused() {
    let stored = step(&[Present]);
    assert_eq!(
        apply_control_point_rerun(&stored, 3, point(0, Present), 1.0, &meta("a")),
        Err(ApplyError::NoSuchControlPoint { index: 3, count: 1 })
    );
}

#[test]
fn a_step_rerun_replaces_the_output_keeps_reviews_and_records_both_versions() {
    let mut stored = step(&[Absent, Absent]);
    stored.gated.points_controle[1].review = Some(review(Present));
    // Before: ABSENT, reviewed PRESENT: 6 × 1 / 2 = 3.
    let mut fresh = step(&[Present, Absent]);
    fresh.gated.commentaire = "après".into();
    let done = apply_step_rerun(&stored, fresh, 6.0, &meta("a"));
    // After: PRESENT, ABSENT reviewed PRESENT → both count PRESENT: 6.
    assert_eq!(done.score.score, 6.0);
    assert_eq!(done.score.conforme, Conformite::Conforme);
    assert_eq!(done.result.gated.commentaire, "après");
    assert_eq!(
        done.result.gated.points_controle[1].review,
        Some(review(Present))
    );
    assert_eq!(
        done.result.gated.points_controle[1].statut, Absent,
        "AI verdict stays visible"
    );
    let e = &done.result.rerun_history[0];
    assert_eq!(e["kind"], "step_rerun");
    assert_eq!(e["previous"]["commentaire"], "avant");
    assert_eq!(e["new"]["commentaire"], "après");
    assert!(e["previous"].get("rerun_history").is_none());
    assert_eq!(e["previous_score"]["score"], 3.0);
    assert_eq!(e["new_score"]["score"], 6.0);
}

#[test]
fn a_step_rerun_keeps_the_earlier_history() {
    let stored = step(&[Absent]);
    let once = apply_control_point_rerun(&stored, 0, point(0, Present), 1.0, &meta("a")).unwrap();
    let twice = apply_step_rerun(&once.result, step(&[Partiel]), 1.0, &meta("b"));
    assert_eq!(twice.result.rerun_history.len(), 2);
    assert_eq!(twice.result.rerun_history[0]["kind"], "control_point_rerun");
    assert_eq!(twice.result.rerun_history[1]["kind"], "step_rerun");
    assert_eq!(twice.score.score, 0.5);
}

#[test]
fn a_review_counts_instead_of_the_ai_verdict_and_its_withdrawal_restores_it() {
    // 3 points, weight 9: PRESENT / ABSENT / NON_APPLICABLE → 9 × 1 / 2 = 4.5.
    let stored = step(&[Present, Absent, NonApplicable]);
    let reviewed = apply_review(&stored, 1, Some(review(Partiel)), 9.0, &meta("qa")).unwrap();
    // ABSENT reviewed PARTIEL: 9 × 1.5 / 2 = 6.75.
    assert_eq!(reviewed.score.score, 6.75);
    assert_eq!(reviewed.score.conforme, Conformite::Partiel);
    let p = &reviewed.result.gated.points_controle[1];
    assert_eq!(p.statut, Absent);
    assert_eq!(p.counted_statut(), Partiel);
    assert_eq!(reviewed.result.rerun_history[0]["kind"], "review");
    assert_eq!(reviewed.result.rerun_history[0]["new"]["statut"], "PARTIEL");
    let withdrawn = apply_review(&reviewed.result, 1, None, 9.0, &meta("qa")).unwrap();
    assert_eq!(withdrawn.score.score, 4.5);
    assert_eq!(withdrawn.result.rerun_history.len(), 2);
    assert_eq!(
        withdrawn.result.rerun_history[1]["kind"],
        "review_withdrawn"
    );
    assert_eq!(withdrawn.result.rerun_history[1]["new"], Value::Null);
    assert_eq!(
        apply_review(&withdrawn.result, 1, None, 9.0, &meta("qa")),
        Err(ApplyError::NoReview(1))
    );
}

#[test]
fn a_control_point_rerun_keeps_the_points_review() {
    let mut stored = step(&[Absent]);
    stored.gated.points_controle[0].review = Some(review(NonApplicable));
    let done = apply_control_point_rerun(&stored, 0, point(0, Present), 2.0, &meta("a")).unwrap();
    assert_eq!(done.result.gated.points_controle[0].statut, Present);
    assert_eq!(
        done.result.gated.points_controle[0].review,
        Some(review(NonApplicable))
    );
    // The review (NON_APPLICABLE) counts: nothing applicable → full weight.
    assert_eq!(done.score.score, 2.0);
}

#[test]
fn the_reviewers_hint_is_added_to_the_step_instructions() {
    assert_eq!(instructions_with_hint("Vérifie X.", None), "Vérifie X.");
    assert_eq!(
        instructions_with_hint("Vérifie X.", Some("  ")),
        "Vérifie X."
    );
    assert_eq!(
        instructions_with_hint("Vérifie X.", Some("le prix est à la fin")),
        "Vérifie X.\n\nConsigne du relecteur pour cette relance : le prix est à la fin"
    );
}
