//! Fiches from the CRM gateway, cached in Postgres: used by the `fiche.ensure_details`
//! activity and by the api (fiche reads, sales search, the unknown-fiche check before an
//! audit starts). Every CRM call holds a slot of the global cap (`leases`).

use crate::crm::{CrmClient, SalesFiche};
use crate::error::UpstreamError;
use crate::heartbeat::Heartbeat;
use crate::leases::{self, LeaseError};
use callaudit_db::fiches::{self as store, NewFicheDetails, NewSalesListFiche};
use callaudit_db::recordings::NewRecording;
use callaudit_db::{DbError, Pool, pool};
use chrono::NaiveDate;
use std::time::Duration;

/// Why a fiche could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum FicheError {
    /// `CRM_BASE_URL` / `CRM_API_KEY` are not set.
    #[error("the CRM gateway is not configured (CRM_BASE_URL / CRM_API_KEY)")]
    NotConfigured,
    /// The CRM does not know the fiche.
    #[error("fiche {0} not found in the CRM")]
    NotFound(String),
    /// The CRM failed (typed, sanitised).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// No CRM slot became free, or the wait was cancelled.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// Postgres failed.
    #[error("database: {0}")]
    Store(String),
    /// Postgres could not be reached (pool exhausted, connection refused).
    #[error("database unavailable: {0}")]
    StoreUnavailable(String),
}

impl From<DbError> for FicheError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(_) | DbError::Connection(_) => {
                FicheError::StoreUnavailable(e.to_string())
            }
            other => FicheError::Store(other.to_string()),
        }
    }
}

impl FicheError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FicheError::NotConfigured | FicheError::NotFound(_) => false,
            FicheError::Upstream(e) => e.is_retryable(),
            FicheError::Lease(LeaseError::Cancelled(_)) => false,
            FicheError::Lease(_) | FicheError::Store(_) | FicheError::StoreUnavailable(_) => true,
        }
    }
}

/// What happened to a `force_refresh` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceRefresh {
    /// Not asked for.
    NotRequested,
    /// Details were fetched again.
    Done,
    /// Refused: the fiche was force-refreshed less than the cooldown ago.
    Cooldown {
        /// Until the next forced refresh is allowed.
        retry_after: Duration,
    },
}

/// Outcome of [`FicheService::ensure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    /// The CRM was called (cache miss, partial row or honoured force refresh).
    pub fetched: bool,
    /// Fate of the force-refresh request.
    pub force_refresh: ForceRefresh,
}

/// How fiches are fetched: the CRM (None: not configured), the global caps and the
/// force-refresh cooldown.
#[derive(Debug, Clone)]
pub struct FicheSettings {
    /// CRM gateway (None: not configured).
    pub crm: Option<CrmClient>,
    /// Global cap on detail fetches (`FICHE_FETCH_CONCURRENCY`).
    pub fetch_concurrency: u32,
    /// Global cap on sales searches (`FICHE_SALES_SEARCH_CONCURRENCY`).
    pub search_concurrency: u32,
    /// Min interval between forced refreshes of one fiche.
    pub force_refresh_cooldown: Duration,
}

/// CRM access with the Postgres cache and the global caps.
#[derive(Clone)]
pub struct FicheService {
    /// Postgres.
    pub pool: Pool,
    /// CRM gateway (None: not configured).
    pub crm: Option<CrmClient>,
    /// Global cap on detail fetches (`FICHE_FETCH_CONCURRENCY`).
    pub fetch_concurrency: u32,
    /// Global cap on sales searches (`FICHE_SALES_SEARCH_CONCURRENCY`).
    pub search_concurrency: u32,
    /// Min interval between forced refreshes of one fiche.
    pub force_refresh_cooldown: Duration,
    /// Lease holder name (process identity).
    pub holder: String,
}

