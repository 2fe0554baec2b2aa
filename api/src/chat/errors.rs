//! The error answers each chat operation documents (see `operation_errors!`).

use crate::error::operation_errors;

operation_errors! {
    /// What `chatAboutAudit` answers besides the answer's event stream.
    pub enum ChatAboutAuditError for "chatAboutAudit" {
        /// The id is not a UUID, or the body is not a JSON `{message}`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `chat:write` or `audits:read`.
        403,
        /// No audit with this id.
        404,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The message is empty or longer than 8,000 characters.
        422,
        /// Postgres is unavailable, the chat's LLM is not configured (`OPENAI_API_KEY`),
        /// or this replica serves `API_MAX_STREAMS` streams already; nothing was stored.
        503,
    }
}

operation_errors! {
    /// What `chatAboutFiche` answers besides the answer's event stream.
    pub enum ChatAboutFicheError for "chatAboutFiche" {
        /// The fiche id is not 1 to 100 letters, digits, `_`, `.` or `-`, or the body is
        /// not a JSON `{message}`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `chat:write` or `fiches:read`.
        403,
        /// Neither the cache nor the CRM knows the fiche.
        404,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// The message is empty or longer than 8,000 characters.
        422,
        /// The CRM refused to say whether it knows the fiche; retrying will not help.
        502,
        /// Postgres or the CRM is unavailable, the chat's LLM is not configured
        /// (`OPENAI_API_KEY`), or this replica serves `API_MAX_STREAMS` streams already;
        /// nothing was stored.
        503,
    }
}

operation_errors! {
    /// What `getAuditChatHistory` answers besides the page.
    pub enum GetAuditChatHistoryError for "getAuditChatHistory" {
        /// The id is not a UUID, or `limit` / `offset` are out of range.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `chat:read` or `audits:read`.
        403,
        /// No audit with this id.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `getFicheChatHistory` answers besides the page.
    pub enum GetFicheChatHistoryError for "getFicheChatHistory" {
        /// The fiche id is malformed, or `limit` / `offset` are out of range.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `chat:read` or `fiches:read`.
        403,
        /// No fiche with this id is cached.
        404,
        /// Postgres is unavailable; retry later.
        503,
    }
}
