//! The error answers each audit operation documents (see `operation_errors!`).

use crate::error::operation_errors;

operation_errors! {
    /// What `runAudit` answers besides the accepted audit.
    pub enum RunAuditError for "runAudit" {
        /// The body is not a JSON `RunAuditRequest` (fiche id of 1 to 100 letters, digits,
        /// `_`, `.` or `-`, not dots alone; configuration id a UUID), or `Idempotency-Key`
        /// is not 1 to 200 visible ASCII characters.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:write`.
        403,
        /// No configuration with this id, or the CRM does not know the fiche.
        404,
        /// This `Idempotency-Key` was used for another request; use a new key.
        409,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The configuration is inactive.
        422,
        /// The CRM refused the fiche check; retrying will not help.
        502,
        /// The CRM (after brief retries), Postgres or Temporal is unavailable; nothing was
        /// started, retry later.
        503,
    }
}

operation_errors! {
    /// What `getAudit` answers besides the audit.
    pub enum GetAuditError for "getAudit" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:read`.
        403,
        /// No audit with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `cancelAudit` answers besides the cancelled audit.
    pub enum CancelAuditError for "cancelAudit" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:write`.
        403,
        /// No audit with this id.
        404,
        /// The audit has ended (completed, failed or cancelled), before or during the
        /// request: nothing to cancel.
        409,
        /// Temporal or Postgres is unavailable; nothing was cancelled, retry later.
        503,
    }
}

operation_errors! {
    /// What `streamAuditEvents` answers besides the stream.
    pub enum StreamAuditEventsError for "streamAuditEvents" {
        /// The id is not a UUID, or `Last-Event-ID` / `after` is not a non-negative event
        /// id.
        400,
        /// Neither a valid bearer token nor a valid stream token (missing, forged or
        /// expired).
        401,
        /// The bearer token lacks `audits:read`, or the stream token was issued for
        /// another audit's stream.
        403,
        /// No audit with this id.
        404,
        /// This api replica serves `API_MAX_STREAMS` streams already, or Postgres is
        /// unavailable; retry later (or on another replica).
        503,
    }
}

operation_errors! {
    /// What `createAuditEventsToken` answers besides the token.
    pub enum CreateAuditEventsTokenError for "createAuditEventsToken" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:read`.
        403,
        /// No audit with this id.
        404,
        /// Postgres is unavailable; no token was issued, retry later.
        503,
    }
}

operation_errors! {
    /// What `listAudits` answers besides the page.
    pub enum ListAuditsError for "listAudits" {
        /// `limit` is not between 1 and 200, or `offset` is negative or not a number.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `audits:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}
