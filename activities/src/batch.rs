//! The batch audit's activities: start the batch, read its next items, start and finish
//! one item, end the batch. Each is idempotent, keyed by the batch id and the item's
//! position, and changes the batch's counts under its row lock together with the event
//! that announces them (`callaudit_db::batches`).

use crate::state::{WorkerActivities, permanent, retryable};
use callaudit_db::batches::{self, BatchEnd, StartItemError};
use callaudit_domain::batch::{
    BatchCounts, BatchFailure, BatchItemInput, BatchItemRef, BatchPlan, BatchRef, FinishBatchInput,
    FinishItemInput, FinishedItem, NextItems, NextItemsInput, StartedItem,
};
use temporalio_common::ActivityError;
use uuid::Uuid;

/// A batch or audit id from workflow input (an invalid one is permanent).
fn uuid(what: &str, s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid {what} id {s}")))
}

impl WorkerActivities {
    /// `batch.start`: marks the batch running and announces `batch.started` (once).
    #[tracing::instrument(name = "batch.start", skip_all, fields(batch.id = %input.batch_id))]
    pub(crate) async fn start_batch_run(
        &self,
        input: BatchRef,
    ) -> Result<BatchPlan, ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        let row = batches::start(&mut conn, id).await.map_err(retryable)?;
        tracing::info!(total = row.total, window = row.window_size, "batch started");
        Ok(BatchPlan {
            total: u32::try_from(row.total).unwrap_or(0),
        })
    }

    /// `batch.next_items`: the next page of pending items, and a cancellation recorded on
    /// the row.
    #[tracing::instrument(
        name = "batch.next_items",
        skip_all,
        fields(batch.id = %input.batch_id, after = input.after, run = input.run)
    )]
    pub(crate) async fn next_items(
        &self,
        input: NextItemsInput,
    ) -> Result<NextItems, ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        let run = i32::try_from(input.run).unwrap_or(i32::MAX - 1);
        let items = batches::pending_after(&mut conn, id, input.after, input.limit.into(), run)
            .await
            .map_err(retryable)?;
        let row = batches::get(&mut conn, id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("batch {id} not found")))?;
        Ok(NextItems {
            items: items
                .into_iter()
                .map(|i| BatchItemRef {
                    position: i.position,
                    fiche_id: i.fiche_id,
                })
                .collect(),
            cancel_requested_by: row.cancel_requested_by,
        })
    }

    /// `batch.start_item`: the item's audit row, created once, and the item running.
    #[tracing::instrument(
        name = "batch.start_item",
        skip_all,
        fields(batch.id = %input.batch_id, item.position = input.position, audit.id = tracing::field::Empty, fiche.id = tracing::field::Empty)
    )]
    pub(crate) async fn start_item(
        &self,
        input: BatchItemInput,
    ) -> Result<StartedItem, ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        let started = batches::start_item(&mut conn, id, input.position)
            .await
            .map_err(|e| match e {
                StartItemError::Snapshot(_) => permanent(e.to_string()),
                StartItemError::Db(e) => retryable(e),
            })?;
        let span = tracing::Span::current();
        span.record("audit.id", tracing::field::display(started.audit_id));
        span.record("fiche.id", started.fiche_id.as_str());
        Ok(StartedItem {
            audit_id: started.audit_id.to_string(),
            fiche_id: started.fiche_id,
            reused: started.reused,
        })
    }

    /// `batch.finish_item`: how the item's audit ended, the counts moved, `batch.progress`.
    #[tracing::instrument(
        name = "batch.finish_item",
        skip_all,
        fields(batch.id = %input.batch_id, item.position = input.position, audit.id = %input.audit_id)
    )]
    pub(crate) async fn finish_item(
        &self,
        input: FinishItemInput,
    ) -> Result<FinishedItem, ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let audit = uuid("audit", &input.audit_id)?;
        let mut conn = self.conn().await?;
        let done =
            batches::finish_item(&mut conn, id, input.position, audit, input.error.as_deref())
                .await
                .map_err(retryable)?;
        tracing::info!(
            status = %done.status,
            completed = done.counts.completed,
            failed = done.counts.failed,
            total = done.counts.total,
            "batch item ended"
        );
        Ok(FinishedItem {
            status: done.status,
        })
    }

    /// `batch.finish`: the batch ended (completed, partial or cancelled); its terminal event.
    #[tracing::instrument(name = "batch.finish", skip_all, fields(batch.id = %input.batch_id))]
    pub(crate) async fn end_batch_run(
        &self,
        input: FinishBatchInput,
    ) -> Result<BatchCounts, ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let how = match input.cancelled_by.as_deref() {
            Some(by) => BatchEnd::Cancelled(by),
            None => BatchEnd::Ran,
        };
        let mut conn = self.conn().await?;
        let (counts, ended_now) = batches::end(&mut conn, id, how).await.map_err(retryable)?;
        if ended_now {
            tracing::info!(
                completed = counts.completed,
                failed = counts.failed,
                cancelled = counts.cancelled,
                "batch ended"
            );
        }
        Ok(counts)
    }

    /// `batch.fail`: the batch failed; its items not started cancelled; `batch.failed`.
    #[tracing::instrument(name = "batch.fail", skip_all, fields(batch.id = %input.batch_id))]
    pub(crate) async fn fail_batch_run(&self, input: BatchFailure) -> Result<(), ActivityError> {
        let id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        let (_, ended_now) = batches::end(&mut conn, id, BatchEnd::Failed(&input.error))
            .await
            .map_err(retryable)?;
        if ended_now {
            tracing::warn!(error = %input.error, "batch failed");
        }
        Ok(())
    }
}
