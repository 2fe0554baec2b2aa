//! `RetentionWorkflow`: purges the personal data older than the retention limits. Started
//! by its Temporal Schedule (`callaudit-retention:{task_queue}`, see the worker), which
//! carries the limits as input.

use crate::options::db_retry;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::personal_data::{Removed, RetentionLimits, RetentionRun};
use callaudit_domain::search::{RUN_KIND, RunKind};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ActivityOptions, WorkflowContext, WorkflowResult};

/// One retention run.
#[workflow]
#[derive(Default)]
pub struct RetentionWorkflow;

#[workflow_methods]
impl RetentionWorkflow {
    /// Runs `retention.purge` (batches until nothing is left; heartbeats) once.
    #[run(name = "RetentionWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        limits: RetentionLimits,
    ) -> WorkflowResult<Removed> {
        // A scheduled run gets no search attributes from its schedule: set them here.
        ctx.upsert_search_attributes([RUN_KIND.value_set(RunKind::Retention.as_str().to_string())]);
        let input = RetentionRun {
            run: ctx.workflow_id().to_string(),
            limits,
        };
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(1800))
            .heartbeat_timeout(Duration::from_secs(30))
            .retry_policy(db_retry())
            .build();
        Ok(ctx
            .execute_activity(CallauditActivities::purge_personal_data, input, options)
            .await?)
    }
}
