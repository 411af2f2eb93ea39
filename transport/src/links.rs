//! Per-peer link state: when each peer was last heard from and which connections are up,
//! for [`Transport::peers`](crate::Transport::peers).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use election_core::NodeId;
use tokio::time::Instant;

/// How long a connection may carry nothing before its dialer writes a keepalive: an empty
/// data frame, authenticated like any other and not delivered to the
/// [`Inbox`](crate::Inbox). So every running peer is heard from at least this often, also
/// where the protocol above has nothing to say (two Raft followers).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// A peer is [reachable](PeerLink::reachable) while an authenticated connection from it is
/// open and its last authenticated frame arrived at most this long ago: three keepalive
/// intervals, so one late or lost keepalive on a busy host does not flip it.
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(3);

/// One configured peer as this node's transport sees it now
/// ([`Transport::peers`](crate::Transport::peers)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerLink {
    /// The peer's node id.
    pub id: NodeId,
    /// The address this node dials it at, as configured (`host:port`).
    pub addr: String,
    /// Whether the peer is reachable now: an authenticated connection *from* it is open
    /// and an authenticated frame (a message or a keepalive) arrived on it within
    /// [`REACHABLE_WITHIN`]. A peer that crashed is unreachable as soon as its connection
    /// closes; one that is stopped (SIGSTOP), hung or cut off by the network, within
    /// [`REACHABLE_WITHIN`]. It says that the peer runs and can reach this node, not that
    /// this node's messages reach it: see [`connected_out`](Self::connected_out).
    pub reachable: bool,
    /// How long ago its last authenticated frame (or handshake) arrived; `None` if never
    /// since this transport started.
    pub last_heard: Option<Duration>,
    /// Whether an authenticated connection from it is open now.
    pub connected_in: bool,
    /// Whether this node's own connection to it is authenticated and up now (the one
    /// messages to it go over).
    pub connected_out: bool,
}

/// The live state behind one [`PeerLink`], updated lock-free by the connection tasks.
#[derive(Debug)]
pub(crate) struct Link {
    addr: String,
    /// When the last authenticated frame arrived, in nanoseconds since `started` plus one;
    /// 0 for never.
    heard: AtomicU64,
    /// Authenticated incoming connections open now (a superseded one lingers briefly).
    incoming: AtomicUsize,
    /// Whether our outgoing connection is authenticated and up.
    outgoing: AtomicBool,
}

impl Link {
    pub(crate) fn new(addr: String) -> Self {
        Link {
            addr,
            heard: AtomicU64::new(0),
            incoming: AtomicUsize::new(0),
            outgoing: AtomicBool::new(false),
        }
    }

    /// Notes an authenticated frame (or a completed handshake) from the peer now.
    pub(crate) fn heard(&self, started: Instant) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.heard.store(nanos + 1, Ordering::Relaxed);
    }

    /// Counts an authenticated incoming connection open until the guard drops.
    pub(crate) fn incoming(&self) -> IncomingGuard<'_> {
        self.incoming.fetch_add(1, Ordering::Relaxed);
        IncomingGuard(self)
    }

    pub(crate) fn set_outgoing(&self, up: bool) {
        self.outgoing.store(up, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, id: &NodeId, started: Instant) -> PeerLink {
        let heard = self.heard.load(Ordering::Relaxed);
        let last_heard = (heard > 0).then(|| {
            started
                .elapsed()
                .saturating_sub(Duration::from_nanos(heard - 1))
        });
        let connected_in = self.incoming.load(Ordering::Relaxed) > 0;
        PeerLink {
            id: id.clone(),
            addr: self.addr.clone(),
            reachable: connected_in && last_heard.is_some_and(|d| d <= REACHABLE_WITHIN),
            last_heard,
            connected_in,
            connected_out: self.outgoing.load(Ordering::Relaxed),
        }
    }
}

/// Ends one authenticated incoming connection's count in [`Link`].
pub(crate) struct IncomingGuard<'a>(&'a Link);

impl Drop for IncomingGuard<'_> {
    fn drop(&mut self) {
        self.0.incoming.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_is_reachable_while_connected_and_heard_within_the_window() {
        let started = Instant::now();
        let link = Link::new("127.0.0.1:1".into());
        let never = link.snapshot(&id("b"), started);
        assert!(!never.reachable && never.last_heard.is_none() && !never.connected_in);

        let conn = link.incoming();
        link.heard(started);
        assert!(link.snapshot(&id("b"), started).reachable);

        tokio::time::advance(REACHABLE_WITHIN).await;
        let edge = link.snapshot(&id("b"), started);
        assert!(edge.reachable, "{edge:?}");
        tokio::time::advance(Duration::from_millis(1)).await;
        let silent = link.snapshot(&id("b"), started);
        assert!(!silent.reachable && silent.connected_in, "{silent:?}");
        assert_eq!(
            silent.last_heard,
            Some(REACHABLE_WITHIN + Duration::from_millis(1))
        );

        link.heard(started);
        assert!(link.snapshot(&id("b"), started).reachable);
        drop(conn);
        let closed = link.snapshot(&id("b"), started);
        assert!(!closed.reachable && !closed.connected_in, "{closed:?}");
    }
}
