//! Queries of the audit pipeline: fiches, recordings, transcriptions, audits, step results.
//! Every write is an idempotent upsert keyed by the workflow's ids.

use crate::DbResult;
use crate::schema::{audit_step_results, audits, fiches, recordings, transcriptions};
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, OptionalExtension,
    QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A recording as given by the CRM.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecordingRow {
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

/// Stores full details of a fiche and its recordings (clears `sales_list_only`).
#[allow(clippy::too_many_arguments)]
pub async fn upsert_fiche_details(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
    cle: Option<&str>,
    groupe: Option<&str>,
    statut: Option<&str>,
    date_vente: Option<DateTime<Utc>>,
    client: &serde_json::Value,
    details: &serde_json::Value,
    recs: &[RecordingRow],
) -> DbResult<()> {
    // One transaction: a reader never sees the fiche without its recordings.
    conn.transaction::<_, crate::DbError, _>(async |conn| {
        let now = Utc::now();
        diesel::insert_into(fiches::table)
            .values((
                fiches::fiche_id.eq(fiche_id),
                fiches::cle.eq(cle),
                fiches::groupe.eq(groupe),
                fiches::statut.eq(statut),
                fiches::date_vente.eq(date_vente),
                fiches::client.eq(client),
                fiches::details.eq(details),
                fiches::sales_list_only.eq(false),
                fiches::recordings_count.eq(i32::try_from(recs.len()).unwrap_or(i32::MAX)),
                fiches::details_fetched_at.eq(now),
            ))
            .on_conflict(fiches::fiche_id)
            .do_update()
            .set((
                fiches::cle.eq(excluded(fiches::cle)),
                fiches::groupe.eq(excluded(fiches::groupe)),
                fiches::statut.eq(excluded(fiches::statut)),
                fiches::date_vente.eq(excluded(fiches::date_vente)),
                fiches::client.eq(excluded(fiches::client)),
                fiches::details.eq(excluded(fiches::details)),
                fiches::sales_list_only.eq(false),
                fiches::recordings_count.eq(excluded(fiches::recordings_count)),
                fiches::details_fetched_at.eq(now),
                fiches::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
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
    })
    .await
}

/// Cached state of a fiche: (sales_list_only, details_fetched_at, force_refreshed_at).
pub async fn fiche_cache_state(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Option<(bool, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>> {
    Ok(fiches::table
        .find(fiche_id)
        .select((
            fiches::sales_list_only,
            fiches::details_fetched_at,
            fiches::force_refreshed_at,
        ))
        .first(conn)
        .await
        .optional()?)
}

/// Records that a forced refresh happened now.
pub async fn mark_force_refreshed(conn: &mut AsyncPgConnection, fiche_id: &str) -> DbResult<()> {
    diesel::update(fiches::table.find(fiche_id))
        .set(fiches::force_refreshed_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a partial fiche from the CRM sales search, flagged `sales_list_only`. A fiche
/// whose full details are already cached keeps them (only a partial row is updated).
pub async fn upsert_sales_list_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
    groupe: Option<&str>,
    date_vente: Option<DateTime<Utc>>,
    client: &serde_json::Value,
    recordings_count: i32,
) -> DbResult<()> {
    use diesel::sql_types::{Integer, Jsonb, Nullable, Text, Timestamptz};
    diesel::sql_query(
        "INSERT INTO fiches (fiche_id, groupe, date_vente, client, sales_list_only, recordings_count) \
         VALUES ($1, $2, $3, $4, true, $5) \
         ON CONFLICT (fiche_id) DO UPDATE SET groupe = EXCLUDED.groupe, \
           date_vente = EXCLUDED.date_vente, client = EXCLUDED.client, \
           recordings_count = EXCLUDED.recordings_count, updated_at = now() \
         WHERE fiches.sales_list_only",
    )
    .bind::<Text, _>(fiche_id)
    .bind::<Nullable<Text>, _>(groupe)
    .bind::<Nullable<Timestamptz>, _>(date_vente)
    .bind::<Jsonb, _>(client)
    .bind::<Integer, _>(recordings_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the right to force-refresh a cached fiche: succeeds (and stamps
/// `force_refreshed_at`) only when the last forced refresh is older than `cooldown`, so
/// concurrent requests on any replica refresh at most once per cooldown. On refusal,
/// returns how long until the next forced refresh is allowed.
pub async fn claim_force_refresh(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
    cooldown: chrono::Duration,
) -> DbResult<Result<(), chrono::Duration>> {
    let now = Utc::now();
    let claimed = diesel::update(fiches::table.find(fiche_id))
        .filter(
            fiches::force_refreshed_at
                .is_null()
                .or(fiches::force_refreshed_at.le(now - cooldown)),
        )
        .set(fiches::force_refreshed_at.eq(now))
        .execute(&mut *conn)
        .await?;
    if claimed == 1 {
        return Ok(Ok(()));
    }
    let last: Option<DateTime<Utc>> = fiches::table
        .find(fiche_id)
        .select(fiches::force_refreshed_at)
        .first(conn)
        .await
        .optional()?
        .flatten();
    Ok(Err(last.map_or(chrono::Duration::zero(), |l| {
        (l + cooldown - now).max(chrono::Duration::zero())
    })))
}

/// A cached fiche.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = fiches)]
pub struct FicheRow {
    /// Id.
    pub fiche_id: String,
    /// Group.
    pub groupe: Option<String>,
    /// CRM status.
    pub statut: Option<String>,
    /// Sale time.
    pub date_vente: Option<DateTime<Utc>>,
    /// Customer.
    pub client: serde_json::Value,
    /// Full CRM details (None while only the sales list is known).
    pub details: Option<serde_json::Value>,
    /// Only the partial sales-list entry is known.
    pub sales_list_only: bool,
    /// Number of recordings.
    pub recordings_count: i32,
    /// When the details were fetched.
    pub details_fetched_at: Option<DateTime<Utc>>,
    /// Last forced refresh.
    pub force_refreshed_at: Option<DateTime<Utc>>,
}

/// A recording with its transcription state.
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

/// A cached fiche and its recordings.
pub async fn get_fiche(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Option<(FicheRow, Vec<RecordingView>)>> {
    let Some(row) = fiches::table
        .find(fiche_id)
        .select(FicheRow::as_select())
        .first(&mut *conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let recs = recordings::table
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
        .await?;
    Ok(Some((row, recs)))
}

/// Recordings of a fiche in CRM order, with whether each has a completed transcription.
pub async fn fiche_recordings(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Vec<(String, String, bool)>> {
    let recs: Vec<(String, String)> = recordings::table
        .filter(recordings::fiche_id.eq(fiche_id))
        .order(recordings::position.asc())
        .select((recordings::recording_id, recordings::url))
        .load(&mut *conn)
        .await?;
    let ids: Vec<&String> = recs.iter().map(|r| &r.0).collect();
    let done: Vec<String> = transcriptions::table
        .filter(transcriptions::recording_id.eq_any(ids))
        .filter(transcriptions::status.eq("completed"))
        .select(transcriptions::recording_id)
        .load(conn)
        .await?;
    Ok(recs
        .into_iter()
        .map(|(id, url)| {
            let t = done.contains(&id);
            (id, url, t)
        })
        .collect())
}

/// The URL of a recording.
pub async fn recording_url(
    conn: &mut AsyncPgConnection,
    recording_id: &str,
) -> DbResult<Option<String>> {
    Ok(recordings::table
        .find(recording_id)
        .select(recordings::url)
        .first(conn)
        .await
        .optional()?)
}

/// Completed transcription of a recording: (language, text, words json).
pub async fn completed_transcription(
    conn: &mut AsyncPgConnection,
    recording_id: &str,
) -> DbResult<Option<(Option<String>, Option<String>, Option<serde_json::Value>)>> {
    Ok(transcriptions::table
        .find(recording_id)
        .filter(transcriptions::status.eq("completed"))
        .select((
            transcriptions::language,
            transcriptions::text,
            transcriptions::words,
        ))
        .first(conn)
        .await
        .optional()?)
}

/// Stores a completed transcription; a second completion of the same recording is a no-op
/// (the first stored transcript wins, so every audit reads the same words).
pub async fn store_transcription(
    conn: &mut AsyncPgConnection,
    recording_id: &str,
    model: &str,
    language: Option<&str>,
    text: &str,
    words: &serde_json::Value,
    word_count: i32,
) -> DbResult<bool> {
    let now = Utc::now();
    let n = diesel::insert_into(transcriptions::table)
        .values((
            transcriptions::recording_id.eq(recording_id),
            transcriptions::status.eq("completed"),
            transcriptions::model.eq(model),
            transcriptions::language.eq(language),
            transcriptions::text.eq(text),
            transcriptions::words.eq(words),
            transcriptions::word_count.eq(word_count),
            transcriptions::attempts.eq(1),
            transcriptions::completed_at.eq(now),
        ))
        .on_conflict(transcriptions::recording_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n > 0)
}

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
    /// pending / running / completed / failed.
    pub status: String,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Workflow id.
    pub workflow_id: String,
    /// Score.
    pub score: Option<f64>,
    /// Niveau.
    pub niveau: Option<String>,
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
}

#[allow(clippy::too_many_arguments)]
/// Creates a pending audit; the fiche row must exist (a placeholder is created when the
/// CRM has not been asked yet) and the configuration must exist.
pub async fn create_audit(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    fiche_id: &str,
    config_id: Uuid,
    use_rlm: bool,
    workflow_id: &str,
    steps_total: i32,
    requested_by: Option<Uuid>,
) -> DbResult<()> {
    diesel::insert_into(fiches::table)
        .values((
            fiches::fiche_id.eq(fiche_id),
            fiches::sales_list_only.eq(true),
        ))
        .on_conflict_do_nothing()
        .execute(&mut *conn)
        .await?;
    diesel::insert_into(audits::table)
        .values((
            audits::id.eq(id),
            audits::fiche_id.eq(fiche_id),
            audits::audit_config_id.eq(config_id),
            audits::use_rlm.eq(use_rlm),
            audits::workflow_id.eq(workflow_id),
            audits::steps_total.eq(steps_total),
            audits::requested_by.eq(requested_by),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Loads an audit.
pub async fn get_audit(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<AuditRow>> {
    Ok(audits::table
        .find(id)
        .select(AuditRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Audits of a fiche, newest first, paged.
pub async fn list_audits(
    conn: &mut AsyncPgConnection,
    fiche_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<AuditRow>, i64)> {
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
    Ok((rows, total))
}

/// Marks an audit running (idempotent).
pub async fn mark_audit_running(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::update(audits::table.find(id).filter(audits::status.eq("pending")))
        .set((
            audits::status.eq("running"),
            audits::started_at.eq(Utc::now()),
            audits::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the summary and completes the audit.
pub async fn complete_audit(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    score: f64,
    niveau: &str,
    critical: bool,
    steps_done: i32,
) -> DbResult<()> {
    let now = Utc::now();
    diesel::update(audits::table.find(id))
        .set((
            audits::status.eq("completed"),
            audits::score.eq(score),
            audits::niveau.eq(niveau),
            audits::critical.eq(critical),
            audits::steps_done.eq(steps_done),
            audits::error.eq(None::<String>),
            audits::completed_at.eq(now),
            audits::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a failure (unless already completed).
pub async fn fail_audit(conn: &mut AsyncPgConnection, id: Uuid, error: &str) -> DbResult<()> {
    let now = Utc::now();
    diesel::update(
        audits::table
            .find(id)
            .filter(audits::status.ne("completed")),
    )
    .set((
        audits::status.eq("failed"),
        audits::error.eq(error),
        audits::completed_at.eq(now),
        audits::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored step result.
#[derive(Debug, Clone, diesel::Queryable, serde::Serialize)]
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
    /// CONFORME / PARTIEL / NON_CONFORME.
    pub conforme: String,
    /// Gated analysis.
    pub raw_result: serde_json::Value,
    /// Model.
    pub model: Option<String>,
    /// Tokens in.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
}

/// Inserts a step result unless one exists for (audit, position); returns whether this
/// call inserted it. Retries and replays therefore never create a second row.
pub async fn insert_step_result(
    conn: &mut AsyncPgConnection,
    audit_id: Uuid,
    row: &StepResultRow,
) -> DbResult<bool> {
    let n = diesel::insert_into(audit_step_results::table)
        .values((
            audit_step_results::id.eq(Uuid::new_v4()),
            audit_step_results::audit_id.eq(audit_id),
            audit_step_results::position.eq(row.position),
            audit_step_results::step_name.eq(&row.step_name),
            audit_step_results::weight.eq(row.weight),
            audit_step_results::critical.eq(row.critical),
            audit_step_results::score.eq(row.score),
            audit_step_results::conforme.eq(&row.conforme),
            audit_step_results::raw_result.eq(&row.raw_result),
            audit_step_results::model.eq(&row.model),
            audit_step_results::prompt_tokens.eq(row.prompt_tokens),
            audit_step_results::completion_tokens.eq(row.completion_tokens),
        ))
        .on_conflict((audit_step_results::audit_id, audit_step_results::position))
        .do_nothing()
        .execute(&mut *conn)
        .await?;
    if n > 0 {
        diesel::update(audits::table.find(audit_id))
            .set((
                audits::steps_done.eq(audits::steps_done + 1),
                audits::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
    }
    Ok(n > 0)
}

/// Step results of an audit by position.
pub async fn step_results(
    conn: &mut AsyncPgConnection,
    audit_id: Uuid,
) -> DbResult<Vec<StepResultRow>> {
    Ok(audit_step_results::table
        .filter(audit_step_results::audit_id.eq(audit_id))
        .order(audit_step_results::position.asc())
        .select((
            audit_step_results::position,
            audit_step_results::step_name,
            audit_step_results::weight,
            audit_step_results::critical,
            audit_step_results::score,
            audit_step_results::conforme,
            audit_step_results::raw_result,
            audit_step_results::model,
            audit_step_results::prompt_tokens,
            audit_step_results::completion_tokens,
        ))
        .load(conn)
        .await?)
}

/// Removes an audit whose workflow could not be started (nothing else references it yet).
pub async fn delete_pending_audit(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    diesel::delete(audits::table.find(id).filter(audits::status.eq("pending")))
        .execute(conn)
        .await?;
    Ok(())
}
