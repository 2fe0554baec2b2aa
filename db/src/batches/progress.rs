//! The count-changing transactions of a batch: each holds the batch's row lock and
//! publishes the event announcing its change in the same transaction (see the parent
//! module), from `batch.started` through every item started and finished to the end.

use super::*;
/// The batch's row, locked until the end of the transaction.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<BatchRow> {
    audit_batches::table
        .find(id)
        .select(BatchRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| DbError::Query(diesel::result::Error::NotFound))
}

async fn publish(conn: &mut AsyncPgConnection, event: &impl DomainEvent) -> DbResult<()> {
    events::publish(
        conn,
        &event.topic(),
        event.kind(),
        &event.payload(),
        Some(&event.dedupe_key()),
    )
    .await?;
    Ok(())
}

/// Marks a pending batch running and announces `batch.started` (once); returns it.
pub async fn start(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<BatchRow> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let row = lock(conn, id).await?;
        if row.status != BatchStatus::Pending {
            return Ok(row);
        }
        let now = Utc::now();
        diesel::update(audit_batches::table.find(id))
            .set((
                audit_batches::status.eq(BatchStatus::Running.as_str()),
                audit_batches::started_at.eq(now),
                audit_batches::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
        publish(
            conn,
            &BatchEvent::Started {
                batch_id: id.to_string(),
                total: count(row.total),
                window: count(row.window_size),
            },
        )
        .await?;
        Ok(BatchRow {
            status: BatchStatus::Running,
            started_at: Some(now),
            ..row
        })
    })
    .await
}

/// An item to audit.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_batch_items)]
pub struct PendingItem {
    /// Position.
    pub position: i32,
    /// Fiche.
    pub fiche_id: String,
}

/// Pending items of a batch after position `after`, by position, at most `limit`; and
/// records that workflow run `run` (0-based) reached the batch.
pub async fn pending_after(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    after: i32,
    limit: i64,
    run: i32,
) -> DbResult<Vec<PendingItem>> {
    diesel::update(
        audit_batches::table
            .find(id)
            .filter(audit_batches::runs.lt(run + 1)),
    )
    .set(audit_batches::runs.eq(run + 1))
    .execute(&mut *conn)
    .await?;
    Ok(audit_batch_items::table
        .filter(audit_batch_items::batch_id.eq(id))
        .filter(audit_batch_items::position.gt(after))
        .filter(audit_batch_items::status.eq(BatchItemStatus::Pending.as_str()))
        .order(audit_batch_items::position.asc())
        .limit(limit)
        .select(PendingItem::as_select())
        .load(conn)
        .await?)
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_batch_items)]
struct LockedItem {
    fiche_id: String,
    #[diesel(deserialize_as = Named<BatchItemStatus>)]
    status: BatchItemStatus,
    audit_id: Option<Uuid>,
}

async fn lock_item(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    position: i32,
) -> DbResult<LockedItem> {
    audit_batch_items::table
        .filter(audit_batch_items::batch_id.eq(batch_id))
        .filter(audit_batch_items::position.eq(position))
        .select(LockedItem::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| DbError::Query(diesel::result::Error::NotFound))
}

/// An item's audit.
#[derive(Debug, Clone)]
pub struct StartedItem {
    /// The audit row.
    pub audit_id: Uuid,
    /// Its fiche.
    pub fiche_id: String,
    /// True when it existed already (nothing created).
    pub reused: bool,
}

