//! Login hardening: failed logins throttled per e-mail and per client address (in
//! Postgres, so across replicas), argon2 off the async threads and without a database
//! connection, inactive users refused only after the hash check, logout, revocation on a
//! password change, and the purge of expired tokens.

use crate::support::*;
use callaudit_db::schema::{api_tokens, users};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use std::time::{Duration, Instant};

/// The answer to one login attempt.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: serde_json::Value,
}

async fn login_from(
    api: &TestApi,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut req = api
        .http
        .post(format!("{}/api/auth/login", api.base))
        .json(&serde_json::json!({"email": email, "password": password}));
    if let Some(xff) = forwarded_for {
        req = req.header("X-Forwarded-For", xff);
    }
    let resp = req.send().await.expect("login request");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").map(|v| {
        v.to_str()
            .expect("ascii")
            .parse()
            .expect("Retry-After in seconds")
    });
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn login(api: &TestApi, email: &str, password: &str) -> Answer {
    login_from(api, email, password, None).await
}

/// Seeds roles and upserts `email` as an auditor with `password`.
async fn user(api: &TestApi, email: &str, password: &str) -> uuid::Uuid {
    let mut conn = callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    callaudit_db::auth::seed_rbac(&mut conn)
        .await
        .expect("seed");
    callaudit_db::auth::upsert_user(&mut conn, email, password, "auditor")
        .await
        .expect("user")
}

fn token_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["token"].as_str().expect("token").to_string()
}

