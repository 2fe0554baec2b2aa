//! The step analyzer: one step of one audit configuration against a fiche's transcripts,
//! in prompt or transcript-tools mode, then evidence gating and scoring. Full audits
//! use it today; step and control-point reruns use the same one, so a rerun judges a
//! step exactly as the audit did.

use crate::heartbeat::heartbeating;
use crate::state::{retryable, upstream};
use callaudit_domain::analysis::{
    STEP_ANALYSIS_SCHEMA_NAME, StepAnalysis, step_analysis_json_schema,
};
use callaudit_domain::audit_config::StepSpec;
use callaudit_domain::evidence::{
    GatingOptions, NOT_ASSESSED_REASON, TranscriptIndex, TranscriptIndexCache,
    cover_control_points, gate_step_indexed,
};
use callaudit_domain::personal_data::redact_transcripts;
use callaudit_domain::pii::Redactor;
use callaudit_domain::prompts::{step_prompt, step_tools_prompt};
use callaudit_domain::scoring::{StepScore, score_step};
use callaudit_domain::step_result::{AnalysisMode, StepResult};
use callaudit_domain::transcript::Transcript;
use callaudit_domain::transcript_tools::{ToolLoopLimits, tool_definitions};
use callaudit_upstream::openai::chat::JsonRequest;
use callaudit_upstream::openai::{OpenAiClient, ToolsRequest, Usage};
use serde_json::Value;
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

/// The transcripts' indexes (gating and transcript tools) of the last fiches analysed by
/// this worker: the steps of an audit load the same transcripts, so all but the first
/// reuse the index (found by content: new or re-redacted transcripts get their own).
/// Four entries cover a few audits in flight; a 5-hour call's index is a few MB.
static TRANSCRIPT_INDEXES: TranscriptIndexCache = TranscriptIndexCache::new(4);

/// Analyses steps with one LLM and model.
#[derive(Debug, Clone, Copy)]
pub struct StepAnalyzer<'a> {
    /// The LLM.
    pub llm: &'a OpenAiClient,
    /// Its model.
    pub model: &'a str,
    /// Personal data goes to the LLM as placeholders (`PII_REDACTION` ≠ `off`): the
    /// transcripts (and a reviewer's hint) are redacted before the prompt or the tools
    /// see them, and citations are gated against what the model read.
    pub redact: bool,
}

impl crate::state::WorkerActivities {
    /// The analyzer of audits and reruns: the worker's LLM with `OPENAI_MODEL_AUDIT`
    /// (permanent failure when no LLM is configured).
    pub(crate) fn step_analyzer(&self) -> Result<StepAnalyzer<'_>, ActivityError> {
        let llm = self
            .llm
            .as_ref()
            .ok_or_else(|| crate::state::permanent("OPENAI_API_KEY is not configured"))?;
        Ok(StepAnalyzer {
            llm,
            model: &self.model_audit,
            redact: self.pii_redaction.prompts(),
        })
    }
}

/// A step analysed, gated and scored.
#[derive(Debug, Clone)]
pub struct AnalyzedStep {
    /// What is stored as `raw_result`.
    pub result: StepResult,
    /// Score and verdict recomputed from the gated points.
    pub score: StepScore,
    /// Tokens spent.
    pub usage: Usage,
}

