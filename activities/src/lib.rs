//! Activity implementations (I/O lives here): upstream clients and the persistence steps
//! of callaudit's workflows. Every activity is idempotent, keyed by the workflow's ids:
//! a retried or replayed activity finds its row and returns it without calling upstream.

pub mod clients;
pub mod fiches;
pub mod leases;

use callaudit_db::{Pool, events, pipeline, pool};
use callaudit_domain::analysis::{
    STEP_ANALYSIS_SCHEMA_NAME, StepAnalysis, step_analysis_json_schema,
};
use callaudit_domain::audit_config::StepSpec;
use callaudit_domain::evidence::{GatingOptions, gate_step};
use callaudit_domain::scoring::{AuditSummary, StepForSummary, score_step, summarize};
use callaudit_domain::transcript::{Transcript, Word};
use callaudit_domain::transcript_tools::{TranscriptTools, tool_definitions};
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditPlan, AuditRef, EnsureFicheInput, FicheRecordings,
    RecordingRef, StepOutcome, TranscribeInput, TranscribeOutput, ids,
};
use clients::{ElevenLabsClient, OpenAiClient, ToolLoopLimits, ToolsRequest, UpstreamError};
use serde_json::json;
use std::sync::Arc;
use temporalio_common::ActivityError;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityContext;
use uuid::Uuid;

/// Everything the activities need, built once at worker start.
pub struct WorkerActivities {
    /// Postgres.
    pub pool: Pool,
    /// CRM access: cache, global caps, force-refresh cooldown.
    pub fiches: fiches::FicheService,
    /// ElevenLabs.
    pub stt: Option<ElevenLabsClient>,
    /// LLM.
    pub llm: Option<OpenAiClient>,
    /// Model for audits.
    pub model_audit: String,
}

impl std::fmt::Debug for WorkerActivities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerActivities")
            .field("holder", &self.fiches.holder)
            .finish_non_exhaustive()
    }
}

fn permanent(msg: impl Into<String>) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(std::io::Error::other(
        msg.into(),
    )))
}

fn upstream(e: UpstreamError) -> ActivityError {
    if e.is_retryable() {
        ActivityError::from(anyhow::anyhow!(e.to_string()))
    } else {
        permanent(e.to_string())
    }
}

fn retryable(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::from(anyhow::anyhow!(e.to_string()))
}

fn parse_uuid(s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid audit id {s}")))
}

/// The audit and the configuration it applies; both missing cases are permanent.
async fn audit_with_config(
    conn: &mut callaudit_db::AsyncPgConnection,
    id: Uuid,
) -> Result<
    (
        pipeline::AuditRow,
        callaudit_db::audit_configs::StoredAuditConfig,
    ),
    ActivityError,
> {
    let audit = pipeline::get_audit(conn, id)
        .await
        .map_err(retryable)?
        .ok_or_else(|| permanent(format!("audit {id} not found")))?;
    let config = callaudit_db::audit_configs::get(conn, audit.audit_config_id)
        .await
        .map_err(retryable)?
        .ok_or_else(|| permanent("audit configuration deleted"))?;
    Ok((audit, config))
}

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

impl WorkerActivities {
    async fn conn(&self) -> Result<callaudit_db::PooledConn, ActivityError> {
        pool::get(&self.pool).await.map_err(retryable)
    }

    async fn load_transcripts(&self, fiche_id: &str) -> Result<Vec<Transcript>, ActivityError> {
        let mut conn = self.conn().await?;
        let recs = pipeline::fiche_recordings(&mut conn, fiche_id)
            .await
            .map_err(retryable)?;
        let mut out = Vec::new();
        for (recording_id, _, _) in recs {
            let Some((language, text, words)) =
                pipeline::completed_transcription(&mut conn, &recording_id)
                    .await
                    .map_err(retryable)?
            else {
                return Err(retryable(format!(
                    "recording {recording_id} is not transcribed yet"
                )));
            };
            let words: Vec<Word> = words
                .and_then(|w| serde_json::from_value(w).ok())
                .unwrap_or_default();
            out.push(Transcript {
                recording_id,
                language,
                text: text.unwrap_or_default(),
                words,
            });
        }
        Ok(out)
    }

