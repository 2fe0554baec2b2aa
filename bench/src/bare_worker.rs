//! What `callaudit bench-bare-worker` runs: only the bare baseline's workflows and no-op
//! activities (no database, no upstream). The binary serves them with the worker options
//! and the process model of `callaudit worker`, so the bench measures both the same way (a
//! child process: peak RSS, CPU).

use crate::bare::{
    BareAuditWorkflow, BareFicheInput, BareStartInput, BareStepWorkflow, BareTranscriptionWorkflow,
};
use callaudit_domain::scoring::{AuditSummary, summarize};
use callaudit_domain::workflow_io::{
    AnalyzeStepInput, AuditPlan, AuditRef, FicheRecordings, RecordingRef, StepOutcome,
    TranscribeInput, TranscribeOutput,
};
use std::sync::Arc;
use temporalio_common::ActivityError;
use temporalio_macros::activities;
use temporalio_sdk::WorkerOptions;
use temporalio_sdk::activities::ActivityContext;

/// No-op implementations of `BareActivities` (same names): each answers at once.
#[derive(Debug)]
pub struct NoOpActivities;

#[activities]
impl NoOpActivities {
    /// Plans `steps` steps.
    #[activity(name = "bare.audit.start")]
    #[allow(dead_code)] // its marker const: workflows call the definition in `bare`
    pub async fn start_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: BareStartInput,
    ) -> Result<AuditPlan, ActivityError> {
        Ok(AuditPlan {
            step_positions: (1..=i32::try_from(input.steps).unwrap_or(i32::MAX)).collect(),
        })
    }

    /// Reports `recordings` untranscribed recordings.
    #[activity(name = "bare.fiche.ensure_details")]
    #[allow(dead_code)] // its marker const: workflows call the definition in `bare`
    pub async fn ensure_fiche(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: BareFicheInput,
    ) -> Result<FicheRecordings, ActivityError> {
        Ok(FicheRecordings {
            recordings: (1..=input.recordings)
                .map(|n| RecordingRef {
                    recording_id: format!("{}-REC-{n}", input.fiche_id),
                    transcribed: false,
                })
                .collect(),
            fiche_id: input.fiche_id,
            fetched: true,
        })
    }

    /// "Transcribes" nothing.
    #[activity(name = "bare.transcription.transcribe")]
    #[allow(dead_code)] // its marker const: workflows call the definition in `bare`
    pub async fn transcribe(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TranscribeInput,
    ) -> Result<TranscribeOutput, ActivityError> {
        Ok(TranscribeOutput {
            recording_id: input.recording_id,
            word_count: 0,
            reused: false,
        })
    }

    /// "Analyses" nothing: every step is conforme with no score.
    #[activity(name = "bare.audit.analyze_step")]
    #[allow(dead_code)] // its marker const: workflows call the definition in `bare`
    pub async fn analyze_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AnalyzeStepInput,
    ) -> Result<StepOutcome, ActivityError> {
        Ok(StepOutcome {
            position: input.position,
            score: 0.0,
            conforme: callaudit_domain::analysis::Conformite::Conforme,
            reused: false,
        })
    }

    /// The summary of no steps.
    #[activity(name = "bare.audit.finalize")]
    #[allow(dead_code)] // its marker const: workflows call the definition in `bare`
    pub async fn finalize_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: AuditRef,
    ) -> Result<AuditSummary, ActivityError> {
        Ok(summarize(&[]))
    }
}

/// Registers the bare workflows and their no-op activities on `options` (the binary's
/// worker options, as for `callaudit worker`).
pub fn register(options: &mut WorkerOptions) -> anyhow::Result<()> {
    options
        .register_workflow::<BareAuditWorkflow>()?
        .register_workflow::<BareTranscriptionWorkflow>()?
        .register_workflow::<BareStepWorkflow>()?
        .register_activities(NoOpActivities);
    Ok(())
}
