use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{Backend, NodeId, Result};

/// What the conformance suite needs from one backend under test.
///
/// A harness owns whatever the backend needs (a real server on a free loopback port, a
/// cluster of Raft nodes, ...) and hands out independent nodes: each [`TestNode`] is a
/// separate client connection (or cluster member) with its own node id, which the suite
/// can cut off from the backend and heal.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend's kind, such as `redis`, for messages.
    fn name(&self) -> &str;

    /// How many distinct nodes [`node`](Self::node) can hand out (at least 3).
    fn max_nodes(&self) -> usize;

    /// Node number `index` (0-based, below [`max_nodes`](Self::max_nodes)). Calling it
    /// twice with the same index may return the same node or a fresh connection for the
    /// same node id.
    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>>;

    /// The timing bounds this backend promises (see [`Bounds`]).
    fn bounds(&self) -> Bounds;

    /// The restarts after which this backend's epochs still strictly rise. A restart left
    /// out is one the backend documents that it cannot survive (for example an etcd that
    /// lost its data starts its revisions again); the harness says why in its docs.
    fn restarts(&self) -> &'static [Restart] {
        &[]
    }

    /// Carries out `restart`, one of [`restarts`](Self::restarts), and returns once the
    /// backend is running again (clients may still be reconnecting).
    async fn restart(&self, restart: Restart) {
        panic!(
            "{} declares no restart, so {restart:?} was not asked for",
            self.name()
        )
    }
}

/// A restart of the backend the suite can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// The server stops and starts again on its data (peer backends: every node crashes and
    /// starts again on its data dir, all at once).
    KeepData,
    /// The server loses its disk: killed, its data emptied, started fresh.
    EmptyData,
}

/// One node as the suite drives it.
#[async_trait]
pub trait TestNode: Send + Sync {
    /// This node's id (the one its leaderships report).
    fn id(&self) -> NodeId;

    /// The backend connection to campaign with.
    fn backend(&self) -> Arc<dyn Backend>;

    /// Cuts this node off from the backend (a blackholing proxy, an isolated Raft member):
    /// requests hang rather than fail fast, as in a real partition.
    async fn cut_off(&self);

    /// Restores what [`cut_off`](Self::cut_off) took away.
    async fn heal(&self);

    /// Stalls the machinery this node's leaderships depend on, as a SIGSTOP would: the
    /// server for lease backends (so every node's requests wait, not only this one's), this
    /// node's own driver for peer backends. Nothing is lost: requests and messages queue and
    /// are handled after [`resume`](Self::resume); time runs on meanwhile, so leases and
    /// promises keep running out.
    async fn stall(&self);

    /// Ends a [`stall`](Self::stall).
    async fn resume(&self);

    /// Makes what this node's leaderships depend on *outside the holder's own tasks* behave
    /// as in a paused process (the suite freezes the holder's tasks itself, by blocking the
    /// thread of the runtime they run on): lease backends' connection carries nothing either
    /// way (as a cut-off; their renewals run in the holder's tasks), peer backends' driver
    /// stops (as a stall of this node only).
    async fn freeze(&self);

    /// Ends a [`freeze`](Self::freeze).
    async fn thaw(&self);
}

/// Timing promises the suite checks, with slack added by the suite for a busy machine.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// After a leader is cut off, its `lost()` resolves within this long (for lease
    /// backends: `ttl - clock_drift - kill_grace`, the deadline rule). The suite adds only
    /// [`SCHEDULING_SLACK`](super::SCHEDULING_SLACK) to it: a late timer, not a late design.
    pub loss_within: Duration,
    /// After a leader is cut off, another waiting candidate is elected within this long
    /// (for lease backends about `ttl` plus a retry; for Raft an election timeout or two).
    pub takeover_within: Duration,
    /// The kill grace the backend's deadline leaves the holder (`timing.kill_grace`, or
    /// the peer backend's own): no other candidate may be granted before a lost holder's
    /// deadline plus this, whatever stalled and woke up meanwhile (the handover rule).
    pub kill_grace: Duration,
}
