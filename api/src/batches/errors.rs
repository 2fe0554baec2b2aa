//! The error answers each batch operation documents (see `operation_errors!`).

use crate::error::operation_errors;

operation_errors! {
    /// What `startBatchAudit` answers besides the accepted batch.
    pub enum StartBatchAuditError for "startBatchAudit" {
        /// The body is not a JSON `StartBatchRequest`: neither or both of `fiche_ids` and
        /// `from`/`to`; an empty list, more than 1,000 ids or an invalid fiche id; only one
        /// of `from` and `to`, `from` after `to` or more than 366 days; empty `groupes` or
        /// groupe names; `window` not between 1 and 50; or `Idempotency-Key` is not 1 to
        /// 200 visible ASCII characters.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `batches:write`.
        403,
        /// No configuration with this id.
        404,
        /// This `Idempotency-Key` was used for another request; use a new key.
        409,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The configuration is inactive, or the date range matches no cached fiche or
        /// more than 5,000.
        422,
        /// Postgres or Temporal is unavailable; nothing was started, retry later.
        503,
    }
}

operation_errors! {
    /// What `getBatchAudit` answers besides the batch.
    pub enum GetBatchAuditError for "getBatchAudit" {
        /// The id is not a UUID, or `items_limit` / `items_offset` is out of range.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `batches:read`.
        403,
        /// No batch with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `listBatchAudits` answers besides the page.
    pub enum ListBatchAuditsError for "listBatchAudits" {
        /// `limit` is not between 1 and 200, or `offset` is negative or not a number.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `batches:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `cancelBatchAudit` answers besides the accepted cancellation.
    pub enum CancelBatchAuditError for "cancelBatchAudit" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `batches:write`.
        403,
        /// No batch with this id.
        404,
        /// The batch has ended (completed, partial, failed or cancelled): nothing to
        /// cancel.
        409,
        /// Postgres or Temporal is unavailable, or the batch's workflow could not be
        /// reached; retry later.
        503,
    }
}

operation_errors! {
    /// What `streamBatchAuditEvents` answers besides the stream.
    pub enum StreamBatchAuditEventsError for "streamBatchAuditEvents" {
        /// The id is not a UUID, or `Last-Event-ID` / `after` is not a non-negative event
        /// id.
        400,
        /// Neither a valid bearer token nor a valid stream token (missing, forged or
        /// expired).
        401,
        /// The bearer token lacks `batches:read`, or the stream token was issued for
        /// another stream.
        403,
        /// No batch with this id.
        404,
        /// This api replica serves `API_MAX_STREAMS` streams already, or Postgres is
        /// unavailable; retry later (or on another replica).
        503,
    }
}

operation_errors! {
    /// What `createBatchAuditEventsToken` answers besides the token.
    pub enum CreateBatchAuditEventsTokenError for "createBatchAuditEventsToken" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `batches:read`.
        403,
        /// No batch with this id.
        404,
        /// Postgres is unavailable; no token was issued, retry later.
        503,
    }
}
