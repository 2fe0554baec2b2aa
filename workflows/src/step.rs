//! `AuditStepWorkflow`: one step of one audit.

use crate::options::upstream_activity;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::workflow_io::{AnalyzeStepInput, StepOutcome};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

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
