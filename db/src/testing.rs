//! Test-database helper: one migrated template database per migration set, cloned into a
//! fresh database for every test (`CREATE DATABASE … TEMPLATE …`), so tests run in
//! parallel without seeing each other's rows. Creation is serialised across processes
//! with an advisory lock.

use crate::{DbError, DbResult, migrate};
use diesel::migration::MigrationSource;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use sha2::{Digest, Sha256};

const TEMPLATE_LOCK_KEY: i64 = 0x00ca_11a0_d170_0002;

/// A database created for one test; dropped (with `FORCE`) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the test database.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
    keep: bool,
}

impl TestDatabase {
    /// Keeps the database after the test (for debugging a failure).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }
}

/// Replaces the database name of a `postgres://…/name?query` URL.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

fn template_name() -> String {
    let mut hasher = Sha256::new();
    let migrations = <_ as MigrationSource<diesel::pg::Pg>>::migrations(&migrate::MIGRATIONS)
        .unwrap_or_default();
    for m in &migrations {
        hasher.update(m.name().to_string().as_bytes());
    }
    // Also hash the SQL so editing a migration during development yields a new template.
    hasher.update(include_str!(
        "../../migrations/2026-11-22-000001_auth/up.sql"
    ));
    hasher.update(include_str!(
        "../../migrations/2026-11-22-000002_fiches/up.sql"
    ));
    hasher.update(include_str!(
        "../../migrations/2026-11-22-000003_audits/up.sql"
    ));
    hasher.update(include_str!(
        "../../migrations/2026-11-22-000004_jobs_automation_chat/up.sql"
    ));
    hasher.update(include_str!(
        "../../migrations/2026-11-22-000005_events_leases/up.sql"
    ));
    let digest = hex::encode(hasher.finalize());
    format!("callaudit_tpl_{}", &digest[..12])
}

/// Creates a fresh, migrated database named `callaudit_test_<label>_<random>` on the server
/// of `admin_url` (any database of that server the user may connect to).
pub async fn create_test_database(admin_url: &str, label: &str) -> DbResult<TestDatabase> {
    let template = template_name();
    let mut admin = crate::tls::establish(admin_url).await?;
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .await?;
    let result = async {
        if !database_exists(&mut admin, &template).await? {
            let building = format!("{template}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .await?;
            // The migration harness blocks, which only a multi-threaded runtime allows:
            // run it on one of its own, so a test on a current-thread runtime may be the
            // first to build the template.
            let building_url = url_with_database(admin_url, &building);
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| DbError::Migration(e.to_string()))?
                    .block_on(migrate::run_pending(&building_url))
            })
            .await
            .map_err(|e| DbError::Migration(e.to_string()))??;
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
                .await?;
        }
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let suffix: String = hex::encode(rand::random::<[u8; 4]>());
        let name = format!("callaudit_test_{clean}_{suffix}");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await?;
        Ok::<_, DbError>(name)
    }
    .await;
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .await?;
    let name = result?;
    Ok(TestDatabase {
        url: url_with_database(admin_url, &name),
        name,
        admin_url: admin_url.to_string(),
        keep: false,
    })
}

/// Creates an empty database (no migrations), for migration tests.
pub async fn create_empty_database(admin_url: &str, label: &str) -> DbResult<TestDatabase> {
    let mut admin = crate::tls::establish(admin_url).await?;
    let suffix: String = hex::encode(rand::random::<[u8; 4]>());
    let name = format!("callaudit_test_{label}_{suffix}");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(TestDatabase {
        url: url_with_database(admin_url, &name),
        name,
        admin_url: admin_url.to_string(),
        keep: false,
    })
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> DbResult<bool> {
    use diesel::sql_types::{Bool, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(conn)
            .await?;
    Ok(row.exists)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the blocking work on a thread of its own.
        let joined = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = crate::tls::establish(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
        let _ = joined;
    }
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn url_with_database_replaces_only_the_database_name() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://u:p@h/db?sslmode=disable", "y"),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h:1", "z"), "postgres://h:1/z");
    }
}
