//! `automation.notify_email`: the e-mail summary of an ended automation run, sent over
//! SMTP to its schedule's addresses (`notifications.emails`, checked when the schedule
//! was written) and recorded on the run (`automation_email_deliveries`: attempts,
//! outcome). Without SMTP configured the delivery is recorded `skipped`, and the worker
//! says so in its log once, not once per run.

use crate::state::{WorkerActivities, permanent, retryable};
use callaudit_db::automation as db;
use callaudit_db::automation_email::{self as emails, EmailAttempt};
use callaudit_domain::automation::Notifications;
use callaudit_domain::automation_email::{NotifyEmailInput, RunReport, SummaryFacts, render};
use callaudit_upstream::smtp::{Mail, Mailer};
use std::sync::atomic::{AtomicBool, Ordering};
use temporalio_common::ActivityError;
use uuid::Uuid;

/// Why an e-mail was skipped.
pub const SMTP_NOT_CONFIGURED: &str = "SMTP is not configured (SMTP_HOST unset)";

/// The worker's SMTP client, if configured, and whether its absence was logged.
#[derive(Debug, Default)]
pub struct AutomationMail {
    mailer: Option<Mailer>,
    skip_logged: AtomicBool,
}

impl AutomationMail {
    /// E-mails sent through `mailer` (none: skipped).
    pub fn new(mailer: Option<Mailer>) -> Self {
        Self {
            mailer,
            skip_logged: AtomicBool::new(false),
        }
    }

    /// Logs, the first time only, that e-mails are skipped.
    fn log_skip_once(&self) {
        if !self.skip_logged.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "{SMTP_NOT_CONFIGURED}: automation e-mails are skipped and recorded as such (said once per worker)"
            );
        }
    }
}

impl WorkerActivities {
    /// `automation.notify_email`: one attempt (a message already sent is not sent
    /// again). A refusal (5xx, a bad address) is recorded `failed` and not retried; a
    /// transient failure (4xx, connection, timeout) is recorded `failed` and retried by
    /// the activity's policy.
    #[tracing::instrument(name = "automation.notify_email", skip_all, fields(run.id = %input.run_id, attempt))]
    pub(crate) async fn notify_email(
        &self,
        attempt: u32,
        input: NotifyEmailInput,
    ) -> Result<String, ActivityError> {
        let run_id = Uuid::parse_str(&input.run_id)
            .map_err(|_| permanent(format!("invalid run id {}", input.run_id)))?;
        let mut conn = self.conn().await?;
        let run = db::get_run(&mut conn, run_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("automation run {run_id} not found")))?;
        let schedule = db::get(&mut conn, run.schedule_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| {
                permanent(format!("automation schedule {} not found", run.schedule_id))
            })?;
        let notifications: Notifications =
            serde_json::from_value(schedule.notifications.clone()).unwrap_or_default();
        let to = notifications.emails;
        if to.is_empty() {
            return Ok("none".into());
        }
        if emails::of_run(&mut conn, run_id)
            .await
            .map_err(retryable)?
            .is_some_and(|d| d.status == "sent")
        {
            return Ok("sent".into());
        }
        let attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
        let record = EmailAttempt {
            run_id,
            recipients: &to,
            status: "failed",
            attempts,
            smtp_response: None,
            error: None,
        };
        let Some(mailer) = &self.mail.mailer else {
            self.mail.log_skip_once();
            let skipped = EmailAttempt {
                status: "skipped",
                attempts: 0,
                error: Some(SMTP_NOT_CONFIGURED),
                ..record
            };
            emails::record(&mut conn, &skipped)
                .await
                .map_err(retryable)?;
            return Ok("skipped".into());
        };
        let email = render(&RunReport {
            schedule_name: schedule.name.clone(),
            run_id: run_id.to_string(),
            status: run.status.clone(),
            error: run.error.clone(),
            scheduled_at: run.scheduled_at,
            summary: serde_json::from_value::<SummaryFacts>(run.result_summary.clone())
                .unwrap_or_default(),
        });
        drop(conn);
        let sent = mailer
            .send(Mail {
                to: &to,
                subject: &email.subject,
                text: email.text,
                html: email.html,
            })
            .await;
        let mut conn = self.conn().await?;
        match sent {
            Ok(answer) => {
                let done = EmailAttempt {
                    status: "sent",
                    smtp_response: Some(answer.as_str()),
                    ..record
                };
                emails::record(&mut conn, &done).await.map_err(retryable)?;
                tracing::info!(
                    recipients = to.len(),
                    relay = %mailer.relay,
                    "automation e-mail sent"
                );
                Ok("sent".into())
            }
            Err(e) => {
                let reason = e.to_string();
                let failed = EmailAttempt {
                    error: Some(reason.as_str()),
                    ..record
                };
                emails::record(&mut conn, &failed)
                    .await
                    .map_err(retryable)?;
                tracing::warn!(error = %reason, retryable = e.is_retryable(), "automation e-mail not sent");
                Err(if e.is_retryable() {
                    retryable(reason)
                } else {
                    permanent(reason)
                })
            }
        }
    }
}
