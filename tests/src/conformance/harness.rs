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
