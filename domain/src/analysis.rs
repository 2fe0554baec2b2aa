//! The shape of a step analysis: control-point verdicts with quoted evidence, as produced
//! by the LLM and then gated by [`crate::evidence`], plus the compliance enums and the
//! strict JSON Schema the LLM answers with.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::evidence::CitationCheck;

/// Status of one control point ("point de contrôle") in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ControlPointStatus {
    /// The point is fully covered (`"PRESENT"`).
    Present,
    /// The point is partly covered (`"PARTIEL"`).
    Partiel,
    /// The point is not covered (`"ABSENT"`).
    Absent,
    /// The point does not apply to this call (`"NON_APPLICABLE"`).
    NonApplicable,
}

impl ControlPointStatus {
    /// All statuses, in schema order.
    pub const ALL: [ControlPointStatus; 4] = [
        Self::Present,
        Self::Partiel,
        Self::Absent,
        Self::NonApplicable,
    ];

    /// The JSON name (`"PRESENT"`, `"PARTIEL"`, `"ABSENT"`, `"NON_APPLICABLE"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Present => "PRESENT",
            Self::Partiel => "PARTIEL",
            Self::Absent => "ABSENT",
            Self::NonApplicable => "NON_APPLICABLE",
        }
    }
}

impl fmt::Display for ControlPointStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compliance verdict of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Conformite {
    /// Every applicable control point is present (`"CONFORME"`).
    Conforme,
    /// Some but not all applicable points are covered (`"PARTIEL"`).
    Partiel,
    /// No applicable point is present or partial (`"NON_CONFORME"`).
    NonConforme,
}

impl Conformite {
    /// All verdicts.
    pub const ALL: [Conformite; 3] = [Self::Conforme, Self::Partiel, Self::NonConforme];

    /// The JSON name (`"CONFORME"`, `"PARTIEL"`, `"NON_CONFORME"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conforme => "CONFORME",
            Self::Partiel => "PARTIEL",
            Self::NonConforme => "NON_CONFORME",
        }
    }
}

impl fmt::Display for Conformite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Overall quality level of an audit, derived from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Niveau {
    /// Score ≥ 90 (`"EXCELLENT"`).
    Excellent,
    /// Score ≥ 75 (`"BON"`).
    Bon,
    /// Score ≥ 60 (`"ACCEPTABLE"`).
    Acceptable,
    /// Score ≥ 40 (`"INSUFFISANT"`).
    Insuffisant,
    /// Score < 40, or a critical step failed (`"REJET"`).
    Rejet,
}

impl Niveau {
    /// All levels, best first.
    pub const ALL: [Niveau; 5] = [
        Self::Excellent,
        Self::Bon,
        Self::Acceptable,
        Self::Insuffisant,
        Self::Rejet,
    ];

    /// The JSON name (`"EXCELLENT"`, `"BON"`, `"ACCEPTABLE"`, `"INSUFFISANT"`, `"REJET"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Excellent => "EXCELLENT",
            Self::Bon => "BON",
            Self::Acceptable => "ACCEPTABLE",
            Self::Insuffisant => "INSUFFISANT",
            Self::Rejet => "REJET",
        }
    }
}

impl fmt::Display for Niveau {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::status::parse_by_name!(ControlPointStatus);
crate::status::parse_by_name!(Conformite);
crate::status::parse_by_name!(Niveau);

/// A piece of quoted evidence: words said in a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The quoted words, verbatim from the transcript.
    pub quote: String,
    /// The recording the quote comes from.
    pub recording_id: String,
    /// Approximate start time of the quote in the recording, in seconds.
    #[serde(default)]
    pub start_s: Option<f64>,
    /// Speaker label of the quote, as shown in the transcript.
    #[serde(default)]
    pub speaker: Option<String>,
}

