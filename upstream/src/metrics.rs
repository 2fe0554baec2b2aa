//! Prometheus metrics of the vendor calls: how long each HTTP call took and how it ended,
//! failures by vendor and kind, and the LLM tokens spent by model. Recorded by the
//! clients themselves, once per HTTP request (a tool conversation is several), so a
//! retried activity counts every attempt it made.
//!
//! A client records into an unregistered set unless given one with `with_metrics`: the
//! worker registers one set into the registry its `/metrics` serves.

use crate::error::UpstreamError;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

/// Duration buckets of vendor calls, seconds: a CRM read takes milliseconds, a long
/// call's transcription minutes.
const CALL_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The vendor-call metrics (cheap to clone: the series are shared).
#[derive(Clone)]
pub struct VendorMetrics {
    /// `callaudit_vendor_call_duration_seconds{vendor, operation, outcome}`.
    calls: HistogramVec,
    /// `callaudit_vendor_errors_total{vendor, kind}`.
    errors: IntCounterVec,
    /// `callaudit_llm_tokens_total{model, kind}`.
    tokens: IntCounterVec,
}

impl std::fmt::Debug for VendorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VendorMetrics")
    }
}

impl Default for VendorMetrics {
    /// A set registered nowhere (what a client records into unless told otherwise).
    fn default() -> Self {
        Self::unregistered()
    }
}

impl VendorMetrics {
    fn unregistered() -> Self {
        let calls = HistogramVec::new(
            HistogramOpts::new(
                "callaudit_vendor_call_duration_seconds",
                "Vendor HTTP calls by vendor, operation and outcome (ok, rate_limited, transient, permanent)",
            )
            .buckets(CALL_BUCKETS.to_vec()),
            &["vendor", "operation", "outcome"],
        )
        .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "callaudit_vendor_errors_total",
                "Failed vendor calls by vendor and kind (rate_limited, transient, permanent)",
            ),
            &["vendor", "kind"],
        )
        .expect("static metric definition");
        let tokens = IntCounterVec::new(
            Opts::new(
                "callaudit_llm_tokens_total",
                "LLM tokens by model and kind (prompt, completion)",
            ),
            &["model", "kind"],
        )
        .expect("static metric definition");
        Self {
            calls,
            errors,
            tokens,
        }
    }

    /// A set registered into `registry` (fails if its names are taken there).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self::unregistered();
        registry.register(Box::new(metrics.calls.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.tokens.clone()))?;
        Ok(metrics)
    }

    /// Records one call of `operation` begun at `started`, with its outcome.
    pub(crate) fn call<T>(
        &self,
        vendor: &str,
        operation: &str,
        started: Instant,
        result: &Result<T, UpstreamError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => {
                self.errors.with_label_values(&[vendor, e.kind()]).inc();
                e.kind()
            }
        };
        self.calls
            .with_label_values(&[vendor, operation, outcome])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Adds the tokens one LLM answer reports.
    pub(crate) fn tokens(&self, model: &str, prompt: i32, completion: i32) {
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            self.tokens
                .with_label_values(&[model, kind])
                .inc_by(u64::try_from(n).unwrap_or(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    fn render(registry: &Registry) -> String {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn a_failed_call_is_timed_under_its_kind_and_counted_as_an_error() {
        let registry = Registry::new();
        let m = VendorMetrics::register(&registry).unwrap();
        m.call::<()>("crm", "fiche_details", Instant::now(), &Ok(()));
        m.call::<()>(
            "crm",
            "fiche_details",
            Instant::now(),
            &Err(UpstreamError::RateLimited {
                vendor: "crm",
                retry_after_s: Some(1),
            }),
        );
        m.tokens("gpt-x", 120, 30);
        let text = render(&registry);
        for line in [
            r#"callaudit_vendor_call_duration_seconds_count{operation="fiche_details",outcome="ok",vendor="crm"} 1"#,
            r#"callaudit_vendor_call_duration_seconds_count{operation="fiche_details",outcome="rate_limited",vendor="crm"} 1"#,
            r#"callaudit_vendor_errors_total{kind="rate_limited",vendor="crm"} 1"#,
            r#"callaudit_llm_tokens_total{kind="prompt",model="gpt-x"} 120"#,
            r#"callaudit_llm_tokens_total{kind="completion",model="gpt-x"} 30"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn the_same_names_cannot_be_registered_twice() {
        let registry = Registry::new();
        VendorMetrics::register(&registry).unwrap();
        assert!(VendorMetrics::register(&registry).is_err());
    }
}
