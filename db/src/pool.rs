//! Connection pool (deadpool over diesel-async's pure-Rust Postgres connection).

use crate::{DbError, DbResult};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use std::time::Duration;

/// The shared pool type.
pub type Pool = deadpool::Pool<AsyncPgConnection>;
/// A connection borrowed from the pool.
pub type PooledConn = ::deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// Builds a pool of at most `max_size` connections. Connections are opened lazily, so this
/// succeeds even while Postgres is down (`/ready` reports it).
pub fn connect_pool(database_url: &str, max_size: usize) -> DbResult<Pool> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| Box::pin(crate::tls::connect(url)));
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
