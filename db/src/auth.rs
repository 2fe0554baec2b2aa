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

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> DbResult<String> {
    let salt = SaltString::from_b64(&hex::encode(rand::random::<[u8; 16]>()))
        .map_err(|_| DbError::Password)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| DbError::Password)
}

/// Checks a password against a stored argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn token_hash(token: &str) -> String {
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
pub async fn upsert_user(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
    role: &str,
) -> DbResult<Uuid> {
    let hash = hash_password(password)?;
    let email = email.trim().to_string();
    let role = role.to_string();
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(USER_UPSERT_LOCK)
            .execute(&mut *conn)
            .await?;
        let existing: Option<Uuid> = users::table
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                    .bind::<diesel::sql_types::Text, _>(&email)
                    .sql(")"),
            )
            .select(users::id)
            .first(&mut *conn)
            .await
            .optional()?;
        let id = match existing {
            Some(id) => {
                diesel::update(users::table.find(id))
                    .set((
                        users::password_hash.eq(&hash),
                        users::updated_at.eq(Utc::now()),
                    ))
                    .execute(&mut *conn)
                    .await?;
                id
            }
            None => {
                let id = Uuid::new_v4();
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(id),
                        users::email.eq(&email),
                        users::password_hash.eq(&hash),
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

/// Checks credentials; on success issues a bearer token valid for `ttl` and returns it in
/// clear (only its hash is stored) with its expiry.
pub async fn login(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
    ttl: Duration,
) -> DbResult<Option<(String, DateTime<Utc>, Principal)>> {
    let row: Option<(User, String)> = users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email.trim())
                .sql(")"),
        )
        .select((User::as_select(), users::password_hash))
        .first(&mut *conn)
        .await
        .optional()?;
    let Some((user, hash)) = row else {
        // Same work as a real check, so timing does not reveal which e-mails exist.
        let _ = verify_password(
            password,
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWg",
        );
        return Ok(None);
    };
    if !user.active || !verify_password(password, &hash) {
        return Ok(None);
    }
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
    Ok(Some((token, expires_at, principal)))
}

/// Resolves a bearer token to its principal, if the token exists, is not revoked or
/// expired and its user is active.
pub async fn principal_for_token(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> DbResult<Option<Principal>> {
    let now = Utc::now();
    let user: Option<User> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(token_hash(token)))
        .filter(api_tokens::expires_at.gt(now))
        .filter(api_tokens::revoked_at.is_null())
        .filter(users::active.eq(true))
        .select(User::as_select())
        .first(&mut *conn)
        .await
        .optional()?;
    match user {
        Some(user) => Ok(Some(principal_of(conn, user).await?)),
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
