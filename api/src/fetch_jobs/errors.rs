//! The error answers each fetch job operation documents (see `operation_errors!`).

use crate::error::operation_errors;

operation_errors! {
    /// What `startFetchJob` answers besides the accepted job.
    pub enum StartFetchJobError for "startFetchJob" {
        /// The body is not a JSON `ProgressiveFetchRequest` (`from` and `to` calendar days
        /// `YYYY-MM-DD`, `groupes` a list of strings, `force_refresh` a boolean).
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:write`.
        403,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// `to` is before `from`, the range is longer than three years (1,098 days), or a
        /// group is blank, longer than 100 characters, or there are more than 100.
        422,
        /// Postgres or Temporal is unavailable; nothing was started, retry later.
        503,
    }
}

operation_errors! {
    /// What `listFetchJobs` answers besides the page.
    pub enum ListFetchJobsError for "listFetchJobs" {
        /// `limit` is not between 1 and 200, or `offset` is negative or not a number.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `getFetchJob` answers besides the job.
    pub enum GetFetchJobError for "getFetchJob" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`.
        403,
        /// No job with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `streamFetchJobEvents` answers besides the stream.
    pub enum StreamFetchJobEventsError for "streamFetchJobEvents" {
        /// The id is not a UUID, or `Last-Event-ID` / `after` is not a non-negative event
        /// id.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:read`.
        403,
        /// No job with this id.
        404,
        /// This api replica serves `API_MAX_STREAMS` streams already, or Postgres is
        /// unavailable; retry later (or on another replica).
        503,
    }
}

operation_errors! {
    /// What `retryFetchJob` answers besides the accepted retry.
    pub enum RetryFetchJobError for "retryFetchJob" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `fiches:write`.
        403,
        /// No job with this id.
        404,
        /// The job has not ended (it runs, or its last run is still closing), or no day of
        /// it failed: nothing to retry.
        409,
        /// Postgres or Temporal is unavailable; the retry was not started (and is recorded
        /// failed if it was opened), retry later.
        503,
    }
}
