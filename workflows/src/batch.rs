//! `BatchAuditWorkflow` (`batch:{batch_id}`): one `AuditWorkflow` child per fiche of a
//! batch (`audit:{audit_id}`, the same workflow, activities, events and steps as a single
//! audit), at most `window` at once in the sliding window of [`crate::window`].
//!
//! - **State**: the batch's counts are explicit — in the workflow (the `progress` query)
//!   and in `audit_batches` — and move as each child ends: `batch.start_item` creates the
//!   item's audit row once and counts it running, `batch.finish_item` records how it ended
//!   (read from the audit's row) and publishes `batch.progress`. Nothing polls.
//! - **Large batches**: a run starts at most `continue_as_new_after` children, reading
//!   them as one page of pending items after its cursor; when the page was full it waits
//!   for its children, then continues as new with the cursor and the counts, so a batch of
//!   thousands keeps each run's history small. The fiche list never travels in history.
//! - **Cancellation** (the `cancel` signal, or the request recorded on the row and read
//!   at the start of a run): no new child starts; the running ones finish (their audits
//!   are kept); then `batch.finish` records the batch cancelled, its items not started
//!   cancelled, and publishes `batch.cancelled`.
//! - **Failure** of the batch itself (a database activity out of retries) is recorded by
//!   `batch.fail` (`batch.failed`). A failed audit is an item's outcome, not the batch's.

use crate::audit::AuditWorkflow;
use crate::failure::{can_record_failure, failure_chain};
use crate::options::db_activity;
use crate::window::run_sliding_window;
use callaudit_domain::activities::CallauditActivities;
use callaudit_domain::batch::{
    BatchCounts, BatchFailure, BatchItemInput, BatchItemRef, BatchItemStatus, BatchProgress,
    BatchRef, BatchWorkflowInput, BatchWorkflowOutput, FinishBatchInput, FinishItemInput,
    NextItemsInput, StartedItem,
};
use callaudit_domain::search;
use callaudit_domain::workflow_io::{AuditWorkflowInput, ids};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

/// Audits every fiche of a batch in a bounded sliding window of `AuditWorkflow` children.
#[workflow]
#[derive(Default)]
pub struct BatchAuditWorkflow {
    progress: BatchProgress,
}

