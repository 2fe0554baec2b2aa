//! The `audit_batches` and `audit_batch_items` tables: a batch audit's explicit state and
//! its fiches in request order, and the audits it creates (`audits.batch_id`).
//!
//! Every change of a batch's counts runs in one transaction holding the batch's row lock,
//! and publishes the event announcing it in that same transaction: `batch.progress`
//! events therefore commit in the order of the counts they carry (they only rise), and a
//! count never moves without its event, nor an event without its count. Each change is
//! idempotent, keyed by the item's status: a retried activity finds the item already
//! moved and changes nothing.

use crate::enums::{Named, NamedOpt};
use crate::schema::{audit_batch_items, audit_batches, audits};
use crate::{DbError, DbResult, events};
use callaudit_domain::analysis::Niveau;
use callaudit_domain::audit_config::AuditConfigSpec;
use callaudit_domain::batch::{BatchCounts, BatchEvent, BatchItemStatus, BatchStatus};
use callaudit_domain::events::{AuditEvent, DomainEvent};
use callaudit_domain::status::AuditStatus;
use callaudit_domain::workflow_io::ids;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    ExpressionMethods, JoinOnDsl, NullableExpressionMethods, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sha2::Digest;
use uuid::Uuid;

mod progress;
pub use progress::*;

/// A batch (without its configuration snapshot).
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, serde::Serialize)]
#[diesel(table_name = audit_batches)]
pub struct BatchRow {
    /// Id.
    pub id: Uuid,
    /// Configuration every audit applies (as it was when the batch was created).
    pub audit_config_id: Uuid,
    /// Where it stands.
    #[diesel(deserialize_as = Named<BatchStatus>)]
    pub status: BatchStatus,
    /// Workflow id (`batch:{id}`).
    pub workflow_id: String,
    /// Transcript-tools mode of every audit.
    pub use_rlm: bool,
    /// Items.
    pub total: i32,
    /// Items whose audit completed.
    pub completed: i32,
    /// Items whose audit failed.
    pub failed: i32,
    /// Items whose audit runs.
    pub running: i32,
    /// Items never started (or whose audit was cancelled).
    pub cancelled: i32,
    /// Audits at once.
    pub window_size: i32,
    /// The date-range selection it was made from (None: a list of fiche ids).
    pub selection: Option<serde_json::Value>,
    /// The configuration's last update when the batch was created (its version).
    pub config_version: Option<DateTime<Utc>>,
    /// Who asked to cancel.
    pub cancel_requested_by: Option<String>,
    /// When.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// Workflow runs so far (continue-as-new).
    pub runs: i32,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When its workflow began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl BatchRow {
    /// Its counts (pending is what the others leave of the total).
    pub fn counts(&self) -> BatchCounts {
        let total = count(self.total);
        let (running, completed, failed, cancelled) = (
            count(self.running),
            count(self.completed),
            count(self.failed),
            count(self.cancelled),
        );
        BatchCounts {
            total,
            pending: total.saturating_sub(running + completed + failed + cancelled),
            running,
            completed,
            failed,
            cancelled,
        }
    }
}

/// A batch to create (status `pending`).
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = audit_batches)]
pub struct NewBatch<'a> {
    /// Id.
    pub id: Uuid,
    /// Configuration.
    pub audit_config_id: Uuid,
    /// Workflow id.
    pub workflow_id: &'a str,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Items.
    pub total: i32,
    /// Audits at once.
    pub window_size: i32,
    /// The selection it was made from.
    pub selection: Option<&'a serde_json::Value>,
    /// The configuration as it is now (`AuditConfigSpec` as JSON), which every audit of
    /// the batch applies.
    pub config_snapshot: &'a serde_json::Value,
    /// The configuration's last update.
    pub config_version: Option<DateTime<Utc>>,
    /// Who asked.
    pub created_by: Option<Uuid>,
    /// The client's `Idempotency-Key`, unique per user.
    pub idempotency_key: Option<&'a str>,
    /// What was asked under that key.
    pub request_fingerprint: Option<&'a str>,
}

