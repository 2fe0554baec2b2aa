//! callaudit's Temporal workflows. Deterministic code only: no clock, no randomness, no
//! I/O, no tokio — the SDK's timers, combinators and workflow time (see `clippy.toml`).
//! Workflow type names are part of history; they are set explicitly and never renamed
//! without `ctx.patched`.
//!
//! One file per workflow (`audit`, `step`, `transcription`, `rerun`, `batch`); `options` holds the retry
//! policies and activity options they share, `failure` how a failure is recorded,
//! `window` the sliding window the audit runs its steps in.

mod audit;
mod automation;
mod automation_transcription;
mod batch;
mod day_fetch;
mod failure;
pub mod options;
mod progressive_fetch;
mod rerun;
mod retention;
mod step;
mod transcription;
pub mod window;

pub use audit::{AuditWorkflow, FEWER_ROUND_TRIPS_PATCH, STEP_SLIDING_WINDOW_PATCH};
pub use automation::AutomationRunWorkflow;
pub use automation_transcription::AUTOMATION_TRANSCRIPTION_PATCH;
pub use batch::BatchAuditWorkflow;
pub use day_fetch::{DayFetchWorkflow, JOB_CRM_ATTEMPTS};
pub use failure::failure_chain;
pub use progressive_fetch::ProgressiveFetchWorkflow;
pub use rerun::AuditRerunWorkflow;
pub use retention::RetentionWorkflow;
pub use step::AuditStepWorkflow;
pub use transcription::TranscriptionWorkflow;
