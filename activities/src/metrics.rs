//! Prometheus metrics of the work the activities do: audits started, completed (by
//! niveau) and failed, and how long analysing a step took. Vendor calls and LLM tokens
//! are counted by the clients (`callaudit_upstream::metrics`).
//!
//! Counted when the activity succeeds (after its write and its event), so a retried
//! activity counts once; only an attempt whose success Temporal never heard of (a worker
//! killed right after it) may count twice. A step reused from an earlier attempt is not
//! timed again.
//!
//! The set is process-wide ([`work_metrics`]): the activities record into it whether or
//! not a registry serves it, and the worker registers it into the one its `/metrics`
//! serves.

use callaudit_domain::analysis::Niveau;
use prometheus::{Counter, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use std::sync::LazyLock;
use std::time::Duration;

/// Duration buckets of step analyses, seconds (an LLM answer takes seconds to minutes).
const STEP_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The work metrics.
#[derive(Clone)]
pub struct WorkMetrics {
    started: IntCounter,
    completed: IntCounterVec,
    failed: IntCounter,
    steps: HistogramVec,
    audio: Counter,
}

impl std::fmt::Debug for WorkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkMetrics")
    }
}

static WORK_METRICS: LazyLock<WorkMetrics> = LazyLock::new(WorkMetrics::new);

/// The process's work metrics.
pub fn work_metrics() -> &'static WorkMetrics {
    &WORK_METRICS
}

impl WorkMetrics {
    fn new() -> Self {
        let metrics = Self {
            started: IntCounter::new(
                "callaudit_audits_started_total",
                "Audits started (audit.start succeeded)",
            )
            .expect("static metric definition"),
            completed: IntCounterVec::new(
                Opts::new(
                    "callaudit_audits_completed_total",
                    "Audits completed, by niveau",
                ),
                &["niveau"],
            )
            .expect("static metric definition"),
            failed: IntCounter::new(
                "callaudit_audits_failed_total",
                "Audits failed (audit.fail succeeded)",
            )
            .expect("static metric definition"),
            steps: HistogramVec::new(
                HistogramOpts::new(
                    "callaudit_step_duration_seconds",
                    "Analysis of one audit step (LLM, gating, scoring, storage), by mode (prompt, tools)",
                )
                .buckets(STEP_BUCKETS.to_vec()),
                &["mode"],
            )
            .expect("static metric definition"),
            audio: Counter::new(
                "callaudit_speech_to_text_audio_seconds_total",
                "Seconds of audio sent to speech-to-text (what it bills), by recording length",
            )
            .expect("static metric definition"),
        };
        // Every niveau is a series from the start (0 until one completes).
        for niveau in Niveau::ALL {
            metrics.completed.with_label_values(&[niveau.as_str()]);
        }
        metrics
    }

    /// Registers the metrics into `registry` (fails if their names are taken there).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.started.clone()))?;
        registry.register(Box::new(self.completed.clone()))?;
        registry.register(Box::new(self.failed.clone()))?;
        registry.register(Box::new(self.steps.clone()))?;
        registry.register(Box::new(self.audio.clone()))?;
        Ok(())
    }

    pub(crate) fn audit_started(&self) {
        self.started.inc();
    }

    pub(crate) fn audit_completed(&self, niveau: Niveau) {
        self.completed.with_label_values(&[niveau.as_str()]).inc();
    }

    pub(crate) fn audit_failed(&self) {
        self.failed.inc();
    }

    pub(crate) fn audio_transcribed(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.audio.inc_by(seconds);
        }
    }

    pub(crate) fn step_analysed(&self, use_rlm: bool, took: Duration) {
        let mode = if use_rlm { "tools" } else { "prompt" };
        self.steps
            .with_label_values(&[mode])
            .observe(took.as_secs_f64());
    }
}
