//! The SMTP client (`upstream::smtp::Mailer`, lettre) against the simulator's SMTP sink
//! over TCP: AUTH LOGIN when that is all the server offers, a refused password as a
//! permanent error that does not carry it, an unreachable server as a transient one, a
//! bad sender refused before anything is sent.

use callaudit_domain::secret::Secret;
use callaudit_sim::smtp::{SmtpSink, SmtpSinkConfig};
use callaudit_upstream::smtp::{Mail, Mailer, SmtpError, SmtpSettings};
use std::time::Duration;

const PASS: &str = "p4ss-w0rd-7d1e";

fn settings(port: u16, pass: &str) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        secure: false,
        user: Some("mailer".into()),
        pass: Some(Secret::normalized(pass)),
        from: "Callaudit <audits@callaudit.test>".into(),
        timeout: Duration::from_secs(5),
    }
}

fn mail(to: &[String]) -> Mail<'_> {
    Mail {
        to,
        subject: "[callaudit] test",
        text: "Selected: 1\n".into(),
        html: "<p>Selected: 1</p>\n".into(),
    }
}

async fn sink(login_only: bool) -> SmtpSink {
    SmtpSink::start(
        "127.0.0.1:0",
        SmtpSinkConfig {
            credentials: Some(("mailer".into(), PASS.into())),
            login_only,
            ..SmtpSinkConfig::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn auth_login_is_used_when_it_is_all_the_server_offers() {
    let sink = sink(true).await;
    let mailer = Mailer::new(&settings(sink.addr().port(), PASS)).unwrap();
    let to = vec!["ops@example.test".to_string()];
    let answer = mailer.send(mail(&to)).await.expect("sent");
    assert!(answer.starts_with("250 "), "{answer}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_mechanism.as_deref(), Some("LOGIN"));
    assert_eq!(got[0].auth_user.as_deref(), Some("mailer"));
    assert_eq!(got[0].mail_from, "audits@callaudit.test");
    assert!(got[0].data.contains("Content-Type: multipart/alternative;"));
    assert!(got[0].data.contains("Content-Type: text/plain"));
    assert!(got[0].data.contains("Content-Type: text/html"));
}

#[tokio::test]
async fn a_refused_password_is_permanent_and_never_in_the_error() {
    let sink = sink(false).await;
    let wrong = "wr0ng-pass-91ab";
    let mailer = Mailer::new(&settings(sink.addr().port(), wrong)).unwrap();
    let to = vec!["ops@example.test".to_string()];
    let err = mailer.send(mail(&to)).await.expect_err("refused");
    assert!(matches!(err, SmtpError::Permanent(_)), "{err:?}");
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("535"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!format!("{mailer:?}").contains(wrong));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mailer = Mailer::new(&settings(port, PASS)).unwrap();
    let to = vec!["ops@example.test".to_string()];
    let err = mailer.send(mail(&to)).await.expect_err("nobody listens");
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn a_bad_sender_or_recipient_is_refused_before_sending() {
    let mut s = settings(25, PASS);
    s.from = "not an address".into();
    assert!(matches!(Mailer::new(&s), Err(SmtpError::Config(_))));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mailer = Mailer::new(&settings(9, PASS)).unwrap();
    let to = vec!["ops@example.test\r\nBcc: x@evil.test".to_string()];
    assert!(matches!(
        rt.block_on(mailer.send(mail(&to))),
        Err(SmtpError::Config(_))
    ));
}
