//! The **bare** baseline of `callaudit bench`: the shape of an audit — a parent, one child
//! per recording, one child per step in a sliding window, the same activities with the
//! same options — calling no-op activities and touching no database. What it costs is what Temporal
//! itself costs for an audit; `AuditWorkflow` may cost at most a quarter more (the bench
//! prints the ratio). Benchmark-only: no api route starts these workflows.
//!
//! Kept in step with [`callaudit_workflows::AuditWorkflow`]: when the audit gains an
//! activity, a child or a new way of running them, this gains it too (behind its own
//! `ctx.patched`, so recorded histories still replay), or the ratio lies.
//!
//! Two forms, chosen by [`BareAuditInput::lean`]: the audit's shape before
//! [`FEWER_ROUND_TRIPS_PATCH`] (the default, the baseline issue 12's target is measured
//! against: one `BareTranscriptionWorkflow` child per recording, every database activity
//! a normal one), and the shape after it (`--bare-shape lean`: the same patch marker, the
//! database activities local, each transcription an activity of the parent), which says
//! what Temporal costs for the audit as it runs now.

use callaudit_domain::scoring::AuditSummary;
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditPlan, AuditRef, AuditWorkflowOutput, FicheRecordings, StepOutcome,
    TranscribeInput, TranscribeOutput, ids,
};
use callaudit_workflows::options::{db_activity, db_local_activity, upstream_activity};
use callaudit_workflows::window::run_sliding_window;
use callaudit_workflows::{FEWER_ROUND_TRIPS_PATCH, STEP_SLIDING_WINDOW_PATCH};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::ActivityError;
use temporalio_macros::{activity_definitions, workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, WorkflowContext, WorkflowResult, WorkflowTermination, join_all,
};

/// Input of `BareAuditWorkflow`: the shape to reproduce.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BareAuditInput {
    /// Stands for the audit id (used in child workflow ids, like the real one).
    pub audit_id: String,
    /// Stands for the fiche id.
    pub fiche_id: String,
    /// Steps of the configuration (one `BareStepWorkflow` each).
    pub steps: u32,
    /// Recordings of the fiche (one `BareTranscriptionWorkflow` each).
    pub recordings: u32,
    /// Steps run at once, as `AuditWorkflowInput::step_parallelism`.
    pub step_parallelism: u32,
    /// The audit's shape since [`FEWER_ROUND_TRIPS_PATCH`] (absent in histories recorded
    /// before it: the older shape).
    #[serde(default)]
    pub lean: bool,
}

/// Input of `bare.audit.start`: the real one reads the step count from Postgres.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BareStartInput {
    /// Audit id.
    pub audit_id: String,
    /// Steps to plan.
    pub steps: u32,
}

/// Input of `bare.fiche.ensure_details`: the real one asks the CRM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BareFicheInput {
    /// Fiche id.
    pub fiche_id: String,
    /// Recordings to report.
    pub recordings: u32,
}

/// No-op twins of `CallauditActivities` (same inputs and outputs where possible, names
/// prefixed `bare.`); implemented by `callaudit bench-bare-worker`.
#[allow(missing_docs, clippy::unused_self)]
pub struct BareActivities;

#[activity_definitions]
#[allow(missing_docs)]
impl BareActivities {
    /// Twin of `audit.start`.
    #[activity(name = "bare.audit.start")]
    pub fn start_audit(_input: BareStartInput) -> Result<AuditPlan, ActivityError> {
        unimplemented!()
    }

    /// Twin of `fiche.ensure_details`.
    #[activity(name = "bare.fiche.ensure_details")]
    pub fn ensure_fiche(_input: BareFicheInput) -> Result<FicheRecordings, ActivityError> {
        unimplemented!()
    }

    /// Twin of `transcription.transcribe`.
    #[activity(name = "bare.transcription.transcribe")]
    pub fn transcribe(_input: TranscribeInput) -> Result<TranscribeOutput, ActivityError> {
        unimplemented!()
    }

    /// Twin of `audit.analyze_step`.
    #[activity(name = "bare.audit.analyze_step")]
    pub fn analyze_step(_input: AnalyzeStepInput) -> Result<StepOutcome, ActivityError> {
        unimplemented!()
    }

    /// Twin of `audit.finalize`.
    #[activity(name = "bare.audit.finalize")]
    pub fn finalize_audit(_input: AuditRef) -> Result<AuditSummary, ActivityError> {
        unimplemented!()
    }
}

/// The audit's shape with no-op activities.
#[workflow]
#[derive(Default)]
pub struct BareAuditWorkflow;

