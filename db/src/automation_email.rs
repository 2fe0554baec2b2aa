//! The `automation_email_deliveries` table: the e-mail summary of an automation run,
//! one row per run whose schedule names addresses, with its attempts and outcome.

use crate::DbResult;
use crate::schema::automation_email_deliveries as emails;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A run's e-mail delivery.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = emails)]
pub struct EmailDeliveryRow {
    /// Who it was addressed to.
    pub recipients: Vec<String>,
    /// `pending`, `sent`, `failed` (its last attempt) or `skipped` (SMTP not configured).
    pub status: String,
    /// Attempts made (0 when skipped).
    pub attempts: i32,
    /// The server's answer to the message, when sent.
    pub smtp_response: Option<String>,
    /// Why the last attempt failed, or why it was skipped.
    pub error: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An attempt's outcome, as recorded.
#[derive(Debug, Clone)]
pub struct EmailAttempt<'a> {
    /// The run.
    pub run_id: Uuid,
    /// Its recipients.
    pub recipients: &'a [String],
    /// `sent`, `failed` or `skipped`.
    pub status: &'a str,
    /// Attempts so far.
    pub attempts: i32,
    /// The server's answer.
    pub smtp_response: Option<&'a str>,
    /// Why it failed or was skipped.
    pub error: Option<&'a str>,
}

/// Records `a` (one row per run, updated by each attempt).
pub async fn record(conn: &mut AsyncPgConnection, a: &EmailAttempt<'_>) -> DbResult<()> {
    diesel::insert_into(emails::table)
        .values((
            emails::run_id.eq(a.run_id),
            emails::recipients.eq(a.recipients),
            emails::status.eq(a.status),
            emails::attempts.eq(a.attempts),
            emails::smtp_response.eq(a.smtp_response),
            emails::error.eq(a.error),
        ))
        .on_conflict(emails::run_id)
        .do_update()
        .set((
            emails::recipients.eq(a.recipients),
            emails::status.eq(a.status),
            emails::attempts.eq(a.attempts),
            emails::smtp_response.eq(a.smtp_response),
            emails::error.eq(a.error),
            emails::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The e-mail delivery of `run_id`, if any.
pub async fn of_run(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
) -> DbResult<Option<EmailDeliveryRow>> {
    Ok(emails::table
        .filter(emails::run_id.eq(run_id))
        .select(EmailDeliveryRow::as_select())
        .first(conn)
        .await
        .optional()?)
}
