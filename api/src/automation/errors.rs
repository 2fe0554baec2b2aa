//! The error answers each automation operation documents (see `operation_errors!`).

use crate::error::operation_errors;

operation_errors! {
    /// What `createAutomationSchedule` answers besides the created schedule.
    pub enum CreateScheduleError for "createAutomationSchedule" {
        /// The body is not a JSON `AutomationScheduleBody`: an empty name or cron, a cron
        /// or time zone Temporal refuses (the reason is given), `daysBack` not between 1
        /// and 366, `maxRetries` above 10, an empty groupe, more than 50 groupes or 20
        /// e-mail addresses.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:write`.
        403,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The audit configuration is unknown or inactive, the webhook URL is refused by
        /// the SSRF guard, or an e-mail address is invalid (the reason is given).
        422,
        /// Postgres or Temporal is unavailable; nothing was stored, retry later.
        503,
    }
}

operation_errors! {
    /// What `updateAutomationSchedule` answers besides the schedule.
    pub enum UpdateScheduleError for "updateAutomationSchedule" {
        /// The id is not a UUID, or the body is invalid as for `createAutomationSchedule`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:write`.
        403,
        /// No schedule with this id.
        404,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The audit configuration is unknown or inactive, the webhook URL is refused by
        /// the SSRF guard, or an e-mail address is invalid (the reason is given).
        422,
        /// Postgres or Temporal is unavailable; the schedule is unchanged, retry later.
        503,
    }
}

operation_errors! {
    /// What `getAutomationSchedule` answers besides the schedule.
    pub enum GetScheduleError for "getAutomationSchedule" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:read`.
        403,
        /// No schedule with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `listAutomationSchedules` answers besides the page.
    pub enum ListSchedulesError for "listAutomationSchedules" {
        /// `limit` is not between 1 and 200, or `offset` is negative or not a number.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `deleteAutomationSchedule` answers besides 204.
    pub enum DeleteScheduleError for "deleteAutomationSchedule" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:write`.
        403,
        /// No schedule with this id.
        404,
        /// Postgres or Temporal is unavailable; the schedule is kept, retry later.
        503,
    }
}

operation_errors! {
    /// What `runAutomationSchedule` answers besides the accepted trigger.
    pub enum RunScheduleError for "runAutomationSchedule" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:write`.
        403,
        /// No schedule with this id.
        404,
        /// A run of this schedule is still going (named in the message); no other was
        /// started.
        409,
        /// Postgres or Temporal is unavailable; no run was started, retry later.
        503,
    }
}

operation_errors! {
    /// What `listAutomationRuns` answers besides the page.
    pub enum ListRunsError for "listAutomationRuns" {
        /// `schedule_id` is not a UUID, or `limit` / `offset` is out of range.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `getAutomationRun` answers besides the run.
    pub enum GetRunError for "getAutomationRun" {
        /// The id is not a UUID.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `automation:read`.
        403,
        /// No run with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `streamAutomationRunEvents` answers besides the stream.
    pub enum StreamRunEventsError for "streamAutomationRunEvents" {
        /// The id is not a UUID, or `Last-Event-ID` / `after` is not a non-negative event
        /// id.
        400,
        /// Neither a valid bearer token nor a valid stream token (missing, forged or
        /// expired).
        401,
        /// The bearer token lacks `automation:read`, or the stream token was issued for
        /// another stream.
        403,
        /// No run with this id.
        404,
        /// This api replica serves `API_MAX_STREAMS` streams already, or Postgres is
        /// unavailable; retry later (or on another replica).
        503,
    }
}
