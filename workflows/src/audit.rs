//! `AuditWorkflow`: one audit, from its prerequisites to its summary.

use crate::failure::{can_record_failure, failure_chain};
use crate::options::{db_activity, db_local_activity, upstream_activity};
use crate::step::AuditStepWorkflow;
use crate::transcription::TranscriptionWorkflow;
use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::status::AuditPhase;
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditFailure, AuditProgress, AuditRef, AuditWorkflowInput,
    AuditWorkflowOutput, EnsureFicheInput, StepOutcome, TranscribeInput, TranscribeOutput, ids,
};
use std::time::Duration;
use temporalio_common::search_attributes::SearchAttributes;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, ChildWorkflowStartError, WorkflowContext, WorkflowContextView,
    WorkflowResult, join_all,
};

/// Patch id of the sliding window of step children. Histories recorded before it ran the
/// steps in chunks of `step_parallelism`, each waiting for its slowest step; they replay
/// through that code path, every newer run takes the window.
pub const STEP_SLIDING_WINDOW_PATCH: &str = "step-sliding-window";

/// Patch id of the audit with fewer server round trips (issue 12): `audit.start`,
/// `audit.finalize` and `audit.fail` run as local activities, each recording's
/// transcription is a `transcription.transcribe` activity of the audit itself (not a
/// `TranscriptionWorkflow` child), and the steps take the sliding window without asking
/// for [`STEP_SLIDING_WINDOW_PATCH`] (one patch marker per audit, as before). Checked
/// first thing, so every run started before it replays through the older paths.
pub const FEWER_ROUND_TRIPS_PATCH: &str = "audit-fewer-round-trips";

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
        let lean = ctx.patched(FEWER_ROUND_TRIPS_PATCH);
        match Self::audit(ctx, &input, lean).await {
            Ok(out) => Ok(out),
            Err(e) => {
                if can_record_failure(&e) {
                    ctx.state_mut(|s| s.progress.phase = AuditPhase::Failed);
                    let failure = AuditFailure {
                        audit_id: input.audit_id.clone(),
                        error: failure_chain(&e),
                    };
                    // Idempotent: a repeat re-records the same error and its event is
                    // deduplicated by key.
                    if lean {
                        ctx.execute_local_activity(
                            CallauditActivities::fail_audit,
                            failure,
                            db_local_activity(),
                        )
                        .await?;
                    } else {
                        ctx.execute_activity(
                            CallauditActivities::fail_audit,
                            failure,
                            db_activity(),
                        )
                        .await?;
                    }
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

    /// The audit; `lean` when [`FEWER_ROUND_TRIPS_PATCH`] applies.
    async fn audit(
        ctx: &mut WorkflowContext<Self>,
        input: &AuditWorkflowInput,
        lean: bool,
    ) -> WorkflowResult<AuditWorkflowOutput> {
        let audit = AuditRef {
            audit_id: input.audit_id.clone(),
        };
        ctx.state_mut(|s| s.progress.phase = AuditPhase::Starting);
        // Idempotent, so it may run again as a local activity: marking the audit running
        // only moves it out of `pending`, `audit.started` is deduplicated by key and the
        // plan is read from the audit's configuration snapshot.
        let plan = if lean {
            ctx.execute_local_activity(
                CallauditActivities::start_audit,
                audit.clone(),
                db_local_activity(),
            )
            .await?
        } else {
            ctx.execute_activity(
                CallauditActivities::start_audit,
                audit.clone(),
                db_activity(),
            )
            .await?
        };
        let steps_total = u32::try_from(plan.step_positions.len()).unwrap_or(u32::MAX);
        ctx.state_mut(|s| {
            s.progress.steps_total = steps_total;
            s.progress.phase = AuditPhase::Fiche;
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
            s.progress.phase = AuditPhase::Transcription;
        });

        // Every pending recording at once (ElevenLabs is the limit, not us). Concurrent
        // audits of one fiche send each recording to speech-to-text once either way: the
        // activity queues on the recording's one-slot lease and reuses what is stored.
        // Lean: as activities of this workflow; before: one TranscriptionWorkflow child
        // per recording, shared by its id.
        let transcriptions = pending.into_iter().map(|recording_id| {
            let ctx = ctx.clone();
            let attrs =
                search::of_audit_run(&input.fiche_id, &input.audit_id, RunKind::Transcription);
            async move {
                if lean {
                    transcribe_here(&ctx, recording_id).await
                } else {
                    transcribe_once(&ctx, recording_id, attrs).await
                }
            }
        });
        for result in join_all(transcriptions).await {
            result?;
            ctx.state_mut(|s| s.progress.recordings_done += 1);
        }

        ctx.state_mut(|s| s.progress.phase = AuditPhase::Analysis);
        let window = usize::try_from(input.step_parallelism.max(1)).unwrap_or(1);
        let step = |position: i32| AnalyzeStepInput {
            audit_id: input.audit_id.clone(),
            position,
            use_rlm: input.use_rlm,
        };
        if lean || ctx.patched(STEP_SLIDING_WINDOW_PATCH) {
            // At most `window` steps at once, the next one started as soon as any finishes.
            run_sliding_window(
                plan.step_positions.iter().copied(),
                window,
                |position| analyze_step(ctx.clone(), step(position), &input.fiche_id),
                |_: StepOutcome| ctx.state_mut(|s| s.progress.steps_done += 1),
            )
            .await?;
        } else {
            // Before the patch: chunks of `window`, each waiting for its slowest step.
            for chunk in plan.step_positions.chunks(window) {
                let children = chunk
                    .iter()
                    .map(|position| analyze_step(ctx.clone(), step(*position), &input.fiche_id));
                for result in join_all(children).await {
                    result?;
                    ctx.state_mut(|s| s.progress.steps_done += 1);
                }
            }
        }

        ctx.state_mut(|s| s.progress.phase = AuditPhase::Finalizing);
        // Idempotent: the summary is computed again from the same stored steps, and
        // `audit.completed` is deduplicated by key (a repeat moves `completed_at`).
        let summary = if lean {
            ctx.execute_local_activity(
                CallauditActivities::finalize_audit,
                audit,
                db_local_activity(),
            )
            .await?
        } else {
            ctx.execute_activity(CallauditActivities::finalize_audit, audit, db_activity())
                .await?
        };
        ctx.state_mut(|s| s.progress.phase = AuditPhase::Completed);
        Ok(AuditWorkflowOutput {
            audit_id: input.audit_id.clone(),
            summary,
            steps: steps_total,
        })
    }
}

/// Runs one step as its `AuditStepWorkflow` child (`audit:{id}:step:{position}`).
/// It carries the audit's search attributes (`RunKind = "step"`).
async fn analyze_step(
    ctx: WorkflowContext<AuditWorkflow>,
    step: AnalyzeStepInput,
    fiche_id: &str,
) -> WorkflowResult<StepOutcome> {
    let child = ctx
        .start_child_workflow(
            AuditStepWorkflow::run,
            step.clone(),
            ChildWorkflowOptions::builder()
                .workflow_id(ids::audit_step(&step.audit_id, step.position))
                .search_attributes(search::of_audit_run(
                    fiche_id,
                    &step.audit_id,
                    RunKind::Step,
                ))
                .build(),
        )
        .await?;
    Ok(child.result().await?)
}

/// Transcribes the recording with the audit's own `transcription.transcribe` activity
/// (heartbeating, vendor retries): one-slot lease per recording, stored transcript reused.
async fn transcribe_here(
    ctx: &WorkflowContext<AuditWorkflow>,
    recording_id: String,
) -> WorkflowResult<TranscribeOutput> {
    Ok(ctx
        .execute_activity(
            CallauditActivities::transcribe,
            TranscribeInput { recording_id },
            upstream_activity(Duration::from_secs(600)),
        )
        .await?)
}

/// Before [`FEWER_ROUND_TRIPS_PATCH`]: starts the recording's `TranscriptionWorkflow`; when another audit already runs it
/// (same deterministic id), falls back to the idempotent activity, which reuses the
/// stored transcript once that audit's child has finished it.
async fn transcribe_once(
    ctx: &WorkflowContext<AuditWorkflow>,
    recording_id: String,
    attrs: SearchAttributes,
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
                .search_attributes(attrs)
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
