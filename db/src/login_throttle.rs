//! Login throttling shared by every api replica (table `login_throttle`).
//!
//! Each subject — an e-mail (case-insensitive) and a client address — has a counter of
//! login attempts in a fixed window that starts with its first attempt. An attempt is
//! counted *before* the password is checked, in one atomic upsert, so parallel attempts
//! cannot all slip under the limit while their hashes run; a successful login then gives
//! its attempt back (and clears the e-mail's counter), so only failures stay counted.
//! Once a subject has used up its failures the next attempt is refused without any hash
//! work until the window ends. Subjects are stored as SHA-256 hashes: an e-mail field
//! sometimes holds a password typed in the wrong place.

use crate::DbResult;
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Limits of failed logins (`AUTH_LOGIN_*`).
#[derive(Debug, Clone)]
pub struct LoginThrottleSettings {
    /// Failed logins one e-mail may have in a window (default 5).
    pub max_failures_per_email: u32,
    /// Failed logins one client address may have in a window, over all e-mails
    /// (default 20).
    pub max_failures_per_address: u32,
    /// Length of the window (default 15 minutes).
    pub window: Duration,
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures_per_email: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// What a login attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password.
    Allowed,
    /// Too many failures: refuse without checking, and say when to retry.
    Throttled {
        /// Seconds until the window of the exhausted subject ends (at least 1).
        retry_after_s: u64,
    },
}

const EMAIL: &str = "email";
const ADDRESS: &str = "address";

fn subject_hash(subject: &str) -> String {
    hex::encode(Sha256::digest(subject.as_bytes()))
}

fn email_subject(email: &str) -> String {
    subject_hash(&email.trim().to_lowercase())
}

#[derive(diesel::QueryableByName)]
struct Counted {
    #[diesel(sql_type = Integer)]
    failures: i32,
    #[diesel(sql_type = BigInt)]
    retry_after_s: i64,
}

/// Counts one attempt of `subject` in `scope`; returns the attempts in the current
/// window (this one included) and the seconds left in it.
async fn count_attempt(
    conn: &mut AsyncPgConnection,
    scope: &str,
    subject: &str,
    window: Duration,
) -> DbResult<Counted> {
    Ok(diesel::sql_query(
        "INSERT INTO login_throttle AS t (scope, subject_hash, failures, window_started_at) \
         VALUES ($1, $2, 1, now()) \
         ON CONFLICT (scope, subject_hash) DO UPDATE SET \
           failures = CASE WHEN t.window_started_at <= now() - make_interval(secs => $3) \
                      THEN 1 ELSE t.failures + 1 END, \
           window_started_at = CASE WHEN t.window_started_at <= now() - make_interval(secs => $3) \
                      THEN now() ELSE t.window_started_at END \
         RETURNING failures, GREATEST(1, CEIL(EXTRACT(EPOCH FROM \
           (window_started_at + make_interval(secs => $3) - now()))))::BIGINT AS retry_after_s",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(subject)
    .bind::<Double, _>(window.as_secs_f64())
    .get_result(conn)
    .await?)
}

/// Counts a login attempt for `email` from `address` before its password is checked.
/// The address is counted first and, when it is over its limit, the e-mail is left
/// alone: a throttled address cannot lock other people's accounts out.
#[tracing::instrument(skip_all)]
pub async fn claim_attempt(
    conn: &mut AsyncPgConnection,
    settings: &LoginThrottleSettings,
    email: &str,
    address: &str,
) -> DbResult<Attempt> {
    let by_address = count_attempt(conn, ADDRESS, &subject_hash(address), settings.window).await?;
    if by_address.failures > i32::try_from(settings.max_failures_per_address).unwrap_or(i32::MAX) {
        return Ok(Attempt::Throttled {
            retry_after_s: by_address.retry_after_s.max(1).unsigned_abs(),
        });
    }
    let by_email = count_attempt(conn, EMAIL, &email_subject(email), settings.window).await?;
    if by_email.failures > i32::try_from(settings.max_failures_per_email).unwrap_or(i32::MAX) {
        return Ok(Attempt::Throttled {
            retry_after_s: by_email.retry_after_s.max(1).unsigned_abs(),
        });
    }
    Ok(Attempt::Allowed)
}

/// After a successful login: the e-mail's failures are forgiven and the address gets
/// this attempt back (its other failures stay counted).
#[tracing::instrument(skip_all)]
pub async fn forgive_success(
    conn: &mut AsyncPgConnection,
    email: &str,
    address: &str,
) -> DbResult<()> {
    diesel::sql_query("DELETE FROM login_throttle WHERE scope = $1 AND subject_hash = $2")
        .bind::<Text, _>(EMAIL)
        .bind::<Text, _>(email_subject(email))
        .execute(&mut *conn)
        .await?;
    diesel::sql_query(
        "UPDATE login_throttle SET failures = failures - 1 \
         WHERE scope = $1 AND subject_hash = $2 AND failures > 0",
    )
    .bind::<Text, _>(ADDRESS)
    .bind::<Text, _>(subject_hash(address))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` counters whose window ended (cheap: indexed, bounded, skipping
/// rows another replica is deleting); returns how many.
pub async fn purge_stale(
    conn: &mut AsyncPgConnection,
    window: Duration,
    limit: i64,
) -> DbResult<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM login_throttle WHERE (scope, subject_hash) IN ( \
           SELECT scope, subject_hash FROM login_throttle \
           WHERE window_started_at <= now() - make_interval(secs => $1) \
           LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Double, _>(window.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await?)
}
