//! Outgoing webhooks and their SSRF guard. A webhook URL is accepted only when it is
//! `https` (plain `http` only for an origin listed in `WEBHOOK_ALLOWED_ORIGINS`), carries
//! no credentials, and its host — resolved here, never by a proxy — has only public
//! addresses: loopback, private, link-local (169.254.169.254 included), CGNAT,
//! multicast, broadcast/reserved, IPv6 unique-local and link-local, and IPv4-mapped
//! addresses are refused unless the origin is allowlisted. A delivery connects to the
//! address checked, so a name that resolves elsewhere the second time is not followed.
//! Names are resolved through the policy's [`Resolve`] (the system's resolver unless
//! one is given: tests give a [`HostsOverride`] to answer late with another address).

use reqwest::Url;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

/// The answer of a [`Resolve`].
pub type Resolved<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// How the guard resolves a webhook's host name. The guard checks whatever addresses
/// this answers, and a delivery connects to those: the resolver is the one place a name
/// becomes an address.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The addresses of `host` on `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolved<'a>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolved<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Names answered from a table that may change at any time (a name that resolves
/// elsewhere at delivery than when the schedule was written, in tests); other names go
/// to the system's resolver.
#[derive(Debug, Clone, Default)]
pub struct HostsOverride {
    table: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl HostsOverride {
    /// From now on `host` resolves to `addrs`.
    pub fn set(&self, host: &str, addrs: &[IpAddr]) {
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_ascii_lowercase(), addrs.to_vec());
    }
}

impl Resolve for HostsOverride {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolved<'a> {
        let fixed = self
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&host.to_ascii_lowercase())
            .cloned();
        match fixed {
            Some(ips) => Box::pin(async move {
                Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect())
            }),
            None => SystemResolver.resolve(host, port),
        }
    }
}

/// Which origins may be reached despite the address rules (`WEBHOOK_ALLOWED_ORIGINS`),
/// and how names are resolved.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    origins: Vec<String>,
    resolver: Arc<dyn Resolve>,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl WebhookPolicy {
    /// A policy allowing `origins` (`scheme://host[:port]`; entries that are not URLs
    /// are ignored).
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Self {
        let origins = origins
            .iter()
            .filter_map(|o| Url::parse(o.as_ref().trim()).ok())
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .collect();
        Self {
            origins,
            ..Self::default()
        }
    }

    /// The same policy resolving names with `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Whether `url`'s origin is allowlisted.
    pub fn allows(&self, url: &Url) -> bool {
        let origin = url.origin().ascii_serialization();
        self.origins.contains(&origin)
    }
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Not an absolute URL.
    #[error("the webhook URL is not a valid absolute URL: {0}")]
    Invalid(String),
    /// Neither https nor an allowlisted http origin.
    #[error("the webhook URL must use https (http only for an origin in WEBHOOK_ALLOWED_ORIGINS)")]
    Scheme,
    /// User name or password in the URL.
    #[error("the webhook URL must not carry credentials")]
    Credentials,
    /// The host could not be resolved.
    #[error("the webhook host {host} could not be resolved: {reason}")]
    Unresolved {
        /// Host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The host resolves to an address that is not public.
    #[error("the webhook host {host} resolves to {addr}, a non-public address")]
    Forbidden {
        /// Host name.
        host: String,
        /// The refused address.
        addr: IpAddr,
    },
}

/// A URL that passed the guard, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    /// The URL.
    pub url: Url,
    /// Its host's addresses, all checked.
    pub addrs: Vec<SocketAddr>,
}

/// Checks `raw` against the rules and `policy`, resolving its host.
pub async fn check(raw: &str, policy: &WebhookPolicy) -> Result<CheckedUrl, WebhookUrlError> {
    let url = Url::parse(raw.trim()).map_err(|e| WebhookUrlError::Invalid(e.to_string()))?;
    let allowlisted = policy.allows(&url);
    match url.scheme() {
        "https" => {}
        "http" if allowlisted => {}
        _ => return Err(WebhookUrlError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookUrlError::Credentials);
    }
    let host = url
        .host_str()
        .ok_or_else(|| WebhookUrlError::Invalid("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| WebhookUrlError::Invalid("no port".into()))?;
    let addrs: Vec<SocketAddr> =
        match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => policy.resolver.resolve(&host, port).await.map_err(|e| {
                WebhookUrlError::Unresolved {
                    host: host.clone(),
                    reason: e.to_string(),
                }
            })?,
        };
    if addrs.is_empty() {
        return Err(WebhookUrlError::Unresolved {
            host,
            reason: "no address".into(),
        });
    }
    if !allowlisted && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(WebhookUrlError::Forbidden {
            host,
            addr: bad.ip(),
        });
    }
    Ok(CheckedUrl { url, addrs })
}

