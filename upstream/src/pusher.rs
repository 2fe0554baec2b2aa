//! Pusher Channels: the HTTP API's `POST /apps/{app_id}/events`, signed as Pusher
//! specifies, and the signature of a private-channel subscription.
//!
//! A request is signed by its query string: `auth_key`, `auth_timestamp` (Unix
//! seconds), `auth_version=1.0` and `body_md5` (hex MD5 of the JSON body), sorted by
//! name, then `auth_signature` = hex HMAC-SHA256 under the app secret of
//! `POST\n/apps/{app_id}/events\n{sorted query}`. A subscription to a private channel is
//! allowed by `{key}:{hex HMAC-SHA256 of "{socket_id}:{channel}"}`. Both are checked
//! against the worked examples of Pusher's documentation below.
//!
//! The host is `https://api-{PUSHER_CLUSTER}.pusher.com` unless `PUSHER_BASE_URL` names
//! another (a local Pusher-compatible endpoint in tests). Each call has a timeout; 5xx,
//! 408, 429 and transport failures are retried a few times with backoff
//! (`Retry-After` honoured up to 10 s), anything else is permanent. The secret is a
//! [`Secret`]: never logged, scrubbed from error bodies.

use crate::error::UpstreamError;
use crate::http;
use crate::webhook::hmac_sha256;
use callaudit_domain::secret::Secret;
use serde::Serialize;
use std::time::Duration;

const VENDOR: &str = "pusher";

/// Attempts of one event before the caller hears of the failure.
pub const ATTEMPTS: u32 = 4;

/// Pusher's credentials and where its HTTP API is.
#[derive(Debug, Clone)]
pub struct PusherSettings {
    /// `PUSHER_APP_ID`.
    pub app_id: String,
    /// `PUSHER_KEY` (public: browsers know it).
    pub key: String,
    /// `PUSHER_SECRET`.
    pub secret: Secret,
    /// `https://api-{cluster}.pusher.com`, or `PUSHER_BASE_URL`; no trailing slash.
    pub base_url: String,
    /// Whole-request timeout of one call.
    pub timeout: Duration,
}

impl PusherSettings {
    /// Settings when app id, key and secret are all set (blank ones count as unset);
    /// `base_url` wins over `cluster` (default `mt1`, Pusher's own default).
    pub fn from_parts(
        app_id: Option<&str>,
        key: Option<&str>,
        secret: Option<&Secret>,
        cluster: Option<&str>,
        base_url: Option<&str>,
        timeout: Duration,
    ) -> Option<Self> {
        let (app_id, key) = (present(app_id)?, present(key)?);
        let secret = secret.filter(|s| !s.is_empty())?.clone();
        let base_url = match present(base_url) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!(
                "https://api-{}.pusher.com",
                present(cluster).unwrap_or("mt1")
            ),
        };
        Some(Self {
            app_id: app_id.to_string(),
            key: key.to_string(),
            secret,
            base_url,
            timeout,
        })
    }

    /// The `auth` of a subscription of `socket_id` to private channel `channel`:
    /// `{key}:{hex HMAC-SHA256 of "{socket_id}:{channel}"}`.
    pub fn channel_auth(&self, socket_id: &str, channel: &str) -> String {
        channel_auth(&self.key, self.secret.expose(), socket_id, channel)
    }
}

fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// `{key}:{hex HMAC-SHA256 under secret of "{socket_id}:{channel}"}` (Pusher's
/// private-channel authorisation).
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{socket_id}:{channel}").as_bytes(),
    );
    format!("{key}:{}", hex::encode(mac))
}

/// The hex MD5 of `body` (`body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(body))
}

/// The signed query string of a `POST` of `body` to `path` at `timestamp`: the four
/// `auth_*`/`body_md5` parameters sorted by name, then `auth_signature`.
pub fn signed_query(key: &str, secret: &str, path: &str, body: &[u8], timestamp: i64) -> String {
    let query = format!(
        "auth_key={key}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={}",
        body_md5(body)
    );
    let to_sign = format!("POST\n{path}\n{query}");
    let signature = hex::encode(hmac_sha256(secret.as_bytes(), to_sign.as_bytes()));
    format!("{query}&auth_signature={signature}")
}

/// The body of `POST /apps/{app_id}/events`.
#[derive(Debug, Serialize)]
struct TriggerBody<'a> {
    name: &'a str,
    channels: &'a [&'a str],
    /// The event's data, as a JSON string (Pusher's wire format).
    data: String,
}

/// A client of Pusher's HTTP API.
#[derive(Debug, Clone)]
pub struct PusherClient {
    settings: PusherSettings,
    http: reqwest::Client,
}

