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
    routes: RouteTemplates,
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
            routes: RouteTemplates::of_api(),
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

/// Label of requests that match no route: one label, so no one can create series at will.
const UNMATCHED: &str = "unmatched";

/// The route templates requests are labelled with: every path of the OpenAPI document
/// (`/api/audits/{id}/events`), `/openapi.json` and `/docs`.
#[derive(Debug, Clone)]
struct RouteTemplates(Vec<(String, Vec<Option<String>>)>);

impl RouteTemplates {
    fn of_api() -> Self {
        let spec: serde_json::Value =
            serde_json::from_str(&crate::openapi_json()).unwrap_or_default();
        let mut paths: Vec<String> = spec["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        paths.push("/openapi.json".into());
        Self::new(paths)
    }

    /// Templates from paths where `{name}` stands for one segment.
    fn new(paths: Vec<String>) -> Self {
        Self(
            paths
                .into_iter()
                .map(|t| {
                    let segments = t
                        .split('/')
                        .map(|seg| {
                            (!(seg.starts_with('{') && seg.ends_with('}'))).then(|| seg.to_string())
                        })
                        .collect();
                    (t, segments)
                })
                .collect(),
        )
    }

    /// The template `path` matches (the one with the most literal segments, so
    /// `/api/fiches/sales` beats `/api/fiches/{fiche_id}`), `/docs` for the Swagger UI's
    /// files, or [`UNMATCHED`].
    fn label(&self, path: &str) -> String {
        if path == "/docs" || path.starts_with("/docs/") {
            return "/docs".into();
        }
        let segments: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(_, t)| {
                t.len() == segments.len()
                    && t.iter().zip(&segments).all(|(t, s)| match t {
                        Some(lit) => lit == s,
                        None => !s.is_empty(),
                    })
            })
            .max_by_key(|(_, t)| t.iter().filter(|s| s.is_some()).count())
            .map_or_else(|| UNMATCHED.to_string(), |(name, _)| name.clone())
    }
}

/// Middleware recording every request.
pub async fn record<E: Endpoint>(
    next: E,
    req: Request,
    metrics: std::sync::Arc<Metrics>,
) -> poem::Result<Response> {
    let method = req.method().to_string();
    let route = metrics.routes.label(req.uri().path());
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
    use super::RouteTemplates;

    #[test]
    fn requests_are_labelled_by_route_template_and_unknown_paths_share_one_label() {
        let routes = RouteTemplates::of_api();
        assert_eq!(
            routes.label("/api/audits/0b9c7a52-6d1e-4a40-9d55-0d6a1f0e2b11/events"),
            "/api/audits/{id}/events"
        );
        assert_eq!(
            routes.label("/api/fiches/FICHE-1001"),
            "/api/fiches/{fiche_id}"
        );
        assert_eq!(routes.label("/api/fiches/sales"), "/api/fiches/sales");
        assert_eq!(routes.label("/api/auth/login"), "/api/auth/login");
        assert_eq!(routes.label("/docs/swagger-ui.css"), "/docs");
        for unknown in [
            "/wp-admin/x",
            "/api/audits/a/b/c",
            "/random-123456789",
            "/api/audits/",
        ] {
            assert_eq!(routes.label(unknown), "unmatched", "{unknown}");
        }
    }
}
