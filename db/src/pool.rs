//! Connection pool (deadpool over diesel-async's pure-Rust Postgres connection).

use crate::{DbError, DbResult};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use std::time::Duration;

/// The shared pool type.
pub type Pool = deadpool::Pool<AsyncPgConnection>;
/// A connection borrowed from the pool.
pub type PooledConn = ::deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// How a connection taken from the pool is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recycle {
    /// A test query first (one round trip per checkout): a connection Postgres dropped
    /// is replaced before the caller sees it. For the api, whose requests are not
    /// retried.
    Verified,
    /// No test query: a connection Postgres dropped fails its first query (and is then
    /// discarded). For the worker, whose activities retry a failed query anyway; it saves
    /// a round trip on every checkout (about a fifth of an audit's statements).
    Fast,
}

/// Builds a pool of at most `max_size` connections, checked when taken
/// ([`Recycle::Verified`]). Connections are opened lazily, so this succeeds even while
/// Postgres is down (`/ready` reports it).
pub fn connect_pool(database_url: &str, max_size: usize) -> DbResult<Pool> {
    connect_pool_with(database_url, max_size, Recycle::Verified)
}

/// [`connect_pool`] with the given check of connections taken from the pool.
pub fn connect_pool_with(database_url: &str, max_size: usize, recycle: Recycle) -> DbResult<Pool> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| Box::pin(crate::tls::connect(url)));
    config.recycling_method = match recycle {
        Recycle::Verified => RecyclingMethod::Verified,
        Recycle::Fast => RecyclingMethod::Fast,
    };
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

/// Borrows a connection, turning pool errors into [`DbError::Pool`].
pub async fn get(pool: &Pool) -> DbResult<PooledConn> {
    pool.get().await.map_err(|e| DbError::Pool(e.to_string()))
}
