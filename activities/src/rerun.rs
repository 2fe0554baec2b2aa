//! The activities of a rerun of a finished audit's step or control point: analyse again
//! with the audit's [`StepAnalyzer`] (same prompt, gating and scoring as the audit, plus
//! the reviewer's hint), store the analysis on the rerun row, then apply it under the
//! audit's row lock with its trail in `rerun_history`. Each is idempotent by the rerun id.

use crate::state::{WorkerActivities, audit_with_config, parse_uuid, permanent, retryable};
use callaudit_db::reruns::{self, PatchError, Patched, Proposal as StoredProposal, RerunRow};
use callaudit_domain::analysis::ControlPointStatus;
use callaudit_domain::events::{AuditEvent, RerunRef};
use callaudit_domain::rerun::{
    ChangeMeta, Proposal, RerunKind, RerunStatus, RerunTrail, TokenUsage,
    apply_control_point_rerun, apply_step_rerun, instructions_with_hint,
};
use callaudit_domain::step_result::{AnalysisMode, StepResult};
use callaudit_domain::workflow_io::{
    RerunActivityInput, RerunAnalyzed, RerunFailure, RerunOutcome,
};
use chrono::SecondsFormat;
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

fn rerun_ref(row: &RerunRow) -> RerunRef {
    RerunRef {
        rerun_id: row.id.to_string(),
        workflow_id: row.workflow_id.clone(),
        kind: row.kind,
        position: row.position,
        control_point_index: row.control_point_index,
    }
}

fn requests_of(mode: &AnalysisMode) -> i32 {
    match mode {
        AnalysisMode::Prompt => 1,
        AnalysisMode::Tools { requests, .. } => i32::try_from(*requests).unwrap_or(i32::MAX),
    }
}