/// The verdict on one control point, with its evidence and gating outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlPointVerdict {
    /// Position of the control point in the step's list.
    pub index: usize,
    /// The control point's wording.
    pub point: String,
    /// Status after evidence gating (as claimed by the LLM before gating).
    pub statut: ControlPointStatus,
    /// Free-text justification.
    #[serde(default)]
    pub commentaire: String,
    /// Quoted evidence supporting the status.
    #[serde(default)]
    pub citations: Vec<Citation>,
    /// True when a PRESENT/PARTIEL claim had no verified citation.
    #[serde(default)]
    pub evidence_unverified: bool,
    /// Why the evidence was not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_reason: Option<String>,
    /// What the LLM claimed; set only when gating changed the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_statut: Option<ControlPointStatus>,
    /// One check per citation, for PRESENT/PARTIEL claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citation_checks: Vec<CitationCheck>,
    /// A human reviewer's verdict, when there is one: it counts instead of `statut`
    /// (which stays the AI's verdict, visible beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

impl ControlPointVerdict {
    /// The status that counts: the human review's when there is one, else the AI's.
    pub fn counted_statut(&self) -> ControlPointStatus {
        self.review.as_ref().map_or(self.statut, |r| r.statut)
    }
}

/// A human verdict on a control point (`PUT …/control-points/{index}/review`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// The reviewer's status.
    pub statut: ControlPointStatus,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// Who (e-mail).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The LLM's answer for one step (and, once gated, the stored step analysis).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepAnalysis {
    /// One verdict per control point.
    pub points_controle: Vec<ControlPointVerdict>,
    /// Overall comment on the step.
    #[serde(default)]
    pub commentaire: String,
}

/// Name to give [`step_analysis_json_schema`] in an OpenAI `json_schema` response format.
pub const STEP_ANALYSIS_SCHEMA_NAME: &str = "step_analysis";

