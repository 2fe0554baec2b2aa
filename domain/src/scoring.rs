//! Deterministic compliance scoring: per-step scores from control-point statuses and the
//! audit summary (score out of 100, niveau, critical failure).

use serde::{Deserialize, Serialize};

use crate::analysis::{Conformite, ControlPointStatus, ControlPointVerdict, Niveau};

/// Score and verdict of one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepScore {
    /// Points earned, between 0 and the step's weight.
    pub score: f64,
    /// The step's compliance verdict.
    pub conforme: Conformite,
}

/// What [`summarize`] needs to know about one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepForSummary {
    /// The step's weight in the audit configuration.
    pub weight: f64,
    /// Whether a NON_CONFORME verdict on this step fails the whole audit.
    pub critical: bool,
    /// Points earned by the step (as returned by [`score_step`]).
    pub score: f64,
    /// The step's compliance verdict.
    pub conforme: Conformite,
}

/// Compliance summary of a whole audit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    /// Score out of 100, rounded to one decimal.
    pub score: f64,
    /// Quality level derived from the score (REJET on critical failure).
    pub niveau: Niveau,
    /// True when some critical step is NON_CONFORME.
    pub critical: bool,
}

/// A usable weight: non-finite or negative weights count as 0.
fn sanitize_weight(weight: f64) -> f64 {
    if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        0.0
    }
}

/// Scores one step from its control points:
/// `weight × (present + 0.5 × partiel) / applicable`, where applicable points are all but
/// NON_APPLICABLE ones. Each point counts with the status that counts
/// ([`ControlPointVerdict::counted_statut`]): a human review's when there is one.
///
/// A step with nothing applicable (including no points at all) earns its full weight and
/// is CONFORME. Otherwise it is CONFORME when every applicable point is PRESENT,
/// NON_CONFORME when none is PRESENT or PARTIEL, else PARTIEL. A non-finite or negative
/// weight counts as 0, so the score is never NaN.
pub fn score_step(weight: f64, points: &[ControlPointVerdict]) -> StepScore {
    let weight = sanitize_weight(weight);
    let (mut present, mut partiel, mut applicable) = (0usize, 0usize, 0usize);
    for point in points {
        match point.counted_statut() {
            ControlPointStatus::Present => present += 1,
            ControlPointStatus::Partiel => partiel += 1,
            ControlPointStatus::Absent => {}
            ControlPointStatus::NonApplicable => continue,
        }
        applicable += 1;
    }
    if applicable == 0 {
        return StepScore {
            score: weight,
            conforme: Conformite::Conforme,
        };
    }
    let earned = present as f64 + 0.5 * partiel as f64;
    let score = weight * earned / applicable as f64;
    let conforme = if present == applicable {
        Conformite::Conforme
    } else if present + partiel == 0 {
        Conformite::NonConforme
    } else {
        Conformite::Partiel
    };
    StepScore {
        score: if score.is_finite() { score } else { 0.0 },
        conforme,
    }
}

/// Rounds to one decimal (half away from zero).
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Summarises an audit: `score = 100 × Σ step scores / Σ weights`, rounded to one decimal
/// and clamped to `[0, 100]`; `critical` when some critical step is NON_CONFORME;
/// `niveau` from [`niveau_for`] on the rounded score.
///
/// Weights that are non-finite or negative count as 0, and each step score is clamped to
/// `[0, weight]` (non-finite → 0). When the total weight is 0 (no steps, or all weights
/// 0) the score is 100.0, consistent with a step with nothing applicable earning its full
/// weight; a critical failure still forces REJET. The score is never NaN.
pub fn summarize(steps: &[StepForSummary]) -> AuditSummary {
    let mut total_weight = 0.0;
    let mut total_score = 0.0;
    let mut critical = false;
    for step in steps {
        let weight = sanitize_weight(step.weight);
        total_weight += weight;
        total_score += if step.score.is_finite() {
            step.score.clamp(0.0, weight)
        } else {
            0.0
        };
        if step.critical && step.conforme == Conformite::NonConforme {
            critical = true;
        }
    }
    let raw = if total_weight > 0.0 {
        100.0 * total_score / total_weight
    } else {
        100.0
    };
    // Σ of huge finite weights can overflow to infinity (∞/∞ = NaN); never report NaN.
    let score = if raw.is_finite() {
        round1(raw.clamp(0.0, 100.0))
    } else {
        0.0
    };
    AuditSummary {
        score,
        niveau: niveau_for(score, critical),
        critical,
    }
}

