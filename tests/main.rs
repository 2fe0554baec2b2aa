//! End-to-end tests of callaudit against a real Postgres and a real Temporal dev server.
//! Each test gets its own database (cloned from a migrated template) and its own task
//! queue. Run them with `temporal-dev/test.sh` (starts the services) or set
//! `CALLAUDIT_TEST_DATABASE_URL` and `CALLAUDIT_TEST_TEMPORAL_ADDRESS` yourself.

mod support;

mod audit_pipeline;
mod auth_hardening;
mod auth_matrix;
mod automation;
mod automation_email;
mod automation_transcription;
mod automation_webhooks;
mod batches;
mod bench_load_smoke;
mod bench_smoke;
mod browser;
mod chat;
mod claims;
mod events_stream;
mod faults;
mod fetch_jobs;
mod fiches;
mod foundation;
mod gate_modes;
mod observability;
mod personal_data;
mod pii;
mod realtime;
mod replay;
mod reruns;
mod reviews;
mod stored_rows;
mod trust;
mod work_metrics;
