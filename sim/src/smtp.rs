//! A local SMTP sink: a small real SMTP server over TCP (RFC 5321 — `EHLO`/`HELO`,
//! `AUTH PLAIN` and `AUTH LOGIN` (RFC 4954, 4616), `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-unstuffing, `RSET`, `NOOP`, `QUIT`) that stores every message it accepts, so the
//! worker's real SMTP client can be pointed at it (`SMTP_HOST=127.0.0.1`,
//! `SMTP_PORT=<its port>`). It offers no STARTTLS: a client set for opportunistic TLS
//! goes on in clear, as against a relay without TLS.
//!
//! What it refuses is configurable ([`SmtpSinkConfig`]): wrong credentials (535), mail
//! without authentication when credentials are set (530), every recipient (550, a
//! permanent refusal) or the first few `RCPT`s (451, a transient one).

use std::net::SocketAddr;
use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicU32, AtomicU64, Ordering},
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the sink accepts.
#[derive(Debug, Clone, Default)]
pub struct SmtpSinkConfig {
    /// `(user, password)` the sink accepts; when set, mail without `AUTH` is refused (530).
    pub credentials: Option<(String, String)>,
    /// Every `RCPT TO` answered `550 5.1.1` (a permanent refusal).
    pub reject_recipients: bool,
    /// The first this many `RCPT TO`s answered `451 4.3.0` (a transient refusal).
    pub transient_rcpt_failures: u32,
    /// Only `AUTH LOGIN` is offered (and `AUTH PLAIN` answered 504).
    pub login_only: bool,
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpMessage {
    /// The `AUTH` mechanism used (`PLAIN`, `LOGIN`), if any.
    pub auth_mechanism: Option<String>,
    /// The user authenticated, if any.
    pub auth_user: Option<String>,
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses accepted.
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, CRLF line ends, unstuffed).
    pub data: String,
}

#[derive(Debug, Default)]
struct Shared {
    config: SmtpSinkConfig,
    messages: Mutex<Vec<SmtpMessage>>,
    connections: AtomicU64,
    rcpt_commands: AtomicU64,
    transient_left: AtomicU32,
}

/// A running sink (it stops with the runtime that started it).
#[derive(Debug, Clone)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpSink {
    /// Listens on `bind` (e.g. `127.0.0.1:0`) and serves every connection.
    pub async fn start(bind: &str, config: SmtpSinkConfig) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            transient_left: AtomicU32::new(config.transient_rcpt_failures),
            config,
            ..Shared::default()
        });
        let serving = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serving.connections.fetch_add(1, Ordering::SeqCst);
                let shared = serving.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &shared).await {
                        tracing::debug!(error = %e, "smtp sink session ended");
                    }
                });
            }
        });
        Ok(SmtpSink { addr, shared })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The messages accepted so far, in order.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.shared
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// `RCPT TO` commands received so far (accepted or not).
    pub fn rcpt_commands(&self) -> u64 {
        self.shared.rcpt_commands.load(Ordering::SeqCst)
    }
}

/// The transaction being built.
#[derive(Debug, Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