    async fn publish(
        &self,
        topic: &str,
        kind: &str,
        payload: serde_json::Value,
        dedupe: &str,
    ) -> Result<(), ActivityError> {
        let mut conn = self.conn().await?;
        events::publish(&mut conn, topic, kind, &payload, Some(dedupe))
            .await
            .map_err(retryable)?;
        Ok(())
    }
}

/// How often a long vendor call heartbeats its activity. The workflows set a heartbeat
/// timeout of a few of these, so a worker that dies mid-call has its activity retried
/// elsewhere within seconds instead of after the whole start-to-close timeout.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs `work`, heartbeating the activity every [`HEARTBEAT_EVERY`] until it finishes.
/// The first heartbeat comes after one period, not at once: the SDK sends a first
/// heartbeat to the server immediately, and a call that ends sooner needs none (one server
/// round trip saved per short vendor call).
pub async fn heartbeating<F: std::future::Future>(ctx: &ActivityContext, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + HEARTBEAT_EVERY,
        HEARTBEAT_EVERY,
    );
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let _ = ctx.record_heartbeat(()).await;
            }
        }
    }
}

#[activities]
impl WorkerActivities {
    /// `audit.start`.
    #[activity(name = "audit.start")]
    pub async fn start_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditRef,
    ) -> Result<AuditPlan, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        let (audit, config) = audit_with_config(&mut conn, id).await?;
        pipeline::mark_audit_running(&mut conn, id)
            .await
            .map_err(retryable)?;
        drop(conn);
        let positions: Vec<i32> = config.spec.steps.iter().map(|s| s.position).collect();
        self.publish(
            &ids::audit_topic(&input.audit_id),
            "audit.started",
            json!({"audit_id": input.audit_id, "fiche_id": audit.fiche_id, "steps_total": positions.len()}),
            &format!("audit:{}:started", input.audit_id),
        )
        .await?;
        Ok(AuditPlan {
            step_positions: positions,
        })
    }

    /// `fiche.ensure_details`.
    #[activity(name = "fiche.ensure_details")]
    pub async fn ensure_fiche(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: EnsureFicheInput,
    ) -> Result<FicheRecordings, ActivityError> {
        let ensured = self
            .fiches
            .ensure(&input.fiche_id, input.force_refresh, Some(&ctx), None)
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    retryable(e)
                } else {
                    permanent(e.to_string())
                }
            })?;
        let mut conn = self.conn().await?;
        let recordings = pipeline::fiche_recordings(&mut conn, &input.fiche_id)
            .await
            .map_err(retryable)?
            .into_iter()
            .map(|(recording_id, _, transcribed)| RecordingRef {
                recording_id,
                transcribed,
            })
            .collect();
        Ok(FicheRecordings {
            fiche_id: input.fiche_id,
            recordings,
            fetched: ensured.fetched,
        })
    }

    /// `transcription.transcribe`.
    #[activity(name = "transcription.transcribe")]
    pub async fn transcribe(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TranscribeInput,
    ) -> Result<TranscribeOutput, ActivityError> {
        let mut conn = self.conn().await?;
        if let Some((_, _, words)) =
            pipeline::completed_transcription(&mut conn, &input.recording_id)
                .await
                .map_err(retryable)?
        {
            let n = words.and_then(|w| w.as_array().map(Vec::len)).unwrap_or(0);
            return Ok(TranscribeOutput {
                recording_id: input.recording_id,
                word_count: u32::try_from(n).unwrap_or(u32::MAX),
                reused: true,
            });
        }
        let url = pipeline::recording_url(&mut conn, &input.recording_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("recording {} unknown", input.recording_id)))?;
        drop(conn);
        let stt = self
            .stt
            .as_ref()
            .ok_or_else(|| permanent("ELEVENLABS_API_KEY is not configured"))?;
        let transcript = heartbeating(&ctx, stt.transcribe(&input.recording_id, &url))
            .await
            .map_err(upstream)?;
        let words = serde_json::to_value(&transcript.words).map_err(retryable)?;
        let count = i32::try_from(transcript.words.len()).unwrap_or(i32::MAX);
        let mut conn = self.conn().await?;
        pipeline::store_transcription(
            &mut conn,
            &input.recording_id,
            &stt.model,
            transcript.language.as_deref(),
            &transcript.text,
            &words,
            count,
        )
        .await
        .map_err(retryable)?;
        Ok(TranscribeOutput {
            recording_id: input.recording_id,
            word_count: u32::try_from(count).unwrap_or(0),
            reused: false,
        })
    }

    /// `audit.analyze_step`.
    #[activity(name = "audit.analyze_step")]
    pub async fn analyze_step(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalyzeStepInput,
    ) -> Result<StepOutcome, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        if let Some(row) = pipeline::step_results(&mut conn, id)
            .await
            .map_err(retryable)?
            .into_iter()
            .find(|r| r.position == input.position)
        {
            return Ok(StepOutcome {
                position: row.position,
                score: row.score,
                conforme: serde_json::from_value(json!(row.conforme)).map_err(retryable)?,
                reused: true,
            });
        }
        let (audit, config) = audit_with_config(&mut conn, id).await?;
        drop(conn);
        let step = config
            .spec
            .steps
            .iter()
            .find(|s| s.position == input.position)
            .ok_or_else(|| {
                permanent(format!("step {} not in the configuration", input.position))
            })?;
        let transcripts = self.load_transcripts(&audit.fiche_id).await?;
        let llm = self
            .llm
            .as_ref()
            .ok_or_else(|| permanent("OPENAI_API_KEY is not configured"))?;
        let schema = step_analysis_json_schema();
        // Both modes end in the same answer; `mode` records how it was obtained.
        let (answer, usage, mode) = if input.use_rlm {
            let tools = TranscriptTools::new(&transcripts);
            let limits = ToolLoopLimits::default();
            let (system, user) = step_tools_prompt(step, &tools, limits);
            let done = heartbeating(
                &ctx,
                llm.tools_completion(
                    ToolsRequest {
                        model: &self.model_audit,
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
                audit.id = %input.audit_id,
                step.position = input.position,
                tool_rounds = done.tool_rounds,
                tool_calls = done.tool_calls,
                tool_chars = done.tool_chars,
                budget_exhausted = done.budget_exhausted,
                "step analysed in transcript-tools mode"
            );
            let mode = json!({
                "mode": "tools",
                "requests": done.requests,
                "tool_rounds": done.tool_rounds,
                "tool_calls": done.tool_calls,
                "tool_chars": done.tool_chars,
                "budget_exhausted": done.budget_exhausted,
                "max_tool_rounds": limits.max_tool_rounds,
                "max_tool_chars": limits.max_tool_chars,
            });
            (done.answer, done.usage, mode)
        } else {
            let (system, user) = step_prompt(step, &transcripts);
            let (answer, usage) = heartbeating(
                &ctx,
                llm.json_completion(
                    &self.model_audit,
                    &system,
                    &user,
                    STEP_ANALYSIS_SCHEMA_NAME,
                    &schema,
                ),
            )
            .await
            .map_err(upstream)?;
            (answer, usage, json!({"mode": "prompt"}))
        };
        let mut analysis: StepAnalysis = serde_json::from_value(answer)
            .map_err(|e| retryable(format!("answer does not follow the schema: {e}")))?;
        // The configuration, not the model, is the source of truth for the points.
        analysis
            .points_controle
            .retain(|p| p.index < step.control_points.len());
        for p in &mut analysis.points_controle {
            p.point = step.control_points[p.index].clone();
        }
        let gated = gate_step(analysis, &transcripts, &GatingOptions::default());
        let scored = score_step(step.weight, &gated.points_controle);
        let mut raw = serde_json::to_value(&gated).map_err(retryable)?;
        raw["rerun_history"] = json!([]);
        raw["analysis"] = mode;
        let row = pipeline::StepResultRow {
            position: step.position,
            step_name: step.name.clone(),
            weight: step.weight,
            critical: step.critical,
            score: scored.score,
            conforme: scored.conforme.as_str().to_string(),
            raw_result: raw,
            model: Some(self.model_audit.clone()),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        };
        let mut conn = self.conn().await?;
        pipeline::insert_step_result(&mut conn, id, &row)
            .await
            .map_err(retryable)?;
        drop(conn);
        self.publish(
            &ids::audit_topic(&input.audit_id),
            "audit.step.completed",
            json!({"audit_id": input.audit_id, "position": step.position, "name": step.name, "score": scored.score, "conforme": scored.conforme}),
            &format!("audit:{}:step:{}", input.audit_id, step.position),
        )
        .await?;
        Ok(StepOutcome {
            position: step.position,
            score: scored.score,
            conforme: scored.conforme,
            reused: false,
        })
    }

    /// `audit.finalize`.
    #[activity(name = "audit.finalize")]
    pub async fn finalize_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditRef,
    ) -> Result<AuditSummary, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        let rows = pipeline::step_results(&mut conn, id)
            .await
            .map_err(retryable)?;
        let steps: Vec<StepForSummary> = rows
            .iter()
            .map(|r| StepForSummary {
                weight: r.weight,
                critical: r.critical,
                score: r.score,
                conforme: serde_json::from_value(json!(r.conforme))
                    .unwrap_or(callaudit_domain::analysis::Conformite::NonConforme),
            })
            .collect();
        let summary = summarize(&steps);
        let done = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        pipeline::complete_audit(
            &mut conn,
            id,
            summary.score,
            summary.niveau.as_str(),
            summary.critical,
            done,
        )
        .await
        .map_err(retryable)?;
        drop(conn);
        self.publish(
            &ids::audit_topic(&input.audit_id),
            "audit.completed",
            json!({"audit_id": input.audit_id, "score": summary.score, "niveau": summary.niveau, "critical": summary.critical}),
            &format!("audit:{}:completed", input.audit_id),
        )
        .await?;
        Ok(summary)
    }

    /// `audit.fail`.
    #[activity(name = "audit.fail")]
    pub async fn fail_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AuditFailure,
    ) -> Result<(), ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        pipeline::fail_audit(&mut conn, id, &input.error)
            .await
            .map_err(retryable)?;
        drop(conn);
        self.publish(
            &ids::audit_topic(&input.audit_id),
            "audit.failed",
            json!({"audit_id": input.audit_id, "error": input.error}),
            &format!("audit:{}:failed", input.audit_id),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerActivities;
    use callaudit_domain::activities::CallauditActivities;
    use temporalio_common::ActivityDefinition;

    /// Compile-time: same input and output types; run time: same activity type name.
    fn same<D: ActivityDefinition, I: ActivityDefinition<Input = D::Input, Output = D::Output>>(
        d: D,
        i: I,
    ) {
        assert_eq!(d.name(), i.name());
    }

    #[test]
    fn implementations_match_the_definitions_the_workflows_call() {
        same(
            CallauditActivities::start_audit,
            WorkerActivities::start_audit,
        );
        same(
            CallauditActivities::ensure_fiche,
            WorkerActivities::ensure_fiche,
        );
        same(
            CallauditActivities::transcribe,
            WorkerActivities::transcribe,
        );
        same(
            CallauditActivities::analyze_step,
            WorkerActivities::analyze_step,
        );
        same(
            CallauditActivities::finalize_audit,
            WorkerActivities::finalize_audit,
        );
        same(
            CallauditActivities::fail_audit,
            WorkerActivities::fail_audit,
        );
    }
}