/// Whether `ip` is an address a webhook must never reach (unless allowlisted).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..=127).contains(&b))
        || ip.is_multicast()
        || a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || ip.is_documentation()
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7.
        || (seg[0] & 0xfe00) == 0xfc00
        // Link-local fe80::/10 and the old site-local fec0::/10.
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xffc0) == 0xfec0
        // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96.
        || ip.to_ipv4_mapped().is_some()
        || (seg[..6].iter().all(|s| *s == 0))
        // NAT64 64:ff9b::/96 and documentation 2001:db8::/32.
        || (seg[0] == 0x64 && seg[1] == 0xff9b)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> WebhookUrlError {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check(raw, &WebhookPolicy::default()))
            .expect_err(raw)
    }

    #[test]
    fn non_public_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:8.8.8.8",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_refused_with_their_reason() {
        assert_eq!(refused("http://8.8.8.8/hook"), WebhookUrlError::Scheme);
        assert_eq!(refused("ftp://8.8.8.8/hook"), WebhookUrlError::Scheme);
        assert_eq!(
            refused("https://user:pw@8.8.8.8/hook"),
            WebhookUrlError::Credentials
        );
        for raw in ["https://user@8.8.8.8/hook", "https://:pw@8.8.8.8/hook"] {
            assert_eq!(refused(raw), WebhookUrlError::Credentials, "{raw}");
        }
        assert!(matches!(refused("not a url"), WebhookUrlError::Invalid(_)));
        for (raw, addr) in [
            ("https://127.0.0.1/hook", "127.0.0.1"),
            ("https://10.0.0.5:8443/hook", "10.0.0.5"),
            (
                "https://169.254.169.254/latest/meta-data",
                "169.254.169.254",
            ),
            ("https://[::1]/hook", "::1"),
            ("https://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),
            ("https://localhost/hook", "127.0.0.1"),
        ] {
            match refused(raw) {
                WebhookUrlError::Forbidden { addr: got, .. } => {
                    // `localhost` may resolve to ::1 first.
                    assert!(got.to_string() == addr || got.is_loopback(), "{raw}: {got}");
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_address_a_name_resolves_to_is_checked() {
        let hosts = HostsOverride::default();
        let policy = WebhookPolicy::default().with_resolver(Arc::new(hosts.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        hosts.set("Hooks.Example.TEST", &[public]);
        let ok = rt
            .block_on(check("https://hooks.example.test/x", &policy))
            .unwrap();
        assert_eq!(ok.addrs, vec![SocketAddr::new(public, 443)]);
        // One bad address among good ones is enough to refuse.
        for bad in ["10.0.0.7", "169.254.169.254", "fd00::1", "::ffff:127.0.0.1"] {
            hosts.set("hooks.example.test", &[public, bad.parse().unwrap()]);
            match rt.block_on(check("https://hooks.example.test/x", &policy)) {
                Err(WebhookUrlError::Forbidden { addr, .. }) => assert_eq!(addr.to_string(), bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
        hosts.set("hooks.example.test", &[]);
        assert!(matches!(
            rt.block_on(check("https://hooks.example.test/x", &policy)),
            Err(WebhookUrlError::Unresolved { .. })
        ));
    }

    #[test]
    fn an_allowlisted_origin_may_use_http_and_a_local_address() {
        let policy = WebhookPolicy::new(&["http://127.0.0.1:9999", "garbage"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ok = rt
            .block_on(check("http://127.0.0.1:9999/hook", &policy))
            .unwrap();
        assert_eq!(ok.addrs, vec!["127.0.0.1:9999".parse().unwrap()]);
        // Another port of the same host is another origin.
        assert!(matches!(
            rt.block_on(check("http://127.0.0.1:9998/hook", &policy)),
            Err(WebhookUrlError::Scheme)
        ));
        assert!(matches!(
            rt.block_on(check("https://127.0.0.1:9998/hook", &policy)),
            Err(WebhookUrlError::Forbidden { .. })
        ));
    }
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `X-Callaudit-Signature` of a delivery: `sha256=` and the hex HMAC-SHA256, under
/// the schedule's secret, of `{timestamp}.{body}` (the timestamp is sent as
/// `X-Callaudit-Timestamp`, Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

/// Largest response body read from a receiver.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// The URL was refused by the guard: nothing was sent.
    Refused(String),
    /// The receiver answered otherwise, or could not be reached (retry).
    Failed {
        /// Its status, if it answered.
        status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// Sends `body` to `url` once: checked by the guard, connected to the checked address
/// (the name is not resolved again), no proxy, no redirect followed, 10 s in all, at most
/// [`MAX_RESPONSE_BYTES`] of the answer read.
pub async fn deliver(
    url: &str,
    policy: &WebhookPolicy,
    secret: &str,
    timestamp: i64,
    body: Vec<u8>,
) -> Delivery {
    let checked = match check(url, policy).await {
        Ok(c) => c,
        Err(e) => return Delivery::Refused(e.to_string()),
    };
    let host = checked.url.host_str().unwrap_or_default().to_string();
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .resolve_to_addrs(&host, &checked.addrs)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Delivery::Failed {
                status: None,
                error: e.to_string(),
            };
        }
    };
    let sent = client
        .post(checked.url)
        .header("content-type", "application/json")
        .header("x-callaudit-timestamp", timestamp.to_string())
        .header("x-callaudit-signature", signature(secret, timestamp, &body))
        .body(body)
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Delivery::Failed {
                status: None,
                error: e.without_url().to_string(),
            };
        }
    };
    let status = resp.status().as_u16();
    // Read (and drop) at most the cap of the answer.
    let mut read = 0usize;
    while read < MAX_RESPONSE_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => read += c.len(),
            _ => break,
        }
    }
    if resp.status().is_success() {
        Delivery::Delivered { status }
    } else if resp.status().is_redirection() {
        let to: String = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| format!(" to {}", l.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        Delivery::Failed {
            status: Some(status),
            error: format!(
                "the receiver answered {status}, a redirect{to}: redirects are not followed"
            ),
        }
    } else {
        Delivery::Failed {
            status: Some(status),
            error: format!("the receiver answered {status}"),
        }
    }
}

#[cfg(test)]
mod signing_tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
