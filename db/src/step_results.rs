//! The `audit_step_results` table: one row per (audit, step position), inserted once
//! (retries and replays never create a second row).

use crate::DbResult;
use crate::enums::Named;
use crate::schema::{audit_step_results, audits};
use callaudit_domain::analysis::Conformite;
use chrono::Utc;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A stored step result.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, serde::Serialize)]
#[diesel(table_name = audit_step_results)]
pub struct StepResultRow {
    /// Position.
    pub position: i32,
    /// Name.
    pub step_name: String,
    /// Weight.
    pub weight: f64,
    /// Critical.
    pub critical: bool,
    /// Score.
    pub score: f64,
    /// Verdict.
    #[diesel(deserialize_as = Named<Conformite>)]
    pub conforme: Conformite,
    /// Gated analysis.
    pub raw_result: serde_json::Value,
    /// Model.
    pub model: Option<String>,
    /// Tokens in.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
}

/// A step result to store.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = audit_step_results)]
pub struct NewStepResult<'a> {
    /// Audit.
    pub audit_id: Uuid,
    /// Position.
    pub position: i32,
    /// Name.
    pub step_name: &'a str,
    /// Weight.
    pub weight: f64,
    /// Critical.
    pub critical: bool,
    /// Score.
    pub score: f64,
    /// Verdict (`Conformite::as_str`).
    pub conforme: &'static str,
    /// Gated analysis.
    pub raw_result: &'a serde_json::Value,
    /// Model.
    pub model: Option<&'a str>,
    /// Tokens in.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
}

/// Inserts a step result unless one exists for (audit, position) and counts it on the
/// audit; returns whether this call inserted it.
pub async fn insert(conn: &mut AsyncPgConnection, row: &NewStepResult<'_>) -> DbResult<bool> {
    let n = diesel::insert_into(audit_step_results::table)
        .values((audit_step_results::id.eq(Uuid::new_v4()), row))
        .on_conflict((audit_step_results::audit_id, audit_step_results::position))
        .do_nothing()
        .execute(&mut *conn)
        .await?;
    if n > 0 {
        diesel::update(audits::table.find(row.audit_id))
            .set((
                audits::steps_done.eq(audits::steps_done + 1),
                audits::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
    }
    Ok(n > 0)
}

/// [`insert`] and the event announcing it in one transaction: a step is never stored
/// without its event (a retried step finds itself stored and returns, so an event
/// published apart could be lost) nor counted twice on its audit. Returns whether this
/// call inserted the step (the event is deduplicated by its key either way).
pub async fn insert_announced(
    conn: &mut AsyncPgConnection,
    row: &NewStepResult<'_>,
    event: &crate::events::NewEvent<'_>,
) -> DbResult<bool> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, crate::DbError, _>(async |conn| {
        let inserted = insert(conn, row).await?;
        crate::events::publish_within(
            conn,
            event.topic,
            event.kind,
            event.payload,
            event.dedupe_key,
        )
        .await?;
        Ok(inserted)
    })
    .await
}

/// Step results of an audit by position.
pub async fn of_audit(
    conn: &mut AsyncPgConnection,
    audit_id: Uuid,
) -> DbResult<Vec<StepResultRow>> {
    Ok(audit_step_results::table
        .filter(audit_step_results::audit_id.eq(audit_id))
        .order(audit_step_results::position.asc())
        .select(StepResultRow::as_select())
        .load(conn)
        .await?)
}

/// The score and verdict of a stored step.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_step_results)]
pub struct StoredOutcome {
    /// Score.
    pub score: f64,
    /// Verdict.
    #[diesel(deserialize_as = Named<Conformite>)]
    pub conforme: Conformite,
}

/// The score and verdict of the stored result of step `position` of an audit, if it is
/// stored (what a retried step returns, without reading the whole result).
pub async fn outcome_of(
    conn: &mut AsyncPgConnection,
    audit_id: Uuid,
    position: i32,
) -> DbResult<Option<StoredOutcome>> {
    Ok(audit_step_results::table
        .filter(audit_step_results::audit_id.eq(audit_id))
        .filter(audit_step_results::position.eq(position))
        .select(StoredOutcome::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A step of a completed audit, for reports across audits.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct ReportedStep {
    /// Audit.
    pub audit_id: Uuid,
    /// Position.
    pub position: i32,
    /// Name.
    pub step_name: String,
    /// Stored step result (points with their reviews).
    pub raw_result: serde_json::Value,
}

/// The steps of the completed audits of configuration `config_id` created in
/// `[from, to)`, at most `limit` (audits oldest first, steps by position).
pub async fn of_completed_audits_of_config(
    conn: &mut AsyncPgConnection,
    config_id: Uuid,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<ReportedStep>> {
    use callaudit_domain::status::AuditStatus;
    Ok(audit_step_results::table
        .inner_join(audits::table)
        .filter(audits::audit_config_id.eq(config_id))
        .filter(audits::status.eq(AuditStatus::Completed.as_str()))
        .filter(audits::created_at.ge(from))
        .filter(audits::created_at.lt(to))
        .order((audits::created_at.asc(), audit_step_results::position.asc()))
        .limit(limit)
        .select((
            audit_step_results::audit_id,
            audit_step_results::position,
            audit_step_results::step_name,
            audit_step_results::raw_result,
        ))
        .load(conn)
        .await?)
}
