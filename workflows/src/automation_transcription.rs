//! The transcription phase of an `AutomationRunWorkflow`, between selection and audits:
//! the selected fiches' recordings through the shared `TranscriptionWorkflow`
//! (`transcribe:{recording_id}`, the id audits and on-demand transcription use), at most
//! [`RUN_TRANSCRIPTION_WINDOW`] at once in the sliding window of [`crate::window`]; each
//! wait is a child's result.
//!
//! - **Once per recording**: the child's id is the recording's, so a retried run (its
//!   history replayed) never dispatches twice, and a recording already being transcribed
//!   by another workflow (an audit's, an on-demand request's) is not started again: the
//!   start is refused as running and the idempotent activity waits on the recording's
//!   lease, then reuses the transcript that workflow stored.
//! - **`skipIfTranscribed`** (the old system's reading: it only dispatched transcriptions
//!   for fiches not yet complete, "to minimise provider usage"): a fiche whose every
//!   recording is transcribed is skipped. Without it the fiche still goes through the
//!   phase — a child per recording — but a stored transcript is reused, never sent to
//!   speech-to-text again (the first stored transcript is the one every audit reads).
//! - **`retryFailed` / `maxRetries`**: the failed recordings dispatched again (a new run
//!   of the same id), `maxRetries` rounds at most.
//! - A fiche with a recording still failed is a failed fiche: taken out of the batch by
//!   `automation.settle_transcriptions`; without `continueOnError` the batch is dropped
//!   and the run fails after the phase.

use crate::automation::AutomationRunWorkflow;
use crate::failure::failure_chain;
use crate::options::{db_activity, upstream_activity};
use crate::transcription::TranscriptionWorkflow;
use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::automation::{
    FailedTranscription, RUN_TRANSCRIPTION_WINDOW, RunPlan, SettleTranscriptionsInput,
    TranscriptionPlanInput, TranscriptionTotals,
};
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::{TranscribeInput, TranscribeOutput, ids};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use temporalio_workflow::{
    ChildWorkflowOptions, ChildWorkflowStartError, WorkflowContext, WorkflowResult,
};

/// Patch id of the transcription phase: runs recorded before it went from selection
/// straight to the audits (each audit transcribing its own recordings).
pub const AUTOMATION_TRANSCRIPTION_PATCH: &str = "automation-transcription-phase";

/// One recording's outcome: its fiche's index in the plan, the recording, and the
/// transcription (or why it failed).
type RecordingOutcome = (usize, String, Result<TranscribeOutput, String>);

/// Runs the phase over batch `batch_id`; returns its totals and the batch left to audit
/// (None: nothing left, or dropped without `continueOnError`).
pub(crate) async fn transcription_phase(
    ctx: &WorkflowContext<AutomationRunWorkflow>,
    schedule_id: &str,
    plan: &RunPlan,
    batch_id: &str,
) -> WorkflowResult<(TranscriptionTotals, Option<String>)> {
    let began = ctx.workflow_time();
    let fiches = ctx
        .execute_activity(
            CallauditActivities::plan_automation_transcription,
            TranscriptionPlanInput {
                run_id: plan.run_id.clone(),
                batch_id: batch_id.to_string(),
                skip_if_transcribed: plan.skip_if_transcribed,
            },
            db_activity(),
        )
        .await?;
    let mut totals = TranscriptionTotals::default();
    let mut items: Vec<(usize, String)> = fiches
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.recordings.iter().map(move |r| (i, r.clone())))
        .collect();
    // The last error of each recording still failed, by (fiche index, recording).
    let mut failed: BTreeMap<(usize, String), String> = BTreeMap::new();
    let mut round = 0;
    loop {
        let width = usize::try_from(RUN_TRANSCRIPTION_WINDOW).unwrap_or(10);
        run_sliding_window(
            items,
            width,
            |(i, rec)| transcribe(ctx.clone(), schedule_id, &plan.run_id, i, rec),
            |(i, rec, outcome): RecordingOutcome| match outcome {
                Ok(out) => {
                    failed.remove(&(i, rec));
                    if out.reused {
                        totals.recordings_reused += 1;
                    } else {
                        totals.recordings_sent += 1;
                    }
                }
                Err(e) => {
                    failed.insert((i, rec), e);
                }
            },
        )
        .await
        .unwrap_or_else(|never: Infallible| match never {});
        if failed.is_empty() || !plan.retry_failed || round >= plan.max_retries {
            break;
        }
        round += 1;
        items = failed.keys().cloned().collect();
    }
    totals.retries = round;
    let mut first_error: BTreeMap<usize, String> = BTreeMap::new();
    for ((i, _), e) in &failed {
        first_error.entry(*i).or_insert_with(|| e.clone());
    }
    for (i, fiche) in fiches.iter().enumerate() {
        if let Some(error) = first_error.get(&i) {
            totals.failed.push(FailedTranscription {
                fiche_id: fiche.fiche_id.clone(),
                error: error.clone(),
            });
        } else if fiche.recordings.is_empty() {
            totals.skipped += 1;
        } else {
            totals.transcribed += 1;
        }
    }
    let left = ctx
        .execute_activity(
            CallauditActivities::settle_automation_transcriptions,
            SettleTranscriptionsInput {
                run_id: plan.run_id.clone(),
                batch_id: batch_id.to_string(),
                failed: totals.failed.iter().map(|f| f.fiche_id.clone()).collect(),
                go_on: plan.continue_on_error,
            },
            db_activity(),
        )
        .await?;
    totals.duration_ms = match (began, ctx.workflow_time()) {
        (Some(a), Some(b)) => b
            .duration_since(a)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        _ => 0,
    };
    Ok((totals, left))
}

/// One recording as its `TranscriptionWorkflow` child (`transcribe:{recording_id}`);
/// when that workflow is running already (another audit's or request's), the idempotent
/// activity instead, which waits for it on the recording's lease and reuses its
/// transcript. Never fails: a failure is the recording's outcome.
async fn transcribe(
    ctx: WorkflowContext<AutomationRunWorkflow>,
    schedule_id: &str,
    run_id: &str,
    fiche: usize,
    recording_id: String,
) -> Result<RecordingOutcome, Infallible> {
    let input = TranscribeInput {
        recording_id: recording_id.clone(),
    };
    let options = ChildWorkflowOptions::builder()
        .workflow_id(ids::transcription(&recording_id))
        .search_attributes(search::of_automation_child(
            schedule_id,
            run_id,
            RunKind::Transcription,
        ))
        .build();
    let outcome = match ctx
        .start_child_workflow(TranscriptionWorkflow::run, input.clone(), options)
        .await
    {
        Ok(child) => child.result().await.map_err(|e| failure_chain(&e)),
        Err(ChildWorkflowStartError::StartFailed { .. }) => ctx
            .execute_activity(
                CallauditActivities::transcribe,
                input,
                upstream_activity(Duration::from_secs(600)),
            )
            .await
            .map_err(|e| failure_chain(&e)),
        Err(e) => Err(failure_chain(&e)),
    };
    Ok((fiche, recording_id, outcome))
}
