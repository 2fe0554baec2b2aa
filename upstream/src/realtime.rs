//! The realtime relay: carries the `events` table to Pusher Channels, in the worker,
//! one relay at a time across every worker (a lease of the `realtime_relay` pool, one
//! slot), woken by the events' `pg_notify` and polling at least every
//! [`RelaySettings::poll_every`] (a lost notification, or an event whose transaction
//! was still open when it was announced, waits at most that long).
//!
//! Delivery is at least once, in practice once: the cursor (`realtime_relay_cursors`)
//! is advanced after Pusher accepted each event, so a relay stopped between the two
//! sends that one event again (its data carries `event_id` for clients to drop the
//! copy). Events are read in the commit-safe order of `callaudit_db::realtime::after`,
//! so none is skipped across restarts. A failure leaves the cursor where it is and is
//! recorded on the cursor's row (`failures`, `last_error`); the relay backs off (1 s
//! doubling to 30 s) and tries the same event again, for as long as it takes — refused
//! credentials included, so fixing `PUSHER_SECRET` delivers everything that waited.
//! Only an event Pusher refuses as such (a 4xx other than 401/403: it can never be
//! accepted) is skipped, recorded and logged.
//!
//! Which channel and event name each event goes to is `callaudit_domain::realtime`.

use crate::pusher::{PusherClient, TriggerError};
use callaudit_db::leases::{self, Lease};
use callaudit_db::realtime::{self as store, RelayEvent};
use callaudit_db::{Pool, pool};
use callaudit_domain::realtime::{JobContext, JobKind, job_of_topic, messages_for};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The relay's cursor row.
pub const RELAY_NAME: &str = "pusher";

/// Lease pool of the relay (one slot: one relay at a time).
pub const LEASE_POOL: &str = "realtime_relay";

/// Lease length; extended at least every [`EXTEND_EVERY`] while relaying, so a stopped
/// worker's relay is taken over at most this long after it stopped.
const LEASE_SECONDS: i32 = 15;
const EXTEND_EVERY: Duration = Duration::from_secs(4);

/// Events read per pass.
const PASS_SIZE: i64 = 100;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Longest wait between two passes without a notification.
    pub poll_every: Duration,
    /// How long a worker that does not hold the lease waits before trying again.
    pub standby_every: Duration,
    /// Unique name of this relay (the lease holder).
    pub holder: String,
}

impl RelaySettings {
    /// A 2 s poll, a 5 s standby, under `holder`.
    pub fn new(holder: impl Into<String>) -> Self {
        Self {
            poll_every: Duration::from_secs(2),
            standby_every: Duration::from_secs(5),
            holder: holder.into(),
        }
    }
}

/// Runs the relay forever (spawn it): waits for the lease, then relays while it holds
/// it. `database_url` is for the `LISTEN` connection.
pub async fn run(db: Pool, database_url: String, client: PusherClient, settings: RelaySettings) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(database_url, wake.clone()));
    tracing::info!(base_url = %client.settings().base_url, holder = %settings.holder, "realtime relay started");
    loop {
        match acquire(&db, &settings.holder).await {
            Ok(true) => {
                tracing::info!(holder = %settings.holder, "realtime relay: lease taken");
                relay_while_held(&db, &client, &settings, &wake).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "realtime relay: lease store unavailable"),
        }
        tokio::time::sleep(settings.standby_every).await;
    }
}

