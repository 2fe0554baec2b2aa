//! What every activity shares: the worker's state, built once at start, and the mapping
//! of failures to retryable or permanent activity errors.

use callaudit_db::audits::AuditRow;
use callaudit_db::{AsyncPgConnection, Pool, PooledConn, audits, events, pool};
use callaudit_domain::audit_config::AuditConfigSpec;
use callaudit_domain::events::DomainEvent;
use callaudit_upstream::UpstreamError;
use callaudit_upstream::elevenlabs::ElevenLabsClient;
use callaudit_upstream::fiches::{FicheError, FicheService};
use callaudit_upstream::openai::OpenAiClient;
use temporalio_common::ActivityError;
use temporalio_common::error::ApplicationFailure;
use uuid::Uuid;

/// Everything the activities need, built once at worker start.
pub struct WorkerActivities {
    /// Postgres.
    pub pool: Pool,
    /// CRM access: cache, global caps, force-refresh cooldown.
    pub fiches: FicheService,
    /// ElevenLabs.
    pub stt: Option<ElevenLabsClient>,
    /// LLM.
    pub llm: Option<OpenAiClient>,
    /// Model for audits.
    pub model_audit: String,
    /// What is redacted before the LLM (`PII_REDACTION`).
    pub pii_redaction: callaudit_domain::personal_data::PiiRedaction,
    /// Fiches with more recordings are left out of automation runs whose schedule names
    /// no limit (`AUTOMATION_MAX_RECORDINGS_PER_FICHE`; 0: no limit).
    pub automation_max_recordings_per_fiche: u32,
    /// The webhook SSRF guard's allowlist (`WEBHOOK_ALLOWED_ORIGINS`).
    pub webhooks: callaudit_upstream::webhook::WebhookPolicy,
    /// The SMTP client of automation e-mails (`SMTP_*`; none: skipped).
    pub mail: crate::automation_email::AutomationMail,
}

impl std::fmt::Debug for WorkerActivities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerActivities")
            .field("holder", &self.fiches.holder)
            .finish_non_exhaustive()
    }
}

/// A failure no retry can fix.
pub(crate) fn permanent(msg: impl Into<String>) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(std::io::Error::other(
        msg.into(),
    )))
}

/// A failure a later attempt may not meet.
pub(crate) fn retryable(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::from(anyhow::anyhow!(e.to_string()))
}

/// A vendor failure, retryable as the vendor's answer says.
pub(crate) fn upstream(e: UpstreamError) -> ActivityError {
    if e.is_retryable() {
        retryable(e)
    } else {
        permanent(e.to_string())
    }
}

/// A fiche failure, retryable as its cause says.
pub(crate) fn fiche(e: FicheError) -> ActivityError {
    if e.is_retryable() {
        retryable(e)
    } else {
        permanent(e.to_string())
    }
}

/// An audit id from workflow input (an invalid one is permanent).
pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid audit id {s}")))
}

impl WorkerActivities {
    /// A pooled connection (pool exhaustion is retryable).
    pub(crate) async fn conn(&self) -> Result<PooledConn, ActivityError> {
        pool::get(&self.pool).await.map_err(retryable)
    }

    /// Stores `event` once (by its dedupe key) and notifies the streams.
    pub(crate) async fn publish(&self, event: &impl DomainEvent) -> Result<(), ActivityError> {
        let mut conn = self.conn().await?;
        events::publish(
            &mut conn,
            &event.topic(),
            event.kind(),
            &event.payload(),
            Some(&event.dedupe_key()),
        )
        .await
        .map_err(retryable)?;
        Ok(())
    }
}

/// The audit and the configuration it applies: the snapshot taken when it started (so
/// editing the configuration meanwhile changes nothing), or, for audits created before
/// snapshots existed, the live configuration. Missing or unreadable ones are permanent.
pub(crate) async fn audit_with_config(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<(AuditRow, AuditConfigSpec), ActivityError> {
    let audit = audits::get(conn, id)
        .await
        .map_err(retryable)?
        .ok_or_else(|| permanent(format!("audit {id} not found")))?;
    let spec = audits::config_of(conn, &audit).await.map_err(|e| match e {
        audits::AuditConfigError::Db(e) => retryable(e),
        audits::AuditConfigError::Deleted => permanent("audit configuration deleted"),
        unreadable => permanent(unreadable.to_string()),
    })?;
    Ok((audit, spec))
}
