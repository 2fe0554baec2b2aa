//! The `crm_permit_leases` table: a pool of N slots per global cap, leased with
//! `FOR UPDATE SKIP LOCKED`. The waiting, extending and releasing policy lives in
//! `callaudit_upstream::leases`; these are its queries.

use crate::DbResult;
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// One lease of one slot.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    /// Pool name, e.g. `crm_fetch`.
    pub pool: &'a str,
    /// Slot number.
    pub slot: i32,
    /// Holder identity (unique per acquisition).
    pub holder: &'a str,
}

#[derive(diesel::QueryableByName)]
struct Slot {
    #[diesel(sql_type = Integer)]
    slot: i32,
}

/// Creates the slot rows `0..cap` of `pool` (existing rows are kept).
pub async fn ensure_slots(conn: &mut AsyncPgConnection, pool: &str, cap: i32) -> DbResult<()> {
    diesel::sql_query(
        "INSERT INTO crm_permit_leases (pool, slot) SELECT $1, s FROM generate_series(0, $2 - 1) s \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(pool)
    .bind::<Integer, _>(cap)
    .execute(conn)
    .await?;
    Ok(())
}

/// Leases the first free (or expired) slot below `cap` to `holder` for `lease_s` seconds;
/// `None` when all are taken.
pub async fn try_lease(
    conn: &mut AsyncPgConnection,
    pool: &str,
    cap: i32,
    holder: &str,
    lease_s: i32,
) -> DbResult<Option<i32>> {
    let got: Vec<Slot> = diesel::sql_query(
        "UPDATE crm_permit_leases SET holder = $3, acquired_at = now(), \
           lease_until = now() + make_interval(secs => $4) \
         WHERE (pool, slot) = (SELECT pool, slot FROM crm_permit_leases \
           WHERE pool = $1 AND slot < $2 AND (holder IS NULL OR lease_until < now()) \
           ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING slot",
    )
    .bind::<Text, _>(pool)
    .bind::<Integer, _>(cap)
    .bind::<Text, _>(holder)
    .bind::<Integer, _>(lease_s)
    .load(conn)
    .await?;
    Ok(got.into_iter().next().map(|s| s.slot))
}

/// Extends a lease by `lease_s` seconds from now; false when `holder` no longer holds it.
pub async fn extend(
    conn: &mut AsyncPgConnection,
    lease: Lease<'_>,
    lease_s: i32,
) -> DbResult<bool> {
    let n = diesel::sql_query(
        "UPDATE crm_permit_leases SET lease_until = now() + make_interval(secs => $4) \
         WHERE pool = $1 AND slot = $2 AND holder = $3",
    )
    .bind::<Text, _>(lease.pool)
    .bind::<Integer, _>(lease.slot)
    .bind::<Text, _>(lease.holder)
    .bind::<Integer, _>(lease_s)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Frees a slot if `holder` still holds it.
pub async fn release(conn: &mut AsyncPgConnection, lease: Lease<'_>) -> DbResult<()> {
    diesel::sql_query(
        "UPDATE crm_permit_leases SET holder = NULL, lease_until = NULL \
         WHERE pool = $1 AND slot = $2 AND holder = $3",
    )
    .bind::<Text, _>(lease.pool)
    .bind::<Integer, _>(lease.slot)
    .bind::<Text, _>(lease.holder)
    .execute(conn)
    .await?;
    Ok(())
}
