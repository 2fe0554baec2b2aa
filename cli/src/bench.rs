//! `callaudit bench` and `callaudit bench-bare-worker`: the bench lives in
//! `callaudit-bench`; the bare worker runs with the options of `callaudit worker`.

use crate::config::BareWorkerArgs;
use callaudit_bench::BenchArgs;

/// Runs the bench (its api is built by `AppState::build`, as `callaudit api` builds it),
/// or one of its load modes (`bench api | sse | worker | scale | long`: the api and the
/// worker as child processes of this executable).
pub async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    match args.load.take() {
        Some(mode) => callaudit_bench::run_load(args, mode).await,
        None => callaudit_bench::run(args).await,
    }
}

/// Serves the bare baseline's workflows and no-op activities with the worker options of
/// `callaudit worker`, until SIGTERM.
pub async fn bare_worker(args: BareWorkerArgs) -> anyhow::Result<()> {
    let settings = args.temporal.settings();
    let client = crate::worker::connect_with_retry(&settings).await?;
    let mut options = crate::worker::options(
        &settings,
        args.worker_shutdown_grace_s,
        args.worker_max_concurrent_activities,
    );
    callaudit_bench::bare_worker::register(&mut options)?;
    crate::worker::serve(client, &settings, options, Default::default()).await
}
