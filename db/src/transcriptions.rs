//! The `transcriptions` table: one completed transcript per recording (the first stored
//! wins, so every audit of a fiche reads the same words).

use crate::DbResult;
use crate::schema::transcriptions;
use callaudit_domain::status::TranscriptionStatus;
use chrono::Utc;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
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
