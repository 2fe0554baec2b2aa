//! Trust, security and operability (issue 8): replicas starting together, finished
//! streams, transient CRM errors, idempotent starts, capped bodies, metrics labels.

use crate::audit_pipeline::count;
use crate::support::*;
use callaudit_db::testing::create_empty_database;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn replicas_started_at_once_on_a_fresh_database_all_seed_the_admin_and_none_dies() {
    let db = create_empty_database(&admin_database_url(), "seed_race")
        .await
        .expect("db");
    // As a compose file or an orchestrator starts them: api and worker replicas, each
    // migrating and upserting the seeded admin at start (`seed-auth` does just that).
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(bin())
                .arg("seed-auth")
                .env("DATABASE_URL", &db.url)
                .env("AUTH_SEED_ADMIN_EMAIL", "ops@example.com")
                .env("AUTH_SEED_ADMIN_PASSWORD", "a-long-admin-password")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn seed-auth")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a replica died at start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) AS n FROM users WHERE lower(email) = 'ops@example.com'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) AS n FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             JOIN users u ON u.id = ur.user_id WHERE r.name = 'admin' AND u.email = 'ops@example.com'"
        )
        .await,
        1
    );
}
