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
