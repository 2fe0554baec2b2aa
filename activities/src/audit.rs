//! The audit's own activities: start, analyse one step, finalize, record a failure.
//! Each is idempotent, keyed by the audit id and step position.

use crate::state::{WorkerActivities, audit_with_config, parse_uuid, permanent, retryable};
use callaudit_db::step_results::{self, NewStepResult};
use callaudit_db::{audits, events};
use callaudit_domain::events::AuditEvent;
use callaudit_domain::scoring::{AuditSummary, StepForSummary, summarize};
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditPlan, AuditRef, StepOutcome,
};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

impl WorkerActivities {
    /// `audit.start`: marks the audit running, emits `audit.started`, plans the steps.
    #[tracing::instrument(name = "audit.start", skip_all, fields(audit.id = %input.audit_id))]
    pub(crate) async fn start(&self, input: AuditRef) -> Result<AuditPlan, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        let (audit, config) = audit_with_config(&mut conn, id).await?;
        audits::mark_running(&mut conn, id)
            .await
            .map_err(retryable)?;
        drop(conn);
        let positions: Vec<i32> = config.steps.iter().map(|s| s.position).collect();
        self.publish(&AuditEvent::Started {
            audit_id: input.audit_id,
            fiche_id: audit.fiche_id,
            steps_total: positions.len(),
        })
        .await?;
        Ok(AuditPlan {
            step_positions: positions,
        })
    }

    /// `audit.analyze_step`: a stored step is returned as is; otherwise the step is
    /// analysed, gated, scored, stored once and announced.
    #[tracing::instrument(
        name = "audit.analyze_step",
        skip_all,
        fields(audit.id = %input.audit_id, step.position = input.position, use_rlm = input.use_rlm, fiche.id = tracing::field::Empty)
    )]
    pub(crate) async fn analyze(
        &self,
        ctx: &ActivityContext,
        input: AnalyzeStepInput,
    ) -> Result<StepOutcome, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        if let Some(stored) = step_results::outcome_of(&mut conn, id, input.position)
            .await
            .map_err(retryable)?
        {
            return Ok(StepOutcome {
                position: input.position,
                score: stored.score,
                conforme: stored.conforme,
                reused: true,
            });
        }
        let (audit, config) = audit_with_config(&mut conn, id).await?;
        let transcripts = crate::transcripts::transcripts_with(&mut conn, &audit.fiche_id).await?;
        drop(conn);
        tracing::Span::current().record("fiche.id", audit.fiche_id.as_str());
        let step = config
            .steps
            .iter()
            .find(|s| s.position == input.position)
            .ok_or_else(|| {
                permanent(format!("step {} not in the configuration", input.position))
            })?;
        let done = self
            .step_analyzer()?
            .analyze(ctx, step, &transcripts, input.use_rlm)
            .await?;
        let raw = serde_json::to_value(&done.result).map_err(retryable)?;
        let event = AuditEvent::StepCompleted {
            audit_id: input.audit_id,
            position: step.position,
            name: step.name.clone(),
            score: done.score.score,
            conforme: done.score.conforme,
        };
        let row = NewStepResult {
            audit_id: id,
            position: step.position,
            step_name: &step.name,
            weight: step.weight,
            critical: step.critical,
            score: done.score.score,
            conforme: done.score.conforme.as_str(),
            raw_result: &raw,
            model: Some(&self.model_audit),
            prompt_tokens: done.usage.prompt_tokens,
            completion_tokens: done.usage.completion_tokens,
        };
        // The step, its count on the audit and its event in one transaction: a step is
        // never stored without its event (a retry finds the step stored and returns,
        // so an event published apart could be lost), nor counted twice.
        let mut conn = self.conn().await?;
        step_results::insert_announced(
            &mut conn,
            &row,
            &events::NewEvent {
                topic: &event.topic(),
                kind: event.kind(),
                payload: &event.payload(),
                dedupe_key: Some(&event.dedupe_key()),
            },
        )
        .await
        .map_err(retryable)?;
        drop(conn);
        tracing::info!(
            score = done.score.score,
            conforme = %done.score.conforme,
            prompt_tokens = done.usage.prompt_tokens,
            completion_tokens = done.usage.completion_tokens,
            "step stored"
        );
        Ok(StepOutcome {
            position: step.position,
            score: done.score.score,
            conforme: done.score.conforme,
            reused: false,
        })
    }

    /// `audit.finalize`: the summary from the stored steps, recorded and announced.
    #[tracing::instrument(name = "audit.finalize", skip_all, fields(audit.id = %input.audit_id))]
    pub(crate) async fn finalize(&self, input: AuditRef) -> Result<AuditSummary, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        let rows = step_results::of_audit(&mut conn, id)
            .await
            .map_err(retryable)?;
        let steps: Vec<StepForSummary> = rows
            .iter()
            .map(|r| StepForSummary {
                weight: r.weight,
                critical: r.critical,
                score: r.score,
                conforme: r.conforme,
            })
            .collect();
        let summary = summarize(&steps);
        let done = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        audits::complete(&mut conn, id, &summary, done)
            .await
            .map_err(retryable)?;
        drop(conn);
        tracing::info!(
            score = summary.score,
            niveau = %summary.niveau,
            critical = summary.critical,
            "audit completed"
        );
        self.publish(&AuditEvent::Completed {
            audit_id: input.audit_id,
            score: summary.score,
            niveau: summary.niveau,
            critical: summary.critical,
        })
        .await?;
        Ok(summary)
    }

    /// `audit.fail`: records the failure and announces it; false when the audit had
    /// ended otherwise (completed or cancelled), which stands.
    #[tracing::instrument(name = "audit.fail", skip_all, fields(audit.id = %input.audit_id))]
    pub(crate) async fn fail(&self, input: AuditFailure) -> Result<bool, ActivityError> {
        let id = parse_uuid(&input.audit_id)?;
        let mut conn = self.conn().await?;
        let recorded = audits::fail(&mut conn, id, &input.error)
            .await
            .map_err(retryable)?;
        drop(conn);
        if !recorded {
            // Completed or cancelled already: that end stands, nothing to announce.
            return Ok(false);
        }
        tracing::warn!(error = %input.error, "audit failed");
        self.publish(&AuditEvent::Failed {
            audit_id: input.audit_id,
            error: input.error,
        })
        .await?;
        Ok(true)
    }
}
