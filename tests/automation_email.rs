//! Automation e-mail end to end: a worker configured with `SMTP_*` (the real binary, the
//! real lettre client) e-mails each run's summary to the schedule's addresses through a
//! local SMTP sink speaking the protocol over TCP (`callaudit_sim::smtp`); without SMTP
//! the e-mail is recorded skipped and the worker says so once; a server refusing the
//! recipients leaves the e-mail failed and the run completed. Every delivery is read
//! back from `GET /api/automation/runs/{id}`.

use crate::audit_pipeline::Scenario;
use crate::support::*;
use callaudit_sim::smtp::{SmtpMessage, SmtpSink, SmtpSinkConfig};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "callaudit-mailer";
const PASS: &str = "smtp-pass-3f9a1c";
const FROM: &str = "audits@callaudit.test";

/// Days from 2026-11-02 (the simulator's first built-in sale day) to yesterday in
/// Europe/Paris, as `tests/automation.rs` computes them.
fn days_back_to_first_sale() -> i64 {
    let today_paris = (chrono::Utc::now() + chrono::Duration::hours(1)).date_naive();
    (today_paris - chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()).num_days()
}

async fn sink(config: SmtpSinkConfig) -> SmtpSink {
    SmtpSink::start("127.0.0.1:0", config)
        .await
        .expect("smtp sink")
}

fn authenticated() -> SmtpSinkConfig {
    SmtpSinkConfig {
        credentials: Some((USER.into(), PASS.into())),
        ..SmtpSinkConfig::default()
    }
}

/// A worker sending through `sink`, logging to `log`.
fn mailing_worker(sc: &Scenario, sink: &SmtpSink, log: &std::path::Path) -> ChildGuard {
    let port = sink.addr().port().to_string();
    sc.worker_logged(
        &[
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", port.as_str()),
            ("SMTP_USER", USER),
            ("SMTP_PASS", PASS),
            ("SMTP_FROM", FROM),
            ("SMTP_TIMEOUT_MS", "5000"),
        ],
        log,
    )
}

