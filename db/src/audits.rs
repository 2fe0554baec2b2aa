//! The `audits` table: one row per audit, created by the api before its workflow starts
//! and moved through its statuses by the workflow's activities.

use crate::DbResult;
use crate::enums::{Named, NamedOpt};
use crate::fiches;
use crate::schema::audits;
use callaudit_domain::analysis::Niveau;
use callaudit_domain::scoring::AuditSummary;
use callaudit_domain::status::AuditStatus;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// An audit row (the fields the pipeline needs).
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, serde::Serialize)]
#[diesel(table_name = audits)]
pub struct AuditRow {
    /// Id.
    pub id: Uuid,
    /// Fiche.
    pub fiche_id: String,
    /// Configuration.
    pub audit_config_id: Uuid,
    /// Where it stands.
    #[diesel(deserialize_as = Named<AuditStatus>)]
    pub status: AuditStatus,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Workflow id.
    pub workflow_id: String,
    /// Score.
    pub score: Option<f64>,
    /// Niveau.
    #[diesel(deserialize_as = NamedOpt<Niveau>)]
    pub niveau: Option<Niveau>,
    /// Critical failure.
    pub critical: Option<bool>,
    /// Steps of the configuration.
    pub steps_total: i32,
    /// Steps stored.
    pub steps_done: i32,
    /// Failure reason.
    pub error: Option<String>,
    /// Start time.
    pub started_at: Option<DateTime<Utc>>,
    /// End time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The configuration as it was when the audit started (`AuditConfigSpec` as JSON;
    /// None for audits created before snapshots existed).
    pub config_snapshot: Option<serde_json::Value>,
    /// The configuration's last update when the audit started (its version).
    pub config_version: Option<DateTime<Utc>>,
}

/// An audit to create (status `pending`).
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = audits)]
pub struct NewAudit<'a> {
    /// Id.
    pub id: Uuid,
    /// Fiche.
    pub fiche_id: &'a str,
    /// Configuration.
    pub audit_config_id: Uuid,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Workflow id.
    pub workflow_id: &'a str,
    /// Steps of the configuration.
    pub steps_total: i32,
    /// Who asked.
    pub requested_by: Option<Uuid>,
    /// The client's `Idempotency-Key`, unique per user.
    pub idempotency_key: Option<&'a str>,
    /// What was asked under that key (compared when the key comes again).
    pub request_fingerprint: Option<&'a str>,
    /// The configuration as it is now, which the audit will apply.
    pub config_snapshot: Option<&'a serde_json::Value>,
    /// The configuration's last update.
    pub config_version: Option<DateTime<Utc>>,
}

/// An audit created earlier under an idempotency key.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audits)]
pub struct KeyedAudit {
    /// Id.
    pub id: Uuid,
    /// Workflow id.
    pub workflow_id: String,
    /// Where it stands.
    #[diesel(deserialize_as = Named<AuditStatus>)]
    pub status: AuditStatus,
    /// What was asked with the key.
    pub request_fingerprint: Option<String>,
}

/// A page of audits and the total count.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The page, newest first.
    pub rows: Vec<AuditRow>,
    /// Audits matching the filter.
    pub total: i64,
}

