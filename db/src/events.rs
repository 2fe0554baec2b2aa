//! The events table: every state change is a row (bigserial id = SSE event id) announced
//! with `pg_notify('callaudit_events', '<topic>')`, so any api replica can replay from
//! `Last-Event-ID` and then follow live.

use crate::schema::events;
use crate::{DbError, DbResult};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
use diesel::{
    ExpressionMethods, QueryDsl, Queryable, QueryableByName, Selectable, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::StreamExt;

/// The NOTIFY channel.
pub const CHANNEL: &str = "callaudit_events";

/// One stored event.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, serde::Deserialize, PartialEq)]
#[diesel(table_name = events)]
pub struct Event {
    /// Monotonic id (the SSE `id:`).
    pub id: i64,
    /// Stream it belongs to, e.g. `audit:<uuid>`.
    pub topic: String,
    /// Event type, e.g. `audit.step.completed`.
    #[diesel(column_name = type_)]
    #[serde(rename = "type")]
    pub kind: String,
    /// JSON payload (never a transcript or a secret).
    pub payload: serde_json::Value,
    /// Insertion time.
    pub created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct InsertedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Stores an event and notifies listeners. With a `dedupe_key`, publishing the same
/// event twice (a retried activity) stores it once; returns `None` for the duplicate.
///
/// Events of one topic commit in id order: the insert runs under a transaction-level
/// advisory lock of its topic, taken before the id is drawn from the sequence. Without
/// it, two steps publishing at once could commit id 11 before id 10, and a stream that
/// had already read past 11 would never send 10. (Two-key form, class 7001: a key space
/// apart from the single-key locks of migrations and user upserts.)
pub async fn publish(
    conn: &mut AsyncPgConnection,
    topic: &str,
    kind: &str,
    payload: &serde_json::Value,
    dedupe_key: Option<&str>,
) -> DbResult<Option<i64>> {
    conn.transaction::<_, DbError, _>(async |conn| {
        publish_within(conn, topic, kind, payload, dedupe_key).await
    })
    .await
}

/// An event to publish with the change it announces.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// Its stream, e.g. `audit:{id}`.
    pub topic: &'a str,
    /// Its type.
    pub kind: &'a str,
    /// Its payload.
    pub payload: &'a serde_json::Value,
    /// One key per fact.
    pub dedupe_key: Option<&'a str>,
}

/// [`publish`] inside the caller's transaction, so the event is committed with (and only
/// with) the change it announces; the topic's lock is held until that commit.
pub async fn publish_within(
    conn: &mut AsyncPgConnection,
    topic: &str,
    kind: &str,
    payload: &serde_json::Value,
    dedupe_key: Option<&str>,
) -> DbResult<Option<i64>> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(7001, hashtext($1))")
        .bind::<Text, _>(topic)
        .execute(&mut *conn)
        .await?;
    let rows: Vec<InsertedId> = diesel::sql_query(
        "WITH ins AS ( \
           INSERT INTO events (topic, type, payload, dedupe_key) VALUES ($1, $2, $3, $4) \
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, topic) \
         SELECT id, pg_notify('callaudit_events', topic) FROM ins",
    )
    .bind::<Text, _>(topic)
    .bind::<Text, _>(kind)
    .bind::<Jsonb, _>(payload)
    .bind::<Nullable<Text>, _>(dedupe_key)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(|r| r.id))
}

/// Events of `topic` with id > `after_id`, oldest first, at most `limit`.
pub async fn since(
    conn: &mut AsyncPgConnection,
    topic: &str,
    after_id: i64,
    limit: i64,
) -> DbResult<Vec<Event>> {
    Ok(events::table
        .filter(events::topic.eq(topic))
        .filter(events::id.gt(after_id))
        .order(events::id.asc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
        .await?)
}

/// How many events of `topic` up to id `upto` (included) have each of the types `kinds`
/// (types absent from the topic are left out).
pub async fn count_kinds_upto(
    conn: &mut AsyncPgConnection,
    topic: &str,
    upto: i64,
    kinds: &[&str],
) -> DbResult<Vec<(String, i64)>> {
    Ok(events::table
        .filter(events::topic.eq(topic))
        .filter(events::id.le(upto))
        .filter(events::type_.eq_any(kinds))
        .group_by(events::type_)
        .select((events::type_, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}

/// Opens a dedicated connection listening on [`CHANNEL`] and forwards each notified topic
/// to `on_topic` until the connection fails (the caller reconnects).
pub async fn listen(database_url: &str, mut on_topic: impl FnMut(String) + Send) -> DbResult<()> {
    let mut conn = crate::tls::establish(database_url).await?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let mut stream = std::pin::pin!(conn.notifications_stream());
    while let Some(n) = stream.next().await {
        let n = n.map_err(DbError::Query)?;
        on_topic(n.payload);
    }
    Err(DbError::Pool("notification stream ended".into()))
}
