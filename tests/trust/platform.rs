//! The platform: replicas starting together, capped bodies, metrics and readiness,
//! documented settings, Postgres over TLS.

use super::*;

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

#[tokio::test(flavor = "multi_thread")]
async fn a_request_body_past_the_cap_gets_413_with_the_json_error_whether_declared_or_chunked() {
    let db = test_db("body_cap").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let token = api.token_for("manager").await;
    let url = format!("{}/api/audit-configs", api.base);
    // A JSON body of 1 MiB + 1 KiB: one long string field.
    let big = serde_json::json!({"name": "x".repeat((1 << 20) + 1024), "steps": []}).to_string();

    let declared = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(declared.status(), 413);
    let body: serde_json::Value = declared.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("API_MAX_BODY_BYTES")),
        "{body}"
    );

    // On one raw connection: the declared-length body past the cap is read before the
    // 413 comes, so the connection is still open for the next request, which is
    // answered (closing it after the 413 left clients mid-upload with a reset, or a
    // pooled connection the server had dropped).
    {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let addr = api.base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let head = format!(
            "POST /api/audit-configs HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            big.len()
        );
        write.write_all(head.as_bytes()).await.expect("head");
        write.write_all(big.as_bytes()).await.expect("body");
        // Reads one response: its status and body.
        async fn response(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> (u16, String) {
            let mut line = String::new();
            read.read_line(&mut line).await.expect("status line");
            let status: u16 = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect(&line);
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                read.read_line(&mut header).await.expect("header");
                if header == "\r\n" || header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            read.read_exact(&mut body).await.expect("body");
            (status, String::from_utf8_lossy(&body).to_string())
        }
        let (status, body) =
            tokio::time::timeout(std::time::Duration::from_secs(10), response(&mut read))
                .await
                .expect("the 413 in time");
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("payload_too_large"), "{body}");
        write
            .write_all(format!("GET /health HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
            .await
            .expect("the same connection takes a second request");
        let (status, body) =
            tokio::time::timeout(std::time::Duration::from_secs(10), response(&mut read))
                .await
                .expect("the second answer in time");
        assert_eq!(status, 200, "the connection answered again: {body}");
    }

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let chunked = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("request");
    assert_eq!(chunked.status(), 413);

    // Under the cap, chunked or not, requests go through (here: a validation error, 4xx
    // from the handler, not from the cap).
    let small = serde_json::json!({"name": "ok", "steps": []}).to_string();
    let chunked_small = api
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(vec![
            Ok::<_, std::io::Error>(small.into_bytes()),
        ])))
        .send()
        .await
        .expect("request");
    let status = chunked_small.status().as_u16();
    let body: serde_json::Value = chunked_small.json().await.expect("json");
    assert!(status == 400 || status == 422, "{status} {body}");
    assert_ne!(body["error"]["code"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_sent_as_another_content_type_or_none_gets_the_documented_415_json_error() {
    let db = test_db("content_type").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let login = serde_json::json!({"email": "nobody@example.test", "password": "x"}).to_string();
    for content_type in [Some("text/plain"), None] {
        let mut req = api
            .http
            .post(format!("{}/api/auth/login", api.base))
            .body(login.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 415, "{content_type:?}");
        let body: serde_json::Value = resp.json().await.expect("json error");
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
        assert_eq!(body["error"]["status"], 415, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_label_routes_by_template_ready_names_the_dependency_only_and_dot_ids_are_refused()
{
    let db = test_db("operability").await;
    // A Temporal address nothing listens on.
    let dead = format!("127.0.0.1:{}", free_port());
    let api = spawn_api(&db.url, temporal_settings(&dead, "unused")).await;
    let token = api.token_for("auditor").await;

    let (status, body) = api.get("/ready", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["postgres"]["status"], "ok");
    assert_eq!(
        body["temporal"]["error"],
        format!("Temporal does not answer at {dead}"),
        "no raw transport error in an unauthenticated answer: {body}"
    );

    for path in ["/wp-admin/setup.php", "/.env", "/api/audits/a/b/c/d"] {
        let (status, _) = api.get(path, Some(&token)).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = api
        .get(
            "/api/audits/0b9c7a52-6d1e-4a40-9d55-0d6a1f0e2b11",
            Some(&token),
        )
        .await;
    assert_eq!(status, 404);
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            r#"callaudit_http_requests_total{method="GET",route="unmatched",status="404"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/audits/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("wp-admin") && !text.contains(".env"),
        "{text}"
    );

    // Fiche ids made only of dots would name another path of the CRM gateway.
    let (status, body) = api.get("/api/fiches/...", Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/audits/run",
            Some(&token),
            &serde_json::json!({"fiche_id": "..", "audit_config_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[test]
fn the_new_settings_are_documented_in_help_and_readme() {
    let help = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().expect("run");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (top, api, worker) = (
        help(&["--help"]),
        help(&["api", "--help"]),
        help(&["worker", "--help"]),
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    for var in [
        "API_RECONCILE_EVERY_S",
        "API_MAX_STREAMS",
        "API_MAX_BODY_BYTES",
        "API_CORS_ALLOWED_ORIGINS",
        "COST_PRICE_TABLE",
        "AUTH_LOGIN_MAX_FAILURES_PER_EMAIL",
        "AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS",
        "AUTH_LOGIN_FAILURE_WINDOW_S",
        "API_TRUSTED_PROXIES",
        "PII_REDACTION",
        "API_SSE_POLL_MS",
    ] {
        assert!(top.contains(var), "--help lacks {var}");
        assert!(api.contains(var), "api --help lacks {var}");
        assert!(readme.contains(var), "README lacks {var}");
    }
    for var in [
        "WORKER_MAX_CONCURRENT_ACTIVITIES",
        "WORKER_METRICS_ADDR",
        "PII_REDACTION",
        "RETENTION_DAYS_TRANSCRIPTS",
        "RETENTION_DAYS_CHAT",
        "RETENTION_DAYS_AUDIO_URLS",
        "RETENTION_CRON",
    ] {
        assert!(top.contains(var) && worker.contains(var), "{var}");
        assert!(readme.contains(var), "README lacks {var}");
    }
}

/// Whether this backend's connection is encrypted.
async fn encrypted(conn: &mut callaudit_db::AsyncPgConnection) -> bool {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(conn)
        .await
        .expect("pg_stat_ssl");
    row.ssl
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls_require_verify_ca_and_verify_full_behave_as_libpq_says() {
    use diesel_async::RunQueryDsl;
    let admin = admin_database_url();
    let mut plain = callaudit_db::establish(&admin).await.expect("plain");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let show =
        |name: &'static str| diesel::sql_query(format!("SELECT current_setting('{name}') AS v"));
    let ssl_on = show("ssl")
        .get_result::<Setting>(&mut plain)
        .await
        .expect("ssl")
        .v
        == "on";
    if !ssl_on {
        // A server without TLS (the embedded cluster of a laptop) cannot exercise this;
        // CI's server has TLS on and sets CALLAUDIT_TEST_REQUIRE_TLS so it never skips.
        assert!(
            std::env::var_os("CALLAUDIT_TEST_REQUIRE_TLS").is_none(),
            "CALLAUDIT_TEST_REQUIRE_TLS is set but the test server has ssl = off"
        );
        eprintln!("skipped: the test Postgres has ssl = off");
        return;
    }
    let cert = show("ssl_cert_file")
        .get_result::<Setting>(&mut plain)
        .await
        .expect("cert")
        .v;
    assert!(
        !encrypted(&mut plain).await,
        "without sslmode the connection is in clear"
    );
    let with = |params: &str| {
        let sep = if admin.contains('?') { '&' } else { '?' };
        format!("{admin}{sep}{params}")
    };

    let mut required = callaudit_db::establish(&with("sslmode=require"))
        .await
        .expect("sslmode=require connects");
    assert!(encrypted(&mut required).await);

    let mut chain =
        callaudit_db::establish(&with(&format!("sslmode=verify-ca&sslrootcert={cert}")))
            .await
            .expect("verify-ca with the server's own certificate as root connects");
    assert!(encrypted(&mut chain).await);

    // Debian's certificate names `localhost`, not 127.0.0.1: verify-full checks the name.
    let by_ip = with(&format!("sslmode=verify-full&sslrootcert={cert}"));
    match callaudit_db::establish(&by_ip).await {
        Ok(_) => panic!("verify-full accepted a certificate that does not name the host"),
        Err(e) => assert!(e.to_string().contains("TLS"), "{e}"),
    }
    if by_ip.contains("@127.0.0.1:") {
        let by_name = by_ip.replace("@127.0.0.1:", "@localhost:");
        let mut full = callaudit_db::establish(&by_name)
            .await
            .expect("verify-full with the name the certificate holds connects");
        assert!(encrypted(&mut full).await);
    }
    // Nor is it signed by a system root.
    assert!(
        callaudit_db::establish(&with("sslmode=verify-full"))
            .await
            .is_err()
    );

    // The pool the api and the worker use connects the same way.
    let pool = callaudit_db::connect_pool(&with("sslmode=require"), 2).expect("pool");
    let mut pooled = callaudit_db::pool::get(&pool)
        .await
        .expect("pooled over TLS");
    assert!(encrypted(&mut pooled).await);
}
