//! callaudit's Temporal workflows. Deterministic code only: no clock, no randomness, no
//! I/O, no tokio — the SDK's timers, combinators and workflow time (see `clippy.toml`).
//! Workflow type names are part of history; they are set explicitly and never renamed
//! without `ctx.patched`.

pub mod bare;

use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditProgress, AuditRef, AuditWorkflowInput,
    AuditWorkflowOutput, EnsureFicheInput, StepOutcome, TranscribeInput, TranscribeOutput, ids,
};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, ChildWorkflowOptions, ChildWorkflowStartError, RetryPolicy, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, join_all,
};

/// Retries for calls to upstream vendors: backoff up to a minute, then give up after 8
/// attempts (permanent failures are non-retryable and stop at once).
fn upstream_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(8)
        .build()
}

fn db_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(10))
        .maximum_attempts(20)
        .build()
}

fn db_activity() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(db_retry())
        .build()
}

/// Vendor calls heartbeat every few seconds (`callaudit_activities::HEARTBEAT_EVERY`,
/// CRM lease holders every 4 s), so a dead worker's call is retried after 12 s.
fn upstream_activity(timeout: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout)
        .heartbeat_timeout(Duration::from_secs(12))
        .retry_policy(upstream_retry())
        .build()
}

/// A failure as "<outermost> ← <root cause>" ("Child workflow failed … ← elevenlabs
/// permanent failure: HTTP 401 …"), so the recorded reason names the root cause, not
/// only the wrapper around it.
pub fn failure_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let outer = e.to_string();
    let mut root = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    if std::ptr::addr_eq(root, e) || outer.contains(cause.trim()) {
        outer
    } else {
        format!("{} ← {}", outer.trim(), cause.trim())
    }
}

/// Whether the workflow may still issue commands after this termination.
fn can_record_failure(e: &WorkflowTermination) -> bool {
    !matches!(
        e,
        WorkflowTermination::Evicted | WorkflowTermination::ContinueAsNew(_)
    )
}

/// One audit: prerequisites, one child per step, then the summary.
#[workflow]
#[derive(Default)]
pub struct AuditWorkflow {
    progress: AuditProgress,
}

