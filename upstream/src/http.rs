//! What every vendor client shares: the HTTP client with its timeouts, failure
//! classification from the status, and scrubbing of secrets from error bodies.

use crate::error::UpstreamError;
use callaudit_domain::secret::Secret;
use std::time::Duration;

/// Largest answer read from a vendor (a long call's word-level transcript is a few MB).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Largest error body read from a vendor (only its start is kept in the message).
const MAX_ERROR_BYTES: usize = 64 << 10;

/// An HTTP client with a whole-request `timeout` and a 10 s connect timeout that follows
/// **no redirect**: our requests carry vendor keys, and a redirect could name any host
/// (a redirect answer is then a permanent failure naming its status).
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The body of `resp`, at most `max` bytes: `Ok(None)` when it is longer (declared or
/// streamed), without reading the rest.
async fn read_capped(
    vendor: &'static str,
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, UpstreamError> {
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(vendor, &e))?
    {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
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
    let body = match read_capped(vendor, resp, MAX_ERROR_BYTES).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => "(error body too large)".to_string(),
        Err(_) => String::new(),
    };
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
/// one past [`MAX_ANSWER_BYTES`] a permanent one, one that does not parse gets `invalid`
/// (the caller decides whether that is transient).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    vendor: &'static str,
    resp: reqwest::Response,
    invalid: impl FnOnce() -> UpstreamError,
) -> Result<T, UpstreamError> {
    let Some(bytes) = read_capped(vendor, resp, MAX_ANSWER_BYTES).await? else {
        return Err(UpstreamError::permanent(
            vendor,
            format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
        ));
    };
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
