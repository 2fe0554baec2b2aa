//! The foundation: migrations, auth and RBAC, readiness, worker lifecycle, configuration.

use crate::support::*;
use callaudit_db::testing::create_empty_database;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_roll_back_and_reapply() {
    let on_disk = migrations_on_disk();
    assert!(
        on_disk >= 16,
        "the migrations directory is read ({on_disk})"
    );
    let db = create_empty_database(&admin_database_url(), "migrations")
        .await
        .expect("db");
    let applied = callaudit_db::migrate::run_pending(&db.url)
        .await
        .expect("apply");
    assert_eq!(
        applied.len(),
        on_disk,
        "every migration applies on an empty database"
    );
    assert!(
        callaudit_db::migrate::run_pending(&db.url)
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(
        callaudit_db::migrate::applied(&db.url)
            .await
            .expect("status")
            .len(),
        on_disk
    );

    let reverted = callaudit_db::migrate::revert_all(&db.url)
        .await
        .expect("revert");
    assert_eq!(
        reverted.len(),
        on_disk,
        "every migration has a working down.sql"
    );
    assert!(
        callaudit_db::migrate::applied(&db.url)
            .await
            .expect("status")
            .is_empty()
    );
    assert_eq!(
        table_count(&db.url).await,
        1,
        "only diesel's bookkeeping table is left"
    );

    let reapplied = callaudit_db::migrate::run_pending(&db.url)
        .await
        .expect("reapply");
    assert_eq!(reapplied.len(), on_disk);
    assert!(table_count(&db.url).await >= 25);
}

/// The migrations in `migrations/` (a directory with an `up.sql` each): every one must
/// apply, revert and reapply.
fn migrations_on_disk() -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    std::fs::read_dir(&dir)
        .expect("migrations directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("up.sql").is_file())
        .count()
}

async fn table_count(url: &str) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = callaudit_db::establish(url).await.expect("conn");
    let row: N = diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .get_result(&mut conn)
    .await
    .expect("count");
    row.n
}

#[tokio::test(flavor = "multi_thread")]
async fn two_migrate_runs_at_once_apply_each_migration_once() {
    let db = create_empty_database(&admin_database_url(), "concurrent_migrate")
        .await
        .expect("db");
    let spawn = || {
        Command::new(bin())
            .arg("migrate")
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn migrate")
    };
    // Hold the migrations' lock first, so both runs start and wait for it at the same
    // time: the test then sees them overlap, and the lock is what orders them.
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
    let mut holder = diesel_async::AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    let key = callaudit_db::migrate::MIGRATION_LOCK_KEY;
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .expect("lock");
    let (a, b) = (spawn(), spawn());
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    wait_for(
        "both migrate runs to wait for the lock",
        std::time::Duration::from_secs(30),
        || async {
            let mut conn = diesel_async::AsyncPgConnection::establish(&db.url)
                .await
                .expect("connect");
            let w: Waiting = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .get_result(&mut conn)
            .await
            .expect("pg_locks");
            (w.n == 2).then_some(())
        },
    )
    .await;
    holder
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .await
        .expect("unlock");
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(
        a.status.success(),
        "first: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(
        b.status.success(),
        "second: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    let outputs = [
        String::from_utf8_lossy(&a.stdout).to_string(),
        String::from_utf8_lossy(&b.stdout).to_string(),
    ];
    let mut counts: Vec<&str> = outputs.iter().map(|o| o.trim()).collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            "applied 0 migration(s)".to_string(),
            format!("applied {} migration(s)", migrations_on_disk())
        ]
    );
    assert_eq!(
        callaudit_db::migrate::applied(&db.url)
            .await
            .expect("status")
            .len(),
        migrations_on_disk()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_issues_a_token_and_a_wrong_password_gets_401() {
    let db = test_db("login").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    {
        let mut conn = callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        callaudit_db::auth::seed_rbac(&mut conn)
            .await
            .expect("seed");
        callaudit_db::auth::upsert_user(&mut conn, "Admin@Example.test", "s3cret-pass", "admin")
            .await
            .expect("admin");
    }
    let login = |email: &'static str, password: &'static str| {
        let api = &api;
        async move {
            api.send(
                reqwest::Method::POST,
                "/api/auth/login",
                None,
                &serde_json::json!({"email": email, "password": password}),
            )
            .await
        }
    };
    let (status, body) = login("admin@example.test", "s3cret-pass").await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["user"]["permissions"]
            .as_array()
            .expect("perms")
            .iter()
            .any(|p| p == "users:write")
    );

    let (status, me) = api.get("/api/auth/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "Admin@Example.test");
    assert_eq!(me["roles"], serde_json::json!(["admin"]));

    let (status, body) = login("admin@example.test", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["message"], "invalid e-mail or password");
    let (status, _) = login("nobody@example.test", "s3cret-pass").await;
    assert_eq!(status, 401);

    let (status, body) = api.get("/api/auth/me", None).await;
    assert_eq!(status, 401, "no token");
    assert_eq!(body["error"]["status"], 401);
    let (status, body) = api.get("/api/auth/me", Some("ca_forged")).await;
    assert_eq!(status, 401, "unknown token");
    assert_eq!(body["error"]["code"], "unauthorized");

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/auth/login",
            None,
            &serde_json::json!({"email": "x"}),
        )
        .await;
    assert_eq!(
        status, 400,
        "malformed body is a 400 with a JSON message: {body}"
    );
    assert_eq!(body["error"]["code"], "bad_request");
}

