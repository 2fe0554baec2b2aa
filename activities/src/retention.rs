//! `retention.purge`: what is older than the retention limits goes, in bounded batches,
//! and one `personal_data.purged` event says what went.

use crate::heartbeat::heartbeating;
use crate::state::{WorkerActivities, retryable};
use callaudit_db::personal_data::{self as store, Access, Cutoffs};
use callaudit_domain::events::DomainEvent;
use callaudit_domain::personal_data::{PersonalDataEvent, Removed, RetentionRun, redact_texts};
use callaudit_domain::pii::Redactor;
use chrono::{Duration, Utc};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

/// Rows of each kind purged per transaction.
const BATCH: i64 = 500;

fn cutoff(days: Option<u32>) -> Option<chrono::DateTime<Utc>> {
    days.map(|d| Utc::now() - Duration::days(i64::from(d)))
}

impl WorkerActivities {
    /// Purges, batch after batch until nothing older than the limits is left, and
    /// announces the totals once (by the run's id).
    #[tracing::instrument(name = "retention.purge", skip_all, fields(run = %input.run))]
    pub(crate) async fn purge_old_personal_data(
        &self,
        ctx: &ActivityContext,
        input: RetentionRun,
    ) -> Result<Removed, ActivityError> {
        let cutoffs = Cutoffs {
            transcripts: cutoff(input.limits.transcripts_days),
            chat: cutoff(input.limits.chat_days),
            audio_urls: cutoff(input.limits.audio_urls_days),
        };
        let mut total = Removed::default();
        loop {
            let mut conn = self.conn().await?;
            // Citations of audits whose transcripts go keep their words, not the personal
            // values in them.
            let redact = |v: &mut serde_json::Value| redact_texts(v, &mut Redactor::new());
            let round = heartbeating(ctx, store::purge(&mut conn, cutoffs, BATCH, &redact))
                .await
                .map_err(retryable)?;
            total.transcripts += round.transcripts;
            total.chat_messages += round.chat_messages;
            total.audio_urls += round.audio_urls;
            total.step_results += round.step_results;
            if round.transcripts + round.chat_messages + round.audio_urls == 0 {
                break;
            }
        }
        tracing::info!(
            transcripts = total.transcripts,
            chat_messages = total.chat_messages,
            audio_urls = total.audio_urls,
            step_results = total.step_results,
            "retention purge done"
        );
        let event = PersonalDataEvent::Purged {
            run: input.run.clone(),
            removed: total,
        };
        let mut conn = self.conn().await?;
        // Once per run (a retried activity finds its event and logs nothing more).
        if callaudit_db::events::publish(
            &mut conn,
            &event.topic(),
            event.kind(),
            &event.payload(),
            Some(&event.dedupe_key()),
        )
        .await
        .map_err(retryable)?
        .is_some()
        {
            store::log_access(
                &mut conn,
                &Access {
                    user_id: None,
                    user_email: None,
                    action: "purge",
                    subject_kind: "retention",
                    subject_id: &input.run,
                    detail: serde_json::to_value(total).unwrap_or_default(),
                },
            )
            .await
            .map_err(retryable)?;
        }
        Ok(total)
    }
}
