//! `Idempotency-Key` on the routes that start work: the same key (per user) with the same
//! request returns what the first request created; the key with another request is a 409.

use crate::error::ApiError;
use callaudit_db::AsyncPgConnection;
use callaudit_db::audits::{self, KeyedAudit};
use uuid::Uuid;

/// A validated key and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// What was asked (compared when the key comes again).
    pub fingerprint: String,
}

/// The key of a request, if it sent one: 1 to 200 visible ASCII characters, else 400.
pub fn key(header: Option<&str>, fingerprint: String) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = header else {
        return Ok(None);
    };
    let key = raw.trim();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 200 visible ASCII characters",
        ));
    }
    Ok(Some(IdempotencyKey {
        key: key.to_string(),
        fingerprint,
    }))
}

/// The audit `user` created earlier under `key`, when the request is the same; 409 when
/// the key was used for another request.
pub async fn earlier_audit(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<KeyedAudit>, ApiError> {
    match audits::by_idempotency_key(conn, user, &key.key).await? {
        None => Ok(None),
        Some(a) if a.request_fingerprint.as_deref() == Some(key.fingerprint.as_str()) => {
            Ok(Some(a))
        }
        Some(a) => Err(ApiError::conflict(format!(
            "Idempotency-Key {:?} was used for another request (audit {}); use a new key",
            key.key, a.id
        ))),
    }
}
