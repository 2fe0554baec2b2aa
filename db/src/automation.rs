//! The `automation_schedules` table: automation schedules as written through the api.
//! The table is the truth; each row is mirrored as a Temporal Schedule
//! `automation:{id}` (the api on write, the reconciler for drift).

use crate::DbResult;
use crate::schema::automation_schedules as schedules;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A stored schedule.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = schedules)]
pub struct ScheduleRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Cron expression (Temporal's cron syntax).
    pub cron: String,
    /// IANA time zone the cron is read in.
    pub timezone: String,
    /// Enabled (a disabled schedule's Temporal Schedule is paused).
    pub active: bool,
    /// Audit configuration of its audits.
    pub audit_config_id: Option<Uuid>,
    /// `ficheSelection` as JSON.
    pub fiche_selection: serde_json::Value,
    /// Controls as JSON.
    pub options: serde_json::Value,
    /// Notifications as JSON.
    pub notifications: serde_json::Value,
    /// `automation:{id}`.
    pub temporal_schedule_id: String,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a write sets (all but the id, the Temporal id and the creator).
#[derive(Debug, Clone)]
pub struct ScheduleFields<'a> {
    /// Name.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Cron expression.
    pub cron: &'a str,
    /// IANA time zone.
    pub timezone: &'a str,
    /// Enabled.
    pub active: bool,
    /// Audit configuration.
    pub audit_config_id: Uuid,
    /// `ficheSelection`.
    pub fiche_selection: &'a serde_json::Value,
    /// Controls.
    pub options: &'a serde_json::Value,
    /// Notifications.
    pub notifications: &'a serde_json::Value,
}

