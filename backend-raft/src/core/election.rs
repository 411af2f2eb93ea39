//! One election's volatile and durable state inside a [`Node`](super::Node).

use std::time::{Duration, Instant};

use election_core::{ElectionName, NodeId};

use super::Term;

/// A set of members, as a bitmask over member indices (at most 64 members).
pub(super) type Members = u64;

pub(super) fn bit(member: usize) -> Members {
    1 << member
}

/// The role of this node in one election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Follower,
    /// Asking for pre-votes at `term + 1`.
    PreCandidate {
        granted: Members,
        deadline: Instant,
    },
    /// Asking for votes at `term`, since `started` (when the requests were sent).
    Candidate {
        granted: Members,
        deadline: Instant,
        started: Instant,
    },
    Leader {
        /// The first heartbeat round that announced this leadership.
        first_round: u64,
        /// When the vote requests that won this term were sent: every granting voter
        /// refuses other candidates for `election_timeout_min` after it received them.
        since: Instant,
        /// Whether [`CoreEvent::Elected`](election_peer::CoreEvent::Elected) was sent.
        granted: bool,
        /// Followers that told us they campaign here.
        candidates: Members,
    },
}

/// One election.
#[derive(Debug)]
pub(super) struct Election {
    pub(super) name: ElectionName,
    /// Durable: the current term.
    pub(super) term: Term,
    /// Durable: the node voted for in `term` (kept by id: it may no longer be a member).
    pub(super) vote: Option<NodeId>,
    pub(super) role: Role,
    /// The leader as this node knows it, with its term.
    pub(super) leader: Option<(usize, Term)>,
    /// Whether this node wants to lead (between `campaign` and `withdraw`/`Elected`).
    pub(super) campaigning: bool,
    /// The follower's election timer runs from the later of this and the last time the
    /// known leader was heard from.
    pub(super) timer_base: Instant,
    /// The current randomized election timeout.
    pub(super) timeout: Duration,
    /// Votes are refused until then (the lease of a leadership this node gave up).
    pub(super) hold_until: Option<Instant>,
    /// No campaign starts before then (after a resign).
    pub(super) quiet_until: Option<Instant>,
    /// Peers whose heartbeat set claims this election, with the claimed term.
    pub(super) claims: Vec<(usize, Term)>,
    /// The last time this election was mentioned or seen busy (see `Node::sweep`).
    pub(super) last_active: Instant,
    /// The old leader stepped down for this node (`Message::Prefer`): campaign as soon as
    /// the promises to it have run out, not after a random timeout.
    pub(super) preferred: bool,
}

impl Election {
    /// A new election at `term` (0, or above the node's floor after it forgot elections).
    pub(super) fn new(name: ElectionName, now: Instant, timeout: Duration, term: Term) -> Self {
        Election {
            name,
            term,
            vote: None,
            role: Role::Follower,
            leader: None,
            campaigning: false,
            timer_base: now,
            timeout,
            hold_until: None,
            quiet_until: None,
            claims: Vec::new(),
            last_active: now,
            preferred: false,
        }
    }

    pub(super) fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }
}
