//! The `transcriptions` table: one completed transcript per recording (the first stored
//! wins, so every audit of a fiche reads the same words).

use crate::DbResult;
use crate::schema::{recordings, transcriptions};
use callaudit_domain::status::TranscriptionStatus;
use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, JoinOnDsl, NullableExpressionMethods,
    OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A completed transcription.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = transcriptions)]
pub struct CompletedTranscription {
    /// Detected language.
    pub language: Option<String>,
    /// Full text.
    pub text: Option<String>,
    /// Words with timings and speakers (`[Word]` as JSON).
    pub words: Option<serde_json::Value>,
}

/// A transcription to store.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = transcriptions)]
pub struct NewTranscription<'a> {
    /// Recording.
    pub recording_id: &'a str,
    /// Speech-to-text model.
    pub model: &'a str,
    /// Detected language.
    pub language: Option<&'a str>,
    /// Full text.
    pub text: &'a str,
    /// Words as JSON.
    pub words: &'a serde_json::Value,
    /// Number of words.
    pub word_count: i32,
}

/// The completed transcription of a recording, if any.
pub async fn completed(
    conn: &mut AsyncPgConnection,
    recording_id: &str,
) -> DbResult<Option<CompletedTranscription>> {
    Ok(transcriptions::table
        .find(recording_id)
        .filter(transcriptions::status.eq(TranscriptionStatus::Completed.as_str()))
        .select(CompletedTranscription::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Stores a completed transcription; a second completion of the same recording is a no-op
/// (returns false).
pub async fn store(conn: &mut AsyncPgConnection, t: &NewTranscription<'_>) -> DbResult<bool> {
    let n = diesel::insert_into(transcriptions::table)
        .values((
            t,
            transcriptions::status.eq(TranscriptionStatus::Completed.as_str()),
            transcriptions::attempts.eq(1),
            transcriptions::completed_at.eq(Utc::now()),
        ))
        .on_conflict(transcriptions::recording_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// The transcripts of a fiche's recordings, in recording order: `(recording id, its
/// completed transcript or None)`. Audits wait for every one; a chat takes those there.
pub async fn of_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Vec<(String, Option<callaudit_domain::transcript::Transcript>)>> {
    let mut out = Vec::new();
    for rec in crate::recordings::of_fiche(conn, fiche_id).await? {
        let transcript = completed(conn, &rec.recording_id).await?.map(|t| {
            callaudit_domain::transcript::Transcript {
                recording_id: rec.recording_id.clone(),
                language: t.language,
                text: t.text.unwrap_or_default(),
                words: t
                    .words
                    .and_then(|w| serde_json::from_value(w).ok())
                    .unwrap_or_default(),
            }
        });
        out.push((rec.recording_id, transcript));
    }
    Ok(out)
}

/// A recording of a fiche and whether (and when) its transcript was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptVersion {
    /// Recording.
    pub recording_id: String,
    /// Its completed transcript is stored.
    pub transcribed: bool,
    /// When it was stored (None for a row stored without the time).
    pub completed_at: Option<DateTime<Utc>>,
}

/// The recordings of a fiche in recording order, each with whether and when its
/// completed transcript was stored, in one query and without the transcripts' text. A
/// stored transcript is never changed in place (the first one stored wins; an erased one
/// is deleted), so a recording and this time name its transcript: a cache keyed by both
/// never serves a stale one.
pub async fn versions_of_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Vec<TranscriptVersion>> {
    let rows: Vec<(String, Option<String>, Option<DateTime<Utc>>)> = recordings::table
        .left_join(
            transcriptions::table.on(transcriptions::recording_id
                .eq(recordings::recording_id)
                .and(transcriptions::status.eq(TranscriptionStatus::Completed.as_str()))),
        )
        .filter(recordings::fiche_id.eq(fiche_id))
        .order(recordings::position.asc())
        .select((
            recordings::recording_id,
            transcriptions::recording_id.nullable(),
            transcriptions::completed_at.nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(recording_id, stored, completed_at)| TranscriptVersion {
            recording_id,
            transcribed: stored.is_some(),
            completed_at,
        })
        .collect())
}

/// The completed transcripts of `recording_ids` with when each was stored, in one query
/// (recordings not transcribed are left out).
pub async fn completed_of(
    conn: &mut AsyncPgConnection,
    recording_ids: &[&str],
) -> DbResult<Vec<(String, Option<DateTime<Utc>>, CompletedTranscription)>> {
    Ok(transcriptions::table
        .filter(transcriptions::recording_id.eq_any(recording_ids))
        .filter(transcriptions::status.eq(TranscriptionStatus::Completed.as_str()))
        .select((
            transcriptions::recording_id,
            transcriptions::completed_at,
            CompletedTranscription::as_select(),
        ))
        .load(conn)
        .await?)
}