/// Stores a new schedule.
pub async fn create(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    temporal_schedule_id: &str,
    fields: &ScheduleFields<'_>,
    created_by: Option<Uuid>,
) -> DbResult<ScheduleRow> {
    Ok(diesel::insert_into(schedules::table)
        .values((
            schedules::id.eq(id),
            schedules::name.eq(fields.name),
            schedules::description.eq(fields.description),
            schedules::cron.eq(fields.cron),
            schedules::timezone.eq(fields.timezone),
            schedules::active.eq(fields.active),
            schedules::audit_config_id.eq(Some(fields.audit_config_id)),
            schedules::fiche_selection.eq(fields.fiche_selection),
            schedules::options.eq(fields.options),
            schedules::notifications.eq(fields.notifications),
            schedules::temporal_schedule_id.eq(temporal_schedule_id),
            schedules::created_by.eq(created_by),
        ))
        .returning(ScheduleRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Replaces a schedule's fields; `None` when there is no such schedule.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    fields: &ScheduleFields<'_>,
) -> DbResult<Option<ScheduleRow>> {
    Ok(diesel::update(schedules::table.find(id))
        .set((
            schedules::name.eq(fields.name),
            schedules::description.eq(fields.description),
            schedules::cron.eq(fields.cron),
            schedules::timezone.eq(fields.timezone),
            schedules::active.eq(fields.active),
            schedules::audit_config_id.eq(Some(fields.audit_config_id)),
            schedules::fiche_selection.eq(fields.fiche_selection),
            schedules::options.eq(fields.options),
            schedules::notifications.eq(fields.notifications),
            schedules::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ScheduleRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes a schedule (its runs go with it); whether it existed.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<bool> {
    let n = diesel::delete(schedules::table.find(id))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// A schedule.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<ScheduleRow>> {
    Ok(schedules::table
        .find(id)
        .select(ScheduleRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A page of schedules, newest first, and how many there are.
pub async fn list(
    conn: &mut AsyncPgConnection,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<ScheduleRow>, i64)> {
    let rows = schedules::table
        .order((schedules::created_at.desc(), schedules::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(ScheduleRow::as_select())
        .load(&mut *conn)
        .await?;
    let total = schedules::table.count().get_result(conn).await?;
    Ok((rows, total))
}

/// Every schedule (the reconciler's view of the truth).
pub async fn all(conn: &mut AsyncPgConnection) -> DbResult<Vec<ScheduleRow>> {
    Ok(schedules::table
        .order(schedules::id.asc())
        .select(ScheduleRow::as_select())
        .load(conn)
        .await?)
}

use crate::schema::automation_runs as runs;
use chrono::NaiveDate;

/// A stored run.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = runs)]
pub struct RunRow {
    /// Id (its batch of audits has the same id).
    pub id: Uuid,
    /// Its schedule.
    pub schedule_id: Uuid,
    /// The time it was scheduled for.
    pub scheduled_at: DateTime<Utc>,
    /// `running`, `completed`, `partial` or `failed`.
    pub status: String,
    /// Its `AutomationRunWorkflow`.
    pub workflow_id: String,
    /// Counts and durations (`resultSummary`).
    pub result_summary: serde_json::Value,
    /// Fiches left out, with their reasons.
    pub ignored_fiches: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    /// Started at.
    pub started_at: DateTime<Utc>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Records a run once per schedule and scheduled time (a retried activity finds it).
pub async fn start_run(
    conn: &mut AsyncPgConnection,
    schedule_id: Uuid,
    workflow_id: &str,
    scheduled_at: DateTime<Utc>,
) -> DbResult<RunRow> {
    diesel::insert_into(runs::table)
        .values((
            runs::id.eq(Uuid::new_v4()),
            runs::schedule_id.eq(schedule_id),
            runs::scheduled_at.eq(scheduled_at),
            runs::workflow_id.eq(workflow_id),
        ))
        .on_conflict((runs::schedule_id, runs::scheduled_at))
        .do_nothing()
        .execute(&mut *conn)
        .await?;
    Ok(runs::table
        .filter(runs::schedule_id.eq(schedule_id))
        .filter(runs::scheduled_at.eq(scheduled_at))
        .select(RunRow::as_select())
        .first(conn)
        .await?)
}

#[derive(diesel::QueryableByName)]
struct Day {
    #[diesel(sql_type = diesel::sql_types::Date)]
    day: NaiveDate,
}

/// The `days_back` days before `at`'s day in `timezone`, oldest first.
pub async fn window_days(
    conn: &mut AsyncPgConnection,
    at: DateTime<Utc>,
    timezone: &str,
    days_back: u32,
) -> DbResult<Vec<NaiveDate>> {
    use diesel::sql_types::{Integer, Text, Timestamptz};
    let rows: Vec<Day> = diesel::sql_query(
        "SELECT ((($1 AT TIME ZONE $2)::date) - g)::date AS day \
         FROM generate_series(1, $3) g ORDER BY 1",
    )
    .bind::<Timestamptz, _>(at)
    .bind::<Text, _>(timezone)
    .bind::<Integer, _>(i32::try_from(days_back).unwrap_or(i32::MAX))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|d| d.day).collect())
}

/// Records the fiches a run leaves out.
pub async fn set_ignored(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
    ignored: &serde_json::Value,
) -> DbResult<()> {
    diesel::update(runs::table.find(run_id))
        .set(runs::ignored_fiches.eq(ignored))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a running run with its status and summary; returns it as it stands (a run that
/// had ended is left as it was).
pub async fn finish_run(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
    status: &str,
    summary: &serde_json::Value,
    error: Option<&str>,
) -> DbResult<RunRow> {
    diesel::update(runs::table.find(run_id).filter(runs::status.eq("running")))
        .set((
            runs::status.eq(status),
            runs::result_summary.eq(summary),
            runs::error.eq(error),
            runs::completed_at.eq(diesel::dsl::now),
        ))
        .execute(&mut *conn)
        .await?;
    Ok(runs::table
        .find(run_id)
        .select(RunRow::as_select())
        .first(conn)
        .await?)
}

/// Runs still `running` that started before `before`, oldest first, at most `limit`
/// (the reconcile sweep checks them against their workflows).
pub async fn unsettled_runs(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<RunRow>> {
    Ok(runs::table
        .filter(runs::status.eq("running"))
        .filter(runs::started_at.lt(before))
        .order(runs::started_at.asc())
        .limit(limit)
        .select(RunRow::as_select())
        .load(conn)
        .await?)
}

/// The latest run of `schedule_id` still `running`, if any.
pub async fn running_run(
    conn: &mut AsyncPgConnection,
    schedule_id: Uuid,
) -> DbResult<Option<RunRow>> {
    Ok(runs::table
        .filter(runs::schedule_id.eq(schedule_id))
        .filter(runs::status.eq("running"))
        .order(runs::started_at.desc())
        .select(RunRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Records a run still `running` failed with `reason` (its summary kept); false when it
/// had ended (nothing changed).
pub async fn fail_run(conn: &mut AsyncPgConnection, run_id: Uuid, reason: &str) -> DbResult<bool> {
    let n = diesel::update(runs::table.find(run_id).filter(runs::status.eq("running")))
        .set((
            runs::status.eq("failed"),
            runs::error.eq(reason),
            runs::completed_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// A run.
pub async fn get_run(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<RunRow>> {
    Ok(runs::table
        .find(id)
        .select(RunRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A page of runs, newest scheduled first (of one schedule, or all).
pub async fn list_runs(
    conn: &mut AsyncPgConnection,
    schedule_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<RunRow>, i64)> {
    let mut q = runs::table.into_boxed();
    let mut c = runs::table.into_boxed();
    if let Some(s) = schedule_id {
        q = q.filter(runs::schedule_id.eq(s));
        c = c.filter(runs::schedule_id.eq(s));
    }
    let rows = q
        .order((runs::scheduled_at.desc(), runs::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(RunRow::as_select())
        .load(&mut *conn)
        .await?;
    let total = c.count().get_result(conn).await?;
    Ok((rows, total))
}

/// The recordings count of each of `fiche_ids` that is cached.
pub async fn recordings_counts(
    conn: &mut AsyncPgConnection,
    fiche_ids: &[String],
) -> DbResult<Vec<(String, i32)>> {
    use crate::schema::fiches;
    Ok(fiches::table
        .filter(fiches::fiche_id.eq_any(fiche_ids))
        .select((fiches::fiche_id, fiches::recordings_count))
        .load(conn)
        .await?)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Fiches of batch `batch_id` whose every recording has a completed transcription.
pub async fn transcribed_fiches(conn: &mut AsyncPgConnection, batch_id: Uuid) -> DbResult<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_batch_items i WHERE i.batch_id = $1 \
           AND EXISTS (SELECT 1 FROM recordings r WHERE r.fiche_id = i.fiche_id) \
           AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.fiche_id = i.fiche_id \
                 AND NOT EXISTS (SELECT 1 FROM transcriptions t \
                       WHERE t.recording_id = r.recording_id AND t.status = 'completed'))",
    )
    .bind::<diesel::sql_types::Uuid, _>(batch_id)
    .get_result(conn)
    .await?;
    Ok(row.n)
}

/// Takes `fiche_ids` out of pending batch `batch_id` (a run's fiches whose transcription
/// failed, before its audits start) and lowers its total; a batch left empty is removed.
/// Returns the items left (a batch no longer pending is not touched: its item count).
pub async fn drop_from_pending_batch(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    fiche_ids: &[String],
) -> DbResult<i64> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, crate::DbError, _>(async |conn| {
        let pending: Option<Count> = diesel::sql_query(
            "SELECT total::bigint AS n FROM audit_batches WHERE id = $1 AND status = 'pending' \
             FOR UPDATE",
        )
        .bind::<diesel::sql_types::Uuid, _>(batch_id)
        .get_result(&mut *conn)
        .await
        .optional()?;
        if pending.is_none() {
            let left: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM audit_batch_items WHERE batch_id = $1",
            )
            .bind::<diesel::sql_types::Uuid, _>(batch_id)
            .get_result(&mut *conn)
            .await?;
            return Ok(left.n);
        }
        diesel::sql_query(
            "DELETE FROM audit_batch_items WHERE batch_id = $1 AND fiche_id = ANY($2) \
               AND status = 'pending'",
        )
        .bind::<diesel::sql_types::Uuid, _>(batch_id)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(fiche_ids)
        .execute(&mut *conn)
        .await?;
        let left: Count =
            diesel::sql_query("SELECT count(*) AS n FROM audit_batch_items WHERE batch_id = $1")
                .bind::<diesel::sql_types::Uuid, _>(batch_id)
                .get_result(&mut *conn)
                .await?;
        if left.n == 0 {
            diesel::sql_query("DELETE FROM audit_batches WHERE id = $1")
                .bind::<diesel::sql_types::Uuid, _>(batch_id)
                .execute(&mut *conn)
                .await?;
        } else {
            diesel::sql_query(
                "UPDATE audit_batches SET total = $2, updated_at = now() WHERE id = $1",
            )
            .bind::<diesel::sql_types::Uuid, _>(batch_id)
            .bind::<diesel::sql_types::Integer, _>(i32::try_from(left.n).unwrap_or(i32::MAX))
            .execute(&mut *conn)
            .await?;
        }
        Ok(left.n)
    })
    .await
}

use crate::schema::automation_webhook_deliveries as deliveries;

/// Stores the schedule's webhook signing secret.
pub async fn set_webhook_secret(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    secret: &str,
) -> DbResult<()> {
    diesel::update(schedules::table.find(id))
        .set(schedules::webhook_secret.eq(Some(secret)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The schedule's webhook signing secret.
pub async fn webhook_secret(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<String>> {
    Ok(schedules::table
        .find(id)
        .select(schedules::webhook_secret)
        .first::<Option<String>>(conn)
        .await
        .optional()?
        .flatten())
}

/// One webhook delivery of a run's event.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    /// The event delivered (`automation/completed`…).
    pub event: String,
    /// Where.
    pub url: String,
    /// `pending`, `delivered`, `failed` (its last attempt) or `refused` (by the guard).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The receiver's last status.
    pub response_status: Option<i32>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Records an attempt of the delivery of `event` of `run_id` (one row per event).
#[allow(clippy::too_many_arguments)]
pub async fn record_delivery(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
    event: &str,
    url: &str,
    status: &str,
    attempts: i32,
    response_status: Option<i32>,
    error: Option<&str>,
) -> DbResult<()> {
    diesel::insert_into(deliveries::table)
        .values((
            deliveries::run_id.eq(run_id),
            deliveries::event.eq(event),
            deliveries::url.eq(url),
            deliveries::status.eq(status),
            deliveries::attempts.eq(attempts),
            deliveries::response_status.eq(response_status),
            deliveries::error.eq(error),
        ))
        .on_conflict((deliveries::run_id, deliveries::event))
        .do_update()
        .set((
            deliveries::status.eq(status),
            deliveries::attempts.eq(attempts),
            deliveries::response_status.eq(response_status),
            deliveries::error.eq(error),
            deliveries::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A run's webhook deliveries, oldest first.
pub async fn deliveries_of(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
) -> DbResult<Vec<DeliveryRow>> {
    Ok(deliveries::table
        .filter(deliveries::run_id.eq(run_id))
        .order(deliveries::id.asc())
        .select(DeliveryRow::as_select())
        .load(conn)
        .await?)
}
