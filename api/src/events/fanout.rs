//! One read for many streams: when a notification of a topic wakes every stream of that
//! topic, the streams waiting for the same rows (same topic, same last id) share a single
//! query instead of running one each. Measured with `callaudit bench sse --topics 1`:
//! 500 streams of one audit made 500 queries per event (p99 delay 178 ms, the api and
//! the Postgres backends half a core each at 19 events/s).
//!
//! A stream may join a read only if that read began after the notification that woke the
//! stream had arrived (every notification the replica receives is counted): such a read
//! sees the event, since Postgres sends a NOTIFY only once its transaction committed. A
//! read begun earlier might not, and the stream would then wait for the next poll; so it
//! reads on its own instead. Streams that wake for another reason (a poll tick, a lagging
//! subscription, a reconnected listener, the first read) always read on their own.

use callaudit_db::events::Event;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

type Read = Shared<BoxFuture<'static, Option<Arc<Vec<Event>>>>>;

struct InFlight {
    /// Notifications counted when the read was created (before its query began).
    after_notifications: u64,
    id: u64,
    created: Instant,
    read: Read,
}

/// Reads under way by `(topic, after id)`, and the count of notifications received.
#[derive(Clone, Default)]
pub(crate) struct SharedReads {
    notifications: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    reads: Arc<Mutex<BTreeMap<(String, i64), InFlight>>>,
}

impl std::fmt::Debug for SharedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReads")
            .field("notifications", &self.notifications.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A read nobody finished (every stream waiting for it went away) is forgotten after this.
const STALE: Duration = Duration::from_secs(30);

impl SharedReads {
    /// Counts one notification; call it before broadcasting the notification.
    pub(crate) fn notified(&self) {
        self.notifications.fetch_add(1, Ordering::SeqCst);
    }

    /// Notifications received so far: what a stream woken by a notification remembers.
    pub(crate) fn seen(&self) -> u64 {
        self.notifications.load(Ordering::SeqCst)
    }

    /// The events of `topic` after `after` (at most `page`), from a read begun after the
    /// replica had received `seen` notifications: one under way if there is one, else a
    /// new one that later streams may join.
    pub(crate) async fn since(
        &self,
        pool: &callaudit_db::Pool,
        topic: &str,
        after: i64,
        page: i64,
        seen: u64,
    ) -> Result<Vec<Event>, callaudit_db::DbError> {
        let key = (topic.to_string(), after);
        let (id, read) = {
            let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            match reads.get(&key) {
                Some(r) if r.after_notifications >= seen => (r.id, r.read.clone()),
                _ => {
                    reads.retain(|_, r| r.created.elapsed() < STALE);
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let (pool, topic) = (pool.clone(), topic.to_string());
                    let read = async move {
                        let mut conn = callaudit_db::pool::get(&pool).await.ok()?;
                        callaudit_db::events::since(&mut conn, &topic, after, page)
                            .await
                            .ok()
                            .map(Arc::new)
                    }
                    .boxed()
                    .shared();
                    reads.insert(
                        key.clone(),
                        InFlight {
                            after_notifications: self.seen(),
                            id,
                            created: Instant::now(),
                            read: read.clone(),
                        },
                    );
                    (id, read)
                }
            }
        };
        let rows = read.await;
        {
            // Done: streams waking from now on read again.
            let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            if reads.get(&key).is_some_and(|r| r.id == id) {
                reads.remove(&key);
            }
        }
        match rows {
            Some(rows) => Ok(rows.as_ref().clone()),
            // The shared read failed: read alone, to report its own error.
            None => {
                let mut conn = callaudit_db::pool::get(pool).await?;
                callaudit_db::events::since(&mut conn, topic, after, page).await
            }
        }
    }
}
