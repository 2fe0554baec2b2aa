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
    /// The lease could not be extended (taken over after it ran out, or the store failed
    /// until it would have): the work was stopped so the cap holds.
    #[error("lost the {0} slot while working (lease not extended); the work was stopped")]
    Lost(String),
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

/// A held slot. Released by [`Permit::release`]; a permit dropped without it (its holder
/// was cancelled or failed) is released in the background, so the slot is free again
/// at once rather than when the lease runs out.
pub struct Permit {
    pool_name: String,
    slot: i32,
    holder: String,
    db: Pool,
    released: bool,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("pool", &self.pool_name)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (db, pool_name, slot, holder) = (
                self.db.clone(),
                self.pool_name.clone(),
                self.slot,
                self.holder.clone(),
            );
            runtime.spawn(async move {
                free_slot(&db, &pool_name, slot, &holder).await;
            });
        }
    }
}

/// Frees a slot if `holder` still holds it (best effort: an unreleased slot expires after
/// the lease).
async fn free_slot(db: &Pool, pool_name: &str, slot: i32, holder: &str) {
    let lease = Lease {
        pool: pool_name,
        slot,
        holder,
    };
    if let Ok(mut conn) = pool::get(db).await
        && let Err(e) = store::release(&mut conn, lease).await
    {
        tracing::warn!(error = %e, pool = %pool_name, "permit release failed; it will expire");
    }
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
                db: db.clone(),
                released: false,
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
    /// [`EXTEND_EVERY`] so a long call never loses its slot. When the lease cannot be
    /// extended — another holder has it (ours ran out), or the store kept failing until
    /// ours would run out — the work is dropped (its call cancelled) and
    /// [`LeaseError::Lost`] returned: past that point the cap no longer covers it.
    pub async fn hold<H: Heartbeat + ?Sized, F: std::future::Future>(
        &self,
        hb: &H,
        work: F,
    ) -> Result<F::Output, LeaseError> {
        let mut work = std::pin::pin!(work);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + EXTEND_EVERY, EXTEND_EVERY);
        // The lease surely holds until this instant (a margin under its length).
        let lease = Duration::from_secs(u64::try_from(LEASE_SECONDS).unwrap_or(30));
        let margin = EXTEND_EVERY + Duration::from_secs(1);
        let mut valid_until = tokio::time::Instant::now() + lease - margin;
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tick.tick() => {
                    match self.extend().await {
                        Ok(true) => valid_until = tokio::time::Instant::now() + lease - margin,
                        Ok(false) => return Err(LeaseError::Lost(self.pool_name.clone())),
                        Err(e) => {
                            tracing::warn!(error = %e, pool = %self.pool_name, "lease extension failed");
                            if tokio::time::Instant::now() >= valid_until {
                                return Err(LeaseError::Lost(self.pool_name.clone()));
                            }
                        }
                    }
                    hb.beat().await;
                }
            }
        }
    }

    /// Extends the lease; false when this holder no longer has the slot.
    async fn extend(&self) -> Result<bool, callaudit_db::DbError> {
        let mut conn = pool::get(&self.db).await?;
        store::extend(&mut conn, self.lease(), LEASE_SECONDS).await
    }

    /// Frees the slot now.
    pub async fn release(mut self) {
        free_slot(&self.db, &self.pool_name, self.slot, &self.holder).await;
        self.released = true;
    }
}