#[workflow_methods]
impl BareAuditWorkflow {
    /// start → ensure fiche → one child per recording (all at once) → one child per step
    /// (a sliding window of `step_parallelism`) → finalize, as `AuditWorkflow`.
    #[run(name = "BareAuditWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: BareAuditInput,
    ) -> WorkflowResult<AuditWorkflowOutput> {
        // The same patch id as AuditWorkflow's, asked first as there.
        let lean = input.lean && ctx.patched(FEWER_ROUND_TRIPS_PATCH);
        let start = BareStartInput {
            audit_id: input.audit_id.clone(),
            steps: input.steps,
        };
        let plan = if lean {
            ctx.execute_local_activity(BareActivities::start_audit, start, db_local_activity())
                .await?
        } else {
            ctx.execute_activity(BareActivities::start_audit, start, db_activity())
                .await?
        };
        let fiche = ctx
            .execute_activity(
                BareActivities::ensure_fiche,
                BareFicheInput {
                    fiche_id: input.fiche_id.clone(),
                    recordings: input.recordings,
                },
                upstream_activity(Duration::from_secs(120)),
            )
            .await?;

        let transcriptions = fiche.recordings.into_iter().map(|recording| {
            let ctx = ctx.clone();
            async move {
                let input = TranscribeInput {
                    recording_id: recording.recording_id,
                };
                if lean {
                    let out = ctx
                        .execute_activity(
                            BareActivities::transcribe,
                            input,
                            upstream_activity(Duration::from_secs(600)),
                        )
                        .await?;
                    return Ok::<_, WorkflowTermination>(out);
                }
                let child = ctx
                    .start_child_workflow(
                        BareTranscriptionWorkflow::run,
                        input.clone(),
                        ChildWorkflowOptions::builder()
                            .workflow_id(ids::transcription(&input.recording_id))
                            .build(),
                    )
                    .await?;
                let out: TranscribeOutput = child.result().await?;
                Ok::<_, WorkflowTermination>(out)
            }
        });
        for result in join_all(transcriptions).await {
            result?;
        }

        let window = usize::try_from(input.step_parallelism.max(1)).unwrap_or(1);
        let step = |position: i32| AnalyzeStepInput {
            audit_id: input.audit_id.clone(),
            position,
            use_rlm: false,
        };
        // The same patch id as AuditWorkflow's: the same marker in both histories.
        if lean || ctx.patched(STEP_SLIDING_WINDOW_PATCH) {
            run_sliding_window(
                plan.step_positions.iter().copied(),
                window,
                |position| analyze_step(ctx.clone(), step(position)),
                |_: StepOutcome| {},
            )
            .await?;
        } else {
            // Before the patch: chunks of `window`, each waiting for its slowest step.
            for chunk in plan.step_positions.chunks(window) {
                let children = chunk
                    .iter()
                    .map(|position| analyze_step(ctx.clone(), step(*position)));
                for result in join_all(children).await {
                    result?;
                }
            }
        }

        let audit = AuditRef {
            audit_id: input.audit_id.clone(),
        };
        let summary = if lean {
            ctx.execute_local_activity(BareActivities::finalize_audit, audit, db_local_activity())
                .await?
        } else {
            ctx.execute_activity(BareActivities::finalize_audit, audit, db_activity())
                .await?
        };
        Ok(AuditWorkflowOutput {
            audit_id: input.audit_id,
            summary,
            steps: u32::try_from(plan.step_positions.len()).unwrap_or(u32::MAX),
        })
    }
}

/// One step as its `BareStepWorkflow` child, as `AuditWorkflow` runs an `AuditStepWorkflow`.
async fn analyze_step(
    ctx: WorkflowContext<BareAuditWorkflow>,
    step: AnalyzeStepInput,
) -> WorkflowResult<StepOutcome> {
    let child = ctx
        .start_child_workflow(
            BareStepWorkflow::run,
            step.clone(),
            ChildWorkflowOptions::builder()
                .workflow_id(ids::audit_step(&step.audit_id, step.position))
                .build(),
        )
        .await?;
    Ok(child.result().await?)
}

/// `TranscriptionWorkflow`'s shape: one no-op activity.
#[workflow]
#[derive(Default)]
pub struct BareTranscriptionWorkflow;

#[workflow_methods]
impl BareTranscriptionWorkflow {
    /// Runs `bare.transcription.transcribe`.
    #[run(name = "BareTranscriptionWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: TranscribeInput,
    ) -> WorkflowResult<TranscribeOutput> {
        Ok(ctx
            .execute_activity(
                BareActivities::transcribe,
                input,
                upstream_activity(Duration::from_secs(600)),
            )
            .await?)
    }
}

/// `AuditStepWorkflow`'s shape: one no-op activity.
#[workflow]
#[derive(Default)]
pub struct BareStepWorkflow;

#[workflow_methods]
impl BareStepWorkflow {
    /// Runs `bare.audit.analyze_step`.
    #[run(name = "BareStepWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: AnalyzeStepInput,
    ) -> WorkflowResult<StepOutcome> {
        Ok(ctx
            .execute_activity(
                BareActivities::analyze_step,
                input,
                upstream_activity(Duration::from_secs(300)),
            )
            .await?)
    }
}
