//! One election's volatile and durable state inside a [`Node`](super::Node).

use std::time::Instant;

use election_core::{ElectionName, NodeId};

use super::EpochNo;

/// A set of members, as a bitmask over member indices (at most 64 members).
pub(super) type Members = u64;

pub(super) fn bit(member: usize) -> Members {
    1 << member
}

/// The role of this node in one election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Follower,
    /// ELECTION sent; collecting ALIVE and acknowledgements until `deadline`.
    Electing {
        /// Members that answered (this node included).
        answered: Members,
        /// Members that would follow a new leader (this node included).
        granted: Members,
        deadline: Instant,
    },
    Leader {
        epoch: EpochNo,
        /// The heartbeat round sent with the VICTORY.
        first_round: u64,
        /// When the VICTORY was sent.
        since: Instant,
        /// Whether [`CoreEvent::Elected`](election_peer::CoreEvent::Elected) was sent.
        granted: bool,
        /// Until `since + answer_timeout`, the grant also waits for every peer heard from
        /// recently to accept, so that every live node knows the new leader when its
        /// `campaign` returns.
        patient: bool,
        /// The current lease deadline (meaningful once granted).
        lease: Instant,
        /// Per member, the highest round it acknowledged for this election.
        acked: Vec<u64>,
    },
}

/// One election.
#[derive(Debug)]
pub(super) struct Election {
    pub(super) name: ElectionName,
    /// Durable: the highest epoch seen.
    pub(super) epoch: EpochNo,
    /// Durable: the leader accepted at `epoch` (kept by id).
    pub(super) accepted: Option<NodeId>,
    pub(super) role: Role,
    /// The leader as this node knows it, with its epoch.
    pub(super) leader: Option<(usize, EpochNo)>,
    /// When the known leader (if another node) was last heard and accepted.
    pub(super) last_heard: Option<Instant>,
    /// Whether this node wants to lead (between `campaign` and `withdraw`/`Elected`).
    pub(super) campaigning: bool,
    /// A campaigning follower with no live leader holds an election at this instant.
    pub(super) next_election: Instant,
    /// This node follows no other leader before then (it led until recently).
    pub(super) hold_until: Option<Instant>,
    /// This node neither campaigns nor answers ALIVE before then (it just resigned).
    pub(super) quiet_until: Option<Instant>,
    /// Candidates whose ELECTION this node refused out of loyalty to a live leader: they
    /// get a granting acknowledgement as soon as that loyalty ends.
    pub(super) refused: Members,
    /// The last time this election was mentioned or seen busy (see `Node::sweep`).
    pub(super) last_active: Instant,
}

impl Election {
    /// A new election at `epoch` (0, or above the node's floor after it forgot elections).
    pub(super) fn new(name: ElectionName, now: Instant, epoch: EpochNo) -> Self {
        Election {
            name,
            epoch,
            accepted: None,
            role: Role::Follower,
            leader: None,
            last_heard: None,
            campaigning: false,
            next_election: now,
            hold_until: None,
            quiet_until: None,
            refused: 0,
            last_active: now,
        }
    }

    pub(super) fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }
}
