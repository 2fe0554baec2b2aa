//! The prompts of step analysis, in both modes. Pure: the same step and transcripts give
//! the same messages, so full audits and reruns ask the same question.

use crate::audit_config::StepSpec;
use crate::transcript::Transcript;
use crate::transcript_tools::{ToolLoopLimits, TranscriptTools};
use serde_json::json;

/// The prompt of one step (prompt mode): instructions in the system message, the step,
/// its control points and the speaker-labelled, timestamped transcripts as JSON.
pub fn step_prompt(step: &StepSpec, transcripts: &[Transcript]) -> (String, String) {
    let system = format!(
        "Tu es auditeur qualité d'appels de vente. Pour chaque point de contrôle, décide \
         PRESENT, PARTIEL, ABSENT ou NON_APPLICABLE d'après les transcriptions uniquement. \
         Pour PRESENT et PARTIEL, cite mot pour mot les phrases qui le prouvent avec leur \
         recording_id, start_s et speaker. N'invente jamais de citation. Consignes de \
         l'étape : {}",
        step.instructions
    );
    let user = json!({
        "mode": "prompt",
        "step": {"position": step.position, "name": step.name, "instructions": step.instructions},
        "control_points": step.control_points.iter().enumerate()
            .map(|(i, p)| json!({"index": i, "point": p})).collect::<Vec<_>>(),
        "transcripts": transcripts.iter().map(|t| json!({
            "recording_id": t.recording_id,
            "utterances": t.utterances(),
        })).collect::<Vec<_>>(),
    });
    (system, user.to_string())
}

/// The prompt of one step in transcript-tools mode (`use_rlm`): the same instructions as
/// [`step_prompt`] plus how to use the tools and cite what they return; the user message
/// lists the recordings (ids, durations, utterance counts, speakers) but no transcript
/// text, which the model reads through the tools.
pub fn step_tools_prompt(
    step: &StepSpec,
    tools: &TranscriptTools,
    limits: ToolLoopLimits,
) -> (String, String) {
    let system = format!(
        "Tu es auditeur qualité d'appels de vente. Les transcriptions ne sont pas dans ce \
         message : lis-les avec les outils. searchTranscript cherche des mots (accents et \
         casse ignorés) et renvoie les énoncés correspondants avec recording_id, index, \
         speaker, start_s et leur texte exact ; getTranscriptChunks lit des énoncés \
         consécutifs d'un enregistrement (par index ou par fenêtre de temps) pour vérifier le \
         contexte. Budget : au plus {} tours d'appels d'outils et {} caractères lus en tout ; \
         fais plusieurs appels par tour. Pour chaque point de contrôle, décide PRESENT, \
         PARTIEL, ABSENT ou NON_APPLICABLE d'après ce que les outils t'ont montré uniquement. \
         Pour PRESENT et PARTIEL, cite mot pour mot des phrases lues dans les résultats des \
         outils, avec le recording_id, le start_s et le speaker de l'énoncé cité. N'invente \
         jamais de citation. Consignes de l'étape : {}",
        limits.max_tool_rounds, limits.max_tool_chars, step.instructions
    );
    let user = json!({
        "mode": "tools",
        "step": {"position": step.position, "name": step.name, "instructions": step.instructions},
        "control_points": step.control_points.iter().enumerate()
            .map(|(i, p)| json!({"index": i, "point": p})).collect::<Vec<_>>(),
        "recordings": tools.recordings(),
    });
    (system, user.to_string())
}