/// Niveau for a score out of 100: ≥90 EXCELLENT, ≥75 BON, ≥60 ACCEPTABLE, ≥40
/// INSUFFISANT, else REJET. A critical failure (or a NaN score) gives REJET.
pub fn niveau_for(score: f64, critical: bool) -> Niveau {
    if critical {
        Niveau::Rejet
    } else if score >= 90.0 {
        Niveau::Excellent
    } else if score >= 75.0 {
        Niveau::Bon
    } else if score >= 60.0 {
        Niveau::Acceptable
    } else if score >= 40.0 {
        Niveau::Insuffisant
    } else {
        Niveau::Rejet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(index: usize, statut: ControlPointStatus) -> ControlPointVerdict {
        ControlPointVerdict {
            index,
            point: format!("Point de contrôle n°{index}"),
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

    fn points(statuses: &[ControlPointStatus]) -> Vec<ControlPointVerdict> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| point(i, *s))
            .collect()
    }

    fn step(weight: f64, critical: bool, score: f64, conforme: Conformite) -> StepForSummary {
        StepForSummary {
            weight,
            critical,
            score,
            conforme,
        }
    }

    use ControlPointStatus::{Absent as A, NonApplicable as NA, Partiel as PA, Present as P};

    #[test]
    fn a_step_with_every_point_present_earns_its_weight_and_is_conforme() {
        let s = score_step(10.0, &points(&[P, P, P]));
        assert_eq!(
            s,
            StepScore {
                score: 10.0,
                conforme: Conformite::Conforme
            }
        );
    }

    #[test]
    fn a_step_with_only_non_applicable_points_earns_its_full_weight() {
        assert_eq!(
            score_step(8.0, &points(&[NA, NA])),
            StepScore {
                score: 8.0,
                conforme: Conformite::Conforme
            }
        );
        assert_eq!(
            score_step(8.0, &[]),
            StepScore {
                score: 8.0,
                conforme: Conformite::Conforme
            }
        );
    }

    #[test]
    fn non_applicable_points_are_left_out_of_the_denominator() {
        let s = score_step(10.0, &points(&[P, A, NA, NA]));
        assert_eq!(
            s,
            StepScore {
                score: 5.0,
                conforme: Conformite::Partiel
            }
        );
        let s = score_step(6.0, &points(&[P, NA, P]));
        assert_eq!(
            s,
            StepScore {
                score: 6.0,
                conforme: Conformite::Conforme
            }
        );
    }

    #[test]
    fn partial_points_count_for_half() {
        let s = score_step(10.0, &points(&[P, PA, A, PA]));
        assert!((s.score - 5.0).abs() < 1e-12);
        assert_eq!(s.conforme, Conformite::Partiel);
        let s = score_step(4.0, &points(&[PA, PA]));
        assert!((s.score - 2.0).abs() < 1e-12);
        assert_eq!(
            s.conforme,
            Conformite::Partiel,
            "only partial points is PARTIEL, not CONFORME"
        );
    }

    #[test]
    fn a_step_with_nothing_present_or_partial_is_non_conforme() {
        let s = score_step(5.0, &points(&[A, A, NA]));
        assert_eq!(
            s,
            StepScore {
                score: 0.0,
                conforme: Conformite::NonConforme
            }
        );
    }

    #[test]
    fn invalid_weights_score_zero_without_nan() {
        for weight in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0] {
            let s = score_step(weight, &points(&[P, PA]));
            assert_eq!(s.score, 0.0, "weight {weight}");
            assert_eq!(s.conforme, Conformite::Partiel);
            let s = score_step(weight, &points(&[NA]));
            assert_eq!(s.score, 0.0, "weight {weight}");
        }
    }

    #[test]
    fn the_audit_score_is_the_weighted_share_of_step_scores() {
        let summary = summarize(&[
            step(10.0, false, 10.0, Conformite::Conforme),
            step(30.0, false, 15.0, Conformite::Partiel),
        ]);
        assert_eq!(
            summary,
            AuditSummary {
                score: 62.5,
                niveau: Niveau::Acceptable,
                critical: false
            }
        );
    }

    #[test]
    fn the_audit_score_is_rounded_to_one_decimal() {
        let summary = summarize(&[step(3.0, false, 2.0, Conformite::Partiel)]);
        assert_eq!(summary.score, 66.7);
        let summary = summarize(&[step(3.0, false, 1.0, Conformite::Partiel)]);
        assert_eq!(summary.score, 33.3);
        // 6.25 → 6.3 (half away from zero).
        let summary = summarize(&[step(8.0, false, 0.5, Conformite::Partiel)]);
        assert_eq!(summary.score, 6.3);
    }

    #[test]
    fn niveau_thresholds_are_inclusive() {
        assert_eq!(niveau_for(100.0, false), Niveau::Excellent);
        assert_eq!(niveau_for(90.0, false), Niveau::Excellent);
        assert_eq!(niveau_for(89.9, false), Niveau::Bon);
        assert_eq!(niveau_for(75.0, false), Niveau::Bon);
        assert_eq!(niveau_for(74.9, false), Niveau::Acceptable);
        assert_eq!(niveau_for(60.0, false), Niveau::Acceptable);
        assert_eq!(niveau_for(59.9, false), Niveau::Insuffisant);
        assert_eq!(niveau_for(40.0, false), Niveau::Insuffisant);
        assert_eq!(niveau_for(39.9, false), Niveau::Rejet);
        assert_eq!(niveau_for(0.0, false), Niveau::Rejet);
        assert_eq!(niveau_for(f64::NAN, false), Niveau::Rejet);
    }

    #[test]
    fn niveau_uses_the_rounded_score() {
        // 89.96 rounds to 90.0, which is EXCELLENT.
        let summary = summarize(&[step(100.0, false, 89.96, Conformite::Partiel)]);
        assert_eq!(summary.score, 90.0);
        assert_eq!(summary.niveau, Niveau::Excellent);
    }

    #[test]
    fn a_summary_exactly_at_each_threshold_gets_that_niveau() {
        for (score, niveau) in [
            (90.0, Niveau::Excellent),
            (75.0, Niveau::Bon),
            (60.0, Niveau::Acceptable),
            (40.0, Niveau::Insuffisant),
        ] {
            let summary = summarize(&[step(20.0, false, score / 5.0, Conformite::Partiel)]);
            assert_eq!(summary.score, score);
            assert_eq!(summary.niveau, niveau);
        }
    }

    #[test]
    fn a_critical_step_non_conforme_forces_rejet() {
        let summary = summarize(&[
            step(90.0, false, 90.0, Conformite::Conforme),
            step(10.0, true, 0.0, Conformite::NonConforme),
        ]);
        assert_eq!(
            summary,
            AuditSummary {
                score: 90.0,
                niveau: Niveau::Rejet,
                critical: true
            }
        );
        assert_eq!(niveau_for(100.0, true), Niveau::Rejet);
    }

    #[test]
    fn a_critical_step_that_is_only_partiel_does_not_force_rejet() {
        let summary = summarize(&[
            step(90.0, false, 90.0, Conformite::Conforme),
            step(10.0, true, 5.0, Conformite::Partiel),
        ]);
        assert_eq!(
            summary,
            AuditSummary {
                score: 95.0,
                niveau: Niveau::Excellent,
                critical: false
            }
        );
    }

    #[test]
    fn a_non_critical_step_non_conforme_does_not_force_rejet() {
        let summary = summarize(&[
            step(90.0, false, 90.0, Conformite::Conforme),
            step(10.0, false, 0.0, Conformite::NonConforme),
        ]);
        assert_eq!(summary.niveau, Niveau::Excellent);
        assert!(!summary.critical);
    }

    #[test]
    fn zero_total_weight_scores_one_hundred() {
        assert_eq!(
            summarize(&[]),
            AuditSummary {
                score: 100.0,
                niveau: Niveau::Excellent,
                critical: false
            }
        );
        let summary = summarize(&[step(0.0, false, 0.0, Conformite::Conforme)]);
        assert_eq!(summary.score, 100.0);
        let summary = summarize(&[step(0.0, true, 0.0, Conformite::NonConforme)]);
        assert_eq!(
            summary,
            AuditSummary {
                score: 100.0,
                niveau: Niveau::Rejet,
                critical: true
            }
        );
    }

    #[test]
    fn invalid_weights_and_scores_never_produce_nan() {
        let summary = summarize(&[
            step(f64::NAN, false, 5.0, Conformite::Partiel),
            step(-10.0, false, -10.0, Conformite::Partiel),
            step(10.0, false, f64::NAN, Conformite::Partiel),
            step(10.0, false, 50.0, Conformite::Conforme),
        ]);
        assert!(!summary.score.is_nan());
        // NaN/negative weights count 0; NaN score counts 0; 50 is clamped to the weight 10.
        assert_eq!(summary.score, 50.0);
        let summary = summarize(&[step(f64::MAX, false, f64::MAX, Conformite::Conforme); 3]);
        assert!(summary.score.is_finite());
    }

    #[test]
    fn audit_summary_serializes_with_its_json_names() {
        let summary = AuditSummary {
            score: 82.5,
            niveau: Niveau::Bon,
            critical: false,
        };
        let value = serde_json::to_value(summary).expect("serializable");
        assert_eq!(
            value,
            serde_json::json!({"score": 82.5, "niveau": "BON", "critical": false})
        );
        let back: AuditSummary = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, summary);
    }
}
