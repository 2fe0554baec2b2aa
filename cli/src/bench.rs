//! `callaudit bench` and `callaudit bench-bare-worker`: the bench lives in
//! `callaudit-bench`; this wires it to what the binary builds itself — the api's state (as
//! `callaudit api` builds it) and the worker (as `callaudit worker` runs it).

use crate::config::{BareWorkerArgs, CrmArgs};
use callaudit_bench::{ApiSetup, BenchArgs};

/// Runs the bench against the api this binary serves.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    callaudit_bench::run(args, |api: ApiSetup| {
        // The simulator's CRM; the other CRM settings at their defaults.
        let crm = CrmArgs {
            crm_base_url: Some(api.crm_base_url),
            crm_api_key: Some(api.crm_api_key),
            upstream_timeout_ms: 120_000,
            fiche_force_refresh_cooldown_ms: 1_800_000,
            fiche_sales_search_concurrency: 1,
            fiche_fetch_concurrency: 3,
        };
        crate::app_state(
            &api.database_url,
            api.pool_size,
            api.temporal,
            api.token_ttl_hours,
            api.step_parallelism,
            &crm,
        )
    })
    .await
}

/// Serves the bare baseline's workflows and no-op activities with the worker options of
/// `callaudit worker`, until SIGTERM.
pub async fn bare_worker(args: BareWorkerArgs) -> anyhow::Result<()> {
    let settings = args.temporal.settings();
    let client = crate::worker::connect_with_retry(&settings).await?;
    let mut options = crate::worker::options(&settings, args.worker_shutdown_grace_s);
    callaudit_bench::bare_worker::register(&mut options)?;
    crate::worker::serve(client, &settings, options).await
}
