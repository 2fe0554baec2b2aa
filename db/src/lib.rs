//! callaudit's system of record: the diesel schema (see `../migrations`), the connection
//! pool, embedded migrations guarded by an advisory lock, and query functions grouped by
//! table. Every write is idempotent (upsert keyed by the workflow's own ids) because
//! Temporal activities run at least once.

pub mod audit_configs;
pub mod audits;
pub mod auth;
pub mod automation;
pub mod automation_email;
pub mod batches;
pub mod chat;
pub mod enums;
pub mod events;
pub mod fetch_jobs;
pub mod fiches;
pub mod leases;
pub mod login_throttle;
pub mod migrate;
pub mod personal_data;
pub mod pool;
pub mod realtime;
pub mod recordings;
pub mod reruns;
pub mod schema;
pub mod step_results;
pub mod stream_tokens;
pub mod testing;
pub mod tls;
pub mod transcriptions;

pub use diesel_async::AsyncPgConnection;
pub use pool::{Pool, PooledConn, Recycle, connect_pool, connect_pool_with};

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A connection could not be opened.
    #[error("database connection failed: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The pool could not hand out a connection.
    #[error("database pool error: {0}")]
    Pool(String),
    /// Applying or reverting migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A password could not be hashed or checked.
    #[error("password hashing failed")]
    Password,
}

/// Result alias of this crate.
pub type DbResult<T> = Result<T, DbError>;

/// Opens one connection outside the pool (migrations, seeding, LISTEN), over TLS when
/// the URL's `sslmode` asks for it ([`tls`]).
pub async fn establish(database_url: &str) -> DbResult<AsyncPgConnection> {
    tls::establish(database_url).await
}
