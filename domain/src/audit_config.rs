//! Audit configurations: ordered steps, each with a weight, a critical flag, instructions
//! for the auditor and its control points ("points de contrôle").

use serde::{Deserialize, Serialize};

/// A configuration as submitted (and as stored, without ids).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditConfigSpec {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Steps.
    pub steps: Vec<StepSpec>,
}

/// One step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSpec {
    /// 1-based position, unique in the configuration.
    pub position: i32,
    /// Name.
    pub name: String,
    /// Instructions for the auditor.
    #[serde(default)]
    pub instructions: String,
    /// Weight in the audit score (≥ 0).
    pub weight: f64,
    /// A NON_CONFORME critical step forces the audit to REJET.
    #[serde(default)]
    pub critical: bool,
    /// Control points, in order.
    pub control_points: Vec<String>,
}

/// Upper bounds that keep prompts and payloads sane.
pub const MAX_STEPS: usize = 50;
/// Max control points per step.
pub const MAX_CONTROL_POINTS: usize = 30;

impl AuditConfigSpec {
    /// Checks the configuration; the error names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.steps.is_empty() {
            return Err("steps must contain at least one step".into());
        }
        if self.steps.len() > MAX_STEPS {
            return Err(format!("at most {MAX_STEPS} steps are allowed"));
        }
        let mut positions: Vec<i32> = self.steps.iter().map(|s| s.position).collect();
        positions.sort_unstable();
        if positions.windows(2).any(|w| w[0] == w[1]) {
            return Err("steps[].position must be unique".into());
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.position < 1 {
                return Err(format!("steps[{i}].position must be ≥ 1"));
            }
            if step.name.trim().is_empty() {
                return Err(format!("steps[{i}].name must not be empty"));
            }
            if !step.weight.is_finite() || step.weight < 0.0 {
                return Err(format!("steps[{i}].weight must be a finite number ≥ 0"));
            }
            if step.control_points.is_empty() {
                return Err(format!("steps[{i}].control_points must not be empty"));
            }
            if step.control_points.len() > MAX_CONTROL_POINTS {
                return Err(format!(
                    "steps[{i}] has more than {MAX_CONTROL_POINTS} control points"
                ));
            }
            if let Some(j) = step.control_points.iter().position(|c| c.trim().is_empty()) {
                return Err(format!("steps[{i}].control_points[{j}] must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AuditConfigSpec {
        AuditConfigSpec {
            name: "Vente mutuelle".into(),
            description: String::new(),
            steps: vec![StepSpec {
                position: 1,
                name: "Présentation".into(),
                instructions: String::new(),
                weight: 10.0,
                critical: false,
                control_points: vec!["Le conseiller se présente".into()],
            }],
        }
    }

    #[test]
    fn a_valid_configuration_passes() {
        assert_eq!(spec().validate(), Ok(()));
    }

    #[test]
    fn invalid_configurations_name_the_field() {
        let mut s = spec();
        s.steps[0].weight = f64::NAN;
        assert!(s.validate().unwrap_err().contains("steps[0].weight"));
        let mut s = spec();
        s.steps.push(s.steps[0].clone());
        assert!(
            s.validate()
                .unwrap_err()
                .contains("position must be unique")
        );
        let mut s = spec();
        s.steps[0].control_points.clear();
        assert!(s.validate().unwrap_err().contains("control_points"));
        let mut s = spec();
        s.name = "  ".into();
        assert!(s.validate().unwrap_err().contains("name"));
    }
}
