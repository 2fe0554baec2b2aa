//! What is stored of a step (`audit_step_results.raw_result`): the gated analysis, how it
//! was obtained and the trail of reruns. Full audits and reruns build the same shape.

use crate::analysis::StepAnalysis;
use serde::{Deserialize, Serialize};

/// How a step's answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum AnalysisMode {
    /// One completion with the transcripts in the prompt.
    Prompt,
    /// Transcript-tools mode (`use_rlm`): the model read the transcripts through tools.
    Tools {
        /// Chat completion requests sent.
        requests: u32,
        /// Answers that asked for tools.
        tool_rounds: u32,
        /// Tool results returned to the model.
        tool_calls: u32,
        /// Characters of tool results returned.
        tool_chars: usize,
        /// A bound was reached and the final answer forced.
        budget_exhausted: bool,
        /// The round bound.
        max_tool_rounds: u32,
        /// The character bound.
        max_tool_chars: usize,
    },
}

/// The stored result of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Gated verdicts (`points_controle`) and the overall comment.
    #[serde(flatten)]
    pub gated: StepAnalysis,
    /// How the answer was obtained.
    pub analysis: AnalysisMode,
    /// Reruns applied to this step, oldest first.
    #[serde(default)]
    pub rerun_history: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_shape_keeps_the_seed_names() {
        let r = StepResult {
            gated: StepAnalysis {
                points_controle: vec![],
                commentaire: "ok".into(),
            },
            analysis: AnalysisMode::Prompt,
            rerun_history: vec![],
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"points_controle": [], "commentaire": "ok", "analysis": {"mode": "prompt"}, "rerun_history": []})
        );
        let tools = serde_json::to_value(AnalysisMode::Tools {
            requests: 3,
            tool_rounds: 2,
            tool_calls: 4,
            tool_chars: 900,
            budget_exhausted: false,
            max_tool_rounds: 8,
            max_tool_chars: 60_000,
        })
        .unwrap();
        assert_eq!(tools["mode"], "tools");
        assert_eq!(tools["tool_calls"], 4);
    }
}
