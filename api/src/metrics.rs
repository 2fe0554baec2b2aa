//! Prometheus metrics of the api: requests by route template and status, latency.

use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::time::Instant;

/// The registry and the HTTP metrics.
pub struct Metrics {
    /// Registry rendered by `/metrics`.
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "callaudit_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "callaudit_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("static metric definition");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique metric");
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }
}

/// Collapses ids out of a path so label cardinality stays bounded.
fn route_label(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let looks_like_id = seg.len() >= 8
                && seg.chars().any(|c| c.is_ascii_digit())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if looks_like_id { ":id" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Middleware recording every request.
pub async fn record<E: Endpoint>(
    next: E,
    req: Request,
    metrics: std::sync::Arc<Metrics>,
) -> poem::Result<Response> {
    let method = req.method().to_string();
    let route = route_label(req.uri().path());
    let started = Instant::now();
    let resp = next.call(req).await.map(IntoResponse::into_response);
    let status = match &resp {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status().as_u16(),
    };
    metrics.observe(&method, &route, status, started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn ids_are_collapsed_in_route_labels() {
        assert_eq!(
            route_label("/api/audits/0b9c7a52-6d1e-4a40-9d55-0d6a1f0e2b11/events"),
            "/api/audits/:id/events"
        );
        assert_eq!(route_label("/api/auth/login"), "/api/auth/login");
    }
}
