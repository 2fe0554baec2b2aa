//! callaudit's upstreams: one module per vendor with typed wire structs (`crm`,
//! `elevenlabs`, `openai`), the CRM cache service (`fiches`) and the global CRM caps
//! (`leases`), and the metrics of vendor calls (`metrics`). Shared by the worker's
//! activities and the api; nothing here knows about Temporal — long calls report
//! liveness through the small [`heartbeat::Heartbeat`] trait, which activities implement
//! over their context.
//!
//! Every client has a timeout and an injectable base URL, and classifies failures from
//! the status ([`error::UpstreamError`]) so callers can tell retryable from permanent
//! ones. No error carries a key or a header: bodies are scrubbed of the secret and
//! truncated.

pub mod crm;
pub mod elevenlabs;
pub mod error;
pub mod fiches;
pub mod heartbeat;
mod http;
pub use http::MAX_ANSWER_BYTES;
pub mod leases;
pub mod metrics;
pub mod openai;
pub mod pusher;
pub mod realtime;
pub mod smtp;
pub mod webhook;

pub use error::UpstreamError;