fn sample_config() -> serde_json::Value {
    serde_json::json!({
        "name": "Vente mutuelle",
        "steps": [{"position": 1, "name": "Présentation", "weight": 10, "critical": false,
                   "control_points": ["Le conseiller se présente"]}]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_gets_403_on_a_write_route_and_can_read() {
    let db = test_db("rbac").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let viewer = api.token_for("viewer").await;
    let manager = api.token_for("manager").await;

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&viewer),
            &sample_config(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("audit_configs:write")
    );

    let (status, created) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&manager),
            &sample_config(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        created["steps"][0]["control_points"][0],
        "Le conseiller se présente"
    );

    let (status, list) = api.get("/api/audit-configs", Some(&viewer)).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().expect("list").len(), 1);
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/audit-configs/{id}"),
            Some(&viewer),
            &serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api.get("/api/audit-configs", None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_audit_configs_are_rejected_with_a_message_and_nothing_is_stored() {
    let db = test_db("config_validation").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let manager = api.token_for("manager").await;
    let mut bad = sample_config();
    bad["steps"][0]["weight"] = serde_json::json!(-1);
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audit-configs",
            Some(&manager),
            &bad,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("steps[0].weight")
    );
    let (status, _) = api
        .get(
            &format!("/api/audit-configs/{}", uuid::Uuid::new_v4()),
            Some(&manager),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get("/api/audit-configs/not-a-uuid", Some(&manager))
        .await;
    assert_eq!(status, 400);
    let (_, list) = api.get("/api/audit-configs", Some(&manager)).await;
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_is_503_while_temporal_is_down_and_200_once_it_is_up() {
    let db = test_db("ready").await;
    let port = free_port();
    let api = spawn_api(
        &db.url,
        temporal_settings(&format!("127.0.0.1:{port}"), "unused"),
    )
    .await;

    let (status, body) = api.get("/ready", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["postgres"]["status"], "ok");
    assert_eq!(body["temporal"]["status"], "unavailable");
    assert!(
        body["temporal"]["error"]
            .as_str()
            .expect("why")
            .contains(&port.to_string())
    );
    let (status, _) = api.get("/health", None).await;
    assert_eq!(status, 200, "liveness does not depend on Temporal");

    let _server = start_private_temporal(port);
    wait_for("/ready to turn 200", Duration::from_secs(60), || async {
        let (status, _) = api.get("/ready", None).await;
        (status == 200).then_some(())
    })
    .await;

    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(
            "callaudit_http_requests_total{method=\"GET\",route=\"/ready\",status=\"503\"}"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_drains_and_exits_cleanly_on_sigterm() {
    let db = test_db("worker_sigterm").await;
    let mut child = Command::new(bin())
        .arg("worker")
        .env("DATABASE_URL", &db.url)
        .env("TEMPORAL_ADDRESS", temporal_address())
        .env("TEMPORAL_TASK_QUEUE", task_queue("sigterm"))
        .env("WORKER_SHUTDOWN_GRACE_S", "5")
        .env("RUST_LOG", "info")
        .env("OPENAI_API_KEY", "sk-test-never-printed")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !log.iter().any(|l: &String| l.contains("worker polling")) {
        assert!(
            std::time::Instant::now() < deadline,
            "worker never started polling: {log:#?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "worker exited early: {log:#?}"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        log.push(line);
    }
    assert!(exit.success(), "worker exit status {exit:?}: {log:#?}");
    assert!(
        log.iter().any(|l| l.contains("worker stopped cleanly")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("sk-test-never-printed")),
        "a secret reached the log"
    );
}

#[test]
fn a_missing_database_url_is_a_one_line_error_naming_it() {
    let out = Command::new(bin())
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn help_documents_every_variable_and_hides_secret_values() {
    let out = Command::new(bin())
        .args(["worker", "--help"])
        .env("OPENAI_API_KEY", "sk-shown-nowhere")
        .env("CRM_API_KEY", "crm-shown-nowhere")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "TEMPORAL_ADDRESS",
        "OPENAI_API_KEY",
        "ELEVENLABS_API_KEY",
        "CRM_BASE_URL",
        "FICHE_FETCH_CONCURRENCY",
        "SMTP_PASS",
    ] {
        assert!(help.contains(var), "worker --help lacks {var}");
    }
    assert!(
        !help.contains("sk-shown-nowhere") && !help.contains("crm-shown-nowhere"),
        "{help}"
    );
    let top = Command::new(bin()).arg("--help").output().expect("run");
    let top = String::from_utf8_lossy(&top.stdout);
    for var in [
        "API_ADDR",
        "TEMPORAL_NAMESPACE",
        "AUTOMATION_SCHEDULER_CRON",
        "PUSHER_SECRET",
        "AUTH_SEED_ADMIN_PASSWORD",
        "WEBHOOK_ALLOWED_ORIGINS",
    ] {
        assert!(top.contains(var), "--help lacks {var}");
    }
}