#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = audit_batch_items)]
struct NewItem<'a> {
    batch_id: Uuid,
    fiche_id: &'a str,
    position: i32,
}

/// A batch created earlier under an idempotency key.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_batches)]
pub struct KeyedBatch {
    /// Id.
    pub id: Uuid,
    /// What was asked with the key.
    pub request_fingerprint: Option<String>,
}

/// The fingerprint of a request (SHA-256, hex) compared when its key comes again.
pub fn fingerprint(canonical: &str) -> String {
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// Items inserted per statement.
const ITEMS_PER_INSERT: usize = 1000;

/// Creates a pending batch with its items (positions 1, 2, … in the order of
/// `fiche_ids`, which holds each fiche once) in one transaction. Returns false (and
/// stores nothing) when the user's idempotency key is already taken.
pub async fn create(
    conn: &mut AsyncPgConnection,
    batch: &NewBatch<'_>,
    fiche_ids: &[String],
) -> DbResult<bool> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let inserted = diesel::insert_into(audit_batches::table)
            .values(batch)
            .on_conflict_do_nothing()
            .execute(&mut *conn)
            .await?;
        if inserted == 0 {
            return Ok(false);
        }
        for (chunk_index, chunk) in fiche_ids.chunks(ITEMS_PER_INSERT).enumerate() {
            let first = chunk_index * ITEMS_PER_INSERT + 1;
            let rows: Vec<NewItem<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(i, f)| NewItem {
                    batch_id: batch.id,
                    fiche_id: f,
                    position: i32::try_from(first + i).unwrap_or(i32::MAX),
                })
                .collect();
            diesel::insert_into(audit_batch_items::table)
                .values(&rows)
                .execute(&mut *conn)
                .await?;
        }
        Ok(true)
    })
    .await
}

