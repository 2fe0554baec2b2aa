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

/// Every error a handler can produce (built with the constructors below, or converted
/// with `?`). What one operation documents, and so answers, is the subset declared for it
/// with [`operation_errors!`].
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
            FicheError::StoreUnavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("database unavailable; retry later")
            }
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
        Self::Internal(Json(internal_body()))
    }

    /// The body of this error (its status is in it).
    pub fn body(&self) -> &ErrorBody {
        match self {
            Self::BadRequest(Json(b))
            | Self::Unauthorized(Json(b))
            | Self::Forbidden(Json(b))
            | Self::NotFound(Json(b))
            | Self::Conflict(Json(b))
            | Self::Unprocessable(Json(b))
            | Self::TooManyRequests(Json(b), _)
            | Self::BadGateway(Json(b))
            | Self::Unavailable(Json(b))
            | Self::Internal(Json(b)) => b,
        }
    }

    /// The 500 body an operation answers instead of this error when its documentation
    /// does not list this status (see [`operation_errors!`]): the mismatch is logged as a
    /// bug, the client gets no message it was not told to expect.
    pub fn undocumented(&self, operation: &str) -> Json<ErrorBody> {
        let detail = &self.body().error;
        tracing::error!(
            operation,
            status = detail.status,
            code = %detail.code,
            reason = %detail.message,
            "undocumented status {} from operation {operation}",
            detail.status
        );
        Json(internal_body())
    }
}

fn internal_body() -> ErrorBody {
    ErrorBody::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see server logs",
    )
}

