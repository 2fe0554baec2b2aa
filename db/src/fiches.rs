//! The `fiches` table: the CRM cache. A fiche is either a partial sales-list entry
//! (`sales_list_only`) or full details with its recordings (stored in one transaction).

use crate::DbResult;
use crate::recordings::{self, NewRecording, RecordingView};
use crate::schema::fiches;
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Full details of a fiche as the CRM gave them.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = fiches)]
pub struct NewFicheDetails<'a> {
    /// Id.
    pub fiche_id: &'a str,
    /// CRM key.
    pub cle: Option<&'a str>,
    /// Group.
    pub groupe: Option<&'a str>,
    /// CRM status.
    pub statut: Option<&'a str>,
    /// Sale time.
    pub date_vente: Option<DateTime<Utc>>,
    /// Customer.
    pub client: &'a serde_json::Value,
    /// The whole CRM answer.
    pub details: &'a serde_json::Value,
}

/// A partial fiche from the CRM sales search.
#[derive(Debug, Clone)]
pub struct NewSalesListFiche<'a> {
    /// Id.
    pub fiche_id: &'a str,
    /// Group.
    pub groupe: Option<&'a str>,
    /// Sale time.
    pub date_vente: Option<DateTime<Utc>>,
    /// Customer.
    pub client: &'a serde_json::Value,
    /// Recordings the CRM announced.
    pub recordings_count: i32,
}

/// What the cache knows of a fiche.
#[derive(Debug, Clone, Copy, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = fiches)]
pub struct CacheState {
    /// Only the partial sales-list entry is known.
    pub sales_list_only: bool,
    /// When the details were fetched.
    pub details_fetched_at: Option<DateTime<Utc>>,
    /// Last forced refresh.
    pub force_refreshed_at: Option<DateTime<Utc>>,
}

impl CacheState {
    /// Full details are cached.
    pub fn has_details(&self) -> bool {
        !self.sales_list_only && self.details_fetched_at.is_some()
    }
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

/// A cached fiche with its recordings.
#[derive(Debug, Clone)]
pub struct FicheWithRecordings {
    /// The fiche.
    pub fiche: FicheRow,
    /// Its recordings in CRM order.
    pub recordings: Vec<RecordingView>,
}

/// Stores full details of a fiche and its recordings (clears `sales_list_only`), in one
/// transaction: a reader never sees the fiche without its recordings.
pub async fn upsert_details(
    conn: &mut AsyncPgConnection,
    fiche: &NewFicheDetails<'_>,
    recs: &[NewRecording],
) -> DbResult<()> {
    conn.transaction::<_, crate::DbError, _>(async |conn| {
        let now = Utc::now();
        diesel::insert_into(fiches::table)
            .values((
                fiche,
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
        recordings::upsert_of_fiche(conn, fiche.fiche_id, recs).await
    })
    .await
}

/// What the cache knows of `fiche_id` (None: never seen).
pub async fn cache_state(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Option<CacheState>> {
    Ok(fiches::table
        .find(fiche_id)
        .select(CacheState::as_select())
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
pub async fn upsert_sales_list(
    conn: &mut AsyncPgConnection,
    fiche: &NewSalesListFiche<'_>,
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
    .bind::<Text, _>(fiche.fiche_id)
    .bind::<Nullable<Text>, _>(fiche.groupe)
    .bind::<Nullable<Timestamptz>, _>(fiche.date_vente)
    .bind::<Jsonb, _>(fiche.client)
    .bind::<Integer, _>(fiche.recordings_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a placeholder row for a fiche the CRM has not been asked about yet (audits
/// reference fiches); an existing row is left alone.
pub async fn ensure_placeholder(conn: &mut AsyncPgConnection, fiche_id: &str) -> DbResult<()> {
    diesel::insert_into(fiches::table)
        .values((
            fiches::fiche_id.eq(fiche_id),
            fiches::sales_list_only.eq(true),
        ))
        .on_conflict_do_nothing()
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

/// A cached fiche and its recordings.
pub async fn get(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> DbResult<Option<FicheWithRecordings>> {
    let Some(fiche) = fiches::table
        .find(fiche_id)
        .select(FicheRow::as_select())
        .first(&mut *conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let recordings = recordings::views_of_fiche(conn, fiche_id).await?;
    Ok(Some(FicheWithRecordings { fiche, recordings }))
}

/// A cached fiche in a list (no details, no recordings).
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = fiches)]
pub struct FicheSummary {
    /// Id.
    pub fiche_id: String,
    /// Group.
    pub groupe: Option<String>,
    /// CRM status.
    pub statut: Option<String>,
    /// Sale time.
    pub date_vente: Option<DateTime<Utc>>,
    /// Only the partial sales-list entry is known.
    pub sales_list_only: bool,
    /// Number of recordings.
    pub recordings_count: i32,
    /// When the details were fetched.
    pub details_fetched_at: Option<DateTime<Utc>>,
}

/// Which cached fiches to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct FicheFilter<'a> {
    /// Sold on this calendar day, in Europe/Paris time (the CRM's day).
    pub date: Option<chrono::NaiveDate>,
    /// Of this group.
    pub groupe: Option<&'a str>,
}

/// A page of cached fiches.
#[derive(Debug, Clone)]
pub struct FichePage {
    /// By sale time, then id.
    pub rows: Vec<FicheSummary>,
    /// Fiches matching the filter.
    pub total: i64,
}

/// Cached fiches matching `filter`, by sale time then id.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: FicheFilter<'_>,
    limit: i64,
    offset: i64,
) -> DbResult<FichePage> {
    use diesel::PgSortExpressionMethods;
    use diesel::sql_types::{Bool, Date};
    let mut q = fiches::table
        .select(FicheSummary::as_select())
        .order((
            fiches::date_vente.asc().nulls_last(),
            fiches::fiche_id.asc(),
        ))
        .into_boxed();
    let mut c = fiches::table.count().into_boxed();
    if let Some(day) = filter.date {
        // The sale's calendar day in the CRM's time zone (Europe/Paris): a sale at 00:30
        // (+01:00) belongs to its own day, not to the day before as its UTC time says.
        let on = |day| {
            diesel::dsl::sql::<Bool>("(fiches.date_vente AT TIME ZONE 'Europe/Paris')::date = ")
                .bind::<Date, _>(day)
        };
        q = q.filter(on(day));
        c = c.filter(on(day));
    }
    if let Some(g) = filter.groupe {
        q = q.filter(fiches::groupe.eq(g.to_string()));
        c = c.filter(fiches::groupe.eq(g.to_string()));
    }
    let rows = q.limit(limit).offset(offset).load(&mut *conn).await?;
    let total = c.get_result(conn).await?;
    Ok(FichePage { rows, total })
}
