//! The `fiche_fetch_jobs` and `fiche_fetch_job_days` tables: progressive fetch jobs and
//! their days. While an attempt runs, its `ProgressiveFetchWorkflow` is the only writer
//! (one day at a time: [`record_day`], then [`finish`] or [`fail`]); the api creates
//! jobs, starts retries and reconciles jobs whose workflow ended without recording it.
//! Every write holds the job's row lock and recomputes the job's counters from its day
//! rows, so a retried activity or a concurrent reconciliation never counts a day twice.

use crate::enums::Named;
use crate::schema::{fiche_fetch_job_days as days, fiche_fetch_jobs as jobs};
use crate::{DbError, DbResult};
use callaudit_domain::fetch_job::{
    DayOutcome, FetchDayStatus, FetchJobEvent, FetchJobStatus, JobCounts,
};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A stored job.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = jobs)]
pub struct FetchJobRow {
    /// Id.
    pub id: Uuid,
    /// First day.
    pub date_from: NaiveDate,
    /// Last day.
    pub date_to: NaiveDate,
    /// Where it stands.
    #[diesel(deserialize_as = Named<FetchJobStatus>)]
    pub status: FetchJobStatus,
    /// `fiche-fetch-job:{id}` (every attempt is a run of it).
    pub workflow_id: String,
    /// Days of the range.
    pub days_total: i32,
    /// Days fetched.
    pub days_done: i32,
    /// Days failed.
    pub days_failed: i32,
    /// Sales found (matching `groupes`).
    pub fiches_found: i32,
    /// Details stored.
    pub fiches_fetched: i32,
    /// Detail fetches failed.
    pub fiches_failed: i32,
    /// Groups selected (JSON array of strings; empty: all).
    pub groupes: serde_json::Value,
    /// Details fetched again even when cached.
    pub force_refresh: bool,
    /// Current attempt (1, then 2… for retries).
    pub attempt: i32,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Who asked.
    pub created_by: Option<Uuid>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// First attempt started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last attempt ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

impl FetchJobRow {
    /// The groups selected.
    pub fn groupes(&self) -> Vec<String> {
        serde_json::from_value(self.groupes.clone()).unwrap_or_default()
    }

    /// Its counters, as events report them.
    pub fn counts(&self) -> JobCounts {
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        JobCounts {
            days_total: n(self.days_total),
            days_done: n(self.days_done),
            days_failed: n(self.days_failed),
            found: n(self.fiches_found),
            fetched: n(self.fiches_fetched),
            failed: n(self.fiches_failed),
        }
    }