/// Declares the error answers of one operation: a poem-openapi `ApiResponse` enum with
/// only the statuses listed, each described for that operation (its doc comment), and
/// `From` every error that becomes an [`ApiError`], so the handler keeps using `?`. 500 is always
/// there. An [`ApiError`] whose status is not listed is logged as
/// "undocumented status N from operation X" and answered 500: the spec never lies, and a
/// test expecting an undocumented status fails loudly.
///
/// Statuses: 400 401 403 404 409 413 415 422 429 (with `Retry-After`) 502 503. 413 and 415
/// are answered before the handler runs (body cap, content type of a JSON body), as are
/// poem's own 400s (parameters, body) and the bearer check's 401 and 503; listing them
/// documents them.
///
/// ```ignore
/// operation_errors! {
///     /// What `getAudit` answers besides the audit.
///     pub enum GetAuditError for "getAudit" {
///         /// No audit with this id.
///         404,
///     }
/// }
/// ```
macro_rules! operation_errors {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident for $op:literal { $($entries:tt)* }
    ) => {
        $crate::error::operation_errors!(@munch { $(#[$attr])* $vis $name $op } [] [] $($entries)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 400 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 400 BadRequest $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 401 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 401 Unauthorized $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 403 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 403 Forbidden $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 404 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 404 NotFound $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 409 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 409 Conflict $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 422 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 422 Unprocessable $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 502 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 502 BadGateway $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 503 $($rest:tt)*) => {
        $crate::error::operation_errors!(@plain $head $v $a [$(#[$doc])*] 503 Unavailable $($rest)*);
    };
    // Answered before the handler runs: documented, never converted from an ApiError.
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 413 $($rest:tt)*) => {
        $crate::error::operation_errors!(@before $head $v $a [$(#[$doc])*] 413 PayloadTooLarge $($rest)*);
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* 415 $($rest:tt)*) => {
        $crate::error::operation_errors!(@before $head $v $a [$(#[$doc])*] 415 UnsupportedMediaType $($rest)*);
    };
    (@munch $head:tt [$($v:tt)*] [$($a:tt)*] $(#[$doc:meta])* 429 $(, $($rest:tt)*)?) => {
        $crate::error::operation_errors!(@munch $head
            [$($v)* $(#[$doc])* #[oai(status = 429)] TooManyRequests(
                ::poem_openapi::payload::Json<$crate::error::ErrorBody>,
                /// Seconds to wait before trying again.
                #[oai(header = "Retry-After")]
                u64,
            ),]
            [$($a)* $crate::error::ApiError::TooManyRequests(body, retry_after_s) =>
                Self::TooManyRequests(body, retry_after_s),]
            $($($rest)*)?);
    };
    (@plain $head:tt [$($v:tt)*] [$($a:tt)*] [$($doc:tt)*] $status:tt $variant:ident $(, $($rest:tt)*)?) => {
        $crate::error::operation_errors!(@munch $head
            [$($v)* $($doc)* #[oai(status = $status)]
                $variant(::poem_openapi::payload::Json<$crate::error::ErrorBody>),]
            [$($a)* $crate::error::ApiError::$variant(body) => Self::$variant(body),]
            $($($rest)*)?);
    };
    (@before $head:tt [$($v:tt)*] $a:tt [$($doc:tt)*] $status:tt $variant:ident $(, $($rest:tt)*)?) => {
        $crate::error::operation_errors!(@munch $head
            [$($v)* $($doc)* #[oai(status = $status)]
                $variant(::poem_openapi::payload::Json<$crate::error::ErrorBody>),]
            $a
            $($($rest)*)?);
    };
    (@munch { $(#[$attr:meta])* $vis:vis $name:ident $op:literal } [$($v:tt)*] [$($a:tt)*]) => {
        $(#[$attr])*
        #[derive(Debug, ::poem_openapi::ApiResponse)]
        $vis enum $name {
            $($v)*
            /// Unexpected failure; details are in the server log, never in the response.
            #[oai(status = 500)]
            Internal(::poem_openapi::payload::Json<$crate::error::ErrorBody>),
        }

        // Any error `?` turns into an ApiError (DbError, FicheError, …) becomes an answer.
        impl<E: ::std::convert::Into<$crate::error::ApiError>> ::std::convert::From<E> for $name {
            fn from(e: E) -> Self {
                #[allow(unreachable_patterns)]
                match e.into() {
                    $($a)*
                    $crate::error::ApiError::Internal(body) => Self::Internal(body),
                    other => Self::Internal(other.undocumented($op)),
                }
            }
        }
    };
    (@munch $head:tt $v:tt $a:tt $(#[$doc:meta])* $other:tt $($rest:tt)*) => {
        ::std::compile_error!(::std::concat!(
            "operation_errors!: ", ::std::stringify!($other),
            " is not an error status it knows (400 401 403 404 409 413 415 422 429 502 503)"
        ));
    };
}
pub(crate) use operation_errors;

impl From<callaudit_db::DbError> for ApiError {
    fn from(e: callaudit_db::DbError) -> Self {
        match e {
            callaudit_db::DbError::Pool(_) | callaudit_db::DbError::Connection(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::unavailable("database unavailable; retry later")
            }
            // Postgres text cannot hold U+0000 (SQLSTATE 22021 on a bound parameter): the
            // request sent one, so it is the request that is wrong (found by fuzzing
            // POST /api/auth/login with a NUL in the e-mail).
            callaudit_db::DbError::Query(diesel::result::Error::DatabaseError(_, ref info))
                if info.message().contains("0x00") =>
            {
                Self::bad_request("text must not contain NUL (U+0000) characters")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    operation_errors! {
        /// What `readThing` answers besides the thing.
        pub enum ReadThingError for "readThing" {
            /// No thing with this id.
            404,
            /// Too many reads; retry after `Retry-After` seconds.
            429,
        }
    }

    #[test]
    fn postgres_unreachable_behind_the_fiche_service_is_a_503_and_a_query_failure_a_500() {
        use callaudit_upstream::fiches::FicheError;
        let down = FicheError::from(callaudit_db::DbError::Pool("timed out".into()));
        assert!(matches!(ApiError::from(down), ApiError::Unavailable(_)));
        let broken = FicheError::from(callaudit_db::DbError::Migration("x".into()));
        assert!(matches!(ApiError::from(broken), ApiError::Internal(_)));
    }

    /// Error-level log lines of a closure, as `message` texts.
    fn errors_logged(f: impl FnOnce()) -> Vec<String> {
        struct Lines(Arc<Mutex<Vec<String>>>);
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{v:?}");
                }
            }
        }
        impl tracing::Subscriber for Lines {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                if *event.metadata().level() == tracing::Level::ERROR {
                    let mut line = String::new();
                    event.record(&mut Message(&mut line));
                    self.0.lock().unwrap().push(line);
                }
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Lines(lines.clone()), f);
        lines.lock().unwrap().clone()
    }

    #[test]
    fn a_listed_status_keeps_its_variant_body_and_header() {
        let ReadThingError::NotFound(Json(body)) =
            ReadThingError::from(ApiError::not_found("thing 7 not found"))
        else {
            panic!("404 is listed")
        };
        assert_eq!(body.error.status, 404);
        assert_eq!(body.error.message, "thing 7 not found");
        let resp = poem::IntoResponse::into_response(ReadThingError::from(
            ApiError::too_many_requests("slow down", 9),
        ));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "9");
    }

    #[test]
    fn an_unlisted_status_is_logged_as_undocumented_and_answered_500_without_its_message() {
        let mut answer = None;
        let logged = errors_logged(|| {
            answer = Some(ReadThingError::from(ApiError::conflict("thing 7 is busy")));
        });
        let Some(ReadThingError::Internal(Json(body))) = answer else {
            panic!("409 is not listed: {answer:?}")
        };
        assert_eq!(body.error.status, 500);
        assert_eq!(body.error.message, "internal error; see server logs");
        assert_eq!(logged, ["undocumented status 409 from operation readThing"]);
    }

    #[test]
    fn the_spec_lists_exactly_the_chosen_statuses_with_the_operation_s_descriptions() {
        let documented: Vec<_> = ReadThingError::meta()
            .responses
            .into_iter()
            .map(|r| (r.status, r.description, r.headers.len()))
            .collect();
        assert_eq!(
            documented,
            [
                (Some(404), "No thing with this id.", 0),
                (
                    Some(429),
                    "Too many reads; retry after `Retry-After` seconds.",
                    1
                ),
                (
                    Some(500),
                    "Unexpected failure; details are in the server log, never in the response.",
                    0
                ),
            ]
        );
    }
}