/// Why an item could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartItemError {
    /// The batch has no usable configuration snapshot (no retry helps).
    #[error("the batch's configuration snapshot is missing or unreadable: {0}")]
    Snapshot(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for StartItemError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Starts item `position`: creates its pending audit (applying the batch's configuration
/// snapshot, `batch_id` set; at most one per batch and fiche, by a unique index) and marks
/// the item running, under the batch's lock. An item that has its audit already returns
/// it unchanged (`reused`): a retry never creates a second audit.
pub async fn start_item(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    position: i32,
) -> Result<StartedItem, StartItemError> {
    conn.transaction::<_, StartItemError, _>(async |conn| {
        let batch = lock(conn, batch_id).await?;
        let item = lock_item(conn, batch_id, position).await?;
        if let Some(audit_id) = item.audit_id {
            return Ok(StartedItem {
                audit_id,
                fiche_id: item.fiche_id,
                reused: true,
            });
        }
        let snapshot: Option<serde_json::Value> = audit_batches::table
            .find(batch_id)
            .select(audit_batches::config_snapshot)
            .first(&mut *conn)
            .await?;
        let snapshot = snapshot.ok_or_else(|| StartItemError::Snapshot("none stored".into()))?;
        let spec: AuditConfigSpec = serde_json::from_value(snapshot.clone())
            .map_err(|e| StartItemError::Snapshot(e.to_string()))?;
        crate::fiches::ensure_placeholder(conn, &item.fiche_id).await?;
        let audit_id = Uuid::new_v4();
        let workflow_id = ids::audit(&audit_id.to_string());
        diesel::insert_into(audits::table)
            .values((
                audits::id.eq(audit_id),
                audits::fiche_id.eq(&item.fiche_id),
                audits::audit_config_id.eq(batch.audit_config_id),
                audits::use_rlm.eq(batch.use_rlm),
                audits::workflow_id.eq(&workflow_id),
                audits::steps_total.eq(i32::try_from(spec.steps.len()).unwrap_or(i32::MAX)),
                audits::batch_id.eq(batch_id),
                audits::requested_by.eq(batch.created_by),
                audits::config_snapshot.eq(&snapshot),
                audits::config_version.eq(batch.config_version),
            ))
            .on_conflict_do_nothing()
            .execute(&mut *conn)
            .await?;
        // The one audit of this batch and fiche (created now, or by an attempt whose
        // item update was lost).
        let audit_id: Uuid = audits::table
            .filter(audits::batch_id.eq(batch_id))
            .filter(audits::fiche_id.eq(&item.fiche_id))
            .select(audits::id)
            .first(&mut *conn)
            .await?;
        let now = Utc::now();
        diesel::update(
            audit_batch_items::table
                .filter(audit_batch_items::batch_id.eq(batch_id))
                .filter(audit_batch_items::position.eq(position)),
        )
        .set((
            audit_batch_items::audit_id.eq(audit_id),
            audit_batch_items::status.eq(BatchItemStatus::Running.as_str()),
            audit_batch_items::started_at.eq(now),
        ))
        .execute(&mut *conn)
        .await?;
        diesel::update(audit_batches::table.find(batch_id))
            .set((
                audit_batches::running.eq(audit_batches::running + 1),
                audit_batches::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
        Ok(StartedItem {
            audit_id,
            fiche_id: item.fiche_id,
            reused: false,
        })
    })
    .await
}

/// How an item ended.
#[derive(Debug, Clone)]
pub struct FinishedItem {
    /// Completed, failed or cancelled.
    pub status: BatchItemStatus,
    /// The batch's counts after it.
    pub counts: BatchCounts,
}

/// Records how item `position` ended, from its audit's row: completed, cancelled, or
/// failed — an audit still open when its workflow failed (terminated, say) is recorded
/// failed here with `error`, and `audit.failed` announced. Moves the batch's counts and
/// announces `batch.progress` with them, all under the batch's lock. An item that has
/// ended already changes nothing.
pub async fn finish_item(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    position: i32,
    audit_id: Uuid,
    error: Option<&str>,
) -> DbResult<FinishedItem> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let batch = lock(conn, batch_id).await?;
        let item = lock_item(conn, batch_id, position).await?;
        if item.status.is_terminal() {
            return Ok(FinishedItem {
                status: item.status,
                counts: batch.counts(),
            });
        }
        let audit = crate::audits::get(conn, audit_id)
            .await?
            .ok_or_else(|| DbError::Query(diesel::result::Error::NotFound))?;
        let (status, reason) = match audit.status {
            AuditStatus::Completed => (BatchItemStatus::Completed, None),
            AuditStatus::Cancelled => (BatchItemStatus::Cancelled, audit.error.clone()),
            AuditStatus::Failed => (
                BatchItemStatus::Failed,
                audit.error.clone().or(error.map(String::from)),
            ),
            AuditStatus::Pending | AuditStatus::Running => {
                let reason = error.unwrap_or("the audit's workflow ended without an outcome");
                if crate::audits::fail(conn, audit_id, reason).await? {
                    publish(
                        conn,
                        &AuditEvent::Failed {
                            audit_id: audit_id.to_string(),
                            error: reason.to_string(),
                        },
                    )
                    .await?;
                }
                (BatchItemStatus::Failed, Some(reason.to_string()))
            }
        };
        let now = Utc::now();
        diesel::update(
            audit_batch_items::table
                .filter(audit_batch_items::batch_id.eq(batch_id))
                .filter(audit_batch_items::position.eq(position)),
        )
        .set((
            audit_batch_items::status.eq(status.as_str()),
            audit_batch_items::error.eq(&reason),
            audit_batch_items::completed_at.eq(now),
        ))
        .execute(&mut *conn)
        .await?;
        let one = |s: BatchItemStatus| i32::from(status == s);
        diesel::update(audit_batches::table.find(batch_id))
            .set((
                audit_batches::running.eq(audit_batches::running - 1),
                audit_batches::completed
                    .eq(audit_batches::completed + one(BatchItemStatus::Completed)),
                audit_batches::failed.eq(audit_batches::failed + one(BatchItemStatus::Failed)),
                audit_batches::cancelled
                    .eq(audit_batches::cancelled + one(BatchItemStatus::Cancelled)),
                audit_batches::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
        let counts = lock(conn, batch_id).await?.counts();
        publish(
            conn,
            &BatchEvent::Progress {
                batch_id: batch_id.to_string(),
                position,
                fiche_id: item.fiche_id,
                audit_id: audit_id.to_string(),
                item_status: status,
                counts,
            },
        )
        .await?;
        Ok(FinishedItem { status, counts })
    })
    .await
}

/// How a batch ends.
#[derive(Debug, Clone)]
pub enum BatchEnd<'a> {
    /// Every item ran: completed, or partial when some did not complete.
    Ran,
    /// Cancelled on request by this user.
    Cancelled(&'a str),
    /// The batch itself failed, for this reason.
    Failed(&'a str),
}

/// Ends a batch that has not ended: its pending items are cancelled (with the reason),
/// its status and counts recorded and its terminal event (`batch.completed`,
/// `batch.cancelled` or `batch.failed`) announced, under its lock. Returns the final
/// counts, and whether this call ended it (false: it had ended already, unchanged).
pub async fn end(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    how: BatchEnd<'_>,
) -> DbResult<(BatchCounts, bool)> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let batch = lock(conn, batch_id).await?;
        if batch.status.is_terminal() {
            return Ok((batch.counts(), false));
        }
        let reason = match &how {
            BatchEnd::Ran => "the batch ended before this item started".to_string(),
            BatchEnd::Cancelled(by) => format!("batch cancelled by {by} before it started"),
            BatchEnd::Failed(e) => format!("the batch failed before it started: {e}"),
        };
        let now = Utc::now();
        let never_started = diesel::update(
            audit_batch_items::table
                .filter(audit_batch_items::batch_id.eq(batch_id))
                .filter(audit_batch_items::status.eq(BatchItemStatus::Pending.as_str())),
        )
        .set((
            audit_batch_items::status.eq(BatchItemStatus::Cancelled.as_str()),
            audit_batch_items::error.eq(&reason),
            audit_batch_items::completed_at.eq(now),
        ))
        .execute(&mut *conn)
        .await?;
        let mut counts = batch.counts();
        counts.cancelled += u32::try_from(never_started).unwrap_or(0);
        counts.pending = counts
            .pending
            .saturating_sub(u32::try_from(never_started).unwrap_or(0));
        let (status, error) = match how {
            BatchEnd::Ran => (counts.end_status(), None),
            BatchEnd::Cancelled(_) => (BatchStatus::Cancelled, None),
            BatchEnd::Failed(e) => (BatchStatus::Failed, Some(e.to_string())),
        };
        diesel::update(audit_batches::table.find(batch_id))
            .set((
                audit_batches::status.eq(status.as_str()),
                audit_batches::cancelled.eq(i32::try_from(counts.cancelled).unwrap_or(i32::MAX)),
                audit_batches::error.eq(&error),
                audit_batches::completed_at.eq(now),
                audit_batches::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
        let id = batch_id.to_string();
        let event = match (&how, error) {
            (BatchEnd::Cancelled(by), _) => BatchEvent::Cancelled {
                batch_id: id,
                by: (*by).to_string(),
                counts,
            },
            (_, Some(error)) => BatchEvent::Failed {
                batch_id: id,
                error,
                counts,
            },
            _ => BatchEvent::Completed {
                batch_id: id,
                status,
                counts,
            },
        };
        publish(conn, &event).await?;
        Ok((counts, true))
    })
    .await
}
