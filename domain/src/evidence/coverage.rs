//! Every control point of a step counts exactly once, whatever the model answered: a
//! point it left out would otherwise never count against the step (an empty answer would
//! score the full weight), and a point it listed twice would count twice.

use crate::analysis::{ControlPointStatus, ControlPointVerdict, StepAnalysis};

/// `evidence_reason` of a control point the model's answer did not assess.
pub const NOT_ASSESSED_REASON: &str = "not assessed by the model";

/// Lines the model's answer up with the step's `control_points`, the configuration being
/// the source of truth: one verdict per control point, ordered by index, each with the
/// configuration's wording.
///
/// - A point the model listed more than once keeps its **first** verdict; later ones
///   are dropped (a repeated point must not weigh twice, and the model is taken at its
///   first word rather than whichever copy suits the score).
/// - A verdict whose index is not a control point of the step is dropped.
/// - A point the model did not assess is recorded ABSENT, without citations, marked
///   `evidence_unverified` with the reason [`NOT_ASSESSED_REASON`].
/// - The gating fields of the model's verdicts (`evidence_unverified`,
///   `evidence_reason`, `claimed_statut`, `citation_checks`) are cleared: only gating
///   sets them.
///
/// Use it on a fresh answer, before [`super::gate_step`].
pub fn cover_control_points(answer: StepAnalysis, control_points: &[String]) -> StepAnalysis {
    let mut slots: Vec<Option<ControlPointVerdict>> = vec![None; control_points.len()];
    for mut verdict in answer.points_controle {
        let Some(slot) = slots.get_mut(verdict.index) else {
            continue;
        };
        if slot.is_some() {
            continue;
        }
        verdict.evidence_unverified = false;
        verdict.evidence_reason = None;
        verdict.claimed_statut = None;
        verdict.citation_checks = Vec::new();
        *slot = Some(verdict);
    }
    let points_controle = slots
        .into_iter()
        .zip(control_points)
        .enumerate()
        .map(|(index, (slot, wording))| {
            let mut verdict = slot.unwrap_or_else(|| ControlPointVerdict {
                index,
                point: String::new(),
                statut: ControlPointStatus::Absent,
                commentaire: String::new(),
                citations: Vec::new(),
                evidence_unverified: true,
                evidence_reason: Some(NOT_ASSESSED_REASON.to_string()),
                claimed_statut: None,
                citation_checks: Vec::new(),
                review: None,
            });
            verdict.point = wording.clone();
            verdict
        })
        .collect();
    StepAnalysis {
        points_controle,
        commentaire: answer.commentaire,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Citation, Conformite};
    use crate::scoring::score_step;
    use ControlPointStatus::{Absent, NonApplicable, Partiel, Present};

    fn points(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("Point de contrôle n°{i}")).collect()
    }

    fn said(index: usize, statut: ControlPointStatus) -> ControlPointVerdict {
        ControlPointVerdict {
            index,
            point: format!("wording from the model {index}"),
            statut,
            commentaire: format!("Selon le modèle, point {index}."),
            citations: vec![Citation {
                quote: "je vous envoie le contrat par mail".into(),
                recording_id: "rec-1".into(),
                start_s: None,
                speaker: None,
            }],
            evidence_unverified: false,
            evidence_reason: None,
            claimed_statut: None,
            citation_checks: vec![],
            review: None,
        }
    }

    fn answer(points_controle: Vec<ControlPointVerdict>) -> StepAnalysis {
        StepAnalysis {
            points_controle,
            commentaire: "Commentaire du modèle.".into(),
        }
    }

    fn statuses(analysis: &StepAnalysis) -> Vec<(usize, ControlPointStatus)> {
        analysis
            .points_controle
            .iter()
            .map(|p| (p.index, p.statut))
            .collect()
    }

    #[test]
    fn an_empty_answer_for_a_three_point_step_of_weight_2_scores_0_and_is_non_conforme() {
        let covered = cover_control_points(answer(vec![]), &points(3));
        assert_eq!(statuses(&covered), [(0, Absent), (1, Absent), (2, Absent)]);
        // Three applicable points, none present or partial: 2 × 0 / 3.
        let score = score_step(2.0, &covered.points_controle);
        assert_eq!(score.score, 0.0);
        assert_eq!(score.conforme, Conformite::NonConforme);
    }

    #[test]
    fn a_point_the_model_did_not_assess_is_absent_unverified_with_the_reason() {
        let covered = cover_control_points(answer(vec![said(1, Present)]), &points(2));
        let missing = &covered.points_controle[0];
        assert_eq!(missing.index, 0);
        assert_eq!(missing.point, "Point de contrôle n°0");
        assert_eq!(missing.statut, Absent);
        assert!(missing.evidence_unverified);
        assert_eq!(
            missing.evidence_reason.as_deref(),
            Some("not assessed by the model")
        );
        assert!(missing.citations.is_empty());
        assert_eq!(missing.claimed_statut, None);
        assert_eq!(covered.points_controle[1].statut, Present);
        assert!(!covered.points_controle[1].evidence_unverified);
    }

    #[test]
    fn a_point_listed_twice_counts_once_with_its_first_verdict() {
        let covered = cover_control_points(
            answer(vec![said(0, Present), said(1, Absent), said(0, Absent)]),
            &points(2),
        );
        assert_eq!(statuses(&covered), [(0, Present), (1, Absent)]);
        // Kept once, with its first verdict: one PRESENT of two points, 10 × 1 / 2 = 5
        // (with both copies it would be 10 × 1 / 3; with the last copy only, 0).
        let score = score_step(10.0, &covered.points_controle);
        assert_eq!(score.score, 5.0);
        assert_eq!(score.conforme, Conformite::Partiel);
    }

    #[test]
    fn a_present_point_listed_twice_does_not_lift_the_score() {
        // Two points, one PRESENT listed twice and one ABSENT: counted twice it would be
        // 2 of 3 points; counted once it is 1 of 2, so 4 × 1 / 2 = 2.
        let covered = cover_control_points(
            answer(vec![said(0, Present), said(0, Present), said(1, Absent)]),
            &points(2),
        );
        assert_eq!(covered.points_controle.len(), 2);
        assert_eq!(score_step(4.0, &covered.points_controle).score, 2.0);
    }

    #[test]
    fn verdicts_for_indexes_outside_the_step_are_dropped() {
        let covered = cover_control_points(
            answer(vec![said(7, Present), said(0, Partiel), said(2, Present)]),
            &points(2),
        );
        assert_eq!(statuses(&covered), [(0, Partiel), (1, Absent)]);
    }

    #[test]
    fn points_are_ordered_by_index_and_worded_as_configured() {
        let covered = cover_control_points(
            answer(vec![said(2, NonApplicable), said(0, Present)]),
            &points(3),
        );
        assert_eq!(
            statuses(&covered),
            [(0, Present), (1, Absent), (2, NonApplicable)]
        );
        for (i, p) in covered.points_controle.iter().enumerate() {
            assert_eq!(p.point, format!("Point de contrôle n°{i}"));
        }
        assert_eq!(
            covered.points_controle[0].commentaire,
            "Selon le modèle, point 0."
        );
        assert_eq!(covered.commentaire, "Commentaire du modèle.");
    }

    #[test]
    fn gating_fields_sent_by_the_model_are_cleared() {
        let mut claimed = said(0, Absent);
        claimed.evidence_unverified = true;
        claimed.evidence_reason = Some("the model says so".into());
        claimed.claimed_statut = Some(Present);
        let covered = cover_control_points(answer(vec![claimed]), &points(1));
        let p = &covered.points_controle[0];
        assert!(!p.evidence_unverified);
        assert_eq!(p.evidence_reason, None);
        assert_eq!(p.claimed_statut, None);
    }
}
