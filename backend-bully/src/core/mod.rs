//! The sans-IO Bully core: no tokio, sockets, clocks or RNG calls. Time comes in as an
//! argument; the small jitter on retries comes from a ChaCha RNG seeded by configuration.

mod election;
mod message;
mod node;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use election_core::NodeId;

pub use message::{EpochNo, Message, Transmit};
pub use node::Node;

/// What the core needs to know; see [`BullyConfig`](crate::BullyConfig) for the meaning and
/// defaults of each setting.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub me: NodeId,
    /// Every member, including `me`. Static: messages from anyone else are refused. The
    /// Bully order is by (priority, id): of two members of equal priority the greater id is
    /// the higher node.
    pub members: BTreeSet<NodeId>,
    /// The members' priorities (absent: 0). Every member must be given the same map: it
    /// is the Bully order (see [`BullyConfig::priorities`](crate::BullyConfig::priorities)).
    pub priorities: BTreeMap<NodeId, u32>,
    /// Members that acknowledge but never campaign.
    pub voters_only: BTreeSet<NodeId>,
    /// Interval between a leader's heartbeat rounds.
    pub heartbeat: Duration,
    /// A leader not heard from for this long is presumed failed; also how long a follower
    /// stays loyal to a leader it heard from.
    pub failure_timeout: Duration,
    /// How long a candidate waits for ALIVE / acknowledgements to its ELECTION.
    pub answer_timeout: Duration,
    /// Bound on clock-rate difference and timer lateness over one lease.
    pub clock_drift: Duration,
    /// Time a guarded child gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// The majority rule (see the crate documentation).
    pub quorum: bool,
    /// Seed of the jitter RNG.
    pub seed: u64,
    /// A number that differs between runs of this node's process (heartbeat rounds restart
    /// with it).
    pub incarnation: u64,
    /// At most this many elections are held at once (see
    /// [`BullyConfig::max_elections`](crate::BullyConfig::max_elections)).
    pub max_elections: usize,
    /// An idle election is forgotten after this long (see
    /// [`BullyConfig::forget_after`](crate::BullyConfig::forget_after)).
    pub forget_after: Duration,
}

impl NodeConfig {
    /// How long one acknowledged heartbeat round lets a leader lead:
    /// `failure_timeout - clock_drift - kill_grace`.
    pub fn lease_budget(&self) -> Duration {
        self.failure_timeout
            .saturating_sub(self.clock_drift + self.kill_grace)
    }
}

/// The durable part of one election's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The highest epoch this node has seen in the election.
    pub epoch: EpochNo,
    /// The leader this node accepted at `epoch`, if any.
    pub leader: Option<NodeId>,
}

/// Counters of refused input, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Messages from nodes that are not members (or from this node itself).
    pub unknown_sender: u64,
    /// VICTORY or heartbeat entries refused (stale epoch, loyalty to a live leader).
    pub refused_victories: u64,
    /// Mentions of elections this node does not hold, ignored (heartbeat entries: refused
    /// without a promise) because it held `max_elections`.
    pub ignored_elections: u64,
    /// Idle elections forgotten.
    pub forgotten: u64,
}