#[workflow_methods]
impl BatchAuditWorkflow {
    /// Runs the batch (or, after a continue-as-new, the rest of it); on failure records
    /// it (`batch.failed`) before failing.
    #[run(name = "BatchAuditWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: BatchWorkflowInput,
    ) -> WorkflowResult<BatchWorkflowOutput> {
        match Self::batch(ctx, &input).await {
            Ok(out) => Ok(out),
            Err(e) => {
                if can_record_failure(&e) {
                    let failure = BatchFailure {
                        batch_id: input.batch_id.clone(),
                        error: failure_chain(&e),
                    };
                    ctx.execute_activity(CallauditActivities::fail_batch, failure, db_activity())
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// Stops the batch: no child starts after this; the running ones finish. `by` names
    /// who asked (the first request stands).
    #[signal(name = "cancel")]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, by: String) {
        self.progress.cancel_requested_by.get_or_insert(by);
    }

    /// Where the batch stands.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> BatchProgress {
        self.progress.clone()
    }

    async fn batch(
        ctx: &mut WorkflowContext<Self>,
        input: &BatchWorkflowInput,
    ) -> WorkflowResult<BatchWorkflowOutput> {
        let counts = match input.counts {
            Some(counts) => counts,
            None => {
                let plan = ctx
                    .execute_activity(
                        CallauditActivities::start_batch,
                        BatchRef {
                            batch_id: input.batch_id.clone(),
                        },
                        db_activity(),
                    )
                    .await?;
                BatchCounts::new(plan.total)
            }
        };
        ctx.state_mut(|s| {
            s.progress.counts = counts;
            s.progress.cursor = input.cursor;
            s.progress.run = input.run;
        });
        let per_run = input.continue_as_new_after.max(1);
        let page = ctx
            .execute_activity(
                CallauditActivities::next_batch_items,
                NextItemsInput {
                    batch_id: input.batch_id.clone(),
                    after: input.cursor,
                    limit: per_run,
                    run: input.run,
                },
                db_activity(),
            )
            .await?;
        if let Some(by) = page.cancel_requested_by {
            ctx.state_mut(|s| {
                s.progress.cancel_requested_by.get_or_insert(by);
            });
        }
        let full = page.items.len() >= usize::try_from(per_run).unwrap_or(usize::MAX);
        let last = page.items.last().map(|item| item.position);

        // The window pulls the next item only when a slot frees up: once cancelling was
        // asked, it pulls none.
        let open = ctx.clone();
        let items = page
            .items
            .into_iter()
            .take_while(move |_| open.state(|s| s.progress.cancel_requested_by.is_none()));
        let window = usize::try_from(input.window.max(1)).unwrap_or(1);
        run_sliding_window(
            items,
            window,
            |item| audit_item(ctx.clone(), input, item),
            |_: BatchItemStatus| {},
        )
        .await?;

        let cancelled_by = ctx.state(|s| s.progress.cancel_requested_by.clone());
        if cancelled_by.is_none() && full {
            // More may follow: the next run starts from here with a fresh history.
            let next = BatchWorkflowInput {
                cursor: last.unwrap_or(input.cursor),
                counts: Some(ctx.state(|s| s.progress.counts)),
                run: input.run + 1,
                ..input.clone()
            };
            match ctx.continue_as_new(next, ContinueAsNewOptions::default())? {}
        }
        let counts = ctx
            .execute_activity(
                CallauditActivities::finish_batch,
                FinishBatchInput {
                    batch_id: input.batch_id.clone(),
                    cancelled_by: cancelled_by.clone(),
                },
                db_activity(),
            )
            .await?;
        ctx.state_mut(|s| s.progress.counts = counts);
        Ok(BatchWorkflowOutput {
            batch_id: input.batch_id.clone(),
            status: if cancelled_by.is_some() {
                callaudit_domain::batch::BatchStatus::Cancelled
            } else {
                counts.end_status()
            },
            counts,
            runs: input.run + 1,
        })
    }
}

/// One fiche: its audit row (created once by `batch.start_item`), its `AuditWorkflow`
/// child, then `batch.finish_item`. A failed audit is the item's outcome; only a failed
/// database activity fails the batch.
async fn audit_item(
    ctx: WorkflowContext<BatchAuditWorkflow>,
    input: &BatchWorkflowInput,
    item: BatchItemRef,
) -> WorkflowResult<BatchItemStatus> {
    let started = ctx
        .execute_activity(
            CallauditActivities::start_batch_item,
            BatchItemInput {
                batch_id: input.batch_id.clone(),
                position: item.position,
            },
            db_activity(),
        )
        .await?;
    ctx.state_mut(|s| {
        s.progress.counts.start();
        s.progress.cursor = s.progress.cursor.max(item.position);
    });
    let error = run_audit(&ctx, input, &started)
        .await
        .err()
        .map(|e| failure_chain(&*e));
    let finished = ctx
        .execute_activity(
            CallauditActivities::finish_batch_item,
            FinishItemInput {
                batch_id: input.batch_id.clone(),
                position: item.position,
                audit_id: started.audit_id,
                error,
            },
            db_activity(),
        )
        .await?;
    ctx.state_mut(|s| s.progress.counts.finish(finished.status));
    Ok(finished.status)
}

/// Runs the item's audit as its `AuditWorkflow` child, with the search attributes of an
/// audit plus `BatchId`.
async fn run_audit(
    ctx: &WorkflowContext<BatchAuditWorkflow>,
    input: &BatchWorkflowInput,
    started: &StartedItem,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let child = ctx
        .start_child_workflow(
            AuditWorkflow::run,
            AuditWorkflowInput {
                audit_id: started.audit_id.clone(),
                fiche_id: started.fiche_id.clone(),
                use_rlm: input.use_rlm,
                step_parallelism: input.step_parallelism,
            },
            ChildWorkflowOptions::builder()
                .workflow_id(ids::audit(&started.audit_id))
                .search_attributes(search::of_batch_audit(
                    &started.fiche_id,
                    &started.audit_id,
                    &input.batch_id,
                ))
                .build(),
        )
        .await?;
    child.result().await?;
    Ok(())
}
