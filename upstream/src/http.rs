//! What every vendor client shares: the HTTP client with its timeouts, failure
//! classification from the status, and scrubbing of secrets from error bodies.

use crate::error::UpstreamError;
use callaudit_domain::secret::Secret;
use std::time::Duration;

/// An HTTP client with a whole-request `timeout` and a 10 s connect timeout.
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// `text` without `secret`, cut at 300 characters.
pub(crate) fn sanitize(secret: &Secret, text: &str) -> String {
    let scrubbed = secret.scrub(text);
    let mut out: String = scrubbed.chars().take(300).collect();
    if scrubbed.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// A transport failure (no answer): transient, described by its kind only.
pub(crate) fn transport_error(vendor: &'static str, e: &reqwest::Error) -> UpstreamError {
    // reqwest errors carry the URL, never headers; still keep only the kind.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    UpstreamError::transient(vendor, kind)
}

/// The response of a 2xx; otherwise its failure, classified from the status: 429 rate
/// limited, 408/5xx transient, any other status permanent.
pub(crate) async fn classify(
    vendor: &'static str,
    secret: &Secret,
    resp: reqwest::Response,
) -> Result<reqwest::Response, UpstreamError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = resp.text().await.unwrap_or_default();
    let message = format!("HTTP {}: {}", status.as_u16(), sanitize(secret, &body));
    Err(match status.as_u16() {
        429 => UpstreamError::RateLimited {
            vendor,
            retry_after_s,
        },
        408 | 500..=599 => UpstreamError::Transient { vendor, message },
        _ => UpstreamError::Permanent { vendor, message },
    })
}

/// The body of a 2xx answer as `T`; a body that cannot be read is a transport failure,
/// one that does not parse gets `invalid` (the caller decides whether that is transient).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    vendor: &'static str,
    resp: reqwest::Response,
    invalid: impl FnOnce() -> UpstreamError,
) -> Result<T, UpstreamError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| transport_error(vendor, &e))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// Path segment encoding (RFC 3986 unreserved characters kept).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Deserializes an RFC 3339 time leniently: a missing or unreadable value is `None`
/// (the CRM's optional fields must not reject a whole fiche).
pub(crate) fn lenient_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
    let v: Option<serde_json::Value> = serde::Deserialize::deserialize(d)?;
    Ok(v.as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_the_key_and_truncates() {
        let key = Secret::normalized("xi-secret-123");
        let s = sanitize(
            &key,
            &format!("Invalid API key: xi-secret-123 {}", "x".repeat(500)),
        );
        assert!(!s.contains("xi-secret-123"));
        assert!(s.chars().count() <= 301);
    }

    #[test]
    fn ids_are_url_encoded() {
        assert_eq!(urlencode("FICHE-1/2 3"), "FICHE-1%2F2%203");
    }
}
