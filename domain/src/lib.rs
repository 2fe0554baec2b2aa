//! callaudit domain: pure types and deterministic logic, no I/O.
//!
//! - [`transcript`]: timestamped, speaker-labelled transcripts and utterances.
//! - [`analysis`]: control-point verdicts, compliance enums and the LLM answer schema.
//! - [`chat`]: chat prompts (context, recent conversation, question) and quote checks.
//! - [`evidence`]: verification of quoted evidence against transcripts (gating).
//! - [`pii`]: personal data in calls (IBAN, card, NIR, phone, e-mail, birth date):
//!   detection, typed placeholders, and its measure on a labelled set.
//! - [`scoring`]: deterministic step scores and audit summary.
//! - [`text`]: normalisation and similarity used for matching quotes.
//! - [`transcript_tools`]: the `searchTranscript` / `getTranscriptChunks` tools of
//!   transcript-tools mode.

pub mod analysis;
pub mod automation;
pub mod automation_email;
pub mod batch;
pub mod calibration;
pub mod chat;
pub mod cost;
pub mod events;
pub mod evidence;
pub mod fetch_job;
pub(crate) mod numbers;
pub mod personal_data;
pub mod pii;
pub mod prompts;
pub mod realtime;
pub mod rerun;
pub mod scoring;
pub mod step_result;
pub mod text;
pub mod transcript;
pub mod transcript_tools;

// Modules below are owned by the service layer (RBAC table, secret type, ids).
pub mod activities;
pub mod audit_config;
pub mod rbac;
pub mod search;
pub mod secret;
pub mod status;
pub mod workflow_io;
