//! `AuditRerunWorkflow`: a step or one control point of a finished audit analysed again
//! (`audit:{id}:rerun-step:{position}:{n}`, `audit:{id}:rerun-cp:{position}:{index}:{n}`).

use crate::failure::{can_record_failure, failure_chain};
use crate::options::{db_activity, upstream_activity};
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::workflow_io::{
    RerunActivityInput, RerunFailure, RerunOutcome, RerunWorkflowInput,
};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

/// Analyses again (LLM + evidence gating, stored on the rerun row), then applies the
/// analysis under the audit's row lock. Reruns of one audit may analyse at once; they
/// apply one at a time, each on the previous one's result.
#[workflow]
#[derive(Default)]
pub struct AuditRerunWorkflow;

#[workflow_methods]
impl AuditRerunWorkflow {
    /// Runs the rerun; on failure records it (`audit.rerun.failed`) before failing.
    #[run(name = "AuditRerunWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: RerunWorkflowInput,
    ) -> WorkflowResult<RerunOutcome> {
        let rerun = RerunActivityInput {
            rerun_id: input.rerun_id.clone(),
        };
        let done = async {
            ctx.execute_activity(
                CallauditActivities::analyze_rerun,
                rerun.clone(),
                upstream_activity(Duration::from_secs(300)),
            )
            .await?;
            Ok(ctx
                .execute_activity(CallauditActivities::apply_rerun, rerun, db_activity())
                .await?)
        }
        .await;
        match done {
            Ok(out) => Ok(out),
            Err(e) => {
                if can_record_failure(&e) {
                    let failure = RerunFailure {
                        rerun_id: input.rerun_id.clone(),
                        error: failure_chain(&e),
                    };
                    ctx.execute_activity(CallauditActivities::fail_rerun, failure, db_activity())
                        .await?;
                }
                Err(e)
            }
        }
    }
}