/// Creates a pending audit; a placeholder fiche row is created when the CRM has not been
/// asked yet. The configuration must exist. Returns false (and stores nothing) when the
/// audit's idempotency key is already taken by the same user.
pub async fn create(conn: &mut AsyncPgConnection, audit: &NewAudit<'_>) -> DbResult<bool> {
    fiches::ensure_placeholder(conn, audit.fiche_id).await?;
    let inserted = diesel::insert_into(audits::table)
        .values(audit)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The audit `user` created under `key`, if any.
pub async fn by_idempotency_key(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    key: &str,
) -> DbResult<Option<KeyedAudit>> {
    Ok(audits::table
        .filter(audits::requested_by.eq(user))
        .filter(audits::idempotency_key.eq(key))
        .select(KeyedAudit::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Loads an audit.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<AuditRow>> {
    Ok(audits::table
        .find(id)
        .select(AuditRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Audits (of a fiche, if given), newest first, paged.
pub async fn list(
    conn: &mut AsyncPgConnection,
    fiche_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> DbResult<AuditPage> {
    let mut q = audits::table
        .select(AuditRow::as_select())
        .order(audits::created_at.desc())
        .into_boxed();
    let mut c = audits::table.count().into_boxed();
    if let Some(f) = fiche_id {
        q = q.filter(audits::fiche_id.eq(f.to_string()));
        c = c.filter(audits::fiche_id.eq(f.to_string()));
    }
    let rows = q.limit(limit).offset(offset).load(&mut *conn).await?;
    let total = c.get_result(conn).await?;
    Ok(AuditPage { rows, total })
}

/// Audits not ended whose row has not changed since `before`, oldest first, at most
/// `limit` (candidates for reconciliation with their workflows).
pub async fn unsettled(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<AuditRow>> {
    Ok(audits::table
        .filter(
            audits::status.eq_any([AuditStatus::Pending.as_str(), AuditStatus::Running.as_str()]),
        )
        .filter(audits::updated_at.lt(before))
        .order(audits::updated_at.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
        .await?)
}

/// Marks an audit running (idempotent).
pub async fn mark_running(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    let now = Utc::now();
    diesel::update(
        audits::table
            .find(id)
            .filter(audits::status.eq(AuditStatus::Pending.as_str())),
    )
    .set((
        audits::status.eq(AuditStatus::Running.as_str()),
        audits::started_at.eq(now),
        audits::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the summary and completes the audit (unless it was cancelled meanwhile).
pub async fn complete(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    summary: &AuditSummary,
    steps_done: i32,
) -> DbResult<()> {
    let now = Utc::now();
    diesel::update(
        audits::table
            .find(id)
            .filter(audits::status.ne(AuditStatus::Cancelled.as_str())),
    )
    .set((
        audits::status.eq(AuditStatus::Completed.as_str()),
        audits::score.eq(summary.score),
        audits::niveau.eq(summary.niveau.as_str()),
        audits::critical.eq(summary.critical),
        audits::steps_done.eq(steps_done),
        audits::error.eq(None::<String>),
        audits::completed_at.eq(now),
        audits::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Statuses an audit leaves only for another end: completion or cancellation is final.
const FINAL: [&str; 2] = ["completed", "cancelled"];

/// Records a failure (unless already completed or cancelled); true when this call
/// recorded it.
pub async fn fail(conn: &mut AsyncPgConnection, id: Uuid, error: &str) -> DbResult<bool> {
    let now = Utc::now();
    let n = diesel::update(audits::table.find(id).filter(audits::status.ne_all(FINAL)))
        .set((
            audits::status.eq(AuditStatus::Failed.as_str()),
            audits::error.eq(error),
            audits::completed_at.eq(now),
            audits::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Records a cancellation of an audit that has not ended; true when this call did.
pub async fn cancel(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> DbResult<bool> {
    let now = Utc::now();
    let n = diesel::update(audits::table.find(id).filter(
        audits::status.eq_any([AuditStatus::Pending.as_str(), AuditStatus::Running.as_str()]),
    ))
    .set((
        audits::status.eq(AuditStatus::Cancelled.as_str()),
        audits::error.eq(reason),
        audits::completed_at.eq(now),
        audits::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Removes an audit whose workflow could not be started (nothing else references it yet).
pub async fn delete_pending(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::delete(
        audits::table
            .find(id)
            .filter(audits::status.eq(AuditStatus::Pending.as_str())),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Why the configuration an audit applies cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AuditConfigError {
    /// The snapshot stored on the audit does not parse.
    #[error("the audit's configuration snapshot is unreadable: {0}")]
    Unreadable(String),
    /// No snapshot (an audit from before snapshots) and the configuration is gone.
    #[error("the audit has no configuration snapshot and its configuration was deleted")]
    Deleted,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::DbError),
}

/// The configuration `audit` applies: the snapshot taken when it started (so editing the
/// configuration meanwhile changes nothing), or, for audits created before snapshots
/// existed, the live configuration. Audits, reruns and chat read it here.
pub async fn config_of(
    conn: &mut AsyncPgConnection,
    audit: &AuditRow,
) -> Result<callaudit_domain::audit_config::AuditConfigSpec, AuditConfigError> {
    match &audit.config_snapshot {
        Some(snapshot) => serde_json::from_value(snapshot.clone())
            .map_err(|e| AuditConfigError::Unreadable(e.to_string())),
        None => crate::audit_configs::get(conn, audit.audit_config_id)
            .await?
            .map(|c| c.spec)
            .ok_or(AuditConfigError::Deleted),
    }
}
