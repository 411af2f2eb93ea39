//! Following the leader: one LISTEN connection per backend (the [`Listener`]) tells each
//! election's waiters and observers that its lease changed (acquired or released: both
//! statements `pg_notify` the table's channel with the election's name, delivered when
//! they commit), so a handoff never waits for a poll; and [`observe`], which re-reads the
//! lease on each such push and when the holder's time runs out (an expiry sends nothing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use election_core::{ElectionName, LeaderInfo, LeaderStream, LeaseTiming};
use tokio::sync::watch;

use crate::config::quote_ident;
use crate::conn::Conn;
use crate::lease::Lease;

/// The backend's LISTEN connection, started on first need, and the per-election change
/// counters it bumps.
#[derive(Debug)]
pub(crate) struct Listener {
    conn: Arc<Conn>,
    notifier: Arc<Notifier>,
    timing: LeaseTiming,
    listening: OnceLock<()>,
    stopped: watch::Receiver<()>,
}

impl Listener {
    /// A listener for the elections of `conn`'s table, not started yet; it stops when
    /// `stopped` says so.
    pub(crate) fn new(
        conn: Arc<Conn>,
        timing: LeaseTiming,
        stopped: watch::Receiver<()>,
    ) -> Listener {
        Listener {
            conn,
            notifier: Arc::new(Notifier::new()),
            timing,
            listening: OnceLock::new(),
            stopped,
        }
    }

    /// Starts the LISTEN connection unless it runs already. Only waiters and observers
    /// need pushes, so a one-shot attempt (`try_campaign`, `leader`) never pays for a
    /// second connection. Starting late loses nothing: until it listens waiters poll, and
    /// going live wakes every waiter to check again (as redis does, decision record 090).
    /// Must be called inside a tokio runtime.
    pub(crate) fn ensure_listening(&self) {
        self.listening.get_or_init(|| {
            tokio::spawn(listen(
                self.conn.clone(),
                self.notifier.clone(),
                self.timing.retry_interval,
                self.timing.renew_interval.max(Duration::from_millis(100)),
                self.stopped.clone(),
            ));
        });
    }

    /// A receiver that changes whenever a notification about `election` arrives (or the
    /// LISTEN connection is re-established, when some may have been missed). Mark it seen
    /// *before* reading the lease, then wait on it: nothing that happens after the read is
    /// missed.
    pub(crate) fn changes(&self, election: &ElectionName) -> watch::Receiver<u64> {
        self.notifier.changes(election)
    }

    /// Whether notifications are arriving now; when not, waiters must poll.
    pub(crate) fn subscribed(&self) -> bool {
        self.notifier.subscribed()
    }

