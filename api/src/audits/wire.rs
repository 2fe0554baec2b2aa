//! The domain's enums as they appear in the OpenAPI schema (`enum` of their names), so a
//! generated client gets types, not strings. One `From` each; the names are the domain's.

use callaudit_domain::analysis::{Conformite, Niveau};
use callaudit_domain::status::AuditStatus;
use poem_openapi::Enum;

/// Where an audit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum AuditStatusView {
    /// Created, workflow starting.
    Pending,
    /// The workflow runs.
    Running,
    /// Summary recorded.
    Completed,
    /// Failure recorded with its reason.
    Failed,
    /// Cancelled on request.
    Cancelled,
}

impl From<AuditStatus> for AuditStatusView {
    fn from(s: AuditStatus) -> Self {
        match s {
            AuditStatus::Pending => Self::Pending,
            AuditStatus::Running => Self::Running,
            AuditStatus::Completed => Self::Completed,
            AuditStatus::Failed => Self::Failed,
            AuditStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Quality level of an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NiveauView {
    /// Score ≥ 90.
    Excellent,
    /// Score ≥ 75.
    Bon,
    /// Score ≥ 60.
    Acceptable,
    /// Score ≥ 40.
    Insuffisant,
    /// Score < 40 or a critical step failed.
    Rejet,
}

impl From<Niveau> for NiveauView {
    fn from(n: Niveau) -> Self {
        match n {
            Niveau::Excellent => Self::Excellent,
            Niveau::Bon => Self::Bon,
            Niveau::Acceptable => Self::Acceptable,
            Niveau::Insuffisant => Self::Insuffisant,
            Niveau::Rejet => Self::Rejet,
        }
    }
}

/// Compliance verdict of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConformiteView {
    /// Every applicable control point is present.
    Conforme,
    /// Some but not all are covered.
    Partiel,
    /// None is present or partial.
    NonConforme,
}

impl From<Conformite> for ConformiteView {
    fn from(c: Conformite) -> Self {
        match c {
            Conformite::Conforme => Self::Conforme,
            Conformite::Partiel => Self::Partiel,
            Conformite::NonConforme => Self::NonConforme,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn schema_names_are_the_domain_names() {
        for s in AuditStatus::ALL {
            assert_eq!(AuditStatusView::from(*s).to_json(), Some(s.as_str().into()));
        }
        for n in Niveau::ALL {
            assert_eq!(NiveauView::from(n).to_json(), Some(n.as_str().into()));
        }
        for c in Conformite::ALL {
            assert_eq!(ConformiteView::from(c).to_json(), Some(c.as_str().into()));
        }
    }
}