impl StepAnalyzer<'_> {
    /// Asks the LLM about `step` (transcripts in the prompt, or through tools when
    /// `use_rlm`), lines its answer up with the configuration's control points (each
    /// counted once; one it did not assess is ABSENT, unverified), gates every citation
    /// against `transcripts` and scores the step. Heartbeats `ctx` while the LLM works.
    pub async fn analyze(
        &self,
        ctx: &ActivityContext,
        step: &StepSpec,
        transcripts: &[Transcript],
        use_rlm: bool,
    ) -> Result<AnalyzedStep, ActivityError> {
        let redacted_step;
        let redacted;
        let (step, transcripts) = if self.redact {
            // One redactor for the fiche, fed its transcripts in recording order: every
            // step sees the same placeholders.
            let mut redactor = Redactor::new();
            redacted = redact_transcripts(transcripts, &mut redactor);
            let mut s = step.clone();
            s.instructions = redactor.redact(&step.instructions).text;
            redacted_step = s;
            (&redacted_step, redacted.as_slice())
        } else {
            (step, transcripts)
        };
        let index = TRANSCRIPT_INDEXES.get(transcripts);
        let (answer, usage, mode) = if use_rlm {
            self.with_tools(ctx, step, &index).await?
        } else {
            self.in_prompt(ctx, step, transcripts).await?
        };
        let answer: StepAnalysis = serde_json::from_value(answer)
            .map_err(|e| retryable(format!("answer does not follow the schema: {e}")))?;
        // The configuration, not the model, is the source of truth for the points: each
        // counts exactly once, assessed or not.
        let answered = answer.points_controle.len();
        let analysis = cover_control_points(answer, &step.control_points);
        let not_assessed = analysis
            .points_controle
            .iter()
            .filter(|p| p.evidence_reason.as_deref() == Some(NOT_ASSESSED_REASON))
            .count();
        if not_assessed > 0 || answered != step.control_points.len() {
            tracing::warn!(
                control_points = step.control_points.len(),
                answered,
                not_assessed,
                "the model did not answer once for each control point"
            );
        }
        let gated = gate_step_indexed(analysis, &index, &GatingOptions::default());
        let score = score_step(step.weight, &gated.points_controle);
        Ok(AnalyzedStep {
            result: StepResult {
                gated,
                analysis: mode,
                rerun_history: Vec::new(),
            },
            score,
            usage,
        })
    }

    async fn in_prompt(
        &self,
        ctx: &ActivityContext,
        step: &StepSpec,
        transcripts: &[Transcript],
    ) -> Result<(Value, Usage, AnalysisMode), ActivityError> {
        let (system, user) = step_prompt(step, transcripts);
        let schema = step_analysis_json_schema();
        let (answer, usage) = heartbeating(
            ctx,
            self.llm.json_completion(JsonRequest {
                model: self.model,
                system: &system,
                user: &user,
                schema_name: STEP_ANALYSIS_SCHEMA_NAME,
                schema: &schema,
            }),
        )
        .await
        .map_err(upstream)?;
        Ok((answer, usage, AnalysisMode::Prompt))
    }

    async fn with_tools(
        &self,
        ctx: &ActivityContext,
        step: &StepSpec,
        index: &TranscriptIndex,
    ) -> Result<(Value, Usage, AnalysisMode), ActivityError> {
        let tools = index.tools();
        let limits = ToolLoopLimits::default();
        let (system, user) = step_tools_prompt(step, tools, limits);
        let schema = step_analysis_json_schema();
        let done = heartbeating(
            ctx,
            self.llm.tools_completion(
                ToolsRequest {
                    model: self.model,
                    system: &system,
                    user: &user,
                    tools: &tool_definitions(),
                    schema_name: STEP_ANALYSIS_SCHEMA_NAME,
                    schema: &schema,
                    limits,
                },
                |name, arguments| tools.call(name, arguments),
            ),
        )
        .await
        .map_err(upstream)?;
        tracing::info!(
            tool_rounds = done.tool_rounds,
            tool_calls = done.tool_calls,
            tool_chars = done.tool_chars,
            budget_exhausted = done.budget_exhausted,
            "step analysed in transcript-tools mode"
        );
        let mode = AnalysisMode::Tools {
            requests: done.requests,
            tool_rounds: done.tool_rounds,
            tool_calls: done.tool_calls,
            tool_chars: done.tool_chars,
            budget_exhausted: done.budget_exhausted,
            max_tool_rounds: limits.max_tool_rounds,
            max_tool_chars: limits.max_tool_chars,
        };
        Ok((done.answer, done.usage, mode))
    }
}
