//! Embedded diesel migrations, applied under a Postgres advisory lock so several replicas
//! starting at once apply them exactly once (the others wait, then find nothing pending).

use crate::{DbError, DbResult};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// All migrations of `../migrations`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Arbitrary constant naming callaudit's migration lock.
pub const MIGRATION_LOCK_KEY: i64 = 0x00ca_11a0_d170_0001;

async fn locked_connection(database_url: &str) -> DbResult<AsyncPgConnection> {
    let mut conn = crate::tls::establish(database_url).await?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .await?;
    Ok(conn)
}

/// Applies every pending migration and returns the versions applied now (empty when the
/// schema was already current). Needs a multi-threaded tokio runtime (the harness blocks).
pub async fn run_pending(database_url: &str) -> DbResult<Vec<String>> {
    let conn = locked_connection(database_url).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    unlock(harness.into_inner()).await?;
    Ok(applied)
}

/// Reverts every applied migration (tests and `callaudit migrate --revert-all`).
pub async fn revert_all(database_url: &str) -> DbResult<Vec<String>> {
    let conn = locked_connection(database_url).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let reverted = harness
        .revert_all_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    unlock(harness.into_inner()).await?;
    Ok(reverted)
}

/// Versions currently applied, oldest first.
pub async fn applied(database_url: &str) -> DbResult<Vec<String>> {
    let conn = crate::tls::establish(database_url).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let mut versions: Vec<String> = harness
        .applied_migrations()
        .map_err(|e| DbError::Migration(e.to_string()))?
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

async fn unlock(mut conn: AsyncPgConnection) -> DbResult<()> {
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .await?;
    Ok(())
}