async fn api_on(
    db_url: &str,
    adjust: impl FnOnce(&mut callaudit_api::state::ApiSettings),
) -> TestApi {
    let mut settings = api_settings(
        db_url,
        temporal_settings(&temporal_address(), "unused"),
        None,
        3,
    );
    adjust(&mut settings);
    spawn_api_from(settings).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_wrong_password_for_an_email_gets_429_with_retry_after_while_another_email_still_gets_401()
 {
    let db = test_db("login_throttle_email").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    user(&api, "ada@example.test", "right password").await;
    user(&api, "bob@example.test", "bob's password").await;

    for attempt in 1..=5 {
        let a = login(&api, "ada@example.test", "wrong").await;
        assert_eq!(a.status, 401, "wrong password #{attempt}: {}", a.body);
        assert_eq!(a.retry_after, None);
    }
    let sixth = login(&api, "Ada@Example.test", "wrong").await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    let retry_after = sixth.retry_after.expect("Retry-After header");
    assert!(
        (1..=900).contains(&retry_after),
        "retry after {retry_after} s, within the 15 min window"
    );
    assert_eq!(sixth.body["error"]["status"], 429);
    assert_eq!(sixth.body["error"]["code"], "too_many_requests");
    // Throttled means not checked: even the right password waits for the window.
    let right = login(&api, "ada@example.test", "right password").await;
    assert_eq!(right.status, 429, "{}", right.body);

    let other = login(&api, "bob@example.test", "wrong").await;
    assert_eq!(
        other.status, 401,
        "another e-mail is not throttled: {}",
        other.body
    );
    token_of(&login(&api, "bob@example.test", "bob's password").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_holds_across_api_replicas_sharing_the_database() {
    let db = test_db("login_throttle_replicas").await;
    let first = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let second = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    user(&first, "ada@example.test", "right password").await;

    for (i, api) in [&first, &second, &first, &second, &first]
        .into_iter()
        .enumerate()
    {
        let a = login(api, "ada@example.test", "wrong").await;
        assert_eq!(a.status, 401, "attempt {}: {}", i + 1, a.body);
    }
    let sixth = login(&second, "ada@example.test", "wrong").await;
    assert_eq!(
        sixth.status, 429,
        "the replicas share one count: {}",
        sixth.body
    );
    assert!(sixth.retry_after.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_passwords_cannot_slip_past_the_limit() {
    let db = test_db("login_throttle_parallel").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    user(&api, "ada@example.test", "right password").await;

    let answers =
        futures::future::join_all((0..10).map(|_| login(&api, "ada@example.test", "wrong"))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort();
    assert_eq!(statuses, [vec![401; 5], vec![429; 5]].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_login_clears_the_count_of_its_email() {
    let db = test_db("login_throttle_success").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    user(&api, "ada@example.test", "right password").await;

    for _ in 0..4 {
        assert_eq!(login(&api, "ada@example.test", "typo").await.status, 401);
    }
    token_of(&login(&api, "ada@example.test", "right password").await);
    for attempt in 1..=5 {
        let a = login(&api, "ada@example.test", "typo").await;
        assert_eq!(a.status, 401, "typo #{attempt} after a success: {}", a.body);
    }
    assert_eq!(login(&api, "ada@example.test", "typo").await.status, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_counted_per_client_address_across_emails_and_forwarded_for_is_ignored_by_default()
 {
    let db = test_db("login_throttle_address").await;
    let api = api_on(&db.url, |s| s.login_throttle.max_failures_per_address = 3).await;
    user(&api, "ada@example.test", "right password").await;

    // A client naming a fresh address in each request is still the same TCP peer.
    for i in 1..=3 {
        let a = login_from(
            &api,
            &format!("guess{i}@example.test"),
            "password1",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(a.status, 401, "guess {i}: {}", a.body);
    }
    let fourth = login_from(
        &api,
        "guess4@example.test",
        "password1",
        Some("203.0.113.4"),
    )
    .await;
    assert_eq!(fourth.status, 429, "{}", fourth.body);
    assert!(fourth.retry_after.is_some());
    // A throttled address counts nothing against the e-mails it goes on trying, so it
    // cannot lock their owners out.
    let conn = &mut callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    let email_rows: i64 =
        diesel::sql_query("SELECT count(*) AS n FROM login_throttle WHERE scope = 'email'")
            .get_result::<Count>(conn)
            .await
            .expect("count")
            .n;
    assert_eq!(
        email_rows, 3,
        "the refused fourth attempt counted no e-mail"
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_forwarded_for_names_the_client() {
    let db = test_db("login_throttle_proxy").await;
    let api = api_on(&db.url, |s| {
        s.login_throttle.max_failures_per_address = 2;
        s.login_throttle.max_failures_per_email = 100;
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    user(&api, "ada@example.test", "right password").await;

    // Two clients behind the proxy: each has its own count.
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let a = login_from(&api, "ada@example.test", "wrong", Some(client)).await;
            assert_eq!(a.status, 401, "{client}: {}", a.body);
        }
    }
    let a = login_from(&api, "ada@example.test", "wrong", Some("203.0.113.1")).await;
    assert_eq!(a.status, 429, "{}", a.body);
    // What a client writes itself before the proxy's entry does not help it.
    let a = login_from(
        &api,
        "ada@example.test",
        "wrong",
        Some("198.51.100.77, 203.0.113.2"),
    )
    .await;
    assert_eq!(a.status, 429, "{}", a.body);
    let a = login_from(&api, "ada@example.test", "wrong", Some("203.0.113.3")).await;
    assert_eq!(a.status, 401, "a third client is not throttled: {}", a.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_presented_token_only() {
    let db = test_db("logout").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    user(&api, "ada@example.test", "right password").await;
    let laptop = token_of(&login(&api, "ada@example.test", "right password").await);
    let phone = token_of(&login(&api, "ada@example.test", "right password").await);

    let resp = api
        .http
        .post(format!("{}/api/auth/logout", api.base))
        .bearer_auth(&laptop)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);

    let (status, body) = api.get("/api/auth/me", Some(&laptop)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = api.get("/api/auth/me", Some(&phone)).await;
    assert_eq!(status, 200, "the other session lives on");
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&laptop),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 401, "a revoked token cannot log out again");
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/api/auth/logout",
            None,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_a_password_revokes_the_users_tokens_and_reseeding_the_same_one_keeps_them() {
    let db = test_db("password_change").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let seed = |password: &'static str| {
        let pool = api.state.pool.clone();
        async move {
            let mut conn = callaudit_db::pool::get(&pool).await.expect("conn");
            callaudit_db::auth::seed_rbac(&mut conn)
                .await
                .expect("seed");
            callaudit_db::auth::upsert_user(&mut conn, "admin@example.test", password, "admin")
                .await
                .expect("admin")
        }
    };
    let id = seed("first password").await;
    let token = token_of(&login(&api, "admin@example.test", "first password").await);

    // The admin re-seeded at each start with the same password: sessions survive.
    assert_eq!(seed("first password").await, id);
    let (status, _) = api.get("/api/auth/me", Some(&token)).await;
    assert_eq!(
        status, 200,
        "re-seeding the same password keeps the session"
    );

    assert_eq!(seed("second password").await, id);
    let (status, body) = api.get("/api/auth/me", Some(&token)).await;
    assert_eq!(
        status, 401,
        "the old token dies with the old password: {body}"
    );
    assert_eq!(
        login(&api, "admin@example.test", "first password")
            .await
            .status,
        401
    );
    let fresh = token_of(&login(&api, "admin@example.test", "second password").await);
    let (status, _) = api.get("/api/auth/me", Some(&fresh)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_are_purged_when_someone_logs_in() {
    let db = test_db("token_purge").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let ada = user(&api, "ada@example.test", "right password").await;
    let old = token_of(&login(&api, "ada@example.test", "right password").await);
    let live = token_of(&login(&api, "ada@example.test", "right password").await);
    let conn = &mut callaudit_db::pool::get(&api.state.pool)
        .await
        .expect("conn");
    let tokens_of_ada = async |conn: &mut callaudit_db::PooledConn| -> i64 {
        api_tokens::table
            .filter(api_tokens::user_id.eq(ada))
            .count()
            .get_result(&mut **conn)
            .await
            .expect("count")
    };
    assert_eq!(tokens_of_ada(conn).await, 2);
    // Age the first token past its expiry (its hash is what the database knows).
    let expired: uuid::Uuid = api_tokens::table
        .filter(api_tokens::user_id.eq(ada))
        .order(api_tokens::created_at)
        .select(api_tokens::id)
        .first(&mut **conn)
        .await
        .expect("first token");
    diesel::update(api_tokens::table.find(expired))
        .set(api_tokens::expires_at.eq(chrono::Utc::now() - chrono::Duration::minutes(1)))
        .execute(&mut **conn)
        .await
        .expect("expire");
    let (status, _) = api.get("/api/auth/me", Some(&old)).await;
    assert_eq!(status, 401, "an expired token is refused");
    assert_eq!(tokens_of_ada(conn).await, 2, "refused, not yet deleted");

    // Any login attempt runs the purge, a failed one by someone else included.
    assert_eq!(login(&api, "eve@example.test", "guess").await.status, 401);
    assert_eq!(tokens_of_ada(conn).await, 1, "the expired row is gone");
    let (status, _) = api.get("/api/auth/me", Some(&live)).await;
    assert_eq!(status, 200, "the live token stays");
}

/// Wall-clock time of the fastest of `n` login attempts.
async fn fastest_login(api: &TestApi, email: &str, password: &str, n: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..n {
        let started = Instant::now();
        let a = login(api, email, password).await;
        assert_eq!(a.status, 401, "{email}: {}", a.body);
        best = best.min(started.elapsed());
    }
    best
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inactive_user_is_refused_like_a_wrong_password_and_only_after_the_hash_check() {
    let db = test_db("inactive_user").await;
    let api = spawn_api(&db.url, temporal_settings(&temporal_address(), "unused")).await;
    let ada = user(&api, "ada@example.test", "right password").await;
    user(&api, "bob@example.test", "bob's password").await;
    {
        let conn = &mut callaudit_db::pool::get(&api.state.pool)
            .await
            .expect("conn");
        diesel::update(users::table.find(ada))
            .set(users::active.eq(false))
            .execute(&mut **conn)
            .await
            .expect("deactivate");
    }
    let inactive = login(&api, "ada@example.test", "right password").await;
    let wrong = login(&api, "bob@example.test", "wrong").await;
    let unknown = login(&api, "nobody@example.test", "right password").await;
    assert_eq!(inactive.status, 401);
    assert_eq!(inactive.body, wrong.body, "same answer as a wrong password");
    assert_eq!(unknown.body, wrong.body, "same answer as an unknown e-mail");

    // Each of these does one argon2 check: an inactive user or an unknown e-mail that
    // skipped it would answer several times faster than a wrong password.
    let inactive = fastest_login(&api, "ada@example.test", "right password", 3).await;
    let unknown = fastest_login(&api, "nobody@example.test", "right password", 3).await;
    let wrong = fastest_login(&api, "bob@example.test", "wrong", 3).await;
    for (what, took) in [("inactive user", inactive), ("unknown e-mail", unknown)] {
        assert!(
            took * 2 >= wrong,
            "{what} answered in {took:?}, a wrong password in {wrong:?}: the hash check was skipped"
        );
    }
}

/// Runs on one thread on purpose: an argon2 check on the async thread would stall the
/// sampler below for the whole check.
#[tokio::test(flavor = "current_thread")]
async fn argon2_runs_off_the_async_threads_without_holding_a_connection() {
    let db = test_db("login_offload").await;
    let api = api_on(&db.url, |s| s.pool_size = 1).await;
    user(&api, "ada@example.test", "right password").await;

    let pool = api.state.pool.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = done.clone();
        async move {
            let (mut samples, mut busy, mut longest_gap) = (0u32, 0u32, Duration::ZERO);
            let mut last = Instant::now();
            while !std::sync::atomic::AtomicBool::load(&done, std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2)).await;
                longest_gap = longest_gap.max(last.elapsed());
                last = Instant::now();
                samples += 1;
                if pool.status().available == 0 {
                    busy += 1;
                }
            }
            (samples, busy, longest_gap)
        }
    });
    let started = Instant::now();
    let a = login(&api, "ada@example.test", "wrong").await;
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(a.status, 401);
    let (samples, busy, longest_gap) = sampler.await.expect("sampler");
    assert!(
        longest_gap * 3 < took,
        "the async thread stalled for {longest_gap:?} of a {took:?} login: argon2 ran on it"
    );
    assert!(
        busy * 2 < samples,
        "the only connection was checked out in {busy} of {samples} samples: held while hashing"
    );
}
