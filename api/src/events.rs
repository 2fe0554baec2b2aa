//! One LISTEN connection per api replica fans notified topics out to every SSE stream
//! of that replica; streams then read the rows themselves (so a missed notification
//! only delays an event until the next poll, it never loses one).

use tokio::sync::broadcast;

/// Broadcasts notified topics.
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: broadcast::Sender<String>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with room for bursts of notifications.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self { tx }
    }

    /// Subscribes to notified topics.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// Runs the LISTEN loop forever, reconnecting with a short backoff.
    pub async fn run_listener(self, database_url: String) {
        loop {
            let tx = self.tx.clone();
            let result = callaudit_db::events::listen(&database_url, move |topic| {
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