impl PusherClient {
    /// A client for `settings` (no redirects followed: the URL carries a signature).
    pub fn new(settings: PusherSettings) -> Self {
        let http = http::client(settings.timeout);
        Self { settings, http }
    }

    /// Its settings.
    pub fn settings(&self) -> &PusherSettings {
        &self.settings
    }

    /// Triggers event `name` with `data` on `channels`, retrying 5xx, 408, 429 and
    /// transport failures up to [`ATTEMPTS`] times with backoff.
    pub async fn trigger(
        &self,
        channels: &[&str],
        name: &str,
        data: &serde_json::Value,
    ) -> Result<(), TriggerError> {
        let body = serde_json::to_vec(&TriggerBody {
            name,
            channels,
            data: data.to_string(),
        })
        .map_err(|e| TriggerError::Refused(format!("event not serialisable: {e}")))?;
        let mut attempt = 1;
        loop {
            match self.post_once(&body).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    let wait = match &e {
                        UpstreamError::RateLimited {
                            retry_after_s: Some(s),
                            ..
                        } => Duration::from_secs((*s).min(10)),
                        _ => Duration::from_millis(250 << attempt),
                    };
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "pusher: retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(TriggerError::from_upstream(e)),
            }
        }
    }

    async fn post_once(&self, body: &[u8]) -> Result<(), UpstreamError> {
        let s = &self.settings;
        let path = format!("/apps/{}/events", s.app_id);
        let query = signed_query(
            &s.key,
            s.secret.expose(),
            &path,
            body,
            chrono::Utc::now().timestamp(),
        );
        let resp = self
            .http
            .post(format!("{}{path}?{query}", s.base_url))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| http::transport_error(VENDOR, &e))?;
        http::classify(VENDOR, &s.secret, resp).await?;
        Ok(())
    }
}

/// Why an event was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// Pusher refused the credentials or the signature (401, 403): nothing will be
    /// accepted until the configuration is fixed; the event must be sent again then.
    #[error("pusher refused the credentials: {0}")]
    Unauthorized(String),
    /// Pusher refused this event (another 4xx: a bad channel name, data too large):
    /// sending it again cannot succeed.
    #[error("pusher refused the event: {0}")]
    Refused(String),
    /// Still failing after the retries (5xx, 408, 429, network, timeout).
    #[error("pusher unavailable: {0}")]
    Unavailable(String),
}

impl TriggerError {
    fn from_upstream(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Permanent { message, .. }
                if message.starts_with("HTTP 401") || message.starts_with("HTTP 403") =>
            {
                Self::Unauthorized(message)
            }
            UpstreamError::Permanent { message, .. } => Self::Refused(message),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Pusher's HTTP API reference: app 3, key
    /// 278d425bdf160c739803, secret 7ad3773142a6692b25b8, timestamp 1353088179.
    #[test]
    fn the_request_signature_matches_pusher_s_worked_example() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body), "ec365a775a4cd0599faeb73354201b6f");
        assert_eq!(
            signed_query(
                "278d425bdf160c739803",
                "7ad3773142a6692b25b8",
                "/apps/3/events",
                body,
                1_353_088_179
            ),
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    /// The private-channel example of Pusher's authorisation docs.
    #[test]
    fn the_channel_auth_matches_pusher_s_example() {
        assert_eq!(
            channel_auth(
                "278d425bdf160c739803",
                "7ad3773142a6692b25b8",
                "1234.1234",
                "private-foobar"
            ),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }

    #[test]
    fn settings_need_the_three_credentials_and_prefer_the_base_url() {
        let secret = Secret::normalized("s3cret");
        let t = Duration::from_secs(5);
        let eu =
            PusherSettings::from_parts(Some("1"), Some("k"), Some(&secret), Some("eu"), None, t)
                .unwrap();
        assert_eq!(eu.base_url, "https://api-eu.pusher.com");
        let default =
            PusherSettings::from_parts(Some("1"), Some("k"), Some(&secret), None, None, t).unwrap();
        assert_eq!(default.base_url, "https://api-mt1.pusher.com");
        let local = PusherSettings::from_parts(
            Some("1"),
            Some("k"),
            Some(&secret),
            Some("eu"),
            Some("http://127.0.0.1:9/"),
            t,
        )
        .unwrap();
        assert_eq!(local.base_url, "http://127.0.0.1:9");
        assert!(
            PusherSettings::from_parts(None, Some("k"), Some(&secret), None, None, t).is_none()
        );
        assert!(
            PusherSettings::from_parts(Some("1"), Some(" "), Some(&secret), None, None, t)
                .is_none()
        );
        assert!(PusherSettings::from_parts(Some("1"), Some("k"), None, None, None, t).is_none());
        assert!(
            !format!("{eu:?}").contains("s3cret"),
            "the secret is never printed"
        );
    }
}
