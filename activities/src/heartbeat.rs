//! Heartbeats of long activities: the upstream crate's [`Heartbeat`] over the
//! activity's context, and the period the workflows' heartbeat timeouts are set for.

use callaudit_upstream::heartbeat::{self, Heartbeat};
use temporalio_sdk::activities::ActivityContext;

/// How often a long vendor call heartbeats its activity. The workflows set a heartbeat
/// timeout of a few of these, so a worker that dies mid-call has its activity retried
/// elsewhere within seconds instead of after the whole start-to-close timeout.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// An activity's context as a [`Heartbeat`]: beats are Temporal heartbeats,
/// cancellation is the activity's.
#[derive(Clone, Copy)]
pub struct ActivityHeartbeat<'a>(pub &'a ActivityContext);

impl std::fmt::Debug for ActivityHeartbeat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivityHeartbeat")
    }
}

impl Heartbeat for ActivityHeartbeat<'_> {
    async fn beat(&self) {
        let _ = self.0.record_heartbeat(()).await;
    }

    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Runs `work`, heartbeating the activity every [`HEARTBEAT_EVERY`] until it finishes.
pub async fn heartbeating<F: std::future::Future>(ctx: &ActivityContext, work: F) -> F::Output {
    heartbeat::beating(&ActivityHeartbeat(ctx), HEARTBEAT_EVERY, work).await
}