#[workflow_methods]
impl AuditWorkflow {
    /// Runs the audit; on failure records it (`audit.failed`) before failing.
    #[run(name = "AuditWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AuditWorkflowInput,
    ) -> WorkflowResult<AuditWorkflowOutput> {
        match Self::audit(ctx, &input).await {
            Ok(out) => Ok(out),
            Err(e) => {
                if can_record_failure(&e) {
                    ctx.state_mut(|s| s.progress.phase = "failed".into());
                    let failure = AuditFailure {
                        audit_id: input.audit_id.clone(),
                        error: failure_chain(&e),
                    };
                    ctx.execute_activity(CallauditActivities::fail_audit, failure, db_activity())
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// Where the audit stands.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> AuditProgress {
        self.progress.clone()
    }

    async fn audit(
        ctx: &mut WorkflowContext<Self>,
        input: &AuditWorkflowInput,
    ) -> WorkflowResult<AuditWorkflowOutput> {
        let audit = AuditRef {
            audit_id: input.audit_id.clone(),
        };
        ctx.state_mut(|s| s.progress.phase = "starting".into());
        let plan = ctx
            .execute_activity(
                CallauditActivities::start_audit,
                audit.clone(),
                db_activity(),
            )
            .await?;
        let steps_total = u32::try_from(plan.step_positions.len()).unwrap_or(u32::MAX);
        ctx.state_mut(|s| {
            s.progress.steps_total = steps_total;
            s.progress.phase = "fiche".into();
        });

        let fiche = ctx
            .execute_activity(
                CallauditActivities::ensure_fiche,
                EnsureFicheInput {
                    fiche_id: input.fiche_id.clone(),
                    force_refresh: false,
                },
                upstream_activity(Duration::from_secs(120)),
            )
            .await?;
        let pending: Vec<String> = fiche
            .recordings
            .iter()
            .filter(|r| !r.transcribed)
            .map(|r| r.recording_id.clone())
            .collect();
        let total = u32::try_from(fiche.recordings.len()).unwrap_or(u32::MAX);
        let done_already = total - u32::try_from(pending.len()).unwrap_or(0);
        ctx.state_mut(|s| {
            s.progress.recordings_total = total;
            s.progress.recordings_done = done_already;
            s.progress.phase = "transcription".into();
        });

        // One TranscriptionWorkflow per recording, all at once (ElevenLabs is the limit,
        // not us); concurrent audits of one fiche share the child by its id.
        let transcriptions = pending.into_iter().map(|recording_id| {
            let ctx = ctx.clone();
            async move { transcribe_once(&ctx, recording_id).await }
        });
        for result in join_all(transcriptions).await {
            result?;
            ctx.state_mut(|s| s.progress.recordings_done += 1);
        }

        ctx.state_mut(|s| s.progress.phase = "analysis".into());
        let window = usize::try_from(input.step_parallelism.max(1)).unwrap_or(1);
        for chunk in plan.step_positions.chunks(window) {
            let children = chunk.iter().map(|position| {
                let ctx = ctx.clone();
                let step = AnalyzeStepInput {
                    audit_id: input.audit_id.clone(),
                    position: *position,
                    use_rlm: input.use_rlm,
                };
                async move {
                    let child = ctx
                        .start_child_workflow(
                            AuditStepWorkflow::run,
                            step.clone(),
                            ChildWorkflowOptions::builder()
                                .workflow_id(ids::audit_step(&step.audit_id, step.position))
                                .build(),
                        )
                        .await?;
                    let outcome: StepOutcome = child.result().await?;
                    Ok::<_, WorkflowTermination>(outcome)
                }
            });
            for result in join_all(children).await {
                result?;
                ctx.state_mut(|s| s.progress.steps_done += 1);
            }
        }

        ctx.state_mut(|s| s.progress.phase = "finalizing".into());
        let summary = ctx
            .execute_activity(CallauditActivities::finalize_audit, audit, db_activity())
            .await?;
        ctx.state_mut(|s| s.progress.phase = "completed".into());
        Ok(AuditWorkflowOutput {
            audit_id: input.audit_id.clone(),
            summary,
            steps: steps_total,
        })
    }
}

/// Starts the recording's `TranscriptionWorkflow`; when another audit already runs it
/// (same deterministic id), falls back to the idempotent activity, which reuses the
/// stored transcript once that audit's child has finished it.
async fn transcribe_once(
    ctx: &WorkflowContext<AuditWorkflow>,
    recording_id: String,
) -> WorkflowResult<TranscribeOutput> {
    let input = TranscribeInput {
        recording_id: recording_id.clone(),
    };
    let started = ctx
        .start_child_workflow(
            TranscriptionWorkflow::run,
            input.clone(),
            ChildWorkflowOptions::builder()
                .workflow_id(ids::transcription(&recording_id))
                .build(),
        )
        .await;
    match started {
        Ok(child) => Ok(child.result().await?),
        Err(ChildWorkflowStartError::StartFailed { .. }) => Ok(ctx
            .execute_activity(
                CallauditActivities::transcribe,
                input,
                upstream_activity(Duration::from_secs(600)),
            )
            .await?),
        Err(e) => Err(e.into()),
    }
}

/// Transcribes one recording (idempotent: a stored transcript is reused).
#[workflow]
#[derive(Default)]
pub struct TranscriptionWorkflow;

#[workflow_methods]
impl TranscriptionWorkflow {
    /// Runs `transcription.transcribe` with upstream retries.
    #[run(name = "TranscriptionWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: TranscribeInput,
    ) -> WorkflowResult<TranscribeOutput> {
        Ok(ctx
            .execute_activity(
                CallauditActivities::transcribe,
                input,
                upstream_activity(Duration::from_secs(600)),
            )
            .await?)
    }
}

/// Analyses one step of one audit and stores its row.
#[workflow]
#[derive(Default)]
pub struct AuditStepWorkflow;

#[workflow_methods]
impl AuditStepWorkflow {
    /// Runs `audit.analyze_step` (LLM + evidence gating + upsert).
    #[run(name = "AuditStepWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AnalyzeStepInput,
    ) -> WorkflowResult<StepOutcome> {
        Ok(ctx
            .execute_activity(
                CallauditActivities::analyze_step,
                input,
                upstream_activity(Duration::from_secs(300)),
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::failure_chain;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<Wrap>>);

    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|w| w as _)
        }
    }

    #[test]
    fn a_failure_is_recorded_with_its_root_cause() {
        let e = Wrap(
            "child failed",
            Some(Box::new(Wrap(
                "activity failed",
                Some(Box::new(Wrap("crm: HTTP 401", None))),
            ))),
        );
        assert_eq!(failure_chain(&e), "child failed ← crm: HTTP 401");
        assert_eq!(failure_chain(&Wrap("alone", None)), "alone");
        let repeated = Wrap("failed: boom", Some(Box::new(Wrap("boom", None))));
        assert_eq!(failure_chain(&repeated), "failed: boom");
    }
}
