//! `TranscriptionWorkflow`: one recording's transcript.

use crate::options::upstream_activity;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::workflow_io::{TranscribeInput, TranscribeOutput};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

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
