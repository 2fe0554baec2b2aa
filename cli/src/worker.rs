//! `callaudit worker`: polls the task queue for workflow and activity tasks until SIGTERM
//! or Ctrl-C, then stops polling and lets in-flight activities finish (within the grace
//! period) before exiting; whatever does not finish is retried by Temporal elsewhere.

use crate::config::WorkerArgs;
use anyhow::Context;
use callaudit_activities::WorkerActivities;
use callaudit_upstream::elevenlabs::ElevenLabsClient;
use callaudit_upstream::metrics::VendorMetrics;
use callaudit_upstream::openai::OpenAiClient;
use callaudit_workflows::{
    AuditRerunWorkflow, AuditStepWorkflow, AuditWorkflow, TranscriptionWorkflow,
};
use std::time::Duration;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, SlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::signal::unix::{SignalKind, signal};

/// Runs the worker until a termination signal.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let database_url = args.db.url()?.to_string();
    crate::prepare_database(&database_url, &args.auth).await?;
    let settings = args.temporal.settings();
    let client = connect_with_retry(&settings).await?;
    crate::retention::ensure_schedule(&client, &settings.task_queue, &args.retention).await?;
    let reconcile_cron = crate::automation::Cron::parse(&args.notify.automation_scheduler_cron)
        .context("AUTOMATION_SCHEDULER_CRON")?;
    tokio::spawn(crate::automation::run_reconciler(
        reconcile_cron,
        database_url.clone(),
        client.clone(),
        settings.task_queue.clone(),
    ));
    // Realtime: this worker's relay carries the events to Pusher while it holds the
    // relay's lease (one relay across all workers; another takes over if it stops).
    match args.notify.pusher.settings() {
        Some(pusher) => {
            let holder = format!(
                "worker-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            );
            tokio::spawn(callaudit_upstream::realtime::run(
                callaudit_db::connect_pool(&database_url, 2)?,
                database_url.clone(),
                callaudit_upstream::pusher::PusherClient::new(pusher),
                callaudit_upstream::realtime::RelaySettings::new(holder),
            ));
        }
        None => tracing::info!(
            "realtime off: PUSHER_APP_ID, PUSHER_KEY and PUSHER_SECRET are not all set"
        ),
    }

    let metrics = match args.worker_metrics_addr {
        Some(addr) => Some(crate::worker_metrics::serve(addr).await?),
        None => None,
    };
    let vendor_metrics = metrics.as_ref().map(|m| m.vendor.clone());
    let activities = build_activities(&args, &database_url, vendor_metrics.unwrap_or_default())?;
    let mut options = options(
        &settings,
        args.worker_shutdown_grace_s,
        args.worker_max_concurrent_activities,
    );
    options
        .register_workflow::<AuditWorkflow>()?
        .register_workflow::<AuditStepWorkflow>()?
        .register_workflow::<TranscriptionWorkflow>()?
        .register_workflow::<AuditRerunWorkflow>()?
        .register_workflow::<callaudit_workflows::ProgressiveFetchWorkflow>()?
        .register_workflow::<callaudit_workflows::DayFetchWorkflow>()?
        .register_workflow::<callaudit_workflows::RetentionWorkflow>()?
        .register_workflow::<callaudit_workflows::BatchAuditWorkflow>()?
        .register_workflow::<callaudit_workflows::AutomationRunWorkflow>()?
        .register_activities(activities);
    let telemetry = metrics.map(|m| m.telemetry).unwrap_or_default();
    serve(client, &settings, options, telemetry).await
}

/// Worker options shared by every worker this binary runs (the bench's bare worker too,
/// so both are measured with the same tuning); callers register what they run. At most
/// `max_activities` activities run at once (`WORKER_MAX_CONCURRENT_ACTIVITIES`); workflow
/// tasks keep the SDK's 100 slots.
pub(crate) fn options(
    settings: &callaudit_api::temporal::TemporalSettings,
    shutdown_grace_s: u64,
    max_activities: u64,
) -> WorkerOptions {
    let max_activities = usize::try_from(max_activities).unwrap_or(usize::MAX);
    let slots = |n: usize| SlotSupplier::from(FixedSizeSlotSupplier::new(n.max(1)));
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(slots(100))
        .activity_task_slot_supplier(slots(max_activities))
        .local_activity_task_slot_supplier(slots(max_activities))
        .nexus_task_slot_supplier(slots(100))
        .build();
    WorkerOptions::new(settings.task_queue.clone())
        .max_cached_workflows(500)
        .graceful_shutdown_period(Duration::from_secs(shutdown_grace_s))
        .tuner(tuner)
        .build()
}

/// Connections of the worker's pool: `DATABASE_POOL_SIZE`, raised to one per four
/// activity slots (an activity holds a connection only between its vendor calls).
pub(crate) fn pool_size(configured: usize, max_activities: u64) -> usize {
    let wanted = usize::try_from(max_activities.div_ceil(4) + 1).unwrap_or(usize::MAX);
    configured.max(wanted)
}

