//! The activities of progressive fetch jobs: `fetch_job.start`, `fetch_job.search_day`
//! (the CRM sales search of one day, under the global search cap), `fetch_job.record_day`,
//! `fetch_job.finish` and `fetch_job.fail` (the job's row, written by its workflow only,
//! one call at a time). Detail fetches reuse `fiche.ensure_details`.

use crate::heartbeat::ActivityHeartbeat;
use crate::state::{WorkerActivities, fiche, permanent, retryable};
use callaudit_db::fetch_jobs::{self, FetchJobRow};
use callaudit_domain::fetch_job::{
    DayOutcome, DaySales, FetchDayStatus, FetchJobEvent, FetchJobFailure, FetchJobFinished,
    JobAttempt, RecordDayInput, SearchDayInput, selects,
};
use std::collections::BTreeSet;
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use uuid::Uuid;

fn job_id(s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid fetch job id {s}")))
}

fn attempt(n: u32) -> Result<i32, ActivityError> {
    i32::try_from(n).map_err(|_| permanent(format!("invalid attempt {n}")))
}

impl WorkerActivities {
    async fn job(&self, id: Uuid) -> Result<FetchJobRow, ActivityError> {
        let mut conn = self.conn().await?;
        fetch_jobs::get(&mut conn, id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("fetch job {id} not found")))
    }

    /// Marks the attempt running and announces it (`fetch_job.started`, once per attempt:
    /// a retry's was published by the api already).
    #[tracing::instrument(name = "fetch_job.start", skip_all, fields(job.id = %input.job_id, job.attempt = input.attempt))]
    pub(crate) async fn start_job(&self, input: JobAttempt) -> Result<(), ActivityError> {
        let id = job_id(&input.job_id)?;
        let n = attempt(input.attempt)?;
        let mut conn = self.conn().await?;
        fetch_jobs::mark_running(&mut conn, id, n)
            .await
            .map_err(retryable)?;
        let days = fetch_jobs::days_of_attempt(&mut conn, id, n)
            .await
            .map_err(retryable)?;
        drop(conn);
        let job = self.job(id).await?;
        self.publish(&FetchJobEvent::Started {
            job_id: input.job_id,
            attempt: input.attempt,
            from: job.date_from,
            to: job.date_to,
            days: u32::try_from(days).unwrap_or(u32::MAX),
        })
        .await
    }

    /// The CRM's sales with calls of the day (under `FICHE_SALES_SEARCH_CONCURRENCY`),
    /// every one stored as a partial fiche; returns the ids selected by `groupes`, once
    /// each, in CRM order.
    #[tracing::instrument(name = "fetch_job.search_day", skip_all, fields(job.id = %input.job_id, job.day = %input.day))]
    pub(crate) async fn search_day(
        &self,
        ctx: &ActivityContext,
        input: SearchDayInput,
    ) -> Result<DaySales, ActivityError> {
        let sales = self
            .fiches
            .sales_search(input.day, &ActivityHeartbeat(ctx), None)
            .await
            .map_err(fiche)?;
        let listed = u32::try_from(sales.len()).unwrap_or(u32::MAX);
        let mut seen = BTreeSet::new();
        let fiche_ids = sales
            .into_iter()
            .filter(|f| selects(&input.groupes, f.groupe.as_deref()))
            .map(|f| f.fiche_id)
            .filter(|id| seen.insert(id.clone()))
            .collect();
        Ok(DaySales {
            day: input.day,
            listed,
            fiche_ids,
        })
    }

    /// Records the day on the job (once) and announces it. A retried call after the row
    /// was written publishes the same event again (stored once by its dedupe key); a day
    /// the attempt no longer owns (reconciled meanwhile) is left alone.
    #[tracing::instrument(name = "fetch_job.record_day", skip_all, fields(job.id = %input.job_id, job.attempt = input.attempt, job.day = %input.outcome.day()))]
    pub(crate) async fn record_day(&self, input: RecordDayInput) -> Result<(), ActivityError> {
        let id = job_id(&input.job_id)?;
        let n = attempt(input.attempt)?;
        let day = input.outcome.day();
        let mut conn = self.conn().await?;
        fetch_jobs::record_day(&mut conn, id, n, &input.outcome)
            .await
            .map_err(retryable)?;
        let row = fetch_jobs::day(&mut conn, id, day)
            .await
            .map_err(retryable)?;
        drop(conn);
        let expected = match &input.outcome {
            DayOutcome::Completed(_) => FetchDayStatus::Completed,
            DayOutcome::Failed { .. } => FetchDayStatus::Failed,
        };
        if !row.is_some_and(|r| r.attempt == n && r.status == expected) {
            tracing::warn!("the day is not this attempt's any more; nothing recorded");
            return Ok(());
        }
        let event = match input.outcome {
            DayOutcome::Completed(counts) => FetchJobEvent::DayCompleted {
                job_id: input.job_id,
                attempt: input.attempt,
                counts,
            },
            DayOutcome::Failed { day, error } => {
                tracing::warn!(%error, "a day of the job failed");
                FetchJobEvent::DayFailed {
                    job_id: input.job_id,
                    attempt: input.attempt,
                    day,
                    error,
                }
            }
        };
        self.publish(&event).await
    }

    /// Ends the attempt from the recorded days and announces how.
    #[tracing::instrument(name = "fetch_job.finish", skip_all, fields(job.id = %input.job_id, job.attempt = input.attempt))]
    pub(crate) async fn finish_job(
        &self,
        input: JobAttempt,
    ) -> Result<FetchJobFinished, ActivityError> {
        let id = job_id(&input.job_id)?;
        let n = attempt(input.attempt)?;
        let mut conn = self.conn().await?;
        let row = fetch_jobs::finish(&mut conn, id, n)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("fetch job {id} not found")))?;
        let failed_days = fetch_jobs::failed_days(&mut conn, id)
            .await
            .map_err(retryable)?;
        drop(conn);
        if row.attempt == n
            && let Some(event) = row.ended_event(failed_days.clone())
        {
            self.publish(&event).await?;
        }
        tracing::info!(status = %row.status, days_failed = row.days_failed, "fetch job ended");
        Ok(FetchJobFinished {
            status: row.status,
            failed_days,
        })
    }

    /// Records the attempt failed with its reason and announces it.
    #[tracing::instrument(name = "fetch_job.fail", skip_all, fields(job.id = %input.job_id, job.attempt = input.attempt))]
    pub(crate) async fn fail_job(&self, input: FetchJobFailure) -> Result<(), ActivityError> {
        let id = job_id(&input.job_id)?;
        let n = attempt(input.attempt)?;
        let mut conn = self.conn().await?;
        fetch_jobs::fail(&mut conn, id, n, &input.error)
            .await
            .map_err(retryable)?;
        let failed_days = fetch_jobs::failed_days(&mut conn, id)
            .await
            .map_err(retryable)?;
        drop(conn);
        let row = self.job(id).await?;
        if row.attempt == n
            && let Some(event @ FetchJobEvent::Failed { .. }) = row.ended_event(failed_days)
        {
            tracing::warn!(error = %input.error, "fetch job failed");
            self.publish(&event).await?;
        }
        Ok(())
    }
}