impl WorkerActivities {
    async fn rerun_row(&self, rerun_id: &str) -> Result<RerunRow, ActivityError> {
        let id = parse_uuid(rerun_id)?;
        let mut conn = self.conn().await?;
        reruns::get(&mut conn, id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("rerun {id} not found")))
    }

    /// `rerun.analyze`: a stored analysis is returned as is; otherwise the step (or its
    /// one control point, alone) is analysed with the audit's configuration snapshot and
    /// mode, gated against every transcript of the fiche and stored on the rerun row.
    #[tracing::instrument(
        name = "rerun.analyze",
        skip_all,
        fields(rerun.id = %input.rerun_id, audit.id = tracing::field::Empty, step.position = tracing::field::Empty)
    )]
    pub(crate) async fn analyze_rerun_step(
        &self,
        ctx: &ActivityContext,
        input: RerunActivityInput,
    ) -> Result<RerunAnalyzed, ActivityError> {
        let row = self.rerun_row(&input.rerun_id).await?;
        let span = tracing::Span::current();
        span.record("audit.id", tracing::field::display(row.audit_id));
        span.record("step.position", row.position);
        if let Some(stored) = &row.proposal {
            let proposal: Proposal = serde_json::from_value(stored.clone())
                .map_err(|e| permanent(format!("stored rerun analysis unreadable: {e}")))?;
            return Ok(RerunAnalyzed {
                statuts: statuts_of(&proposal),
                reused: true,
            });
        }
        if row.status == RerunStatus::Failed {
            return Err(permanent("the rerun was recorded failed"));
        }
        let mut conn = self.conn().await?;
        reruns::mark_running(&mut conn, row.id)
            .await
            .map_err(retryable)?;
        let (audit, config) = audit_with_config(&mut conn, row.audit_id).await?;
        drop(conn);
        let step = config
            .steps
            .iter()
            .find(|s| s.position == row.position)
            .ok_or_else(|| {
                permanent(format!(
                    "step {} is not in the audit's configuration",
                    row.position
                ))
            })?;
        let mut spec = step.clone();
        spec.instructions = instructions_with_hint(&step.instructions, row.instructions.as_deref());
        if let Some(index) = row.control_point_index {
            let point = usize::try_from(index)
                .ok()
                .and_then(|i| step.control_points.get(i))
                .ok_or_else(|| {
                    permanent(format!(
                        "control point {index} is not in step {}",
                        row.position
                    ))
                })?;
            // Only this point is asked about, as the step's only one.
            spec.control_points = vec![point.clone()];
        }
        let transcripts = self.load_transcripts(&audit.fiche_id).await?;
        let done = self
            .step_analyzer()?
            .analyze(ctx, &spec, &transcripts, row.use_rlm)
            .await?;
        let proposal = match row.kind {
            RerunKind::Step => Proposal::Step {
                result: done.result.clone(),
            },
            RerunKind::ControlPoint => Proposal::ControlPoint {
                point: done
                    .result
                    .gated
                    .points_controle
                    .first()
                    .cloned()
                    .ok_or_else(|| retryable("the analysis has no control point"))?,
                analysis: done.result.analysis,
            },
        };
        let value = serde_json::to_value(&proposal).map_err(retryable)?;
        let mut conn = self.conn().await?;
        reruns::store_proposal(
            &mut conn,
            row.id,
            &StoredProposal {
                proposal: &value,
                model: &self.model_audit,
                prompt_tokens: done.usage.prompt_tokens,
                completion_tokens: done.usage.completion_tokens,
                llm_requests: requests_of(&done.result.analysis),
            },
        )
        .await
        .map_err(retryable)?;
        tracing::info!(
            kind = %row.kind,
            prompt_tokens = done.usage.prompt_tokens,
            completion_tokens = done.usage.completion_tokens,
            "rerun analysed"
        );
        Ok(RerunAnalyzed {
            statuts: statuts_of(&proposal),
            reused: false,
        })
    }

    /// `rerun.apply`: applies the stored analysis to the step under the audit's row lock
    /// (history appended, step rescored, audit summary recomputed, rerun recorded
    /// completed, all in one transaction) and announces `audit.rerun.completed`. A rerun
    /// applied already is only announced again (stored once by its dedupe key).
    #[tracing::instrument(
        name = "rerun.apply",
        skip_all,
        fields(rerun.id = %input.rerun_id, audit.id = tracing::field::Empty, step.position = tracing::field::Empty)
    )]
    pub(crate) async fn apply_rerun_step(
        &self,
        input: RerunActivityInput,
    ) -> Result<RerunOutcome, ActivityError> {
        let row = self.rerun_row(&input.rerun_id).await?;
        let span = tracing::Span::current();
        span.record("audit.id", tracing::field::display(row.audit_id));
        span.record("step.position", row.position);
        let patched = if row.status == RerunStatus::Completed {
            let outcome = row
                .outcome
                .clone()
                .ok_or_else(|| permanent("completed rerun without outcome"))?;
            serde_json::from_value::<Patched>(outcome).map_err(|e| permanent(e.to_string()))?
        } else {
            self.apply_locked(&row).await?
        };
        tracing::info!(
            step_score = patched.score,
            audit_score = patched.summary.score,
            niveau = %patched.summary.niveau,
            "rerun applied"
        );
        self.publish(&AuditEvent::RerunCompleted {
            audit_id: row.audit_id.to_string(),
            rerun: rerun_ref(&row),
            step_score: patched.score,
            step_conforme: patched.conforme,
            summary: patched.summary,
        })
        .await?;
        Ok(RerunOutcome {
            rerun_id: row.id.to_string(),
            step_score: patched.score,
            step_conforme: patched.conforme,
            summary: patched.summary,
        })
    }

    async fn apply_locked(&self, row: &RerunRow) -> Result<Patched, ActivityError> {
        let proposal: Proposal = serde_json::from_value(
            row.proposal
                .clone()
                .ok_or_else(|| permanent("the rerun has no stored analysis"))?,
        )
        .map_err(|e| permanent(format!("stored rerun analysis unreadable: {e}")))?;
        let meta = ChangeMeta {
            by: row.requested_by_email.clone(),
            requested_at: Some(row.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            applied_at: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            rerun: Some(RerunTrail {
                rerun_id: row.id.to_string(),
                workflow_id: row.workflow_id.clone(),
                use_rlm: row.use_rlm,
                model: row.model.clone().unwrap_or_default(),
                usage: TokenUsage {
                    prompt_tokens: i64::from(row.prompt_tokens),
                    completion_tokens: i64::from(row.completion_tokens),
                },
                instructions: row.instructions.clone(),
                analysis: match &proposal {
                    Proposal::Step { result } => result.analysis,
                    Proposal::ControlPoint { analysis, .. } => *analysis,
                },
            }),
        };
        let index = row.control_point_index;
        let mut conn = self.conn().await?;
        let result = reruns::patch_step(
            &mut conn,
            row.audit_id,
            row.position,
            move |step| -> Result<reruns::StepPatch, String> {
                let stored: StepResult = serde_json::from_value(step.raw_result.clone())
                    .map_err(|e| format!("the stored step is unreadable: {e}"))?;
                let applied = match proposal {
                    Proposal::Step { result } => {
                        apply_step_rerun(&stored, result, step.weight, &meta)
                    }
                    Proposal::ControlPoint { point, .. } => {
                        let i = index
                            .and_then(|i| usize::try_from(i).ok())
                            .ok_or("control-point rerun without an index")?;
                        apply_control_point_rerun(&stored, i, point, step.weight, &meta)
                            .map_err(|e| e.to_string())?
                    }
                };
                Ok(reruns::StepPatch {
                    raw_result: serde_json::to_value(&applied.result).map_err(|e| e.to_string())?,
                    score: applied.score.score,
                    conforme: applied.score.conforme,
                })
            },
            Some(row.id),
        )
        .await;
        match result {
            Ok(p) => Ok(p),
            Err(PatchError::Db(e)) => Err(retryable(e)),
            Err(e @ PatchError::Rejected(_)) => Err(permanent(e.to_string())),
            Err(e) => Err(permanent(format!("the rerun cannot be applied: {e}"))),
        }
    }

    /// `rerun.fail`: records the failure and announces it; false when the rerun had
    /// ended already.
    #[tracing::instrument(name = "rerun.fail", skip_all, fields(rerun.id = %input.rerun_id))]
    pub(crate) async fn fail_rerun_step(&self, input: RerunFailure) -> Result<bool, ActivityError> {
        let row = self.rerun_row(&input.rerun_id).await?;
        let mut conn = self.conn().await?;
        let recorded = reruns::fail(&mut conn, row.id, &input.error)
            .await
            .map_err(retryable)?;
        drop(conn);
        if recorded {
            tracing::warn!(error = %input.error, "rerun failed");
        }
        // Announced even when recorded earlier (stored once by its dedupe key), unless the
        // rerun completed: then that end stands.
        if row.status != RerunStatus::Completed {
            self.publish(&AuditEvent::RerunFailed {
                audit_id: row.audit_id.to_string(),
                rerun: rerun_ref(&row),
                error: input.error,
            })
            .await?;
        }
        Ok(recorded)
    }
}

fn statuts_of(p: &Proposal) -> Vec<ControlPointStatus> {
    match p {
        Proposal::Step { result } => result
            .gated
            .points_controle
            .iter()
            .map(|c| c.statut)
            .collect(),
        Proposal::ControlPoint { point, .. } => vec![point.statut],
    }
}
