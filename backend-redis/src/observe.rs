//! Wake-ups: one pub/sub connection per backend tells each election's waiters and
//! observers that its lease changed (acquired, released, or expired where the server sends
//! keyspace events), so a handoff never waits for a poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::ElectionName;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::keys::Patterns;
use crate::link::Link;

/// Per-election change counters, and whether the subscription is live.
#[derive(Debug)]
pub(crate) struct Notifier {
    elections: Mutex<HashMap<String, watch::Sender<u64>>>,
    subscribed: watch::Sender<bool>,
}

impl Notifier {
    pub(crate) fn new() -> Notifier {
        Notifier {
            elections: Mutex::new(HashMap::new()),
            subscribed: watch::channel(false).0,
        }
    }

    /// A receiver that changes whenever a message about `election` arrives (or the
    /// subscription is re-established, when messages may have been missed). Mark it seen
    /// *before* reading the lease, then wait on it: nothing that happens after the read is
    /// missed.
    pub(crate) fn changes(&self, election: &ElectionName) -> watch::Receiver<u64> {
        let mut map = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(election.as_str().to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Whether pushes are arriving now; when not, waiters must poll.
    pub(crate) fn subscribed(&self) -> bool {
        *self.subscribed.borrow()
    }

    fn bump(&self, election: &str) {
        let map = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(election) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn bump_all(&self) {
        let map = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        for tx in map.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn set_subscribed(&self, on: bool) {
        self.subscribed.send_replace(on);
        // Waiters re-check now: on connect to catch what was missed, on loss to start polling.
        self.bump_all();
    }
}

/// Keeps one pub/sub connection subscribed to all elections under the prefix until the
/// sender of `stop` is dropped, reconnecting after `retry` and checking the
/// connection with a PING every `ping_every`.
pub(crate) async fn listen(
    link: Arc<Link>,
    notifier: Arc<Notifier>,
    patterns: Patterns,
    retry: Duration,
    ping_every: Duration,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let session = run_session(&link, &notifier, &patterns, ping_every);
        tokio::select! {
            _ = stop.changed() => return,
            outcome = session => {
                notifier.set_subscribed(false);
                tracing::debug!(backend = "redis", address = %link.address(), %outcome,
                    "pub/sub connection ended; reconnecting");
                if outcome == SWITCHED {
                    continue;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// Why a session ended when the server in use changed: reconnect at once.
const SWITCHED: &str = "the server in use changed";

/// One connection's life; returns why it ended.
async fn run_session(
    link: &Link,
    notifier: &Notifier,
    patterns: &Patterns,
    ping_every: Duration,
) -> String {
    let mut switches = link.switches();
    switches.borrow_and_update();
    let client = link.client();
    let pubsub = match tokio::time::timeout(link.connect_timeout, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return format!("connect failed: {e}"),
        Err(_) => return "connect timed out".into(),
    };
    let (mut sink, mut stream) = pubsub.split();
    let subscribe = async {
        sink.psubscribe(patterns.channels()).await?;
        sink.psubscribe(patterns.keyspace_events()).await
    };
    match tokio::time::timeout(link.command_timeout, subscribe).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return format!("subscribe failed: {e}"),
        Err(_) => return "subscribe timed out".into(),
    }
    notifier.set_subscribed(true);
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = switches.changed() => return SWITCHED.into(),
            msg = stream.next() => match msg {
                Some(msg) => {
                    let wake = patterns.election_to_wake(msg.get_channel_name(), msg.get_payload_bytes());
                    if let Some(election) = wake {
                        notifier.bump(&election);
                    }
                }
                None => return "the server closed the connection".into(),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(link.command_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return format!("ping failed: {e}"),
                    Err(_) => return "ping timed out".into(),
                }
            }
        }
    }
}
