//! Users, roles, permissions and bearer tokens.

use crate::schema::{api_tokens, permissions, role_permissions, roles, user_roles, users};
use crate::{DbError, DbResult};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use callaudit_domain::rbac;
use chrono::{DateTime, Duration, Utc};
use diesel::{
    ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A user row (without its password hash).
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = users)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Login e-mail (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Inactive users cannot log in.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A user with their roles and the permissions those grant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// Role names.
    pub roles: Vec<String>,
    /// Permissions as `resource:action`.
    pub permissions: Vec<String>,
}

impl Principal {
    /// Whether this principal holds `permission`.
    pub fn can(&self, permission: rbac::Permission) -> bool {
        let wanted = permission.to_string();
        self.permissions.contains(&wanted)
    }
}

/// Hashes a password with argon2id and a random salt. CPU-bound (tens of milliseconds):
/// call it from blocking code (`spawn_blocking`), as [`upsert_user`] does.
pub fn hash_password(password: &str) -> DbResult<String> {
    let salt = SaltString::from_b64(&hex::encode(rand::random::<[u8; 16]>()))
        .map_err(|_| DbError::Password)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| DbError::Password)
}

/// Checks a password against a stored argon2 hash. CPU-bound, like [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs argon2 work on tokio's blocking pool, never on the async threads.
async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> DbResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| DbError::Password)
}

/// A real hash (same parameters as stored ones) of a random password, checked when an
/// e-mail is unknown so that the answer takes as long as for a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&hex::encode(rand::random::<[u8; 16]>()))
            .expect("argon2 hashes a random password")
    })
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Upserts the built-in roles and permissions and links them; safe to run concurrently
/// and repeatedly (every insert is `ON CONFLICT DO NOTHING`).
pub async fn seed_rbac(conn: &mut AsyncPgConnection) -> DbResult<()> {
    {
        {
            for p in rbac::Permission::all() {
                diesel::insert_into(permissions::table)
                    .values((
                        permissions::resource.eq(p.resource.as_str()),
                        permissions::action.eq(p.action.as_str()),
                    ))
                    .on_conflict((permissions::resource, permissions::action))
                    .do_nothing()
                    .execute(&mut *conn)
                    .await?;
            }
            for (name, description) in rbac::ROLES {
                diesel::insert_into(roles::table)
                    .values((roles::name.eq(name), roles::description.eq(description)))
                    .on_conflict(roles::name)
                    .do_update()
                    .set(roles::description.eq(description))
                    .execute(&mut *conn)
                    .await?;
                let role_id: i32 = roles::table
                    .filter(roles::name.eq(name))
                    .select(roles::id)
                    .first(&mut *conn)
                    .await?;
                for p in rbac::permissions_of(name) {
                    let permission_id: i32 = permissions::table
                        .filter(permissions::resource.eq(p.resource.as_str()))
                        .filter(permissions::action.eq(p.action.as_str()))
                        .select(permissions::id)
                        .first(&mut *conn)
                        .await?;
                    diesel::insert_into(role_permissions::table)
                        .values((
                            role_permissions::role_id.eq(role_id),
                            role_permissions::permission_id.eq(permission_id),
                        ))
                        .on_conflict_do_nothing()
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }
    }
}

/// Key of the transaction-level advisory lock that serialises user upserts: replicas
/// starting together all upsert the seeded admin, and a select-then-insert race would
/// end one of them on the unique e-mail index.
const USER_UPSERT_LOCK: i64 = 0x6361_6c6c_7573_6572; // "calluser"

/// Creates a user with the given role, or updates the password and role of the existing
/// user with that e-mail; safe to run from many processes at once. Returns the user id.
///
/// A changed password revokes every token of the user; the same password again (the
/// admin re-seeded at each start) keeps the stored hash and the sessions. The argon2
/// work runs on the blocking pool before the transaction, never inside it.
pub async fn upsert_user(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
    role: &str,
) -> DbResult<Uuid> {
    let email = email.trim().to_string();
    let role = role.to_string();
    let stored: Option<String> = users::table
        .filter(email_matches(&email))
        .select(users::password_hash)
        .first(&mut *conn)
        .await
        .optional()?;
    let (new_hash, verified_hash) = {
        let password = password.to_owned();
        off_thread(move || -> DbResult<(String, Option<String>)> {
            let verified = stored.filter(|h| verify_password(&password, h));
            Ok((hash_password(&password)?, verified))
        })
        .await??
    };
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(USER_UPSERT_LOCK)
            .execute(&mut *conn)
            .await?;
        let existing: Option<(Uuid, String)> = users::table
            .filter(email_matches(&email))
            .select((users::id, users::password_hash))
            .first(&mut *conn)
            .await
            .optional()?;
        let id = match existing {
            // Unchanged since it was verified against this password: nothing to do.
            Some((id, hash)) if verified_hash.as_ref() == Some(&hash) => id,
            Some((id, _)) => {
                diesel::update(users::table.find(id))
                    .set((
                        users::password_hash.eq(&new_hash),
                        users::updated_at.eq(Utc::now()),
                    ))
                    .execute(&mut *conn)
                    .await?;
                let revoked = revoke_user_tokens(conn, id).await?;
                tracing::info!(user.id = %id, revoked, "password changed; tokens revoked");
                id
            }
            None => {
                let id = Uuid::new_v4();
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(id),
                        users::email.eq(&email),
                        users::password_hash.eq(&new_hash),
                    ))
                    .execute(&mut *conn)
                    .await?;
                id
            }
        };
        let role_id: i32 = roles::table
            .filter(roles::name.eq(&role))
            .select(roles::id)
            .first(&mut *conn)
            .await?;
        diesel::insert_into(user_roles::table)
            .values((user_roles::user_id.eq(id), user_roles::role_id.eq(role_id)))
            .on_conflict_do_nothing()
            .execute(&mut *conn)
            .await?;
        Ok(id)
    })
    .await
}

