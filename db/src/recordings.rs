//! The `recordings` table: a fiche's call recordings, in CRM order.

use crate::DbResult;
use crate::schema::{recordings, transcriptions};
use callaudit_domain::status::TranscriptionStatus;
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, NullableExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A recording as given by the CRM.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewRecording {
    /// Id.
    pub recording_id: String,
    /// Absolute audio URL.
    pub url: String,
    /// Call start.
    pub started_at: Option<DateTime<Utc>>,
    /// Length.
    pub duration_s: Option<f64>,
    /// outbound / inbound.
    pub direction: Option<String>,
}

/// A recording with its transcription state (fiche views).
#[derive(Debug, Clone, diesel::Queryable)]
pub struct RecordingView {
    /// Id.
    pub recording_id: String,
    /// Call start.
    pub started_at: Option<DateTime<Utc>>,
    /// Length.
    pub duration_s: Option<f64>,
    /// outbound / inbound.
    pub direction: Option<String>,
    /// Transcription status, if any.
    pub transcription: Option<String>,
}

/// A recording of a fiche as the pipeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FicheRecording {
    /// Id.
    pub recording_id: String,
    /// Absolute audio URL.
    pub url: String,
    /// A completed transcription is stored.
    pub transcribed: bool,
}

/// Upserts the recordings of `fiche_id` (position = index in `recs`). Called inside the
/// fiche's transaction.
pub(crate) async fn upsert_of_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
    recs: &[NewRecording],
) -> DbResult<()> {
    let now = Utc::now();
    for (i, r) in recs.iter().enumerate() {
        diesel::insert_into(recordings::table)
            .values((
                recordings::recording_id.eq(&r.recording_id),
                recordings::fiche_id.eq(fiche_id),
                recordings::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                recordings::url.eq(&r.url),
                recordings::started_at.eq(r.started_at),
                recordings::duration_s.eq(r.duration_s),
                recordings::direction.eq(&r.direction),
            ))
            .on_conflict(recordings::recording_id)
            .do_update()
            .set((
                recordings::url.eq(excluded(recordings::url)),
                recordings::position.eq(excluded(recordings::position)),
                recordings::started_at.eq(excluded(recordings::started_at)),
                recordings::duration_s.eq(excluded(recordings::duration_s)),
                recordings::direction.eq(excluded(recordings::direction)),
                recordings::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Recordings of a fiche with their transcription status, in CRM order.
pub(crate) async fn views_of_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Vec<RecordingView>> {
    Ok(recordings::table
        .left_join(transcriptions::table)
        .filter(recordings::fiche_id.eq(fiche_id))
        .order(recordings::position.asc())
        .select((
            recordings::recording_id,
            recordings::started_at,
            recordings::duration_s,
            recordings::direction,
            transcriptions::status.nullable(),
        ))
        .load(conn)
        .await?)
}

/// Recordings of a fiche in CRM order, with whether each has a completed transcription.
pub async fn of_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Vec<FicheRecording>> {
    let recs: Vec<(String, String)> = recordings::table
        .filter(recordings::fiche_id.eq(fiche_id))
        .order(recordings::position.asc())
        .select((recordings::recording_id, recordings::url))
        .load(&mut *conn)
        .await?;
    let ids: Vec<&String> = recs.iter().map(|r| &r.0).collect();
    let done: Vec<String> = transcriptions::table
        .filter(transcriptions::recording_id.eq_any(ids))
        .filter(transcriptions::status.eq(TranscriptionStatus::Completed.as_str()))
        .select(transcriptions::recording_id)
        .load(conn)
        .await?;
    Ok(recs
        .into_iter()
        .map(|(recording_id, url)| FicheRecording {
            transcribed: done.contains(&recording_id),
            recording_id,
            url,
        })
        .collect())
}

/// Seconds of audio of the fiche's recordings that have a completed transcription.
pub async fn transcribed_seconds(conn: &mut AsyncPgConnection, fiche_id: &str) -> DbResult<f64> {
    let durations: Vec<Option<f64>> = recordings::table
        .inner_join(transcriptions::table)
        .filter(recordings::fiche_id.eq(fiche_id))
        .filter(transcriptions::status.eq(TranscriptionStatus::Completed.as_str()))
        .select(recordings::duration_s)
        .load(conn)
        .await?;
    Ok(durations.into_iter().flatten().sum())
}

/// Where a recording's audio is and how long it lasts.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct RecordingAudio {
    /// Absolute audio URL.
    pub url: String,
    /// Length, seconds (as the CRM gave it).
    pub duration_s: Option<f64>,
}

/// The audio of a recording.
pub async fn audio(
    conn: &mut AsyncPgConnection,
    recording_id: &str,
) -> DbResult<Option<RecordingAudio>> {
    Ok(recordings::table
        .find(recording_id)
        .select((recordings::url, recordings::duration_s))
        .first(conn)
        .await
        .optional()?)
}
