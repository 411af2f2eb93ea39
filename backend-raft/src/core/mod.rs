//! The sans-IO Raft election core: no tokio, sockets, clocks or RNG calls. Time comes in as
//! an argument; randomness comes from a ChaCha RNG seeded by configuration.

mod election;
mod message;
mod node;

use std::collections::BTreeSet;
use std::time::Duration;

use election_core::NodeId;

pub use message::{Message, SetUpdate, Term, Transmit};
pub use node::{Node, TIMER_SLACK};

/// What the core needs to know; see [`RaftConfig`](crate::RaftConfig) for the meaning and
/// defaults of each timing.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub me: NodeId,
    /// Every member, including `me`. Static: messages from anyone else are refused.
    pub members: BTreeSet<NodeId>,
    /// Members that vote but never campaign.
    pub voters_only: BTreeSet<NodeId>,
    /// Interval between a leader's heartbeat rounds.
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout; also the leader lease.
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Bound on clock-rate difference and timer lateness over one lease.
    pub clock_drift: Duration,
    /// Time a guarded child gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Seed of the election-timeout RNG.
    pub seed: u64,
    /// A number that differs between runs of this node's process (heartbeat set versions
    /// restart with it).
    pub incarnation: u64,
    /// At most this many elections are held at once (see
    /// [`RaftConfig::max_elections`](crate::RaftConfig::max_elections)).
    pub max_elections: usize,
    /// An idle election is forgotten after this long (see
    /// [`RaftConfig::forget_after`](crate::RaftConfig::forget_after)).
    pub forget_after: Duration,
    /// This node's priority as a candidate: where several campaigning members are healthy,
    /// the leader steps down for one of higher priority (see
    /// [`RaftConfig::priority`](crate::RaftConfig::priority)). Default 0.
    pub priority: u32,
    /// How long a candidate of higher priority must have been caught up and answering
    /// every heartbeat before the leader steps down for it (see
    /// [`RaftConfig::priority_stable`](crate::RaftConfig::priority_stable)).
    pub priority_stable: Duration,
}

impl NodeConfig {
    /// How long one quorum-acknowledged heartbeat round lets a leader lead:
    /// `election_timeout_min - clock_drift - kill_grace`.
    pub fn lease_budget(&self) -> Duration {
        self.election_timeout_min
            .saturating_sub(self.clock_drift + self.kill_grace)
    }
}

/// The durable part of one election's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The current term.
    pub term: Term,
    /// Who this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
}

/// Counters of refused input, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Messages from nodes that are not members (or from this node itself).
    pub unknown_sender: u64,
    /// Mentions of elections this node does not hold, ignored because it held
    /// `max_elections` (votes, leader claims; pre-votes are answered without state).
    pub ignored_elections: u64,
    /// Idle elections forgotten.
    pub forgotten: u64,
}