/// The batch `user` created under `key`, if any.
pub async fn by_idempotency_key(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    key: &str,
) -> DbResult<Option<KeyedBatch>> {
    Ok(audit_batches::table
        .filter(audit_batches::created_by.eq(user))
        .filter(audit_batches::idempotency_key.eq(key))
        .select(KeyedBatch::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Loads a batch.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<BatchRow>> {
    Ok(audit_batches::table
        .find(id)
        .select(BatchRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A page of batches and the total count.
#[derive(Debug, Clone)]
pub struct BatchPage {
    /// The page, newest first.
    pub rows: Vec<BatchRow>,
    /// Batches in all.
    pub total: i64,
}

/// Batches, newest first, paged.
pub async fn list(conn: &mut AsyncPgConnection, limit: i64, offset: i64) -> DbResult<BatchPage> {
    let rows = audit_batches::table
        .select(BatchRow::as_select())
        .order((audit_batches::created_at.desc(), audit_batches::id))
        .limit(limit)
        .offset(offset)
        .load(&mut *conn)
        .await?;
    let total = audit_batches::table.count().get_result(conn).await?;
    Ok(BatchPage { rows, total })
}

/// One item of a batch, with its audit's outcome once it has one.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct BatchItemRow {
    /// Position (1-based, request order).
    pub position: i32,
    /// Fiche.
    pub fiche_id: String,
    /// Where it stands.
    #[diesel(deserialize_as = Named<BatchItemStatus>)]
    pub status: BatchItemStatus,
    /// Its audit, once started.
    pub audit_id: Option<Uuid>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its audit's status.
    #[diesel(deserialize_as = NamedOpt<AuditStatus>)]
    pub audit_status: Option<AuditStatus>,
    /// Its audit's score.
    pub score: Option<f64>,
    /// Its audit's niveau.
    #[diesel(deserialize_as = NamedOpt<Niveau>)]
    pub niveau: Option<Niveau>,
}

/// Items of a batch by position, paged, with their audits' outcomes.
pub async fn items(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    limit: i64,
    offset: i64,
) -> DbResult<Vec<BatchItemRow>> {
    Ok(audit_batch_items::table
        .left_join(audits::table.on(audits::id.nullable().eq(audit_batch_items::audit_id)))
        .filter(audit_batch_items::batch_id.eq(batch_id))
        .order(audit_batch_items::position.asc())
        .limit(limit)
        .offset(offset)
        .select((
            audit_batch_items::position,
            audit_batch_items::fiche_id,
            audit_batch_items::status,
            audit_batch_items::audit_id,
            audit_batch_items::error,
            audit_batch_items::started_at,
            audit_batch_items::completed_at,
            audits::status.nullable(),
            audits::score.nullable(),
            audits::niveau.nullable(),
        ))
        .load(conn)
        .await?)
}

/// Removes a pending batch whose workflow could not be started (its items go with it).
pub async fn delete_pending(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::delete(
        audit_batches::table
            .find(id)
            .filter(audit_batches::status.eq(BatchStatus::Pending.as_str())),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Statuses a batch has not ended in.
const OPEN: [&str; 2] = ["pending", "running"];

/// Records that `by` asked to cancel a batch that has not ended (the first request
/// stands); false when it has ended.
pub async fn request_cancel(conn: &mut AsyncPgConnection, id: Uuid, by: &str) -> DbResult<bool> {
    let now = Utc::now();
    let open = diesel::update(
        audit_batches::table
            .find(id)
            .filter(audit_batches::status.eq_any(OPEN)),
    )
    .set(audit_batches::updated_at.eq(now))
    .execute(&mut *conn)
    .await?;
    if open == 0 {
        return Ok(false);
    }
    diesel::update(
        audit_batches::table
            .find(id)
            .filter(audit_batches::cancel_requested_by.is_null()),
    )
    .set((
        audit_batches::cancel_requested_by.eq(by),
        audit_batches::cancel_requested_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(true)
}

/// What a date-range selection asks for.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// First sale day (Europe/Paris, the CRM's time zone), included.
    pub from: NaiveDate,
    /// Last sale day, included.
    pub to: NaiveDate,
    /// Only fiches of these groupes (None: any).
    pub groupes: Option<&'a [String]>,
    /// Only fiches without a pending, running or completed audit with this configuration.
    pub only_unaudited_with: Option<Uuid>,
    /// Only fiches with at least one recording.
    pub only_with_recordings: bool,
}

#[derive(diesel::QueryableByName)]
struct SelectedFiche {
    #[diesel(sql_type = diesel::sql_types::Text)]
    fiche_id: String,
}

/// The cached fiches a selection matches, by sale time, at most `limit`.
pub async fn select_fiches(
    conn: &mut AsyncPgConnection,
    s: &Selection<'_>,
    limit: i64,
) -> DbResult<Vec<String>> {
    use diesel::sql_types::{Array, BigInt, Bool, Date, Nullable, Text};
    let rows: Vec<SelectedFiche> = diesel::sql_query(
        "SELECT f.fiche_id FROM fiches f \
         WHERE f.date_vente IS NOT NULL \
           AND (f.date_vente AT TIME ZONE 'Europe/Paris')::date BETWEEN $1 AND $2 \
           AND ($3::text[] IS NULL OR f.groupe = ANY($3)) \
           AND (NOT $4 OR f.recordings_count > 0) \
           AND ($5::uuid IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM audits a WHERE a.fiche_id = f.fiche_id \
                   AND a.audit_config_id = $5 \
                   AND a.status IN ('pending', 'running', 'completed'))) \
         ORDER BY f.date_vente, f.fiche_id LIMIT $6",
    )
    .bind::<Date, _>(s.from)
    .bind::<Date, _>(s.to)
    .bind::<Nullable<Array<Text>>, _>(s.groupes)
    .bind::<Bool, _>(s.only_with_recordings)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(s.only_unaudited_with)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.fiche_id).collect())
}

/// Batches not ended whose row has not changed since `before`, oldest first, at most
/// `limit` (candidates for reconciliation with their workflows).
pub async fn unsettled(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<BatchRow>> {
    Ok(audit_batches::table
        .filter(audit_batches::status.eq_any(OPEN))
        .filter(audit_batches::updated_at.lt(before))
        .order(audit_batches::updated_at.asc())
        .limit(limit)
        .select(BatchRow::as_select())
        .load(conn)
        .await?)
}
