//! Retry policies and activity options shared by the workflows (and by the bench's bare
//! twins, so both are measured with the same options).

use std::time::Duration;
use temporalio_workflow::{ActivityOptions, LocalActivityOptions, RetryPolicy};

/// Retries for calls to upstream vendors: backoff up to a minute, then give up after 8
/// attempts (permanent failures are non-retryable and stop at once).
pub fn upstream_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(8)
        .build()
}

/// Retries for database activities: short backoff, many attempts (a restarting Postgres
/// or an exhausted pool heals within seconds).
pub fn db_retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(10))
        .maximum_attempts(20)
        .build()
}

/// Options of an activity that only talks to Postgres: 30 s per attempt, [`db_retry`].
pub fn db_activity() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(db_retry())
        .build()
}

/// Options of a database activity run as a **local** activity (in the worker that runs the
/// workflow task: no activity task, no round trip through the server, one marker in the
/// history instead of three events and a workflow task). For short, idempotent database
/// work only: a local activity that completed runs again if its workflow task is lost
/// (worker crash) before the server records it. 30 s per attempt, [`db_retry`] in
/// process (its 10 s ceiling stays under the SDK's 1-minute threshold for timer
/// backoffs), within 5 minutes in all — [`db_retry`]'s 20 attempts fit in it, and the
/// SDK's default would cut them at 100 s. The workflow task is kept alive meanwhile.
pub fn db_local_activity() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .schedule_to_close_timeout(Duration::from_secs(300))
        .retry_policy(db_retry())
        .build()
}

/// Options of an activity calling a vendor, `timeout` per attempt, [`upstream_retry`].
///
/// Vendor calls heartbeat every few seconds (`callaudit_activities::HEARTBEAT_EVERY`,
/// CRM lease holders every 4 s), so a dead worker's call is retried after 12 s.
pub fn upstream_activity(timeout: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout)
        .heartbeat_timeout(Duration::from_secs(12))
        .retry_policy(upstream_retry())
        .build()
}