    /// The event that announces how its current attempt ended (`fetch_job.completed` for
    /// completed and partial, `fetch_job.failed` for failed), None while it runs.
    pub fn ended_event(&self, failed_days: Vec<NaiveDate>) -> Option<FetchJobEvent> {
        let job_id = self.id.to_string();
        let attempt = u32::try_from(self.attempt).unwrap_or(1);
        match self.status {
            FetchJobStatus::Completed | FetchJobStatus::Partial => Some(FetchJobEvent::Completed {
                job_id,
                attempt,
                status: self.status,
                counts: self.counts(),
                failed_days,
            }),
            FetchJobStatus::Failed => Some(FetchJobEvent::Failed {
                job_id,
                attempt,
                error: self.error.clone().unwrap_or_else(|| "failed".to_string()),
                counts: self.counts(),
                failed_days,
            }),
            FetchJobStatus::Pending | FetchJobStatus::Running => None,
        }
    }
}

/// A stored day of a job.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = days)]
pub struct FetchDayRow {
    /// The day.
    pub day: NaiveDate,
    /// Where it stands.
    #[diesel(deserialize_as = Named<FetchDayStatus>)]
    pub status: FetchDayStatus,
    /// The attempt that last ran (or runs) it.
    pub attempt: i32,
    /// Sales found.
    pub fiches_found: i32,
    /// Details stored.
    pub fiches_fetched: i32,
    /// Detail fetches failed.
    pub fiches_failed: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A job as the api stores it.
#[derive(Debug, Clone)]
pub struct NewFetchJob<'a> {
    /// Id.
    pub id: Uuid,
    /// First day.
    pub date_from: NaiveDate,
    /// Last day.
    pub date_to: NaiveDate,
    /// Its workflow id.
    pub workflow_id: &'a str,
    /// Groups selected.
    pub groupes: &'a [String],
    /// Fetch details again even when cached.
    pub force_refresh: bool,
    /// Who asks.
    pub created_by: Option<Uuid>,
}

/// A page of jobs.
#[derive(Debug, Clone)]
pub struct FetchJobPage {
    /// Newest first.
    pub rows: Vec<FetchJobRow>,
    /// All jobs.
    pub total: i64,
}

/// Stores a pending job and one pending day row per day of `days` (its whole range), in
/// one transaction.
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewFetchJob<'_>,
    range: &[NaiveDate],
) -> DbResult<FetchJobRow> {
    let groupes = serde_json::to_value(new.groupes).unwrap_or_default();
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::insert_into(jobs::table)
            .values((
                jobs::id.eq(new.id),
                jobs::date_from.eq(new.date_from),
                jobs::date_to.eq(new.date_to),
                jobs::workflow_id.eq(new.workflow_id),
                jobs::days_total.eq(i32::try_from(range.len()).unwrap_or(i32::MAX)),
                jobs::groupes.eq(&groupes),
                jobs::force_refresh.eq(new.force_refresh),
                jobs::created_by.eq(new.created_by),
            ))
            .execute(&mut *conn)
            .await?;
        let rows: Vec<_> = range
            .iter()
            .map(|d| (days::job_id.eq(new.id), days::day.eq(*d)))
            .collect();
        for chunk in rows.chunks(5000) {
            diesel::insert_into(days::table)
                .values(chunk)
                .execute(&mut *conn)
                .await?;
        }
        Ok(jobs::table
            .find(new.id)
            .select(FetchJobRow::as_select())
            .first(conn)
            .await?)
    })
    .await
}

