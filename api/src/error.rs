//! API errors: one JSON shape for every failure, `{"error": {"status", "code", "message"}}`,
//! whether it comes from a handler, authentication, or poem's own request parsing.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

/// The error body.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code, e.g. `forbidden`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorBody {
    /// Builds a body.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                status: status.as_u16(),
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// Every error an operation can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed or invalid input.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Authenticated but lacking the permission.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the current state.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Well-formed but semantically invalid.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many attempts (failed logins from this e-mail or address); retry after the
    /// number of seconds in `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// An upstream vendor (the CRM) refused the request; retrying will not help.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A dependency (Postgres, Temporal, the CRM) is unavailable; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// Unexpected failure; details are in the server log, never in the response.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
}

impl From<callaudit_upstream::fiches::FicheError> for ApiError {
    fn from(e: callaudit_upstream::fiches::FicheError) -> Self {
        use callaudit_upstream::fiches::FicheError;
        match &e {
            FicheError::NotFound(_) => ApiError::not_found(e.to_string()),
            FicheError::NotConfigured => ApiError::unavailable(e.to_string()),
            FicheError::Store(_) => ApiError::internal(e.to_string()),
            _ if e.is_retryable() => {
                ApiError::unavailable(format!("the CRM is unavailable, retry later: {e}"))
            }
            _ => ApiError::bad_gateway(format!("the CRM refused the request: {e}")),
        }
    }
}

impl ApiError {
    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(Json(ErrorBody::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            msg,
        )))
    }
    /// 401.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::Unauthorized(Json(ErrorBody::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            msg,
        )))
    }
    /// 403.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(Json(ErrorBody::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            msg,
        )))
    }
    /// 404.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(Json(ErrorBody::new(
            StatusCode::NOT_FOUND,
            "not_found",
            msg,
        )))
    }
    /// 409.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(Json(ErrorBody::new(StatusCode::CONFLICT, "conflict", msg)))
    }
    /// 422.
    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::Unprocessable(Json(ErrorBody::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            msg,
        )))
    }
    /// 429 with `Retry-After: retry_after_s`.
    pub fn too_many_requests(msg: impl Into<String>, retry_after_s: u64) -> Self {
        Self::TooManyRequests(
            Json(ErrorBody::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                msg,
            )),
            retry_after_s,
        )
    }
    /// 502.
    pub fn bad_gateway(msg: impl Into<String>) -> Self {
        Self::BadGateway(Json(ErrorBody::new(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            msg,
        )))
    }
    /// 503.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::Unavailable(Json(ErrorBody::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            msg,
        )))
    }
    /// 500, logging the cause once; the client sees only a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal(Json(ErrorBody::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see server logs",
        )))
    }
}

impl From<callaudit_db::DbError> for ApiError {
    fn from(e: callaudit_db::DbError) -> Self {
        match e {
            callaudit_db::DbError::Pool(_) | callaudit_db::DbError::Connection(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::unavailable("database unavailable; retry later")
            }
            other => Self::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        callaudit_db::DbError::from(e).into()
    }
}

/// Turns any error poem produced itself (bad JSON, unknown route, auth failure, wrong
/// method) into the JSON error shape. Errors already carrying an [`ApiError`] pass
/// through unchanged (they are built from a response already).
pub async fn json_errors(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        "internal error; see server logs".to_string()
    } else if status == StatusCode::UNAUTHORIZED {
        "missing or invalid bearer token".to_string()
    } else {
        err.to_string()
    };
    Json(ErrorBody::new(status, code, message))
        .with_status(status)
        .into_response()
}
