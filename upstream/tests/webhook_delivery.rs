//! Webhook deliveries through the real delivery path (`webhook::deliver`: the guard, the
//! connection to the checked address, no redirect followed) against local TCP
//! receivers that count every connection they accept.

use callaudit_upstream::webhook::{Delivery, HostsOverride, WebhookPolicy, check, deliver};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A local receiver: counts accepted connections and bytes read; answers `answer`
/// (a whole HTTP/1.1 response) to each request, when given.
struct Receiver {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

async fn receiver(answer: Option<String>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (a, b) = (accepts.clone(), bytes.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (b, answer) = (b.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    b.fetch_add(n, Ordering::SeqCst);
                    seen.extend_from_slice(&buf[..n]);
                    if let (Some(answer), Some(end)) =
                        (&answer, seen.windows(4).position(|w| w == b"\r\n\r\n"))
                    {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            let _ = stream.write_all(answer.as_bytes()).await;
                            break;
                        }
                    }
                }
            });
        }
    });
    Receiver {
        addr,
        accepts,
        bytes,
    }
}

impl Receiver {
    /// Connections accepted before now: connects once more itself and waits until that
    /// probe is accepted (accepts are in order), then leaves it out.
    async fn accepted_before_probe(&self) -> usize {
        let before = self.accepts.load(Ordering::SeqCst);
        let _probe = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.accepts.load(Ordering::SeqCst);
            if now > before {
                return now - 1;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "probe never accepted"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn redirect(status: &str, location: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn a_redirect_from_an_allowed_origin_to_a_local_address_is_not_followed() {
    for status in ["302 Found", "307 Temporary Redirect"] {
        let target = receiver(Some(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into(),
        ))
        .await;
        let location = format!("http://127.0.0.1:{}/steal", target.addr.port());
        let hook = receiver(Some(redirect(status, &location))).await;
        let origin = format!("http://127.0.0.1:{}", hook.addr.port());
        // Only the redirecting receiver's origin is allowlisted.
        let policy = WebhookPolicy::new(std::slice::from_ref(&origin));
        let outcome = deliver(
            &format!("{origin}/hook"),
            &policy,
            "secret",
            1_700_000_000,
            br#"{"event":"automation/completed"}"#.to_vec(),
        )
        .await;
        let code: u16 = status[..3].parse().unwrap();
        match &outcome {
            Delivery::Failed {
                status: Some(s),
                error,
            } => {
                assert_eq!(*s, code);
                assert!(
                    error.contains("redirects are not followed") && error.contains(&location),
                    "{error}"
                );
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(
            hook.accepted_before_probe().await,
            1,
            "the hook got the POST"
        );
        assert_eq!(
            target.accepted_before_probe().await,
            0,
            "{status}: the redirect target was connected to"
        );
        assert_eq!(target.bytes.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn a_name_answering_a_local_address_at_delivery_is_refused_and_never_connected() {
    let local = receiver(Some(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into(),
    ))
    .await;
    let hosts = HostsOverride::default();
    let policy = WebhookPolicy::default().with_resolver(Arc::new(hosts.clone()));
    let url = format!("https://hooks.example.test:{}/hook", local.addr.port());
    // When the schedule is written the name resolves to a public address…
    let public: IpAddr = "93.184.216.34".parse().unwrap();
    hosts.set("hooks.example.test", &[public]);
    let written = check(&url, &policy).await.expect("accepted on write");
    assert_eq!(
        written.addrs,
        vec![SocketAddr::new(public, local.addr.port())]
    );
    // …and to loopback when the run delivers.
    hosts.set("hooks.example.test", &["127.0.0.1".parse().unwrap()]);
    let outcome = deliver(&url, &policy, "secret", 1_700_000_000, b"{}".to_vec()).await;
    match &outcome {
        Delivery::Refused(reason) => assert!(
            reason.contains("hooks.example.test")
                && reason.contains("127.0.0.1")
                && reason.contains("non-public"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(local.accepted_before_probe().await, 0, "never connected");
    assert_eq!(local.bytes.load(Ordering::SeqCst), 0);
}