/// Creates a schedule (`selection`, addresses `emails`, `continueOnError`) and returns
/// its id.
async fn schedule_with(
    sc: &Scenario,
    config: &Value,
    selection: Value,
    emails: &[&str],
    continue_on_error: bool,
) -> uuid::Uuid {
    let (status, created) = sc
        .api
        .send(
            reqwest::Method::POST,
            "/api/automation/schedules",
            Some(&sc.manager),
            &json!({
                "name": "Mail MDP",
                "cron": "0 6 * * *",
                "enabled": false,
                "auditConfigId": config,
                "ficheSelection": selection,
                "controls": {"continueOnError": continue_on_error},
                "notifications": {"emails": emails}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().parse().unwrap()
}

/// [`schedule_with`] under `continueOnError`.
async fn schedule(sc: &Scenario, config: &Value, selection: Value, emails: &[&str]) -> uuid::Uuid {
    schedule_with(sc, config, selection, emails, true).await
}

/// Runs schedule `id` now; waits until `n` of its runs have ended and their workflows
/// closed (so their e-mail is in its end state: a failed attempt may still be retried
/// until then); returns the runs as the api shows them, oldest first.
async fn run_and_wait(sc: &Scenario, id: uuid::Uuid, n: usize) -> Vec<Value> {
    let (status, _) = sc
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/automation/schedules/{id}/run"),
            Some(&sc.manager),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let pool = sc.api.state.pool.clone();
    let runs = wait_for("the runs ended", Duration::from_secs(240), || {
        let pool = pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
            let (runs, _) = callaudit_db::automation::list_runs(&mut conn, Some(id), 10, 0)
                .await
                .ok()?;
            (runs.len() == n && runs.iter().all(|r| r.status != "running"))
                .then(|| runs.into_iter().rev().collect::<Vec<_>>())
        }
    })
    .await;
    let mut views = vec![];
    for run in runs {
        closed_history(sc, &run.workflow_id).await;
        let (status, view) = sc
            .api
            .get(
                &format!("/api/automation/runs/{}", run.id),
                Some(&sc.manager),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        views.push(view);
    }
    views
}

/// The history of the run's workflow once it has closed (its status no longer
/// running: a child's completion event in the history does not count).
async fn closed_history(sc: &Scenario, workflow_id: &str) -> String {
    let client = sc.api.state.temporal.client().await.unwrap();
    wait_for(
        "the run's workflow to close",
        Duration::from_secs(90),
        || {
            let client = client.clone();
            let wf = workflow_id.to_string();
            async move {
                let described = client
                    .get_workflow_handle::<temporalio_common::UntypedWorkflow>(wf.clone())
                    .describe(Default::default())
                    .await
                    .ok()?;
                let status = described
                    .raw_description
                    .workflow_execution_info
                    .as_ref()?
                    .status;
                // 1 is WORKFLOW_EXECUTION_STATUS_RUNNING.
                if status == 1 {
                    return None;
                }
                let h = crate::replay::fetch(&client, &wf, None).await;
                Some(String::from_utf8_lossy(&h).to_string())
            }
        },
    )
    .await
}

/// Quoted-printable (RFC 2045 §6.7) decoded, for a body lettre chose to encode so.
fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 body")
}

/// The decoded body of the message's part whose `Content-Type` starts with `mime`.
fn part(message: &SmtpMessage, mime: &str) -> String {
    let data = &message.data;
    let marker = format!("Content-Type: {mime}");
    let start = data
        .find(&marker)
        .unwrap_or_else(|| panic!("no {mime} part in {data}"));
    let rest = &data[start..];
    let (headers, body) = rest.split_once("\r\n\r\n").expect("part headers");
    let body = &body[..body.find("\r\n--").expect("part end")];
    let encoding = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
        .unwrap_or("7bit")
        .trim();
    match encoding {
        "7bit" | "8bit" => body.to_string(),
        "quoted-printable" => decode_qp(body),
        other => panic!("unexpected encoding {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_emails_its_summary_to_the_schedule_addresses_with_auth_and_records_it() {
    let sc = Scenario::new("auto_mail", callaudit_sim::SimConfig::default()).await;
    let smtp = sink(authenticated()).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let _w = mailing_worker(&sc, &smtp, &log);
    let config = sc.config(1).await;
    let id = schedule(
        &sc,
        &config,
        json!({"daysBack": days_back_to_first_sale(), "groupes": ["MDP"],
               "maxRecordingsPerFiche": 1}),
        &["ops@example.test", "qa.lead@example.test"],
    )
    .await;
    let runs = run_and_wait(&sc, id, 1).await;
    let run = &runs[0];
    assert_eq!(run["status"], "completed", "{run}");
    let history = closed_history(&sc, run["workflowId"].as_str().unwrap()).await;
    assert_eq!(
        history.matches("automation.notify_email").count(),
        1,
        "one e-mail activity scheduled in the run's history"
    );

    // Exactly one message, to both addresses, authenticated as the configured user.
    let got = smtp.messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = &got[0];
    assert_eq!(m.rcpt_to, ["ops@example.test", "qa.lead@example.test"]);
    assert_eq!(m.mail_from, FROM);
    assert_eq!(m.auth_user.as_deref(), Some(USER));
    assert_eq!(m.auth_mechanism.as_deref(), Some("PLAIN"));
    assert!(
        m.data.contains("Content-Type: multipart/alternative;"),
        "{}",
        m.data
    );
    assert!(
        m.data
            .contains("\r\nSubject: [callaudit] Mail MDP: run completed\r\n"),
        "{}",
        m.data
    );
    assert!(
        m.data
            .contains("\r\nTo: ops@example.test, qa.lead@example.test\r\n")
    );
    // The counts of the pinned run (tests/automation.rs): among the window's MDP sales,
    // FICHE-1002, FICHE-1009 and FICHE-1008 (one recording each) are selected and
    // audited; FICHE-1004 (2 recordings) and FICHE-1006 (3) are ignored.
    let text = part(m, "text/plain");
    for line in [
        "Automation \"Mail MDP\"",
        "Status: completed",
        "Selected: 3",
        "Ignored: 2",
        "Audited: 3",
        "Failed: 0",
        "- FICHE-1004: 2 recordings, above maxRecordingsPerFiche 1",
        "- FICHE-1006: 3 recordings, above maxRecordingsPerFiche 1",
        "Duration (total): ",
    ] {
        assert!(text.contains(line), "{line:?} in the text part:\n{text}");
    }
    let html = part(m, "text/html");
    for cell in [
        "<tr><th>Selected</th><td>3</td></tr>",
        "<tr><th>Ignored</th><td>2</td></tr>",
        "<tr><th>Audited</th><td>3</td></tr>",
        "<tr><th>Failed</th><td>0</td></tr>",
        "<li>FICHE-1004: 2 recordings, above maxRecordingsPerFiche 1</li>",
        "<li>FICHE-1006: 3 recordings, above maxRecordingsPerFiche 1</li>",
    ] {
        assert!(html.contains(cell), "{cell:?} in the html part:\n{html}");
    }
    for body in [&text, &html] {
        assert!(!body.contains("http"), "no link: {body}");
    }

    // Recorded on the run.
    let e = &run["emailDelivery"];
    assert_eq!(
        e["recipients"],
        json!(["ops@example.test", "qa.lead@example.test"])
    );
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("sent"), Some(1)),
        "{e}"
    );
    assert!(
        e["smtpResponse"]
            .as_str()
            .is_some_and(|r| r.starts_with("250 ")),
        "{e}"
    );
    assert_eq!(e["error"], Value::Null);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains(PASS), "SMTP_PASS in the worker log");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_runs_complete_with_the_email_recorded_skipped_and_logged_once() {
    let sc = Scenario::new("auto_nomail", callaudit_sim::SimConfig::default()).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let _w = sc.worker_logged(&[], &log);
    let config = sc.config(1).await;
    let id = schedule(
        &sc,
        &config,
        json!({"daysBack": 1, "groupes": ["NOBODY"]}),
        &["ops@example.test"],
    )
    .await;
    run_and_wait(&sc, id, 1).await;
    let runs = run_and_wait(&sc, id, 2).await;
    for run in &runs {
        assert_eq!(run["status"], "completed", "{run}");
        let e = &run["emailDelivery"];
        assert_eq!(
            (
                e["status"].as_str(),
                e["attempts"].as_i64(),
                e["error"].as_str()
            ),
            (
                Some("skipped"),
                Some(0),
                Some("SMTP is not configured (SMTP_HOST unset)")
            ),
            "{e}"
        );
        assert_eq!(e["recipients"], json!(["ops@example.test"]));
    }
    let logged = std::fs::read_to_string(&log).expect("worker log");
    assert_eq!(
        logged.matches("automation e-mails are skipped").count(),
        1,
        "said once for two runs:\n{logged}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_refusing_the_recipients_leaves_the_email_failed_and_the_run_completed() {
    let sc = Scenario::new("auto_mail550", callaudit_sim::SimConfig::default()).await;
    let smtp = sink(SmtpSinkConfig {
        reject_recipients: true,
        ..authenticated()
    })
    .await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let _w = mailing_worker(&sc, &smtp, &log);
    let config = sc.config(1).await;
    let id = schedule(
        &sc,
        &config,
        json!({"daysBack": 1, "groupes": ["NOBODY"]}),
        &["ops@example.test"],
    )
    .await;
    let runs = run_and_wait(&sc, id, 1).await;
    let run = &runs[0];
    assert_eq!(run["status"], "completed", "{run}");
    let e = &run["emailDelivery"];
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "a refusal is not retried: {e}"
    );
    let error = e["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("550") && error.contains("Recipient address rejected"),
        "{error}"
    );
    assert!(!error.contains(PASS));
    closed_history(&sc, run["workflowId"].as_str().unwrap()).await;
    assert!(smtp.messages().is_empty());
    assert_eq!(smtp.rcpt_commands(), 1, "one attempt, one RCPT");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("automation e-mail not sent"), "{logged}");
    assert!(!logged.contains(PASS), "SMTP_PASS in the worker log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_refusal_is_retried_and_the_email_sent_at_the_second_attempt() {
    let sc = Scenario::new("auto_mail451", callaudit_sim::SimConfig::default()).await;
    let smtp = sink(SmtpSinkConfig {
        transient_rcpt_failures: 1,
        ..authenticated()
    })
    .await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let _w = mailing_worker(&sc, &smtp, &log);
    let config = sc.config(1).await;
    let id = schedule(
        &sc,
        &config,
        json!({"daysBack": 1, "groupes": ["NOBODY"]}),
        &["ops@example.test"],
    )
    .await;
    let runs = run_and_wait(&sc, id, 1).await;
    let e = &runs[0]["emailDelivery"];
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("sent"), Some(2)),
        "{e}"
    );
    let got = smtp.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, ["ops@example.test"]);
    assert_eq!(smtp.rcpt_commands(), 2, "451, then accepted");
    // Nothing selected: the e-mail says so.
    assert!(part(&got[0], "text/plain").contains("Selected: 0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_could_inject_a_header_is_refused_on_write() {
    let sc = Scenario::new("auto_mailbad", callaudit_sim::SimConfig::default()).await;
    let config = sc.config(1).await;
    for (bad, why) in [
        ("ops@example.test\r\nBcc: all@evil.test", "'\\r'"),
        ("Ops<ops@example.test>", "'<'"),
        ("Ops <ops@example.test>", "' '"),
        ("ops@example.test, x@evil.test", "','"),
        ("no-at-sign", "no @"),
    ] {
        let (status, answer) = sc
            .api
            .send(
                reqwest::Method::POST,
                "/api/automation/schedules",
                Some(&sc.manager),
                &json!({
                    "name": "bad", "cron": "0 6 * * *", "enabled": false,
                    "auditConfigId": config, "ficheSelection": {"daysBack": 1},
                    "notifications": {"emails": ["fine@example.test", bad]}
                }),
            )
            .await;
        assert_eq!(status, 422, "{bad:?}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("notifications.emails[1]") && message.contains(why),
            "{bad:?}: {answer}"
        );
    }
    let mut conn = callaudit_db::pool::get(&sc.api.state.pool).await.unwrap();
    assert!(
        callaudit_db::automation::all(&mut conn)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_emailed_with_its_error() {
    let sc = Scenario::new("auto_mailfail", callaudit_sim::SimConfig::default()).await;
    let smtp = sink(authenticated()).await;
    let log = std::env::temp_dir().join(format!("callaudit-{}.log", sc.queue));
    let _w = mailing_worker(&sc, &smtp, &log);
    let config = sc.config(1).await;
    // The LLM now refuses the worker's key: the three audits fail, and without
    // continueOnError the run fails.
    crate::reruns::set_sim(
        &sc,
        json!({"expected_api_keys": {"crm": "sim-crm", "elevenlabs": "sim-stt", "openai": "another-key"}}),
    )
    .await;
    let id = schedule_with(
        &sc,
        &config,
        json!({"daysBack": days_back_to_first_sale(), "groupes": ["MDP"],
               "maxRecordingsPerFiche": 1}),
        &["ops@example.test"],
        false,
    )
    .await;
    let runs = run_and_wait(&sc, id, 1).await;
    assert_eq!(runs[0]["status"], "failed", "{}", runs[0]);
    assert_eq!(runs[0]["emailDelivery"]["status"], "sent", "{}", runs[0]);
    let got = smtp.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .data
            .contains("\r\nSubject: [callaudit] Mail MDP: run failed\r\n"),
        "{}",
        got[0].data
    );
    let text = part(&got[0], "text/plain");
    for line in [
        "Status: failed",
        "Error: 3 audit(s) failed and continueOnError is off",
        "Selected: 3",
        "Ignored: 2",
        "Audited: 0",
        "Failed: 3",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    let html = part(&got[0], "text/html");
    assert!(
        html.contains("<tr><th>Failed</th><td>3</td></tr>"),
        "{html}"
    );
}