    /// Waits until `changes` moves (a notification about this election) or, failing that,
    /// until the holder's lease may have run out (`ttl_left`, by the server's clock; `None`:
    /// nobody holds it), polling every `retry_interval` while notifications are not live.
    pub(crate) async fn wait_for_change(
        &self,
        changes: &mut watch::Receiver<u64>,
        ttl_left: Option<Duration>,
    ) {
        let retry = self.timing.retry_interval;
        // The server compares `expires <= clock_timestamp()`: a millisecond more is past it.
        let mut poll = ttl_left.map(|t| t + Duration::from_millis(1));
        if !self.subscribed() {
            poll = Some(poll.map_or(retry, |p| p.min(retry)));
        }
        match poll {
            Some(poll) => {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(poll).await;
                        }
                    }
                    () = tokio::time::sleep(poll) => {}
                }
            }
            None => {
                if changes.changed().await.is_err() {
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}

/// Every change of `lease`'s leader, starting with the current one: the lease is re-read
/// on each notification and when the holder's time runs out, so every acquisition, release
/// and expiry (as "no leader") is reported without polling. A failing read is reported
/// once, then retried quietly every `retry_interval`.
pub(crate) fn observe(lease: Lease, listener: Arc<Listener>) -> LeaderStream {
    struct State {
        lease: Lease,
        listener: Arc<Listener>,
        last: Option<Option<LeaderInfo>>,
        failing: bool,
    }
    let state = State {
        lease,
        listener,
        last: None,
        failing: false,
    };
    LeaderStream::new(futures_util::stream::unfold(state, |mut st| async move {
        st.listener.ensure_listening();
        loop {
            let mut changes = st.listener.changes(&st.lease.name);
            changes.borrow_and_update();
            match st.lease.read().await {
                Ok(holder) => {
                    st.failing = false;
                    let ttl_left = holder.as_ref().map(|h| h.ttl_left);
                    let current = holder.map(|h| h.info);
                    if st.last.as_ref() != Some(&current) {
                        st.last = Some(current.clone());
                        return Some((Ok(current), st));
                    }
                    st.listener.wait_for_change(&mut changes, ttl_left).await;
                }
                Err(e) => {
                    // Report a failure once, then keep trying quietly.
                    let first = !st.failing;
                    st.failing = true;
                    if first {
                        return Some((Err(e), st));
                    }
                    tokio::time::sleep(st.lease.timing.retry_interval).await;
                }
            }
        }
    }))
}

/// Entries the notifier may hold before it first drops those no one waits on.
const PRUNE_AT_LEAST: usize = 64;

/// Per-election change counters, and whether the subscription is live.
///
/// Bounded by the waiters: an entry lives while a campaign or an observer holds a receiver
/// of it (they hold one exactly while they wait for a push). Entries no one holds are
/// dropped when a push for them arrives, and all at once whenever the map has doubled
/// since the last such sweep, so pushes and names that come and go cannot grow it
/// (issue 14; decision record 105).
#[derive(Debug)]
pub(crate) struct Notifier {
    elections: Mutex<Entries>,
    subscribed: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, watch::Sender<u64>>,
    /// Sweep the unheld entries once the map holds this many.
    prune_at: usize,
}

impl Notifier {
    pub(crate) fn new() -> Notifier {
        Notifier {
            elections: Mutex::new(Entries {
                map: HashMap::new(),
                prune_at: PRUNE_AT_LEAST,
            }),
            subscribed: watch::channel(false).0,
        }
    }

    /// As [`Listener::changes`].
    pub(crate) fn changes(&self, election: &ElectionName) -> watch::Receiver<u64> {
        let mut entries = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        if !entries.map.contains_key(election.as_str()) && entries.map.len() >= entries.prune_at {
            entries.map.retain(|_, tx| tx.receiver_count() > 0);
            entries.prune_at = (entries.map.len() * 2).max(PRUNE_AT_LEAST);
        }
        entries
            .map
            .entry(election.as_str().to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// How many elections have an entry.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.elections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// As [`Listener::subscribed`].
    fn subscribed(&self) -> bool {
        *self.subscribed.borrow()
    }

    pub(crate) fn bump(&self, election: &str) {
        let mut entries = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = entries.map.get(election) {
            if tx.receiver_count() == 0 {
                // No one waits on it: a later waiter subscribes afresh and reads first.
                entries.map.remove(election);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    fn bump_all(&self) {
        let mut entries = self.elections.lock().unwrap_or_else(|p| p.into_inner());
        entries.map.retain(|_, tx| tx.receiver_count() > 0);
        entries.prune_at = (entries.map.len() * 2).max(PRUNE_AT_LEAST);
        for tx in entries.map.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn set_subscribed(&self, on: bool) {
        self.subscribed.send_replace(on);
        // Waiters re-check now: on connect to catch what was missed, on loss to start polling.
        self.bump_all();
    }
}

/// Keeps one connection listening on the table's channel until the sender of `stop` is
/// dropped, reconnecting after `retry` and checking the connection with a `SELECT 1` every
/// `ping_every` (a blackholed connection says nothing by itself).
async fn listen(
    conn: Arc<Conn>,
    notifier: Arc<Notifier>,
    retry: Duration,
    ping_every: Duration,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let session = run_session(&conn, &notifier, ping_every);
        tokio::select! {
            _ = stop.changed() => return,
            outcome = session => {
                notifier.set_subscribed(false);
                tracing::debug!(backend = "postgres", address = %conn.address(), %outcome,
                    "LISTEN connection ended; waiters poll until it is back");
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// One connection's life; returns why it ended.
async fn run_session(conn: &Conn, notifier: &Arc<Notifier>, ping_every: Duration) -> String {
    let pushed = notifier.clone();
    let opened = conn
        .open(true, move |m| {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                pushed.bump(n.payload());
            }
        })
        .await;
    let (client, driver) = match opened {
        Ok(pair) => pair,
        Err(e) => return format!("connect failed: {e}"),
    };
    let mut driver = AbortOnDrop(driver);
    let listen = format!("LISTEN {}", quote_ident(&conn.channel));
    if let Err(e) = conn
        .within(
            conn.statement_timeout,
            None,
            "listening",
            client.batch_execute(&listen),
        )
        .await
    {
        return format!("LISTEN failed: {e}");
    }
    notifier.set_subscribed(true);
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = &mut driver.0 => return "the connection closed".into(),
            _ = ping.tick() => {
                if client.is_closed() {
                    return "the server closed the connection".into();
                }
                if let Err(e) = conn
                    .within(conn.statement_timeout, None, "checking the LISTEN connection", client.simple_query("SELECT 1"))
                    .await
                {
                    return format!("check failed: {e}");
                }
            }
        }
    }
}

/// Aborts the connection's driver (closing its socket) when the session ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: usize) -> ElectionName {
        ElectionName::new(format!("job-{i}")).unwrap()
    }

    /// Issue 14: 100,000 distinct names through the notifier (a waiter each, then a push
    /// each) while ten elections keep live waiters: the entries stay bounded by the live
    /// waiters, not by the names seen.
    #[test]
    fn entries_are_kept_only_for_live_waiters_over_100_000_names() {
        let n = Notifier::new();
        let live: Vec<watch::Receiver<u64>> = (0..10).map(|i| n.changes(&name(i))).collect();
        let mut most = 0;
        for i in 10..100_010 {
            let rx = n.changes(&name(i));
            n.bump(name(i).as_str());
            assert!(rx.has_changed().unwrap(), "a live waiter is woken");
            drop(rx);
            // Pushes for elections no one has waited on create nothing.
            n.bump(&format!("other-{i}"));
            most = most.max(n.len());
        }
        assert!(
            most <= 2 * live.len() + PRUNE_AT_LEAST,
            "at most {most} entries for {} live waiters",
            live.len()
        );
        println!(
            "notifier: 100000 names, {} live waiters, at most {most} entries, {} at the end",
            live.len(),
            n.len()
        );
        // The live waiters still get their pushes.
        for (i, rx) in live.iter().enumerate() {
            n.bump(name(i).as_str());
            assert!(rx.has_changed().unwrap());
        }
        // A resubscription wakes everyone still waiting and drops the rest.
        n.set_subscribed(true);
        assert_eq!(n.len(), live.len());
    }
}