impl std::fmt::Debug for FicheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FicheService")
            .field("crm", &self.crm)
            .field("fetch_concurrency", &self.fetch_concurrency)
            .field("search_concurrency", &self.search_concurrency)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl FicheService {
    /// The service over `pool`, leasing CRM slots as `holder` (process identity).
    pub fn new(pool: Pool, settings: FicheSettings, holder: String) -> Self {
        Self {
            pool,
            crm: settings.crm,
            fetch_concurrency: settings.fetch_concurrency.max(1),
            search_concurrency: settings.search_concurrency.max(1),
            force_refresh_cooldown: settings.force_refresh_cooldown,
            holder,
        }
    }

    fn crm(&self) -> Result<&CrmClient, FicheError> {
        self.crm.as_ref().ok_or(FicheError::NotConfigured)
    }

    /// Runs `call` holding a slot of the global cap `pool_name`.
    async fn in_slot<H: Heartbeat + ?Sized, F: std::future::Future>(
        &self,
        pool_name: &str,
        cap: u32,
        hb: &H,
        max_wait: Option<Duration>,
        call: F,
    ) -> Result<F::Output, FicheError> {
        let permit =
            leases::acquire(&self.pool, hb, pool_name, cap, &self.holder, max_wait).await?;
        let out = permit.hold(hb, call).await;
        permit.release().await;
        Ok(out?)
    }

    /// Makes sure the full details of `fiche_id` are cached: a cache miss or a
    /// sales-list-only row fetches them; `force_refresh` fetches again at most once per
    /// cooldown. `hb` is beaten while waiting for and holding a CRM slot (activities);
    /// `max_wait` bounds the wait for a slot (the api passes one, activities rely on their
    /// own timeouts).
    pub async fn ensure<H: Heartbeat + ?Sized>(
        &self,
        fiche_id: &str,
        force_refresh: bool,
        hb: &H,
        max_wait: Option<Duration>,
    ) -> Result<Ensured, FicheError> {
        let mut conn = pool::get(&self.pool).await?;
        let cached = store::cache_state(&mut conn, fiche_id)
            .await?
            .is_some_and(|s| s.has_details());
        let mut outcome = Ensured {
            fetched: false,
            force_refresh: if force_refresh {
                ForceRefresh::Done
            } else {
                ForceRefresh::NotRequested
            },
        };
        if cached {
            if !force_refresh {
                return Ok(outcome);
            }
            let cooldown = chrono::Duration::from_std(self.force_refresh_cooldown)
                .unwrap_or(chrono::Duration::MAX);
            if let Err(left) = store::claim_force_refresh(&mut conn, fiche_id, cooldown).await? {
                outcome.force_refresh = ForceRefresh::Cooldown {
                    retry_after: left.to_std().unwrap_or_default(),
                };
                return Ok(outcome);
            }
        }
        drop(conn);
        let crm = self.crm()?;
        let details = self
            .in_slot(
                leases::CRM_FETCH,
                self.fetch_concurrency,
                hb,
                max_wait,
                crm.fiche_details(fiche_id),
            )
            .await??
            .ok_or_else(|| FicheError::NotFound(fiche_id.to_string()))?;
        let recs: Vec<NewRecording> = details
            .recordings
            .iter()
            .map(|r| NewRecording {
                recording_id: r.recording_id.clone(),
                url: r.url.clone(),
                started_at: r.started_at,
                duration_s: r.duration_s,
                direction: r.direction.clone(),
            })
            .collect();
        let mut conn = pool::get(&self.pool).await?;
        store::upsert_details(
            &mut conn,
            &NewFicheDetails {
                fiche_id,
                cle: details.cle.as_deref(),
                groupe: details.groupe.as_deref(),
                statut: details.statut.as_deref(),
                date_vente: details.date_vente,
                client: &details.client,
                details: &details.raw,
            },
            &recs,
        )
        .await?;
        if force_refresh && !cached {
            // A forced first fetch starts the cooldown too.
            store::mark_force_refreshed(&mut conn, fiche_id).await?;
        }
        outcome.fetched = true;
        Ok(outcome)
    }

    /// Sales of `date` that have calls, from the CRM (under the sales-search cap); each
    /// is stored as a partial fiche flagged `sales_list_only` (full details are fetched
    /// when an audit or a read needs them). Returns the partial fiches as the CRM sent
    /// them (entries without an id are neither stored nor returned).
    pub async fn sales_search<H: Heartbeat + ?Sized>(
        &self,
        date: NaiveDate,
        hb: &H,
        max_wait: Option<Duration>,
    ) -> Result<Vec<SalesFiche>, FicheError> {
        let crm = self.crm()?;
        let mut fiches = self
            .in_slot(
                leases::CRM_SALES_SEARCH,
                self.search_concurrency,
                hb,
                max_wait,
                crm.sales_with_calls(date),
            )
            .await??;
        fiches.retain(|f| !f.fiche_id.is_empty());
        let mut conn = pool::get(&self.pool).await?;
        for f in &fiches {
            store::upsert_sales_list(
                &mut conn,
                &NewSalesListFiche {
                    fiche_id: &f.fiche_id,
                    groupe: f.groupe.as_deref(),
                    date_vente: f.sold_at(),
                    client: &f.client,
                    recordings_count: i32::try_from(f.recordings_count).unwrap_or(0),
                },
            )
            .await?;
        }
        Ok(fiches)
    }
}
