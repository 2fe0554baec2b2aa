//! A local Pusher Channels HTTP API (`POST /apps/{app_id}/events`) that checks every
//! request the way Pusher does and records the events it accepts, for tests.
//!
//! Checked, each refusal a 401 with Pusher's kind of message: `auth_key` is the app's
//! key, `auth_version` is `1.0`, `auth_timestamp` is within 600 s of now, `body_md5` is
//! the MD5 of the body, and `auth_signature` is the hex HMAC-SHA256 under the app's
//! secret of `POST\n{path}\n{every other query parameter, sorted by name}`. Then the body:
//! JSON with `name` (at most 200 characters), `channels` (1 to 100 valid names) or
//! `channel`, and `data` a string of at most 10 KB (413 past it). Written from Pusher's
//! documentation, independently of callaudit's client.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use callaudit_sim::pusher::{PusherApp, spawn};
//! let (addr, sink) = spawn("127.0.0.1:0", PusherApp::new("1", "key", "secret")).await?;
//! println!("PUSHER_BASE_URL=http://{addr}");
//! let _accepted = sink.events();
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use serde_json::{Value, json};

/// Largest `data` Pusher accepts, bytes.
pub const MAX_DATA_BYTES: usize = 10_240;
/// How far `auth_timestamp` may be from now, seconds.
pub const MAX_CLOCK_SKEW_S: i64 = 600;

/// The app the endpoint signs for.
#[derive(Debug, Clone)]
pub struct PusherApp {
    /// App id (the path's `{app_id}`).
    pub app_id: String,
    /// Key (`auth_key`).
    pub key: String,
    /// Secret.
    pub secret: String,
}

impl PusherApp {
    /// An app.
    pub fn new(app_id: &str, key: &str, secret: &str) -> Self {
        Self {
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
        }
    }
}

/// One accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// Event name.
    pub name: String,
    /// Channels.
    pub channels: Vec<String>,
    /// `data`, parsed as JSON (a string that is not JSON is kept as a JSON string).
    pub data: Value,
}

/// A request refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// Status answered.
    pub status: u16,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Default)]
struct Inner {
    accepted: Vec<Accepted>,
    refused: Vec<Refused>,
    /// Requests still to answer with this status (before checking them).
    fail_next: Vec<u16>,
}

/// The running endpoint: what it accepted and refused.
#[derive(Debug, Clone)]
pub struct PusherSink {
    app: Arc<PusherApp>,
    inner: Arc<Mutex<Inner>>,
}

impl PusherSink {
    /// Events accepted so far, in order.
    pub fn events(&self) -> Vec<Accepted> {
        self.lock().accepted.clone()
    }

    /// Requests refused so far, in order.
    pub fn refused(&self) -> Vec<Refused> {
        self.lock().refused.clone()
    }

    /// The next `n` requests are answered `status` (e.g. 503) without being checked.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// The app it checks against.
    pub fn app(&self) -> &PusherApp {
        &self.app
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the endpoint on `addr` (port 0: any); returns its address and its records.
pub async fn spawn(addr: &str, app: PusherApp) -> std::io::Result<(SocketAddr, PusherSink)> {
    let acceptor = TcpListener::bind(addr.to_string()).into_acceptor().await?;
    let local = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| std::io::Error::other("no local address"))?;
    let sink = PusherSink {
        app: Arc::new(app),
        inner: Arc::default(),
    };
    let route = Route::new()
        .at("/apps/:app_id/events", poem::post(events))
        .data(sink.clone());
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(route).await;
    });
    Ok((local, sink))
}

#[handler]
async fn events(req: &Request, body: poem::Body, sink: Data<&PusherSink>) -> Response {
    let body = body.into_vec().await.unwrap_or_default();
    let forced = {
        let mut inner = sink.lock();
        (!inner.fail_next.is_empty()).then(|| inner.fail_next.remove(0))
    };
    let outcome = match forced {
        Some(status) => Err((status, format!("forced {status}"))),
        None => check(sink.app(), req, &body),
    };
    match outcome {
        Ok(accepted) => {
            sink.lock().accepted.push(accepted);
            answer(200, json!({}))
        }
        Err((status, reason)) => {
            sink.lock().refused.push(Refused {
                status,
                reason: reason.clone(),
            });
            answer(status, json!({"error": reason}))
        }
    }
}

fn answer(status: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

/// Checks one request as Pusher does; the accepted event, or the status and reason.
fn check(app: &PusherApp, req: &Request, body: &[u8]) -> Result<Accepted, (u16, String)> {
    let path = req.uri().path();
    if path != format!("/apps/{}/events", app.app_id) {
        return Err((404, format!("unknown app in {path}")));
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in req.uri().query().unwrap_or_default().split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            params.insert(k.to_ascii_lowercase(), v.to_string());
        }
    }
    let unauthorized = |why: &str| Err((401, why.to_string()));
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if param("auth_key") != app.key {
        return unauthorized("Unknown auth_key");
    }
    if param("auth_version") != "1.0" {
        return unauthorized("auth_version must be 1.0");
    }
    let now = chrono::Utc::now().timestamp();
    match param("auth_timestamp").parse::<i64>() {
        Ok(t) if (now - t).abs() <= MAX_CLOCK_SKEW_S => {}
        _ => return unauthorized("Timestamp expired: more than 600 s from the server's time"),
    }
    if param("body_md5") != md5_hex(body) {
        return unauthorized("body_md5 does not match the body");
    }
    let signed: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "auth_signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let to_sign = format!("POST\n{path}\n{}", signed.join("&"));
    let expected = hex::encode(hmac_sha256(app.secret.as_bytes(), to_sign.as_bytes()));
    if param("auth_signature") != expected {
        return unauthorized(
            "Invalid signature: you should have sent HmacSHA256Hex of the string to sign",
        );
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|_| (400, "body is not JSON".to_string()))?;
    let name = v["name"].as_str().unwrap_or_default();
    if name.is_empty() || name.chars().count() > 200 {
        return Err((400, "name must be 1 to 200 characters".into()));
    }
    let channels: Vec<String> = match (&v["channels"], &v["channel"]) {
        (Value::Array(cs), _) => cs
            .iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect(),
        (_, Value::String(c)) => vec![c.clone()],
        _ => vec![],
    };
    if channels.is_empty() || channels.len() > 100 || !channels.iter().all(|c| valid_channel(c)) {
        return Err((400, "channels must be 1 to 100 valid channel names".into()));
    }
    let Some(data) = v["data"].as_str() else {
        return Err((400, "data must be a string".into()));
    };
    if data.len() > MAX_DATA_BYTES {
        return Err((413, format!("data of {} bytes is over 10 KB", data.len())));
    }
    Ok(Accepted {
        name: name.to_string(),
        channels,
        data: serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string())),
    })
}

fn valid_channel(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 164
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=@,.;".contains(&b))
}

fn md5_hex(body: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(body))
}

/// HMAC-SHA256 (RFC 2104), for keys up to the 64-byte block.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pusher's worked example (HTTP API reference, "Worked authentication example").
    #[test]
    fn the_signature_of_pusher_s_worked_example_is_accepted_and_a_changed_one_is_not() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(md5_hex(body), "ec365a775a4cd0599faeb73354201b6f");
        let to_sign = "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
                       &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
        assert_eq!(
            hex::encode(hmac_sha256(b"7ad3773142a6692b25b8", to_sign.as_bytes())),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        assert_ne!(
            hex::encode(hmac_sha256(b"7ad3773142a6692b25b9", to_sign.as_bytes())),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }
}
