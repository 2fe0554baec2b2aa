//! One LISTEN connection per api replica fans notified topics out to every SSE stream
//! of that replica; streams then read the rows themselves (so a missed notification
//! only delays an event until the next poll, it never loses one).
//!
//! [`resume_point`] and [`topic_stream`] are the whole of an SSE endpoint: a route that
//! streams a topic (audits today; batches, fetch jobs, automation runs and chat next)
//! checks access and existence, then returns `topic_stream(state, topic, resume_point(..)?,
//! end)`, `end` saying when the topic is settled (its run ended and every piece of work
//! opened after it, such as a rerun, closed).

mod fanout;

use crate::error::ApiError;
use crate::state::AppState;
use callaudit_domain::events::{DomainEvent, StreamEnd, StreamTally};
use futures::stream::BoxStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::broadcast;

/// Stores `event` once (by its dedupe key) and notifies every replica's streams: how the
/// api announces what it changed itself (cancellations, reconciliations, reruns accepted,
/// reviews).
pub async fn publish(
    conn: &mut callaudit_db::AsyncPgConnection,
    event: &impl DomainEvent,
) -> Result<(), ApiError> {
    callaudit_db::events::publish(
        conn,
        &event.topic(),
        event.kind(),
        &event.payload(),
        Some(&event.dedupe_key()),
    )
    .await?;
    Ok(())
}

/// How long a stream token lets a browser (re)open its stream.
pub const STREAM_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// Issues a stream token of `user` for `topic` (for a browser's `EventSource`, which
/// cannot send an `Authorization` header): the 201 answer, with `stream_path?token=…`.
pub async fn stream_token(
    conn: &mut callaudit_db::AsyncPgConnection,
    user: uuid::Uuid,
    topic: &str,
    stream_path: &str,
) -> Result<crate::audits::StreamTokenResponse, ApiError> {
    let (token, expires_at) =
        callaudit_db::stream_tokens::issue(conn, user, topic, STREAM_TOKEN_TTL).await?;
    Ok(crate::audits::StreamTokenResponse::Created(
        poem_openapi::payload::Json(crate::audits::StreamToken {
            url: format!("{stream_path}?token={token}"),
            token,
            expires_at,
        }),
    ))
}

/// Broadcasts notified topics, and counts the streams this replica serves.
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: broadcast::Sender<String>,
    open_streams: Arc<AtomicUsize>,
    max_streams: usize,
    poll: std::time::Duration,
    reads: fanout::SharedReads,
}

/// One open stream of a replica; dropping it frees its place under the cap.
#[derive(Debug)]
pub struct StreamPermit(Arc<AtomicUsize>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventHub {
    /// A hub with room for bursts of notifications, serving at most `max_streams`
    /// streams at once (`API_MAX_STREAMS`).
    pub fn new(max_streams: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            tx,
            open_streams: Arc::new(AtomicUsize::new(0)),
            max_streams: max_streams.max(1),
            poll: std::time::Duration::from_secs(5),
            reads: fanout::SharedReads::default(),
        }
    }

    /// Streams re-read their topic this often even without a notification
    /// (`API_SSE_POLL_MS`): what a lost NOTIFY costs at most. Live delivery does not wait
    /// for it.
    pub fn with_poll(mut self, every: std::time::Duration) -> Self {
        self.poll = every.max(std::time::Duration::from_millis(10));
        self
    }

    /// A place for one more stream, or `None` when the replica serves its cap already.
    pub fn stream_permit(&self) -> Option<StreamPermit> {
        self.open_streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_streams).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamPermit(self.open_streams.clone()))
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Acquire)
    }

    /// Subscribes to notified topics.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// Runs the LISTEN loop forever, reconnecting with a short backoff.
    pub async fn run_listener(self, database_url: String) {
        loop {
            let tx = self.tx.clone();
            let reads = self.reads.clone();
            let result = callaudit_db::events::listen(&database_url, move |topic| {
                reads.notified();
                let _ = tx.send(topic);
            })
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "event listener disconnected; reconnecting");
            }
            // Wake every stream so it re-reads from its last id after a reconnect.
            let _ = self.tx.send(String::from("*"));
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// One stored event as sent on an SSE stream (`id:` is the event id, `event:` its type).
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct StreamEvent {
    /// Monotonic event id (send it back as `Last-Event-ID` to resume).
    pub id: i64,
    /// Event type, e.g. `audit.step.completed`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Event payload.
    pub payload: serde_json::Value,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<callaudit_db::events::Event> for StreamEvent {
    fn from(e: callaudit_db::events::Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            payload: e.payload,
            created_at: e.created_at,
        }
    }
}

/// How a stream follows one topic.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Topic, e.g. `audit:<uuid>`.
    pub topic: String,
    /// Replay events with an id greater than this (the client's `Last-Event-ID`).
    pub after: i64,
    /// When the topic is settled, so the stream may end.
    pub end: StreamEnd,
    /// Re-read even without a notification this often (a lost NOTIFY costs at most this).
    pub poll: std::time::Duration,
}

/// How often an idle stream gets a comment. A write is how the server learns that a
/// client went away, so this also bounds how long a gone client holds its place.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// A stream of [`StreamEvent`]s as Server-Sent Events.
pub type TopicStream = poem_openapi::payload::EventStream<BoxStream<'static, StreamEvent>>;

