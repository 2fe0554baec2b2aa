//! SMTP client for automation e-mails (lettre's async tokio transport, rustls).
//!
//! `SMTP_SECURE=true` is TLS from the first byte (port 465); otherwise the connection
//! starts in clear and is upgraded with `STARTTLS` when the server offers it, as the
//! seed's mailer did. `AUTH` (PLAIN or LOGIN, whichever the server offers) uses
//! `SMTP_USER`/`SMTP_PASS` when both are set. One connection per message (no pool: a
//! run sends one message). The password is never in an error: lettre's errors carry the
//! server's answer, which is scrubbed of it anyway.

use callaudit_domain::secret::Secret;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// SMTP settings (`SMTP_*`).
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT`.
    pub port: u16,
    /// `SMTP_SECURE`: TLS from the start (else STARTTLS when offered).
    pub secure: bool,
    /// `SMTP_USER`.
    pub user: Option<String>,
    /// `SMTP_PASS`.
    pub pass: Option<Secret>,
    /// `SMTP_FROM` (`user@host` or `Name <user@host>`).
    pub from: String,
    /// `SMTP_TIMEOUT_MS`, per SMTP command.
    pub timeout: Duration,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The configuration or an address cannot make a message.
    #[error("invalid e-mail setting: {0}")]
    Config(String),
    /// The server refused for good (5xx) or the client cannot go on.
    #[error("the SMTP server refused the message: {0}")]
    Permanent(String),
    /// The server could not take it now (4xx), or could not be reached in time.
    #[error("the SMTP server could not take the message: {0}")]
    Transient(String),
}

impl SmtpError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SmtpError::Transient(_))
    }
}

/// A message to send: both parts of a `multipart/alternative`.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    /// Recipients (checked addresses).
    pub to: &'a [String],
    /// Subject.
    pub subject: &'a str,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
}

/// An SMTP client built from [`SmtpSettings`].
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    pass: Option<Secret>,
    /// Where it sends (host:port), for logs.
    pub relay: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The client of `settings` (nothing is connected until a message is sent).
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, SmtpError> {
        let from: Mailbox = settings
            .from
            .trim()
            .parse()
            .map_err(|e| SmtpError::Config(format!("SMTP_FROM {:?}: {e}", settings.from)))?;
        let tls_params = TlsParameters::new(settings.host.clone())
            .map_err(|e| SmtpError::Config(format!("TLS for {}: {e}", settings.host)))?;
        let tls = if settings.secure {
            Tls::Wrapper(tls_params)
        } else {
            Tls::Opportunistic(tls_params)
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        let pass = settings.pass.clone().filter(|p| !p.is_empty());
        if let (Some(user), Some(pass)) = (settings.user.as_deref(), pass.as_ref()) {
            builder = builder
                .credentials(Credentials::new(
                    user.to_string(),
                    pass.expose().to_string(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            pass,
            relay: format!("{}:{}", settings.host, settings.port),
        })
    }

    /// Sends `mail` (one SMTP transaction to every recipient); returns the server's
    /// answer to the message (`250 …`).
    pub async fn send(&self, mail: Mail<'_>) -> Result<String, SmtpError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject);
        for to in mail.to {
            let mailbox: Mailbox = to
                .parse()
                .map_err(|e| SmtpError::Config(format!("recipient {to:?}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| SmtpError::Config(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> SmtpError {
        let text = match &self.pass {
            Some(p) => p.scrub(&e.to_string()),
            None => e.to_string(),
        };
        if e.is_permanent() || e.is_client() {
            SmtpError::Permanent(text)
        } else {
            SmtpError::Transient(text)
        }
    }
}