/// `lower(email) = lower($email)` (the unique index is on `lower(email)`).
fn email_matches(
    email: &str,
) -> diesel::expression::SqlLiteral<
    diesel::sql_types::Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg> + Send,
> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
        .bind::<diesel::sql_types::Text, _>(email.trim().to_string())
        .sql(")")
}

/// Revokes every live token of a user; returns how many.
pub async fn revoke_user_tokens(conn: &mut AsyncPgConnection, user_id: Uuid) -> DbResult<usize> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?)
}

/// Revokes one token (logout); revoking it again changes nothing.
pub async fn revoke_token(conn: &mut AsyncPgConnection, token_id: Uuid) -> DbResult<()> {
    diesel::update(
        api_tokens::table
            .find(token_id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` expired tokens (revoked or not: an expired token is refused
/// either way); indexed on `expires_at`, bounded, skipping rows another replica is
/// deleting, so it is cheap enough to run on every login. Returns how many.
pub async fn purge_expired_tokens(conn: &mut AsyncPgConnection, limit: i64) -> DbResult<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM api_tokens WHERE id IN ( \
           SELECT id FROM api_tokens WHERE expires_at <= now() \
           LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await?)
}

/// The stored credentials an e-mail names, read before the password check so that the
/// check runs without holding a connection.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// Its argon2 hash.
    pub password_hash: String,
}

/// Reads the credentials of the user with this e-mail (case-insensitive), if any.
pub async fn credentials_for(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> DbResult<Option<Credentials>> {
    Ok(users::table
        .filter(email_matches(email))
        .select((User::as_select(), users::password_hash))
        .first::<(User, String)>(conn)
        .await
        .optional()?
        .map(|(user, password_hash)| Credentials {
            user,
            password_hash,
        }))
}

/// Checks `password` on the blocking pool and returns the user it authenticates. Every
/// path does the same argon2 work — an unknown e-mail is checked against a dummy hash,
/// an inactive user is refused only after the check — so neither the answer nor its
/// timing tells which e-mails exist or are active.
pub async fn check_password(
    credentials: Option<Credentials>,
    password: &str,
) -> DbResult<Option<User>> {
    let password = password.to_owned();
    off_thread(move || {
        let hash: &str = match &credentials {
            Some(c) => &c.password_hash,
            None => dummy_hash(),
        };
        let verified = verify_password(&password, hash);
        credentials
            .map(|c| c.user)
            .filter(|user| verified && user.active)
    })
    .await
}

/// Issues a bearer token valid for `ttl` to an authenticated user and returns it in clear
/// (only its hash is stored) with its expiry and the user's principal.
pub async fn issue_token(
    conn: &mut AsyncPgConnection,
    user: User,
    ttl: Duration,
) -> DbResult<(String, DateTime<Utc>, Principal)> {
    let token = format!("ca_{}", hex::encode(rand::random::<[u8; 32]>()));
    let expires_at = Utc::now() + ttl;
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::new_v4()),
            api_tokens::user_id.eq(user.id),
            api_tokens::token_hash.eq(token_hash(&token)),
            api_tokens::expires_at.eq(expires_at),
        ))
        .execute(&mut *conn)
        .await?;
    let principal = principal_of(conn, user).await?;
    Ok((token, expires_at, principal))
}

/// A principal authenticated by one bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token's row id (what logout revokes).
    pub token_id: Uuid,
    /// Who it authenticates.
    pub principal: Principal,
}

/// Resolves a bearer token to its session, if the token exists, is not revoked or
/// expired and its user is active.
pub async fn session_for_token(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> DbResult<Option<Session>> {
    let now = Utc::now();
    let row: Option<(Uuid, User)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(token_hash(token)))
        .filter(api_tokens::expires_at.gt(now))
        .filter(api_tokens::revoked_at.is_null())
        .filter(users::active.eq(true))
        .select((api_tokens::id, User::as_select()))
        .first(&mut *conn)
        .await
        .optional()?;
    match row {
        Some((token_id, user)) => Ok(Some(Session {
            token_id,
            principal: principal_of(conn, user).await?,
        })),
        None => Ok(None),
    }
}

async fn principal_of(conn: &mut AsyncPgConnection, user: User) -> DbResult<Principal> {
    let role_names: Vec<String> = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user.id))
        .select(roles::name)
        .order(roles::name)
        .load(conn)
        .await?;
    let perms: Vec<(String, String)> = user_roles::table
        .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
        .inner_join(permissions::table.on(permissions::id.eq(role_permissions::permission_id)))
        .filter(user_roles::user_id.eq(user.id))
        .select((permissions::resource, permissions::action))
        .distinct()
        .load(conn)
        .await?;
    let mut permissions: Vec<String> = perms.into_iter().map(|(r, a)| format!("{r}:{a}")).collect();
    permissions.sort();
    Ok(Principal {
        user,
        roles: role_names,
        permissions,
    })
}
