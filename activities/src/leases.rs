//! Global concurrency caps across every worker and api replica: a pool of N slots as
//! Postgres rows, leased with `FOR UPDATE SKIP LOCKED`. A holder extends its lease while
//! it works; a crashed holder's slot frees itself when the lease runs out.

use callaudit_db::{Pool, pool};
use diesel::sql_types::{Integer, Text};
use diesel_async::RunQueryDsl;
use std::time::Duration;
use temporalio_sdk::activities::ActivityContext;

/// Lease length. A live holder extends it every [`EXTEND_EVERY`]; a crashed worker's
/// slot is free again at most this long after its last extension.
const LEASE_SECONDS: i32 = 30;

/// How often a holder extends its lease (and heartbeats its activity).
const EXTEND_EVERY: Duration = Duration::from_secs(4);

/// Pool of CRM fiche-detail fetches (`FICHE_FETCH_CONCURRENCY`).
pub const CRM_FETCH: &str = "crm_fetch";
/// Pool of CRM sales searches (`FICHE_SALES_SEARCH_CONCURRENCY`).
pub const CRM_SALES_SEARCH: &str = "crm_sales_search";

/// Why no slot was obtained.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Postgres failed.
    #[error("lease store: {0}")]
    Store(String),
    /// The activity waiting for the slot was cancelled.
    #[error("cancelled while waiting for a {0} slot")]
    Cancelled(String),
    /// Every slot stayed busy for the whole allowed wait.
    #[error("all {cap} {pool} slots stayed busy for {waited:?}")]
    Busy {
        /// Pool name.
        pool: String,
        /// Capacity.
        cap: i32,
        /// How long we waited.
        waited: Duration,
    },
}

/// A held slot.
#[derive(Debug)]
pub struct Permit {
    pool_name: String,
    slot: i32,
    holder: String,
}

#[derive(diesel::QueryableByName)]
struct Slot {
    #[diesel(sql_type = Integer)]
    slot: i32,
}

fn store(e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Store(e.to_string())
}

/// Waits for a free slot of `pool_name` (capacity `cap`) and takes it. An activity
/// passes its context (heartbeats while waiting, stops when cancelled); the api passes
/// `None` and a `max_wait`.
pub async fn acquire(
    db: &Pool,
    ctx: Option<&ActivityContext>,
    pool_name: &str,
    cap: u32,
    holder: &str,
    max_wait: Option<Duration>,
) -> Result<Permit, LeaseError> {
    let cap = i32::try_from(cap.max(1)).unwrap_or(i32::MAX);
    let holder = format!("{holder}:{}", uuid::Uuid::new_v4().simple());
    let started = tokio::time::Instant::now();
    {
        // The pool's slot rows exist once created; the wait loop below only leases.
        let mut conn = pool::get(db).await.map_err(store)?;
        diesel::sql_query("INSERT INTO crm_permit_leases (pool, slot) SELECT $1, s FROM generate_series(0, $2 - 1) s ON CONFLICT DO NOTHING")
            .bind::<Text, _>(pool_name)
            .bind::<Integer, _>(cap)
            .execute(&mut conn)
            .await
            .map_err(store)?;
    }
    loop {
        let mut conn = pool::get(db).await.map_err(store)?;
        let got: Vec<Slot> = diesel::sql_query(
            "UPDATE crm_permit_leases SET holder = $3, acquired_at = now(), \
               lease_until = now() + make_interval(secs => $4) \
             WHERE (pool, slot) = (SELECT pool, slot FROM crm_permit_leases \
               WHERE pool = $1 AND slot < $2 AND (holder IS NULL OR lease_until < now()) \
               ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING slot",
        )
        .bind::<Text, _>(pool_name)
        .bind::<Integer, _>(cap)
        .bind::<Text, _>(&holder)
        .bind::<Integer, _>(LEASE_SECONDS)
        .load(&mut conn)
        .await
        .map_err(store)?;
        if let Some(s) = got.into_iter().next() {
            return Ok(Permit {
                pool_name: pool_name.to_string(),
                slot: s.slot,
                holder,
            });
        }
        drop(conn);
        if let Some(ctx) = ctx {
            if ctx.is_cancelled() {
                return Err(LeaseError::Cancelled(pool_name.to_string()));
            }
            let _ = ctx.record_heartbeat(()).await;
        }
        if let Some(max) = max_wait
            && started.elapsed() >= max
        {
            return Err(LeaseError::Busy {
                pool: pool_name.to_string(),
                cap,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Permit {
    /// Runs `work` while holding the slot, extending the lease (and heartbeating the
    /// activity, if any) every [`EXTEND_EVERY`] so a long call never loses its slot.
    pub async fn hold<F: std::future::Future>(
        &self,
        db: &Pool,
        ctx: Option<&ActivityContext>,
        work: F,
    ) -> F::Output {
        let mut work = std::pin::pin!(work);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + EXTEND_EVERY, EXTEND_EVERY);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    self.extend(db).await;
                    if let Some(ctx) = ctx {
                        let _ = ctx.record_heartbeat(()).await;
                    }
                }
            }
        }
    }

    async fn extend(&self, db: &Pool) {
        let Ok(mut conn) = pool::get(db).await else {
            return;
        };
        let r = diesel::sql_query(
            "UPDATE crm_permit_leases SET lease_until = now() + make_interval(secs => $4) \
             WHERE pool = $1 AND slot = $2 AND holder = $3",
        )
        .bind::<Text, _>(&self.pool_name)
        .bind::<Integer, _>(self.slot)
        .bind::<Text, _>(&self.holder)
        .bind::<Integer, _>(LEASE_SECONDS)
        .execute(&mut conn)
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, pool = %self.pool_name, "lease extension failed");
        }
    }

    /// Frees the slot (best effort: an unreleased slot expires after the lease).
    pub async fn release(self, db: &Pool) {
        if let Ok(mut conn) = pool::get(db).await {
            let r = diesel::sql_query("UPDATE crm_permit_leases SET holder = NULL, lease_until = NULL WHERE pool = $1 AND slot = $2 AND holder = $3")
                .bind::<Text, _>(&self.pool_name)
                .bind::<Integer, _>(self.slot)
                .bind::<Text, _>(&self.holder)
                .execute(&mut conn)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, pool = %self.pool_name, "permit release failed; it will expire");
            }
        }
    }
}
