//! Personal data at rest: erasing a fiche's (on request), purging what is older than the
//! retention limits, and the access log of who read data in clear or erased it.

use crate::schema::{
    audit_reruns, audit_step_results, audits, chat_conversations, chat_messages, fiches,
    pii_access_log, recordings, transcriptions,
};
use crate::{DbError, DbResult};
use callaudit_domain::personal_data::{Removed, erase_texts};
use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// One line of the access log.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// Who.
    pub user_id: Option<Uuid>,
    /// Who (e-mail, kept if the user goes).
    pub user_email: Option<&'a str>,
    /// `read`, `erase` or `purge`.
    pub action: &'a str,
    /// `fiche`, `audit`, `transcript`, `chat`, `retention`.
    pub subject_kind: &'a str,
    /// Its id.
    pub subject_id: &'a str,
    /// What (counts, fields).
    pub detail: serde_json::Value,
}

/// Appends to the access log.
pub async fn log_access(conn: &mut AsyncPgConnection, a: &Access<'_>) -> DbResult<()> {
    diesel::insert_into(pii_access_log::table)
        .values((
            pii_access_log::user_id.eq(a.user_id),
            pii_access_log::user_email.eq(a.user_email),
            pii_access_log::action.eq(a.action),
            pii_access_log::subject_kind.eq(a.subject_kind),
            pii_access_log::subject_id.eq(a.subject_id),
            pii_access_log::detail.eq(&a.detail),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Erases texts in the stored step results and rerun analyses of `audit_ids`; returns
/// how many rows changed.
async fn erase_audit_texts(conn: &mut AsyncPgConnection, audit_ids: &[Uuid]) -> DbResult<u64> {
    let mut changed = 0;
    let steps: Vec<(Uuid, serde_json::Value)> = audit_step_results::table
        .filter(audit_step_results::audit_id.eq_any(audit_ids))
        .select((audit_step_results::id, audit_step_results::raw_result))
        .load(&mut *conn)
        .await?;
    for (id, mut raw) in steps {
        if erase_texts(&mut raw) > 0 {
            diesel::update(audit_step_results::table.find(id))
                .set(audit_step_results::raw_result.eq(&raw))
                .execute(&mut *conn)
                .await?;
            changed += 1;
        }
    }
    let reruns: Vec<(Uuid, Option<serde_json::Value>, Option<String>)> = audit_reruns::table
        .filter(audit_reruns::audit_id.eq_any(audit_ids))
        .select((
            audit_reruns::id,
            audit_reruns::proposal,
            audit_reruns::instructions,
        ))
        .load(&mut *conn)
        .await?;
    for (id, proposal, instructions) in reruns {
        let mut proposal = proposal;
        let erased = proposal.as_mut().map_or(0, erase_texts);
        if erased > 0 || instructions.is_some() {
            diesel::update(audit_reruns::table.find(id))
                .set((
                    audit_reruns::proposal.eq(proposal),
                    audit_reruns::instructions.eq(None::<String>),
                ))
                .execute(&mut *conn)
                .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Erases the personal data of `fiche_id` in one transaction: its transcripts, its audio
/// URLs, the chat messages about it and its audits, its client details (the row is left
/// as a sales-list entry, so a later audit fetches it from the CRM again), and what the
/// stored results of its audits quote or comment — their scores and verdicts stay.
/// Idempotent. `None` when the fiche is not known.
pub async fn erase_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Option<Removed>> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let known: Option<String> = fiches::table
            .find(fiche_id)
            .select(fiches::fiche_id)
            .for_update()
            .first(&mut *conn)
            .await
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
        let mut removed = Removed::default();
        let recording_ids: Vec<String> = recordings::table
            .filter(recordings::fiche_id.eq(fiche_id))
            .select(recordings::recording_id)
            .load(&mut *conn)
            .await?;
        removed.transcripts = count(
            diesel::delete(
                transcriptions::table.filter(transcriptions::recording_id.eq_any(&recording_ids)),
            )
            .execute(&mut *conn)
            .await?,
        );
        removed.audio_urls = count(
            diesel::update(
                recordings::table
                    .filter(recordings::fiche_id.eq(fiche_id))
                    .filter(recordings::url.ne("")),
            )
            .set((
                recordings::url.eq(""),
                recordings::updated_at.eq(Utc::now()),
            ))
            .execute(&mut *conn)
            .await?,
        );
        let audit_ids: Vec<Uuid> = audits::table
            .filter(audits::fiche_id.eq(fiche_id))
            .select(audits::id)
            .load(&mut *conn)
            .await?;
        let conversations = chat_conversations::table
            .filter(
                chat_conversations::fiche_id
                    .eq(fiche_id)
                    .or(chat_conversations::audit_id.eq_any(&audit_ids)),
            )
            .select(chat_conversations::id);
        removed.chat_messages = count(
            diesel::delete(
                chat_messages::table.filter(chat_messages::conversation_id.eq_any(conversations)),
            )
            .execute(&mut *conn)
            .await?,
        );
        removed.step_results = erase_audit_texts(conn, &audit_ids).await?;
        removed.fiches = count(
            diesel::update(
                fiches::table.find(fiche_id).filter(
                    fiches::personal_data_erased_at
                        .is_null()
                        .or(fiches::details.is_not_null()),
                ),
            )
            .set((
                fiches::client.eq(serde_json::json!({})),
                fiches::details.eq(None::<serde_json::Value>),
                fiches::cle.eq(None::<String>),
                fiches::sales_list_only.eq(true),
                fiches::personal_data_erased_at.eq(Utc::now()),
                fiches::updated_at.eq(Utc::now()),
            ))
            .execute(&mut *conn)
            .await?,
        );
        Ok(Some(removed))
    })
    .await
}

/// Retention limits: what is older than each cutoff goes (None: kept).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cutoffs {
    /// Transcripts completed before this.
    pub transcripts: Option<DateTime<Utc>>,
    /// Chat messages written before this.
    pub chat: Option<DateTime<Utc>>,
    /// Audio URLs of recordings stored before this.
    pub audio_urls: Option<DateTime<Utc>>,
}

/// Purges at most `batch` rows of each kind older than its cutoff; returns what went
/// (call again until nothing goes). The stored results of audits whose transcripts went
/// keep their scores and verdicts; their quotes are rewritten by `redact_quotes` (the
/// caller's redactor) so they carry no personal value either.
pub async fn purge(
    conn: &mut AsyncPgConnection,
    cutoffs: Cutoffs,
    batch: i64,
    redact_quotes: &(dyn Fn(&mut serde_json::Value) -> usize + Sync),
) -> DbResult<Removed> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let mut removed = Removed::default();
        if let Some(before) = cutoffs.transcripts {
            let old: Vec<String> = transcriptions::table
                .filter(transcriptions::completed_at.lt(before))
                .select(transcriptions::recording_id)
                .limit(batch)
                .load(&mut *conn)
                .await?;
            if !old.is_empty() {
                let fiche_ids: Vec<String> = recordings::table
                    .filter(recordings::recording_id.eq_any(&old))
                    .select(recordings::fiche_id)
                    .distinct()
                    .load(&mut *conn)
                    .await?;
                let steps: Vec<(Uuid, serde_json::Value)> = audit_step_results::table
                    .inner_join(audits::table)
                    .filter(audits::fiche_id.eq_any(&fiche_ids))
                    .select((audit_step_results::id, audit_step_results::raw_result))
                    .load(&mut *conn)
                    .await?;
                for (id, mut raw) in steps {
                    if redact_quotes(&mut raw) > 0 {
                        diesel::update(audit_step_results::table.find(id))
                            .set(audit_step_results::raw_result.eq(&raw))
                            .execute(&mut *conn)
                            .await?;
                        removed.step_results += 1;
                    }
                }
                removed.transcripts = count(
                    diesel::delete(
                        transcriptions::table.filter(transcriptions::recording_id.eq_any(&old)),
                    )
                    .execute(&mut *conn)
                    .await?,
                );
            }
        }
        if let Some(before) = cutoffs.chat {
            let old: Vec<i64> = chat_messages::table
                .filter(chat_messages::created_at.lt(before))
                .select(chat_messages::id)
                .limit(batch)
                .load(&mut *conn)
                .await?;
            removed.chat_messages = count(
                diesel::delete(chat_messages::table.filter(chat_messages::id.eq_any(&old)))
                    .execute(&mut *conn)
                    .await?,
            );
        }
        if let Some(before) = cutoffs.audio_urls {
            let old: Vec<String> = recordings::table
                .filter(recordings::created_at.lt(before))
                .filter(recordings::url.ne(""))
                .select(recordings::recording_id)
                .limit(batch)
                .load(&mut *conn)
                .await?;
            removed.audio_urls = count(
                diesel::update(recordings::table.filter(recordings::recording_id.eq_any(&old)))
                    .set(recordings::url.eq(""))
                    .execute(&mut *conn)
                    .await?,
            );
        }
        Ok(removed)
    })
    .await
}
