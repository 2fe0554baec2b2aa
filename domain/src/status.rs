//! Lifecycle statuses stored in Postgres and shown by the api, as enums with their
//! stored names, and strict parsing of every named enum of the domain: an unknown name
//! is an error, never silently another value.

/// A stored or received name that is not one of the enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    /// The enum, e.g. `Conformite`.
    pub kind: &'static str,
    /// The name received.
    pub value: String,
}

/// Implements `FromStr` (strict: [`UnknownName`] for anything else) and `Display` for an
/// enum with `ALL` and `as_str`.
macro_rules! parse_by_name {
    ($t:ty) => {
        impl std::str::FromStr for $t {
            type Err = $crate::status::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::status::UnknownName {
                        kind: stringify!($t),
                        value: s.to_string(),
                    })
            }
        }
    };
}
pub(crate) use parse_by_name;

/// Defines a string enum: variants with their stored names, `ALL`, `as_str`, `Display`,
/// strict `FromStr` and serde under the same names.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::status::parse_by_name!($name);
    };
}
pub(crate) use named_enum;

named_enum! {
    /// Where an audit stands (`audits.status`).
    AuditStatus {
        /// Created, workflow starting.
        Pending = "pending",
        /// The workflow runs.
        Running = "running",
        /// Summary recorded.
        Completed = "completed",
        /// Failure recorded with its reason.
        Failed = "failed",
        /// Cancelled on request (`POST /api/audits/{id}/cancel`).
        Cancelled = "cancelled",
    }
}

impl AuditStatus {
    /// Whether the audit has reached an end state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

named_enum! {
    /// State of a recording's transcription (`transcriptions.status`).
    TranscriptionStatus {
        /// Queued.
        Pending = "pending",
        /// At the speech-to-text vendor.
        Running = "running",
        /// Stored and usable.
        Completed = "completed",
        /// Gave up.
        Failed = "failed",
    }
}

named_enum! {
    /// Phase of a running audit (the `progress` query of `AuditWorkflow`).
    #[derive(Default)]
    AuditPhase {
        /// Before `audit.start`.
        #[default]
        Starting = "starting",
        /// Fiche details.
        Fiche = "fiche",
        /// Transcriptions.
        Transcription = "transcription",
        /// Step analysis.
        Analysis = "analysis",
        /// Summary.
        Finalizing = "finalizing",
        /// Done.
        Completed = "completed",
        /// Failed.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Conformite, ControlPointStatus, Niveau};

    #[test]
    fn every_name_parses_back_to_its_value() {
        for s in AuditStatus::ALL {
            assert_eq!(s.as_str().parse::<AuditStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for c in Conformite::ALL {
            assert_eq!(c.as_str().parse::<Conformite>(), Ok(c));
        }
        for n in Niveau::ALL {
            assert_eq!(n.as_str().parse::<Niveau>(), Ok(n));
        }
        for p in ControlPointStatus::ALL {
            assert_eq!(p.as_str().parse::<ControlPointStatus>(), Ok(p));
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_not_another_value() {
        let e = "conforme".parse::<Conformite>().unwrap_err();
        assert_eq!(e.kind, "Conformite");
        assert!("done".parse::<AuditStatus>().is_err());
        assert!("".parse::<Niveau>().is_err());
    }
}
