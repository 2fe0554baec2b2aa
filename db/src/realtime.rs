//! The realtime relay's queries: its cursor (`realtime_relay_cursors`), the events after
//! it in commit-safe order, and what the relay needs to know of automation runs. The
//! relay itself is `callaudit_upstream::realtime`.
//!
//! Why `(xact_id, id)` and not `id` alone: an event's id is drawn before its transaction
//! commits, so a higher id can commit first; [`after`] returns only events written by
//! transactions older than every running one (`xact_id < pg_snapshot_xmin(...)`), in
//! `(xact_id, id)` order, so no event can later appear behind a cursor taken from them.

use crate::DbResult;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Where a relay stands: the last event it delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, diesel::QueryableByName)]
pub struct Cursor {
    /// The inserting transaction of the last delivered event.
    #[diesel(sql_type = BigInt)]
    pub last_xact_id: i64,
    /// Its id.
    #[diesel(sql_type = BigInt)]
    pub last_event_id: i64,
}

/// A relay's row as operators read it.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct RelayStatus {
    /// The last delivered event's transaction.
    #[diesel(sql_type = BigInt)]
    pub last_xact_id: i64,
    /// The last delivered event's id.
    #[diesel(sql_type = BigInt)]
    pub last_event_id: i64,
    /// Events delivered so far.
    #[diesel(sql_type = BigInt)]
    pub delivered: i64,
    /// Failed attempts so far (each retried from the same cursor).
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
    /// The last failure (sanitised: never a secret).
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

/// One event to relay.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct RelayEvent {
    /// `events.id`.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its inserting transaction.
    #[diesel(sql_type = BigInt)]
    pub xact_id: i64,
    /// Its topic.
    #[diesel(sql_type = Text)]
    pub topic: String,
    /// Its type.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Its payload.
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
}

impl RelayEvent {
    /// The cursor just after this event.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            last_xact_id: self.xact_id,
            last_event_id: self.id,
        }
    }
}

/// The cursor of relay `name` (created at the start of the history if missing).
pub async fn cursor(conn: &mut AsyncPgConnection, name: &str) -> DbResult<Cursor> {
    let rows: Vec<Cursor> = diesel::sql_query(
        "WITH ins AS (INSERT INTO realtime_relay_cursors (name) VALUES ($1) \
           ON CONFLICT (name) DO NOTHING RETURNING last_xact_id, last_event_id) \
         SELECT last_xact_id, last_event_id FROM ins \
         UNION ALL SELECT last_xact_id, last_event_id FROM realtime_relay_cursors WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

/// Relay `name`'s row.
pub async fn status(conn: &mut AsyncPgConnection, name: &str) -> DbResult<Option<RelayStatus>> {
    let rows: Vec<RelayStatus> = diesel::sql_query(
        "SELECT last_xact_id, last_event_id, delivered, failures, last_error \
         FROM realtime_relay_cursors WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// At most `limit` events after `cursor` whose transactions are all finished, in
/// `(xact_id, id)` order.
pub async fn after(
    conn: &mut AsyncPgConnection,
    cursor: Cursor,
    limit: i64,
) -> DbResult<Vec<RelayEvent>> {
    Ok(diesel::sql_query(
        "SELECT id, xact_id, topic, type AS kind, payload FROM events \
         WHERE (xact_id, id) > ($1, $2) \
           AND xact_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
         ORDER BY xact_id, id LIMIT $3",
    )
    .bind::<BigInt, _>(cursor.last_xact_id)
    .bind::<BigInt, _>(cursor.last_event_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// Moves relay `name` to `to` after `delivered` more events were accepted; never
/// backwards. Clears the last error.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    name: &str,
    to: Cursor,
    delivered: i64,
) -> DbResult<()> {
    diesel::sql_query(
        "UPDATE realtime_relay_cursors SET last_xact_id = $2, last_event_id = $3, \
           delivered = delivered + $4, last_error = NULL, updated_at = now() \
         WHERE name = $1 AND (last_xact_id, last_event_id) < ($2, $3)",
    )
    .bind::<Text, _>(name)
    .bind::<BigInt, _>(to.last_xact_id)
    .bind::<BigInt, _>(to.last_event_id)
    .bind::<BigInt, _>(delivered)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt of relay `name` (the cursor stays where it is).
pub async fn record_failure(conn: &mut AsyncPgConnection, name: &str, error: &str) -> DbResult<()> {
    diesel::sql_query(
        "UPDATE realtime_relay_cursors SET failures = failures + 1, last_error = $2, \
           last_error_at = now(), updated_at = now() WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Realtime {
    #[diesel(sql_type = Bool)]
    realtime: bool,
}

/// Whether `id` is an automation run and, if so, whether its schedule has realtime
/// notifications on (`notifications.realtime`); `None` when no run has this id (a
/// malformed id included).
pub async fn run_realtime(conn: &mut AsyncPgConnection, id: &str) -> DbResult<Option<bool>> {
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return Ok(None);
    };
    let rows: Vec<Realtime> = diesel::sql_query(
        "SELECT COALESCE((s.notifications ->> 'realtime')::boolean, false) AS realtime \
         FROM automation_runs r JOIN automation_schedules s ON s.id = r.schedule_id \
         WHERE r.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(|r| r.realtime))
}