/// The address between `<` and `>` after `prefix` (case-insensitive), parameters dropped.
fn path_arg(line: &str, prefix: &str) -> Option<String> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 callaudit-sim ESMTP sink\r\n").await?;
    let mut auth: Option<(String, String)> = None;
    let mut tx = Transaction::default();
    loop {
        let Some(line) = read_line(&mut lines).await? else {
            return Ok(());
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => format!(
                "250-callaudit-sim\r\n250-AUTH {}\r\n250-8BITMIME\r\n250 SIZE 10485760",
                if shared.config.login_only {
                    "LOGIN"
                } else {
                    "PLAIN LOGIN"
                }
            ),
            "HELO" => "250 callaudit-sim".into(),
            "NOOP" => "250 2.0.0 Ok".into(),
            "RSET" => {
                tx = Transaction::default();
                "250 2.0.0 Ok".into()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "AUTH" => {
                let mut words = line.split_whitespace().skip(1);
                let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
                let initial = words.next().map(str::to_string);
                let got = match mechanism.as_str() {
                    "PLAIN" if !shared.config.login_only => {
                        let answer = match initial {
                            Some(a) => a,
                            None => prompt(&mut write, &mut lines, "334 ").await?,
                        };
                        decode_base64(&answer).and_then(|raw| {
                            let mut parts = raw.split(|b| *b == 0).skip(1);
                            let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
                            let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
                            Some((user, pass))
                        })
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(u) => u,
                            None => prompt(&mut write, &mut lines, "334 VXNlcm5hbWU6").await?,
                        };
                        let pass = prompt(&mut write, &mut lines, "334 UGFzc3dvcmQ6").await?;
                        let text =
                            |b: &str| decode_base64(b).and_then(|raw| String::from_utf8(raw).ok());
                        text(&user).zip(text(&pass))
                    }
                    _ => {
                        write
                            .write_all(b"504 5.5.4 Unrecognized authentication type\r\n")
                            .await?;
                        continue;
                    }
                };
                match (got, &shared.config.credentials) {
                    (Some((user, pass)), Some((u, p))) if &user == u && &pass == p => {
                        auth = Some((mechanism, user));
                        "235 2.7.0 Authentication successful".into()
                    }
                    (Some((user, _)), None) => {
                        auth = Some((mechanism, user));
                        "235 2.7.0 Authentication successful".into()
                    }
                    _ => "535 5.7.8 Authentication credentials invalid".into(),
                }
            }
            "MAIL" => match path_arg(&line, "MAIL FROM:") {
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                Some(_) if shared.config.credentials.is_some() && auth.is_none() => {
                    "530 5.7.0 Authentication required".into()
                }
                Some(from) => {
                    tx = Transaction {
                        mail_from: Some(from),
                        rcpt_to: vec![],
                    };
                    "250 2.1.0 Ok".into()
                }
            },
            "RCPT" => {
                shared.rcpt_commands.fetch_add(1, Ordering::SeqCst);
                match path_arg(&line, "RCPT TO:") {
                    None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                    Some(_) if tx.mail_from.is_none() => "503 5.5.1 Need MAIL first".into(),
                    Some(to) if shared.config.reject_recipients => {
                        format!("550 5.1.1 <{to}>: Recipient address rejected")
                    }
                    Some(_)
                        if shared
                            .transient_left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok() =>
                    {
                        "451 4.3.0 Try again later".into()
                    }
                    Some(to) => {
                        tx.rcpt_to.push(to);
                        "250 2.1.5 Ok".into()
                    }
                }
            }
            "DATA" => {
                if tx.rcpt_to.is_empty() {
                    "554 5.5.1 No valid recipients".into()
                } else {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    loop {
                        let Some(l) = read_line(&mut lines).await? else {
                            return Ok(());
                        };
                        if l == "." {
                            break;
                        }
                        // Dot-unstuffing (RFC 5321 §4.5.2).
                        data.push_str(l.strip_prefix('.').unwrap_or(&l));
                        data.push_str("\r\n");
                    }
                    let message = SmtpMessage {
                        auth_mechanism: auth.as_ref().map(|(m, _)| m.clone()),
                        auth_user: auth.as_ref().map(|(_, u)| u.clone()),
                        mail_from: tx.mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut tx.rcpt_to),
                        data,
                    };
                    let mut stored = shared
                        .messages
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    stored.push(message);
                    format!("250 2.0.0 Ok: queued as {}", stored.len())
                }
            }
            _ => "500 5.5.2 Command not recognized".into(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

/// Sends `prompt` and reads the client's answer line.
async fn prompt(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    prompt: &str,
) -> std::io::Result<String> {
    write.write_all(prompt.as_bytes()).await?;
    write.write_all(b"\r\n").await?;
    Ok(read_line(lines).await?.unwrap_or_default())
}

/// One line without its CRLF; `None` at the end of the stream. Lines are capped at
/// 64 KiB (RFC 5321 allows 1000 octets).
async fn read_line(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *lines)
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Standard base64 (RFC 4648 §4), padding optional; `None` on a bad character.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_rfc_4648_says() {
        // RFC 4648 §10 test vectors.
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode_base64(enc).unwrap(), dec.as_bytes(), "{enc}");
        }
        assert_eq!(decode_base64("AGJvYgBzM2NyM3Q=").unwrap(), b"\0bob\0s3cr3t");
        assert!(decode_base64("no!").is_none());
    }

    #[test]
    fn paths_are_read_between_angle_brackets() {
        assert_eq!(
            path_arg("MAIL FROM:<a@b.test> SIZE=12", "MAIL FROM:").as_deref(),
            Some("a@b.test")
        );
        assert_eq!(
            path_arg("rcpt to: <c@d.test>", "RCPT TO:").as_deref(),
            Some("c@d.test")
        );
        assert_eq!(path_arg("RCPT TO:c@d.test", "RCPT TO:"), None);
    }
}
