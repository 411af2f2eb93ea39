//! The sans-IO PaxosLease core: no tokio, sockets, clocks or RNG calls. Time comes in as an
//! argument; the random back-off of colliding proposers comes from a ChaCha RNG seeded by
//! configuration.

mod digest;
mod election;
mod message;
mod node;

use std::collections::BTreeSet;
use std::time::Duration;

use election_core::NodeId;

pub use digest::{LeaseSet, NamePrefix};
pub use message::{Ballot, EpochNo, Message, Open, Transmit};
pub use node::Node;

/// What the core needs to know; see [`PaxosConfig`](crate::PaxosConfig) for the meaning and
/// defaults of each setting.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub me: NodeId,
    /// Every member, including `me`: every member is an acceptor. Static: messages from
    /// anyone else are refused. The order of ids gives each member the low bits of its
    /// ballots.
    pub members: BTreeSet<NodeId>,
    /// Members that are acceptors only: they never propose.
    pub voters_only: BTreeSet<NodeId>,
    /// The maximum lease time `T`: how long an acceptor keeps an accepted proposal open
    /// from when it accepted it, and how long a restarted node stays out of the protocol.
    pub lease: Duration,
    /// Interval between a leader's renewal rounds.
    pub renew: Duration,
    /// How long one phase of a round waits for a majority of answers.
    pub round_timeout: Duration,
    /// Upper bound of the random delay before a collided or failed round is retried.
    pub backoff: Duration,
    /// Bound on clock-rate difference and timer lateness over one lease.
    pub clock_drift: Duration,
    /// Time a guarded child gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Seed of the back-off RNG.
    pub seed: u64,
    /// A number that differs between runs of this node's process: answers to an earlier
    /// run's rounds are ignored.
    pub incarnation: u64,
    /// At most this many elections are held at once (see
    /// [`PaxosConfig::max_elections`](crate::PaxosConfig::max_elections)).
    pub max_elections: usize,
    /// An idle election is forgotten after this long (see
    /// [`PaxosConfig::forget_after`](crate::PaxosConfig::forget_after)).
    pub forget_after: Duration,
}

impl NodeConfig {
    /// How long one round accepted by a majority lets its proposer lead, counted from the
    /// send time of its propose requests: `lease - clock_drift - kill_grace`.
    pub fn lease_budget(&self) -> Duration {
        self.lease
            .saturating_sub(self.clock_drift + self.kill_grace)
    }
}

/// The durable part of one election's state: only the fencing floor. Acceptors keep their
/// promises and accepted proposals in memory (PaxosLease's diskless rule); what is on disk
/// is the highest leadership epoch this node accepted, so that no later ballot at or below
/// it is promised here (decision record 115).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The highest leadership epoch this node's acceptor accepted in the election.
    pub epoch: EpochNo,
    /// The proposer of that leadership.
    pub leader: Option<NodeId>,
}

/// Counters of refused input, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Messages from nodes that are not members (or from this node itself).
    pub unknown_sender: u64,
    /// Prepare or propose requests this node's acceptor rejected (a higher promise, an
    /// epoch at or below its floor).
    pub rejected: u64,
    /// Requests ignored because this node restarted less than one lease time ago.
    pub ignored_restarting: u64,
    /// Mentions of elections this node does not hold, ignored because it held
    /// `max_elections`.
    pub ignored_elections: u64,
    /// Rounds this node's proposer started.
    pub rounds: u64,
    /// Idle elections forgotten.
    pub forgotten: u64,
}