/// JSON Schema of the LLM's answer ([`StepAnalysis`] without the gating fields), valid for
/// OpenAI structured outputs in strict mode: every object has `additionalProperties:
/// false` and lists all its properties in `required`; optional values are nullable.
///
/// Use as `response_format: {type: "json_schema", json_schema: {name:
/// STEP_ANALYSIS_SCHEMA_NAME, strict: true, schema}}`.
pub fn step_analysis_json_schema() -> serde_json::Value {
    let statuses: Vec<&str> = ControlPointStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["points_controle", "commentaire"],
        "properties": {
            "points_controle": {
                "type": "array",
                "description": "One entry per control point of the step, in the given order.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["index", "point", "statut", "commentaire", "citations"],
                    "properties": {
                        "index": {
                            "type": "integer",
                            "description": "Index of the control point, as given in the prompt."
                        },
                        "point": {
                            "type": "string",
                            "description": "The control point's wording."
                        },
                        "statut": {
                            "type": "string",
                            "enum": statuses,
                            "description": "PRESENT, PARTIEL, ABSENT or NON_APPLICABLE."
                        },
                        "commentaire": {
                            "type": "string",
                            "description": "Short justification, in French."
                        },
                        "citations": {
                            "type": "array",
                            "description": "Verbatim quotes from the transcripts proving the status; required for PRESENT and PARTIEL.",
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["quote", "recording_id", "start_s", "speaker"],
                                "properties": {
                                    "quote": {
                                        "type": "string",
                                        "description": "Exact words copied from the transcript."
                                    },
                                    "recording_id": {
                                        "type": "string",
                                        "description": "Recording the quote comes from."
                                    },
                                    "start_s": {
                                        "type": ["number", "null"],
                                        "description": "Start time of the quote in seconds, or null."
                                    },
                                    "speaker": {
                                        "type": ["string", "null"],
                                        "description": "Speaker label as shown in the transcript, or null."
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "commentaire": {
                "type": "string",
                "description": "Overall comment on the step, in French."
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::CitationVerdict;
    use serde_json::Value;
    use std::collections::BTreeSet;

    #[test]
    fn statuses_serialize_with_their_french_screaming_names() {
        for (status, name) in [
            (ControlPointStatus::Present, "PRESENT"),
            (ControlPointStatus::Partiel, "PARTIEL"),
            (ControlPointStatus::Absent, "ABSENT"),
            (ControlPointStatus::NonApplicable, "NON_APPLICABLE"),
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(Value::String(name.into()))
            );
            assert_eq!(status.as_str(), name);
            assert_eq!(status.to_string(), name);
            let back: ControlPointStatus =
                serde_json::from_value(Value::String(name.into())).expect("known name");
            assert_eq!(back, status);
        }
    }

    #[test]
    fn conformite_and_niveau_serialize_with_their_names() {
        for (c, name) in [
            (Conformite::Conforme, "CONFORME"),
            (Conformite::Partiel, "PARTIEL"),
            (Conformite::NonConforme, "NON_CONFORME"),
        ] {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(Value::String(name.into()))
            );
            assert_eq!(c.to_string(), name);
            assert_eq!(
                serde_json::from_value::<Conformite>(Value::String(name.into())).ok(),
                Some(c)
            );
        }
        for (n, name) in [
            (Niveau::Excellent, "EXCELLENT"),
            (Niveau::Bon, "BON"),
            (Niveau::Acceptable, "ACCEPTABLE"),
            (Niveau::Insuffisant, "INSUFFISANT"),
            (Niveau::Rejet, "REJET"),
        ] {
            assert_eq!(
                serde_json::to_value(n).ok(),
                Some(Value::String(name.into()))
            );
            assert_eq!(n.to_string(), name);
            assert_eq!(
                serde_json::from_value::<Niveau>(Value::String(name.into())).ok(),
                Some(n)
            );
        }
    }

    #[test]
    fn an_llm_answer_deserializes_with_defaults_for_gating_fields() {
        let json = r#"{
            "points_controle": [{
                "index": 0,
                "point": "Annonce de l'enregistrement de l'appel",
                "statut": "PRESENT",
                "commentaire": "Le conseiller annonce l'enregistrement.",
                "citations": [{"quote": "Cet appel est enregistré", "recording_id": "rec-1", "start_s": 12.4, "speaker": null}]
            }, {
                "index": 1,
                "point": "Rappel du droit de rétractation",
                "statut": "NON_APPLICABLE",
                "commentaire": "",
                "citations": []
            }],
            "commentaire": "Étape globalement conforme."
        }"#;
        let analysis: StepAnalysis = serde_json::from_str(json).expect("valid LLM answer");
        let first = &analysis.points_controle[0];
        assert_eq!(first.statut, ControlPointStatus::Present);
        assert_eq!(first.citations[0].start_s, Some(12.4));
        assert_eq!(first.citations[0].speaker, None);
        assert!(!first.evidence_unverified);
        assert_eq!(first.evidence_reason, None);
        assert_eq!(first.claimed_statut, None);
        assert!(first.citation_checks.is_empty());
        assert_eq!(
            analysis.points_controle[1].statut,
            ControlPointStatus::NonApplicable
        );
    }

    #[test]
    fn a_verdict_omits_unset_gating_fields_and_round_trips() {
        let verdict = ControlPointVerdict {
            index: 2,
            point: "Présentation du conseiller".into(),
            statut: ControlPointStatus::Absent,
            commentaire: String::new(),
            citations: vec![],
            evidence_unverified: false,
            evidence_reason: None,
            claimed_statut: None,
            citation_checks: vec![],
            review: None,
        };
        let value = serde_json::to_value(&verdict).expect("serializable");
        let keys: BTreeSet<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            BTreeSet::from([
                "index",
                "point",
                "statut",
                "commentaire",
                "citations",
                "evidence_unverified"
            ])
        );
        assert_eq!(value["statut"], "ABSENT");
        let back: ControlPointVerdict = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, verdict);
    }

    #[test]
    fn a_gated_verdict_round_trips_with_all_fields() {
        let verdict = ControlPointVerdict {
            index: 0,
            point: "Annonce du prix".into(),
            statut: ControlPointStatus::Partiel,
            commentaire: "Prix annoncé.".into(),
            citations: vec![Citation {
                quote: "ça vous coûtera 30 euros".into(),
                recording_id: "rec-1".into(),
                start_s: Some(40.0),
                speaker: Some("speaker_0".into()),
            }],
            evidence_unverified: true,
            evidence_reason: Some("no verified citation".into()),
            claimed_statut: Some(ControlPointStatus::Present),
            citation_checks: vec![CitationCheck {
                quote: "ça vous coûtera 30 euros".into(),
                recording_id: "rec-1".into(),
                verdict: CitationVerdict::Close,
                similarity: 0.7,
                matched_text: Some("ça coûte 29,90 €".into()),
                matched_start_s: Some(41.2),
                reason: "quote only approximately found in recording rec-1 (similarity 0.70)"
                    .into(),
            }],
            review: None,
        };
        let value = serde_json::to_value(&verdict).expect("serializable");
        assert_eq!(value["claimed_statut"], "PRESENT");
        assert_eq!(value["evidence_reason"], "no verified citation");
        assert_eq!(value["citation_checks"][0]["verdict"], "CLOSE");
        assert_eq!(value["citations"][0]["recording_id"], "rec-1");
        let back: ControlPointVerdict = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, verdict);
    }

    fn assert_strict(schema: &Value, path: &str, objects_seen: &mut usize) {
        match schema {
            Value::Object(map) => {
                let is_object_type = match map.get("type") {
                    Some(Value::String(t)) => t == "object",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                if is_object_type {
                    *objects_seen += 1;
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "at {path}"
                    );
                    let props: BTreeSet<String> = map
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    let required: Vec<String> = map
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| {
                            r.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let required_set: BTreeSet<String> = required.iter().cloned().collect();
                    assert_eq!(
                        required.len(),
                        required_set.len(),
                        "duplicate required at {path}"
                    );
                    assert_eq!(required_set, props, "required != properties at {path}");
                }
                for (key, child) in map {
                    assert_strict(child, &format!("{path}/{key}"), objects_seen);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    assert_strict(child, &format!("{path}/{i}"), objects_seen);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_step_analysis_schema_is_strict_everywhere() {
        let schema = step_analysis_json_schema();
        let mut objects_seen = 0;
        assert_strict(&schema, "", &mut objects_seen);
        assert_eq!(objects_seen, 3, "root, control point and citation objects");
    }

    #[test]
    fn the_schema_lists_the_four_statuses_and_nullable_optionals() {
        let schema = step_analysis_json_schema();
        let point = &schema["properties"]["points_controle"]["items"];
        assert_eq!(
            point["properties"]["statut"]["enum"],
            json!(["PRESENT", "PARTIEL", "ABSENT", "NON_APPLICABLE"])
        );
        let citation = &point["properties"]["citations"]["items"];
        assert_eq!(
            citation["properties"]["start_s"]["type"],
            json!(["number", "null"])
        );
        assert_eq!(
            citation["properties"]["speaker"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(citation["properties"]["quote"]["type"], "string");
    }

    #[test]
    fn an_answer_matching_the_schema_deserializes_into_step_analysis() {
        let answer = json!({
            "points_controle": [{
                "index": 3,
                "point": "Vérification de l'identité du client",
                "statut": "PARTIEL",
                "commentaire": "Seul le nom est vérifié.",
                "citations": [{"quote": "vous êtes bien madame Martin ?", "recording_id": "rec-9", "start_s": null, "speaker": "speaker_0"}]
            }],
            "commentaire": "Vérification incomplète."
        });
        let analysis: StepAnalysis = serde_json::from_value(answer).expect("schema-shaped answer");
        assert_eq!(analysis.points_controle[0].index, 3);
        assert_eq!(analysis.points_controle[0].citations[0].start_s, None);
        assert_eq!(
            analysis.points_controle[0].citations[0].speaker.as_deref(),
            Some("speaker_0")
        );
    }
}
