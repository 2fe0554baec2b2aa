//! Global concurrency caps across every worker and api replica: a pool of N slots as
//! Postgres rows (`callaudit_db::leases`). A holder extends its lease while it works; a
//! crashed holder's slot frees itself when the lease runs out.

use crate::heartbeat::Heartbeat;
use callaudit_db::leases::{self as store, Lease};
use callaudit_db::{Pool, pool};
use std::time::Duration;

/// Lease length. A live holder extends it every [`EXTEND_EVERY`]; a crashed worker's
/// slot is free again at most this long after its last extension.
const LEASE_SECONDS: i32 = 30;

/// How often a holder extends its lease (and beats).
const EXTEND_EVERY: Duration = Duration::from_secs(4);

/// How long a waiter sleeps between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(50);

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
    /// The work waiting for the slot was cancelled.
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

fn store_error(e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Store(e.to_string())
}

/// Waits for a free slot of `pool_name` (capacity `cap`) and takes it, beating `hb`
/// while it waits and stopping when `hb` is cancelled; `max_wait` bounds the wait (the
/// api passes one, activities rely on their own timeouts).
pub async fn acquire<H: Heartbeat + ?Sized>(
    db: &Pool,
    hb: &H,
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
        let mut conn = pool::get(db).await.map_err(store_error)?;
        store::ensure_slots(&mut conn, pool_name, cap)
            .await
            .map_err(store_error)?;
    }
    loop {
        let mut conn = pool::get(db).await.map_err(store_error)?;
        let got = store::try_lease(&mut conn, pool_name, cap, &holder, LEASE_SECONDS)
            .await
            .map_err(store_error)?;
        drop(conn);
        if let Some(slot) = got {
            return Ok(Permit {
                pool_name: pool_name.to_string(),
                slot,
                holder,
            });
        }
        if hb.is_cancelled() {
            return Err(LeaseError::Cancelled(pool_name.to_string()));
        }
        hb.beat().await;
        if let Some(max) = max_wait
            && started.elapsed() >= max
        {
            return Err(LeaseError::Busy {
                pool: pool_name.to_string(),
                cap,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

impl Permit {
    fn lease(&self) -> Lease<'_> {
        Lease {
            pool: &self.pool_name,
            slot: self.slot,
            holder: &self.holder,
        }
    }

    /// Runs `work` while holding the slot, extending the lease (and beating `hb`) every
    /// [`EXTEND_EVERY`] so a long call never loses its slot.
    pub async fn hold<H: Heartbeat + ?Sized, F: std::future::Future>(
        &self,
        db: &Pool,
        hb: &H,
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
                    hb.beat().await;
                }
            }
        }
    }

    async fn extend(&self, db: &Pool) {
        let Ok(mut conn) = pool::get(db).await else {
            return;
        };
        if let Err(e) = store::extend(&mut conn, self.lease(), LEASE_SECONDS).await {
            tracing::warn!(error = %e, pool = %self.pool_name, "lease extension failed");
        }
    }

    /// Frees the slot (best effort: an unreleased slot expires after the lease).
    pub async fn release(self, db: &Pool) {
        if let Ok(mut conn) = pool::get(db).await
            && let Err(e) = store::release(&mut conn, self.lease()).await
        {
            tracing::warn!(error = %e, pool = %self.pool_name, "permit release failed; it will expire");
        }
    }
}
