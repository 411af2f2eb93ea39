//! One election's acceptor and proposer state inside a [`Node`](super::Node).

use std::time::{Duration, Instant};

use election_core::{ElectionName, NodeId};

use super::{Ballot, EpochNo, NamePrefix};

/// A set of members, as a bitmask over member indices (at most 64 members).
pub(super) type Members = u64;

pub(super) fn bit(member: usize) -> Members {
    1 << member
}

/// A proposal this node's acceptor accepted and holds open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Accepted {
    /// The proposer (member index).
    pub(super) owner: usize,
    pub(super) ballot: Ballot,
    pub(super) epoch: EpochNo,
    /// The proposer's run that proposed it.
    pub(super) incarnation: u64,
    /// Open until then, on this node's clock: one lease time after it was accepted.
    pub(super) expires: Instant,
}

/// The phase of a round this node's proposer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Prepare requests sent; collecting promises.
    Prepare {
        /// Members that answered (this node included).
        answered: Members,
        /// Members that promised and hold nothing open (or this leader's own lease).
        free: Members,
        /// How much longer each member that holds another proposal open keeps it.
        blocked: Vec<Duration>,
        /// Whether some member refused because it promised a higher ballot.
        collided: bool,
    },
    /// Propose requests sent at `sent`; collecting acceptances.
    Propose {
        epoch: EpochNo,
        /// When the propose requests went out: the lease counts from here.
        sent: Instant,
        answered: Members,
        accepted: Members,
    },
}

/// A round of this node's proposer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Round {
    pub(super) ballot: Ballot,
    /// A renewal of the leadership this node holds.
    pub(super) renewal: bool,
    pub(super) phase: Phase,
    /// The phase fails if no majority answered by then.
    pub(super) deadline: Instant,
}

/// This node's granted leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lead {
    pub(super) epoch: EpochNo,
    /// The lease deadline: the send time of the latest round a majority accepted plus the
    /// lease budget.
    pub(super) lease: Instant,
    /// The ballot of the latest round a majority accepted: one-phase extensions propose it
    /// again (decision record 131).
    pub(super) ballot: Ballot,
}

/// Where an election whose timer moves with many others waits, instead of in the timer
/// heap: one wake-up for all of them, not a heap entry each per lease time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Parked {
    /// Its only timer is the expiry of its accepted proposal, held open by this
    /// proposer's matched digest: it waits in that proposer's `Node::parked` list for its
    /// `extended_until`.
    Accepted(usize),
    /// This node leads it and its only timer is its lease (or a later one), which every
    /// renewal moves together: it waits in `Node::leading`.
    Leading,
}

/// One election.
#[derive(Debug)]
pub(super) struct Election {
    pub(super) name: ElectionName,
    /// The digest's hash state after `name` (see [`NamePrefix`]).
    pub(super) prefix: NamePrefix,
    /// Whether this slot holds an election (`Node::by_name` maps its name here); a freed
    /// slot waits for reuse.
    pub(super) live: bool,
    /// Where this election waits instead of in the timer heap, if it does (see
    /// [`Parked`]).
    pub(super) parked: Option<Parked>,
    /// Durable: the highest leadership epoch this node's acceptor accepted.
    pub(super) floor: EpochNo,
    /// Durable: that leadership's proposer.
    pub(super) floor_owner: Option<NodeId>,
    // --- Acceptor (volatile). ---
    pub(super) promised: Ballot,
    pub(super) accepted: Option<Accepted>,
    /// The last leadership released here (proposer, epoch, the proposer's incarnation): a
    /// propose request of it that arrives after its RELEASE (it was in flight) is refused.
    pub(super) released: Option<(usize, EpochNo, u64)>,
    /// Members whose prepare requests this acceptor answered while it held another
    /// proposer's lease open: candidates waiting for that lease. A resigning owner hands
    /// over to one of them (decision record 130).
    pub(super) waiting: Members,
    /// The highest ballot those candidates asked for.
    pub(super) asked: Ballot,
    // --- Proposer. ---
    /// The highest ballot this node has seen (its own included).
    pub(super) seen: Ballot,
    /// Whether this node wants to lead (between `campaign` and `withdraw`/`Elected`).
    pub(super) campaigning: bool,
    /// A campaigning node with no round running starts one then.
    pub(super) next_round: Instant,
    pub(super) round: Option<Round>,
    pub(super) lead: Option<Lead>,
    /// This node does not propose before then (it just resigned).
    pub(super) quiet_until: Option<Instant>,
    /// The leader as this node last reported it.
    pub(super) known: Option<(usize, EpochNo)>,
    /// The last time this election was mentioned or seen busy (see `Node::sweep`).
    pub(super) last_active: Instant,
}

impl Election {
    /// A new election whose fencing floor is `floor` (0, or the node's floor after it
    /// forgot elections).
    pub(super) fn new(name: ElectionName, now: Instant, floor: EpochNo) -> Self {
        Election {
            prefix: NamePrefix::of(&name),
            live: true,
            parked: None,
            name,
            floor,
            floor_owner: None,
            promised: 0,
            accepted: None,
            released: None,
            waiting: 0,
            asked: 0,
            seen: floor,
            campaigning: false,
            next_round: now,
            round: None,
            lead: None,
            quiet_until: None,
            known: None,
            last_active: now,
        }
    }
}