/// Where a client resumes: after its `Last-Event-ID` header when it sends one (a browser
/// reconnecting), else after `?after=`, else from the start. A malformed header is a 400.
pub fn resume_point(last_event_id: Option<&str>, after: Option<i64>) -> Result<i64, ApiError> {
    match last_event_id.map(str::trim) {
        Some(raw) if !raw.is_empty() => {
            raw.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Last-Event-ID must be a non-negative event id, got {raw:?}"
                ))
            })
        }
        _ => Ok(after.unwrap_or(0)),
    }
}

/// The SSE response following `topic` from `after` until the topic is settled by `end`
/// (each `id:`
/// is the event id, `event:` its type, `data:` the event as JSON; a comment every
/// [`KEEP_ALIVE`] keeps proxies from closing an idle stream and lets the server notice a
/// client that left, freeing its place under the cap). A replica serving its cap of streams
/// answers 503.
pub fn topic_stream(
    state: &AppState,
    topic: String,
    after: i64,
    end: StreamEnd,
) -> Result<TopicStream, ApiError> {
    let permit = state.events.stream_permit().ok_or_else(|| {
        ApiError::unavailable(format!(
            "this api replica already serves {} event streams (API_MAX_STREAMS); retry \
             later or on another replica",
            state.events.max_streams
        ))
    })?;
    let stream = follow(
        state.pool.clone(),
        state.events.clone(),
        Follow {
            topic,
            after,
            end,
            poll: state.events.poll,
        },
        permit,
    );
    Ok(poem_openapi::payload::EventStream::new(
        Box::pin(stream) as BoxStream<'static, StreamEvent>
    )
        .keep_alive(KEEP_ALIVE)
        .to_event(|e| {
            use poem_openapi::types::ToJSON;
            poem::web::sse::Event::message(e.to_json_string())
                .id(e.id.to_string())
                .event_type(e.kind)
        }))
}

/// Rows read per query while catching up.
const PAGE: i64 = 500;

/// Replays the stored events of `follow.topic` after `follow.after`, then follows new
/// ones as they are notified, and ends once everything stored has been sent and the topic
/// is settled (or when the client goes away): after an audit's terminal event, unless a
/// rerun opened after it is still running. A client resuming after the end gets what
/// follows it and the stream ends at once. Reads use a pooled connection only for the
/// duration of a query; the `permit` is held until the stream ends.
pub fn follow(
    pool: callaudit_db::Pool,
    hub: EventHub,
    follow: Follow,
    permit: StreamPermit,
) -> impl futures::Stream<Item = StreamEvent> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<StreamEvent>(64);
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = pump(&pool, &hub, &follow, &tx).await {
            tracing::warn!(topic = %follow.topic, error = %e, "event stream ended on an error");
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

async fn pump(
    pool: &callaudit_db::Pool,
    hub: &EventHub,
    follow: &Follow,
    tx: &tokio::sync::mpsc::Sender<StreamEvent>,
) -> Result<(), callaudit_db::DbError> {
    // Subscribe before the first read so nothing stored in between is missed.
    let mut notified = hub.subscribe();
    let mut last = follow.after;
    // What the client saw already counts: resuming after the end, it gets what follows
    // and the stream closes instead of waiting for events that will not come.
    let mut tally = StreamTally::default();
    {
        let mut conn = callaudit_db::pool::get(pool).await?;
        let kinds = follow.end.counted_kinds();
        for (kind, n) in
            callaudit_db::events::count_kinds_upto(&mut conn, &follow.topic, follow.after, &kinds)
                .await?
        {
            follow
                .end
                .count_n(&mut tally, &kind, u64::try_from(n).unwrap_or(0));
        }
    }
    // After a notification of this topic: how many the replica had received, so the
    // stream may share a read begun since with the other streams of the topic.
    let mut woken_by: Option<u64> = None;
    loop {
        let batch = match woken_by {
            Some(seen) => {
                hub.reads
                    .since(pool, &follow.topic, last, PAGE, seen)
                    .await?
            }
            None => {
                let mut conn = callaudit_db::pool::get(pool).await?;
                callaudit_db::events::since(&mut conn, &follow.topic, last, PAGE).await?
            }
        };
        let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) == PAGE;
        for event in batch {
            last = event.id;
            follow.end.count(&mut tally, &event.kind);
            if tx.send(event.into()).await.is_err() {
                return Ok(()); // client gone
            }
        }
        if full {
            continue;
        }
        // Everything stored is sent: end once the topic is settled.
        if tally.settled() {
            return Ok(());
        }
        // Wait for a notification of this topic, a poll tick, or the client leaving.
        let tick = tokio::time::sleep(follow.poll);
        tokio::pin!(tick);
        woken_by = None;
        loop {
            tokio::select! {
                () = tx.closed() => return Ok(()),
                () = &mut tick => break,
                got = notified.recv() => match got {
                    Ok(topic) if topic == follow.topic => {
                        woken_by = Some(hub.reads.seen());
                        break;
                    }
                    Ok(topic) if topic == "*" => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        notified = hub.subscribe();
                        break;
                    }
                },
            }
        }
    }
}
