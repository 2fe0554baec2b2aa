//! Calibration: how far the AI's verdicts agree with the human reviews of the same
//! control points. For each reviewed point, the pair (AI `statut` after gating, human
//! `review.statut`) is counted in a confusion matrix; from it come the agreement rate
//! (the diagonal over the total) and Cohen's kappa, which discounts the agreement two
//! raters would reach by chance given how often each uses each status:
//!
//! `κ = (pₒ − pₑ) / (1 − pₑ)`, `pₒ = Σₖ nₖₖ / n`, `pₑ = Σₖ (rowₖ / n) · (colₖ / n)`.
//!
//! κ is undefined when `pₑ = 1` (both raters used one same status for everything); it
//! is then reported as `None`.

use crate::analysis::{ControlPointStatus, ControlPointVerdict};
use serde::Serialize;

/// The four statuses in matrix order (rows: AI, columns: human).
pub const ORDER: [ControlPointStatus; 4] = ControlPointStatus::ALL;

fn slot(s: ControlPointStatus) -> usize {
    ORDER.iter().position(|o| *o == s).unwrap_or(0)
}

/// Agreement between AI and human verdicts over a set of reviewed points.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Agreement {
    /// Reviewed points counted.
    pub reviewed: u64,
    /// Points where the human verdict equals the AI's.
    pub agreed: u64,
    /// `confusion[ai][human]`, statuses in [`ORDER`].
    pub confusion: [[u64; 4]; 4],
}

impl Agreement {
    /// Counts one reviewed point.
    pub fn add(&mut self, ai: ControlPointStatus, human: ControlPointStatus) {
        self.reviewed += 1;
        if ai == human {
            self.agreed += 1;
        }
        self.confusion[slot(ai)][slot(human)] += 1;
    }

    /// Counts a point if it was reviewed (returns whether it was).
    pub fn add_point(&mut self, point: &ControlPointVerdict) -> bool {
        match &point.review {
            Some(r) => {
                self.add(point.statut, r.statut);
                true
            }
            None => false,
        }
    }

    /// Agreed / reviewed, or `None` with nothing reviewed.
    pub fn agreement_rate(&self) -> Option<f64> {
        (self.reviewed > 0).then(|| self.agreed as f64 / self.reviewed as f64)
    }

    /// Cohen's kappa, or `None` with nothing reviewed or when chance agreement is 1.
    pub fn kappa(&self) -> Option<f64> {
        if self.reviewed == 0 {
            return None;
        }
        let n = self.reviewed as f64;
        let po = self.agreed as f64 / n;
        let pe: f64 = (0..4)
            .map(|k| {
                let row: u64 = self.confusion[k].iter().sum();
                let col: u64 = (0..4).map(|r| self.confusion[r][k]).sum();
                (row as f64 / n) * (col as f64 / n)
            })
            .sum();
        if (1.0 - pe).abs() < 1e-12 {
            return None;
        }
        Some((po - pe) / (1.0 - pe))
    }

    /// Adds another set's counts to this one.
    pub fn merge(&mut self, other: &Agreement) {
        self.reviewed += other.reviewed;
        self.agreed += other.agreed;
        for r in 0..4 {
            for c in 0..4 {
                self.confusion[r][c] += other.confusion[r][c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ControlPointStatus::{Absent, NonApplicable, Partiel, Present};

    #[test]
    fn perfect_agreement_on_two_statuses_has_kappa_one() {
        let mut a = Agreement::default();
        a.add(Present, Present);
        a.add(Absent, Absent);
        assert_eq!(a.agreement_rate(), Some(1.0));
        assert_eq!(a.kappa(), Some(1.0));
    }

    #[test]
    fn kappa_discounts_chance_agreement() {
        // 10 points: AI PRESENT 6 (human agrees on 5, says ABSENT once), AI ABSENT 4
        // (human agrees on 3, says PRESENT once).
        // pₒ = 8/10; rows P 6, A 4; columns P 6, A 4; pₑ = .36 + .16 = .52;
        // κ = (.8 − .52) / .48 = 0.58333…
        let mut a = Agreement::default();
        for _ in 0..5 {
            a.add(Present, Present);
        }
        a.add(Present, Absent);
        for _ in 0..3 {
            a.add(Absent, Absent);
        }
        a.add(Absent, Present);
        assert_eq!(a.reviewed, 10);
        assert_eq!(a.agreement_rate(), Some(0.8));
        assert!((a.kappa().unwrap() - 0.28 / 0.48).abs() < 1e-12);
        assert_eq!(a.confusion[0], [5, 0, 1, 0]);
        assert_eq!(a.confusion[2], [1, 0, 3, 0]);
    }

    #[test]
    fn one_status_everywhere_leaves_kappa_undefined() {
        let mut a = Agreement::default();
        a.add(Partiel, Partiel);
        a.add(Partiel, Partiel);
        assert_eq!(a.agreement_rate(), Some(1.0));
        assert_eq!(a.kappa(), None);
        assert_eq!(Agreement::default().kappa(), None);
        assert_eq!(Agreement::default().agreement_rate(), None);
    }

    #[test]
    fn systematic_disagreement_has_negative_kappa() {
        let mut a = Agreement::default();
        a.add(Present, NonApplicable);
        a.add(NonApplicable, Present);
        // pₒ = 0, pₑ = ½·½ + ½·½ = ½: κ = −1.
        assert_eq!(a.kappa(), Some(-1.0));
        let mut b = Agreement::default();
        b.add(Present, Present);
        b.merge(&a);
        assert_eq!(b.reviewed, 3);
        assert_eq!(b.agreed, 1);
    }
}
