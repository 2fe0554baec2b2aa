//! The `stream_tokens` table: short-lived tokens that let a browser open one event stream
//! (`EventSource` cannot send an `Authorization` header). Only the SHA-256 of a token is
//! stored; a token names its topic and is refused for any other.

use crate::DbResult;
use crate::auth::token_hash;
use crate::schema::stream_tokens;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Rows deleted at most per purge (keeps issuing cheap).
const PURGE_BATCH: i64 = 500;

/// Issues a token for `user` to follow `topic` until `ttl` from now; returns it in clear
/// with its expiry. Expired tokens are purged in a bounded batch on the way.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    topic: &str,
    ttl: chrono::Duration,
) -> DbResult<(String, DateTime<Utc>)> {
    let stale: Vec<String> = stream_tokens::table
        .filter(stream_tokens::expires_at.lt(Utc::now()))
        .select(stream_tokens::token_hash)
        .limit(PURGE_BATCH)
        .load(&mut *conn)
        .await?;
    if !stale.is_empty() {
        diesel::delete(stream_tokens::table.filter(stream_tokens::token_hash.eq_any(stale)))
            .execute(&mut *conn)
            .await?;
    }
    let token = format!("st_{}", hex::encode(rand::random::<[u8; 32]>()));
    let expires_at = Utc::now() + ttl;
    diesel::insert_into(stream_tokens::table)
        .values((
            stream_tokens::token_hash.eq(token_hash(&token)),
            stream_tokens::topic.eq(topic),
            stream_tokens::user_id.eq(user),
            stream_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok((token, expires_at))
}

/// The topic and user of a token that has not expired.
pub async fn check(conn: &mut AsyncPgConnection, token: &str) -> DbResult<Option<(String, Uuid)>> {
    Ok(stream_tokens::table
        .find(token_hash(token))
        .filter(stream_tokens::expires_at.gt(Utc::now()))
        .select((stream_tokens::topic, stream_tokens::user_id))
        .first(conn)
        .await
        .optional()?)
}