/// Polls with `options` until SIGTERM or SIGINT, then drains. Logs `worker polling` once
/// it starts (the bench waits for that line). The SDK records its metrics as `telemetry`
/// says (nowhere by default).
pub(crate) async fn serve(
    client: temporalio_client::Client,
    settings: &callaudit_api::temporal::TemporalSettings,
    options: WorkerOptions,
    telemetry: TelemetryOptions,
) -> anyhow::Result<()> {
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow::anyhow!("temporal runtime options: {e}"))?;
    let runtime = Runtime::from_current_tokio(runtime_options)
        .map_err(|e| anyhow::anyhow!("temporal runtime: {e}"))?;
    let mut worker =
        Worker::new(&runtime, client, options).map_err(|e| anyhow::anyhow!("worker: {e}"))?;
    let shutdown = worker.shutdown_handle();

    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
        shutdown();
    });
    tracing::info!(task_queue = %settings.task_queue, address = %settings.address, "worker polling");
    // `Worker::run` is not Send: it stays on this task.
    worker
        .run()
        .await
        .map_err(|e| anyhow::anyhow!("worker stopped with an error: {e}"))?;
    tracing::info!("worker stopped cleanly");
    Ok(())
}

pub(crate) async fn connect_with_retry(
    settings: &callaudit_api::temporal::TemporalSettings,
) -> anyhow::Result<temporalio_client::Client> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match callaudit_api::temporal::connect(settings, Duration::from_secs(5)).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "temporal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The activities' state; vendor clients record their calls into `vendor_metrics`.
fn build_activities(
    args: &WorkerArgs,
    database_url: &str,
    vendor_metrics: VendorMetrics,
) -> anyhow::Result<WorkerActivities> {
    let up = &args.upstream;
    let timeout = up.crm.timeout();
    let pool_size = pool_size(
        args.db.database_pool_size,
        args.worker_max_concurrent_activities,
    );
    tracing::info!(
        pool_size,
        max_activities = args.worker_max_concurrent_activities,
        "worker capacity"
    );
    // Activities retry a failed query: no test query per checkout (callaudit_db::Recycle).
    let pool =
        callaudit_db::connect_pool_with(database_url, pool_size, callaudit_db::Recycle::Fast)?;
    let mut fiche_settings = up.crm.fiche_settings();
    fiche_settings.crm = fiche_settings
        .crm
        .map(|crm| crm.with_metrics(vendor_metrics.clone()));
    let fiches = callaudit_upstream::fiches::FicheService::new(
        pool.clone(),
        fiche_settings,
        format!("worker-{}", std::process::id()),
    );
    let stt = crate::config::present(&up.elevenlabs_api_key).map(|key| {
        ElevenLabsClient::new(
            &up.elevenlabs_base_url,
            key,
            &up.elevenlabs_model_id,
            timeout,
        )
        .with_metrics(vendor_metrics.clone())
    });
    let llm = crate::config::present(&up.openai_api_key).map(|key| {
        OpenAiClient::new(&up.openai_base_url, key, timeout).with_metrics(vendor_metrics)
    });
    for (missing, name) in [
        (fiches.crm.is_none(), "CRM_BASE_URL/CRM_API_KEY"),
        (stt.is_none(), "ELEVENLABS_API_KEY"),
        (llm.is_none(), "OPENAI_API_KEY"),
    ] {
        if missing {
            tracing::warn!(
                setting = name,
                "not configured: activities needing it fail with a clear, non-retryable error"
            );
        }
    }
    Ok(WorkerActivities {
        pool,
        fiches,
        stt,
        llm,
        model_audit: up.openai_model_audit.clone(),
        pii_redaction: up.pii_redaction,
        automation_max_recordings_per_fiche: args.notify.automation_max_recordings_per_fiche,
        webhooks: callaudit_upstream::webhook::WebhookPolicy::new(
            &args.notify.webhook_allowed_origins,
        ),
        mail: callaudit_activities::automation_email::AutomationMail::new(smtp_mailer(
            &args.notify,
        )?),
    })
}

/// The SMTP client of automation e-mails when `SMTP_HOST` is set (then `SMTP_FROM` must
/// be too); none otherwise (e-mails recorded as skipped).
fn smtp_mailer(
    n: &crate::config::NotifyArgs,
) -> anyhow::Result<Option<callaudit_upstream::smtp::Mailer>> {
    let Some(host) = n
        .smtp_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
    else {
        return Ok(None);
    };
    let from = n
        .smtp_from
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .context("SMTP_HOST is set but SMTP_FROM is not: automation e-mails need a sender")?;
    let mailer = callaudit_upstream::smtp::Mailer::new(&callaudit_upstream::smtp::SmtpSettings {
        host: host.to_string(),
        port: n.smtp_port,
        secure: n.smtp_secure,
        user: n.smtp_user.clone().filter(|u| !u.trim().is_empty()),
        pass: crate::config::present(&n.smtp_pass),
        from: from.to_string(),
        timeout: Duration::from_millis(n.smtp_timeout_ms.max(1)),
    })?;
    tracing::info!(relay = %mailer.relay, secure = n.smtp_secure, auth = n.smtp_user.is_some(), "automation e-mails over SMTP");
    Ok(Some(mailer))
}
