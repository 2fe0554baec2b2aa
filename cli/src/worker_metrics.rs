//! The worker's `GET /metrics` on `WORKER_METRICS_ADDR` (off when unset): this process's
//! work metrics (`callaudit_audits_…`, `callaudit_step_duration_seconds`), its vendor
//! calls (`callaudit_vendor_…`, `callaudit_llm_tokens_total`), then the Temporal SDK's
//! worker metrics (`temporal_…`: polls, task slots, activity and workflow task latencies).
//!
//! The SDK's Prometheus exporter keeps its registry private and only serves it over its
//! own HTTP listener, so that listener takes an ephemeral loopback port and our endpoint
//! appends what it answers: one address to scrape, one exposition.

use anyhow::Context;
use callaudit_upstream::metrics::VendorMetrics;
use poem::http::StatusCode;
use poem::listener::{Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, get, handler};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions, start_prometheus_metric_exporter,
};

/// What the worker needs from its metrics: where vendor clients record, and the
/// telemetry options that make the SDK record into the exporter we serve.
pub(crate) struct WorkerMetrics {
    /// Registered in the registry `/metrics` serves.
    pub vendor: VendorMetrics,
    /// For the worker's `Runtime`.
    pub telemetry: TelemetryOptions,
}

/// Registers the work and vendor metrics, starts the SDK's exporter on loopback and
/// serves `/metrics` on `addr` (an address already in use is an error at start).
pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<WorkerMetrics> {
    let registry = Registry::new();
    callaudit_activities::work_metrics()
        .register(&registry)
        .context("registering the work metrics")?;
    let vendor = VendorMetrics::register(&registry).context("registering the vendor metrics")?;

    let sdk = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder()
            .socket_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .unit_suffix(true)
            .build(),
    )
    .map_err(|e| anyhow::anyhow!("starting the Temporal SDK's metrics exporter: {e}"))?;
    let meter: Arc<dyn CoreMeter> = sdk.meter;
    let telemetry = TelemetryOptions::builder().metrics(meter).build();

    // Bound here, so an address in use stops the worker at start.
    let acceptor = TcpListener::bind(addr.to_string())
        .into_acceptor()
        .await
        .with_context(|| format!("binding WORKER_METRICS_ADDR {addr}"))?;
    let scrape = Scrape {
        registry,
        sdk_url: format!("http://{}/metrics", sdk.bound_addr),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default(),
    };
    let app = Route::new()
        .at("/metrics", get(metrics))
        .data(Arc::new(scrape));
    tokio::spawn(async move {
        if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %e, "worker metrics server stopped");
        }
    });
    tracing::info!(%addr, "worker metrics on /metrics");
    Ok(WorkerMetrics { vendor, telemetry })
}

/// Our registry and where the SDK's exposition is read.
struct Scrape {
    registry: Registry,
    sdk_url: String,
    http: reqwest::Client,
}

/// Prometheus text: ours, then the SDK's (left out, with a warning, if it does not answer).
#[handler]
async fn metrics(Data(scrape): Data<&Arc<Scrape>>) -> Response {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&scrape.registry.gather(), &mut body) {
        tracing::warn!(error = %e, "encoding the work metrics");
    }
    match sdk_exposition(scrape).await {
        Ok(text) => body.extend_from_slice(text.as_bytes()),
        Err(e) => tracing::warn!(error = %e, "the Temporal SDK's metrics are unavailable"),
    }
    Response::builder()
        .status(StatusCode::OK)
        .content_type(encoder.format_type())
        .body(body)
}

async fn sdk_exposition(scrape: &Scrape) -> Result<String, reqwest::Error> {
    scrape
        .http
        .get(&scrape.sdk_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}
