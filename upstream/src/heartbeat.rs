//! Liveness of long upstream work without tying it to Temporal: an activity implements
//! [`Heartbeat`] over its context (heartbeats, cancellation), the api passes
//! [`Unsupervised`].

use std::future::Future;
use std::time::Duration;

/// Someone who wants to know that long work is alive, and may give up on it.
pub trait Heartbeat: Sync {
    /// Reports that the work is alive (best effort).
    fn beat(&self) -> impl Future<Output = ()> + Send;
    /// Whether the work should stop (the activity was cancelled).
    fn is_cancelled(&self) -> bool;
}

/// Work nobody supervises (an api request bounded by its own wait): beats go nowhere
/// and it is never cancelled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsupervised;

impl Heartbeat for Unsupervised {
    async fn beat(&self) {}

    fn is_cancelled(&self) -> bool {
        false
    }
}

/// Runs `work`, beating every `every` until it finishes. The first beat comes after one
/// period, not at once: work that ends sooner needs none (for a Temporal activity, one
/// server round trip saved per short call).
pub async fn beating<H: Heartbeat + ?Sized, F: Future>(
    hb: &H,
    every: Duration,
    work: F,
) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => hb.beat().await,
        }
    }
}