/// Deletes a job still pending at its first attempt (its workflow could not be started:
/// nothing was accepted); its days go with it.
pub async fn delete_pending(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<bool> {
    let n = diesel::delete(
        jobs::table
            .find(id)
            .filter(jobs::status.eq(FetchJobStatus::Pending.as_str()))
            .filter(jobs::attempt.eq(1)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// A job.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<FetchJobRow>> {
    Ok(jobs::table
        .find(id)
        .select(FetchJobRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The days of a job, in order.
pub async fn days_of(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Vec<FetchDayRow>> {
    Ok(days::table
        .filter(days::job_id.eq(id))
        .order(days::day.asc())
        .select(FetchDayRow::as_select())
        .load(conn)
        .await?)
}

/// One day of a job.
pub async fn day(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    day: NaiveDate,
) -> DbResult<Option<FetchDayRow>> {
    Ok(days::table
        .filter(days::job_id.eq(id))
        .filter(days::day.eq(day))
        .select(FetchDayRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// How many days `attempt` of the job runs.
pub async fn days_of_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
) -> DbResult<i64> {
    Ok(days::table
        .filter(days::job_id.eq(id))
        .filter(days::attempt.eq(attempt))
        .count()
        .get_result(conn)
        .await?)
}

/// The failed days of a job, in order.
pub async fn failed_days(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Vec<NaiveDate>> {
    Ok(days::table
        .filter(days::job_id.eq(id))
        .filter(days::status.eq(FetchDayStatus::Failed.as_str()))
        .order(days::day.asc())
        .select(days::day)
        .load(conn)
        .await?)
}

/// Jobs, newest first.
pub async fn list(conn: &mut AsyncPgConnection, limit: i64, offset: i64) -> DbResult<FetchJobPage> {
    let rows = jobs::table
        .order((jobs::created_at.desc(), jobs::id.asc()))
        .select(FetchJobRow::as_select())
        .limit(limit)
        .offset(offset)
        .load(&mut *conn)
        .await?;
    let total = jobs::table.count().get_result(conn).await?;
    Ok(FetchJobPage { rows, total })
}

/// Jobs not ended whose row has not changed since `before`, oldest first, at most
/// `limit` (candidates for reconciliation with their workflows).
pub async fn unsettled(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<FetchJobRow>> {
    Ok(jobs::table
        .filter(jobs::status.eq_any([
            FetchJobStatus::Pending.as_str(),
            FetchJobStatus::Running.as_str(),
        ]))
        .filter(jobs::updated_at.lt(before))
        .order(jobs::updated_at.asc())
        .limit(limit)
        .select(FetchJobRow::as_select())
        .load(conn)
        .await?)
}

/// Locks the job's row for the rest of the transaction; its status and attempt.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<(FetchJobStatus, i32)>> {
    let row: Option<(Named<FetchJobStatus>, i32)> = jobs::table
        .find(id)
        .select((jobs::status, jobs::attempt))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(s, a)| (s.0, a)))
}

/// Sets the job's counters from its day rows (inside the caller's transaction, after
/// [`lock`]).
async fn recount(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::sql_query(
        "UPDATE fiche_fetch_jobs j SET days_done = c.done, days_failed = c.failed, \
           fiches_found = c.found, fiches_fetched = c.fetched, fiches_failed = c.fetch_failed, \
           updated_at = now() \
         FROM (SELECT count(*) FILTER (WHERE status = 'completed') AS done, \
                      count(*) FILTER (WHERE status = 'failed') AS failed, \
                      coalesce(sum(fiches_found), 0) AS found, \
                      coalesce(sum(fiches_fetched), 0) AS fetched, \
                      coalesce(sum(fiches_failed), 0) AS fetch_failed \
               FROM fiche_fetch_job_days WHERE job_id = $1) c \
         WHERE j.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks `attempt` of the job running (first start stamped); false when the job is at
/// another attempt or has ended.
pub async fn mark_running(conn: &mut AsyncPgConnection, id: Uuid, attempt: i32) -> DbResult<bool> {
    let now = Utc::now();
    let n = diesel::update(jobs::table.find(id))
        .filter(jobs::attempt.eq(attempt))
        .filter(jobs::status.eq_any([
            FetchJobStatus::Pending.as_str(),
            FetchJobStatus::Running.as_str(),
        ]))
        .set((
            jobs::status.eq(FetchJobStatus::Running.as_str()),
            jobs::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("coalesce(started_at, now())")),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Records how a day of `attempt` ended and recounts the job, once: a day already
/// recorded (a retried activity), or not part of this attempt, changes nothing. Returns
/// whether it was recorded now.
pub async fn record_day(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    outcome: &DayOutcome,
) -> DbResult<bool> {
    conn.transaction::<_, DbError, _>(async |conn| {
        if lock(conn, id).await?.is_none() {
            return Ok(false);
        }
        let pending = days::table
            .filter(days::job_id.eq(id))
            .filter(days::day.eq(outcome.day()))
            .filter(days::attempt.eq(attempt))
            .filter(days::status.eq(FetchDayStatus::Pending.as_str()));
        let now = Utc::now();
        let n = match outcome {
            DayOutcome::Completed(c) => {
                diesel::update(pending)
                    .set((
                        days::status.eq(FetchDayStatus::Completed.as_str()),
                        days::fiches_found.eq(i32::try_from(c.found).unwrap_or(i32::MAX)),
                        days::fiches_fetched.eq(i32::try_from(c.fetched).unwrap_or(i32::MAX)),
                        days::fiches_failed.eq(i32::try_from(c.failed).unwrap_or(i32::MAX)),
                        days::error.eq(None::<String>),
                        days::completed_at.eq(now),
                    ))
                    .execute(&mut *conn)
                    .await?
            }
            DayOutcome::Failed { error, .. } => {
                diesel::update(pending)
                    .set((
                        days::status.eq(FetchDayStatus::Failed.as_str()),
                        days::error.eq(error),
                        days::completed_at.eq(now),
                    ))
                    .execute(&mut *conn)
                    .await?
            }
        };
        if n == 1 {
            recount(conn, id).await?;
        }
        Ok(n == 1)
    })
    .await
}

/// Fails the pending days of `attempt` with `reason` (inside the caller's transaction).
async fn fail_pending_days(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    reason: &str,
) -> DbResult<()> {
    diesel::update(
        days::table
            .filter(days::job_id.eq(id))
            .filter(days::attempt.eq(attempt))
            .filter(days::status.eq(FetchDayStatus::Pending.as_str())),
    )
    .set((
        days::status.eq(FetchDayStatus::Failed.as_str()),
        days::error.eq(reason),
        days::completed_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends `attempt` of the job from its day rows: completed, partial or failed (nothing
/// fetched). A day the workflow did not record is failed as "not recorded". Returns the
/// job as it stands (ended already: unchanged), None when it does not exist.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
) -> DbResult<Option<FetchJobRow>> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let Some((status, current)) = lock(conn, id).await? else {
            return Ok(None);
        };
        if current == attempt && !status.is_terminal() {
            fail_pending_days(conn, id, attempt, "not recorded by the job's workflow").await?;
            recount(conn, id).await?;
            let (done, failed): (i32, i32) = jobs::table
                .find(id)
                .select((jobs::days_done, jobs::days_failed))
                .first(&mut *conn)
                .await?;
            let status = FetchJobStatus::settled(
                u32::try_from(done).unwrap_or(0),
                u32::try_from(failed).unwrap_or(0),
            );
            let error = (status == FetchJobStatus::Failed).then_some("every day failed");
            diesel::update(jobs::table.find(id))
                .set((
                    jobs::status.eq(status.as_str()),
                    jobs::error.eq(error),
                    jobs::completed_at.eq(Utc::now()),
                ))
                .execute(&mut *conn)
                .await?;
        }
        get(conn, id).await
    })
    .await
}

/// Records `attempt` of the job failed with `reason` (its days not recorded failed with
/// it), unless it has ended or moved to another attempt. Returns whether it changed.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempt: i32,
    reason: &str,
) -> DbResult<bool> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let Some((status, current)) = lock(conn, id).await? else {
            return Ok(false);
        };
        if current != attempt || status.is_terminal() {
            return Ok(false);
        }
        fail_pending_days(conn, id, attempt, reason).await?;
        recount(conn, id).await?;
        diesel::update(jobs::table.find(id))
            .set((
                jobs::status.eq(FetchJobStatus::Failed.as_str()),
                jobs::error.eq(reason),
                jobs::completed_at.eq(Utc::now()),
            ))
            .execute(&mut *conn)
            .await?;
        Ok(true)
    })
    .await
}

/// Why a job cannot be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such job.
    #[error("job not found")]
    NoJob,
    /// Its attempt has not ended.
    #[error("the job is {0}")]
    NotEnded(FetchJobStatus),
    /// It has no failed day.
    #[error("the job has no failed day")]
    NothingToRetry,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for RetryError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Opens the next attempt of an ended job over its failed days: they go back to pending
/// under the new attempt, the job to pending (its workflow is started next). Returns the
/// job and the days to redo.
pub async fn retry(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<(FetchJobRow, Vec<NaiveDate>), RetryError> {
    conn.transaction::<_, RetryError, _>(async |conn| {
        let (status, attempt) = lock(conn, id).await?.ok_or(RetryError::NoJob)?;
        if !status.is_terminal() {
            return Err(RetryError::NotEnded(status));
        }
        let redo = failed_days(conn, id).await?;
        if redo.is_empty() {
            return Err(RetryError::NothingToRetry);
        }
        let next = attempt + 1;
        diesel::update(
            days::table
                .filter(days::job_id.eq(id))
                .filter(days::status.eq(FetchDayStatus::Failed.as_str())),
        )
        .set((
            days::status.eq(FetchDayStatus::Pending.as_str()),
            days::attempt.eq(next),
            days::error.eq(None::<String>),
            days::completed_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(&mut *conn)
        .await?;
        recount(conn, id).await?;
        diesel::update(jobs::table.find(id))
            .set((
                jobs::status.eq(FetchJobStatus::Pending.as_str()),
                jobs::attempt.eq(next),
                jobs::error.eq(None::<String>),
                jobs::completed_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(&mut *conn)
            .await?;
        let row = get(conn, id).await?.ok_or(RetryError::NoJob)?;
        Ok((row, redo))
    })
    .await
}