/// Keeps a `LISTEN` connection open (reconnecting) and wakes the relay on each event.
async fn listen(database_url: String, wake: Arc<Notify>) {
    loop {
        let w = wake.clone();
        if let Err(e) = callaudit_db::events::listen(&database_url, move |_| w.notify_one()).await {
            tracing::warn!(error = %e, "realtime relay: LISTEN connection lost; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn acquire(db: &Pool, holder: &str) -> Result<bool, callaudit_db::DbError> {
    let mut conn = pool::get(db).await?;
    leases::ensure_slots(&mut conn, LEASE_POOL, 1).await?;
    Ok(
        leases::try_lease(&mut conn, LEASE_POOL, 1, holder, LEASE_SECONDS)
            .await?
            .is_some(),
    )
}

fn lease(holder: &str) -> Lease<'_> {
    Lease {
        pool: LEASE_POOL,
        slot: 0,
        holder,
    }
}

/// What a pass did.
enum Pass {
    /// Sent everything there was (how many events).
    Done(usize),
    /// A failure: try again after a backoff.
    Failed,
    /// The lease was lost: stop relaying.
    LeaseLost,
}

async fn relay_while_held(db: &Pool, client: &PusherClient, s: &RelaySettings, wake: &Notify) {
    let mut backoff = Duration::from_secs(1);
    let mut extended = tokio::time::Instant::now();
    loop {
        match pass(db, client, &s.holder, &mut extended).await {
            Pass::LeaseLost => {
                tracing::warn!(holder = %s.holder, "realtime relay: lease lost; standing by");
                return;
            }
            Pass::Failed => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                if !extend(db, &s.holder, &mut extended, true).await {
                    return;
                }
            }
            Pass::Done(n) => {
                backoff = Duration::from_secs(1);
                if n as i64 >= PASS_SIZE {
                    continue;
                }
                let _ = tokio::time::timeout(s.poll_every, wake.notified()).await;
                if !extend(db, &s.holder, &mut extended, false).await {
                    return;
                }
            }
        }
    }
}

/// Extends the lease when due (or `now`); false when it is no longer ours.
async fn extend(db: &Pool, holder: &str, extended: &mut tokio::time::Instant, now: bool) -> bool {
    if !now && extended.elapsed() < EXTEND_EVERY {
        return true;
    }
    let held = match pool::get(db).await {
        Ok(mut conn) => leases::extend(&mut conn, lease(holder), LEASE_SECONDS).await,
        Err(e) => Err(e),
    };
    match held {
        Ok(true) => {
            *extended = tokio::time::Instant::now();
            true
        }
        Ok(false) => false,
        // The store is down: keep the lease as long as it lasts, then give up.
        Err(e) => {
            tracing::warn!(error = %e, "realtime relay: cannot extend the lease");
            extended.elapsed() < Duration::from_secs(LEASE_SECONDS as u64 - 2)
        }
    }
}

async fn pass(
    db: &Pool,
    client: &PusherClient,
    holder: &str,
    extended: &mut tokio::time::Instant,
) -> Pass {
    let events = match read(db).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "realtime relay: cannot read events");
            return Pass::Failed;
        }
    };
    let n = events.len();
    for event in events {
        if !extend(db, holder, extended, false).await {
            return Pass::LeaseLost;
        }
        let outcome = deliver(db, client, &event).await;
        let mut conn = match pool::get(db).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "realtime relay: cannot record progress");
                return Pass::Failed;
            }
        };
        let recorded = match &outcome {
            Ok(sent) => store::advance(&mut conn, RELAY_NAME, event.cursor(), *sent).await,
            Err(TriggerError::Refused(why)) => {
                tracing::error!(event.id = event.id, topic = %event.topic, error = %why, "realtime relay: event refused by pusher; skipped");
                let why = format!("event {} skipped: {why}", event.id);
                match store::record_failure(&mut conn, RELAY_NAME, &why).await {
                    Ok(()) => store::advance(&mut conn, RELAY_NAME, event.cursor(), 0).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                tracing::warn!(event.id = event.id, topic = %event.topic, error = %e, "realtime relay: delivery failed; will retry");
                let why = format!("event {}: {e}", event.id);
                if let Err(db) = store::record_failure(&mut conn, RELAY_NAME, &why).await {
                    tracing::warn!(error = %db, "realtime relay: cannot record the failure");
                }
                return Pass::Failed;
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "realtime relay: cannot record progress");
            return Pass::Failed;
        }
    }
    Pass::Done(n)
}

async fn read(db: &Pool) -> Result<Vec<RelayEvent>, callaudit_db::DbError> {
    let mut conn = pool::get(db).await?;
    let cursor = store::cursor(&mut conn, RELAY_NAME).await?;
    store::after(&mut conn, cursor, PASS_SIZE).await
}

/// Sends every message of `event` (none for a topic without a channel); how many.
async fn deliver(
    db: &Pool,
    client: &PusherClient,
    event: &RelayEvent,
) -> Result<i64, TriggerError> {
    let context = context(db, &event.topic)
        .await
        .map_err(|e| TriggerError::Unavailable(format!("reading the run: {e}")))?;
    let messages = messages_for(event.id, &event.topic, &event.kind, &event.payload, context);
    for m in &messages {
        client
            .trigger(&[m.channel.as_str()], &m.name, &m.data)
            .await?;
        tracing::debug!(event.id = event.id, channel = %m.channel, name = %m.name, "realtime: sent");
    }
    Ok(messages.len() as i64)
}

/// Whether the topic's job is (the batch of) an automation run, and its realtime flag.
async fn context(db: &Pool, topic: &str) -> Result<JobContext, callaudit_db::DbError> {
    let Some((kind, id)) = job_of_topic(topic) else {
        return Ok(JobContext::default());
    };
    if !matches!(kind, JobKind::Batch | JobKind::AutomationRun) {
        return Ok(JobContext::default());
    }
    let mut conn = pool::get(db).await?;
    let realtime = store::run_realtime(&mut conn, id).await?;
    Ok(match kind {
        JobKind::Batch => JobContext {
            batch_of_realtime_run: realtime == Some(true),
            ..Default::default()
        },
        _ => JobContext {
            run_realtime_off: realtime == Some(false),
            ..Default::default()
        },
    })
}
