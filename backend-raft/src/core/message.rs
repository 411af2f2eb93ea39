//! The messages Raft nodes exchange. Per-election messages carry the election's name;
//! heartbeats and their acknowledgements are per node and cover every election at once.

use election_core::ElectionName;

/// A Raft term. Within one election it is the epoch of the leadership of that term.
pub type Term = u64;

/// One protocol message between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A leader's heartbeat round, sent to every peer every heartbeat interval.
    ///
    /// The set of elections the sender leads, with their terms, travels only when the
    /// receiver may not hold version `version` of it yet (see [`Message::HeartbeatAck`]):
    /// as the changes since the version it acknowledged, or whole when it holds none. So
    /// the steady-state cost of a round does not depend on how many elections the sender
    /// leads.
    Heartbeat {
        /// Round number, increasing within one incarnation of the sender.
        round: u64,
        /// Identifies one run of the sender's process; versions restart with it.
        incarnation: u64,
        /// Version of the sender's set of led elections.
        version: u64,
        /// The set, or the changes to it, when the receiver may not hold `version`.
        update: Option<SetUpdate>,
    },
    /// The answer to a [`Message::Heartbeat`].
    HeartbeatAck {
        /// The round acknowledged.
        round: u64,
        /// The incarnation the acknowledged heartbeat carried.
        incarnation: u64,
        /// The version of the set the receiver holds (meaningful unless `need_full`).
        version: u64,
        /// The receiver does not hold that version: send the full set.
        need_full: bool,
        /// Elections of the set that the receiver refuses, with the receiver's higher term.
        rejects: Vec<(ElectionName, Term)>,
    },
    /// Pre-vote (§9.6 of Ongaro's thesis): "would you vote for me at `term`?" Changes no
    /// state at the receiver.
    PreVote {
        /// The election.
        election: ElectionName,
        /// The term the sender would campaign at (its term + 1).
        term: Term,
        /// Set by a transfer target (TimeoutNow): bypasses the leader lease.
        force: bool,
    },
    /// The answer to a [`Message::PreVote`].
    PreVoteResp {
        /// The election.
        election: ElectionName,
        /// The term asked about if granted, else the receiver's term.
        term: Term,
        /// Whether the receiver would vote.
        granted: bool,
    },
    /// RequestVote (§5.2).
    Vote {
        /// The election.
        election: ElectionName,
        /// The candidate's term.
        term: Term,
        /// Set by a transfer target (TimeoutNow): bypasses the leader lease.
        force: bool,
    },
    /// The answer to a [`Message::Vote`].
    VoteResp {
        /// The election.
        election: ElectionName,
        /// The receiver's term.
        term: Term,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Leadership transfer (§3.10 of Ongaro's thesis): the leader at `term` resigned and
    /// asks the receiver to campaign at once.
    TimeoutNow {
        /// The election.
        election: ElectionName,
        /// The resigning leader's term.
        term: Term,
    },
    /// A follower tells the leader of `election` at `term` whether it campaigns there, so
    /// that a resigning leader hands over to a node that wants to lead.
    Candidacy {
        /// The election.
        election: ElectionName,
        /// The leader's term as the sender knows it.
        term: Term,
        /// Whether the sender campaigns.
        campaigning: bool,
        /// The sender's priority as a candidate (0 unless configured). The leader steps
        /// down for a healthy campaigning follower of higher priority.
        priority: u32,
    },
    /// The leader at `term` stepped down so that the receiver, a candidate of higher
    /// priority, leads: campaign as soon as the promises made to the old leader have run
    /// out. Unlike [`Message::TimeoutNow`] it bypasses no lease: the old leader's child
    /// keeps its kill grace (the handover rule).
    Prefer {
        /// The election.
        election: ElectionName,
        /// The old leader's term.
        term: Term,
    },
}

/// The led set of a [`Message::Heartbeat`]'s sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetUpdate {
    /// Every election the sender leads, with its term.
    Full(Vec<(ElectionName, Term)>),
    /// The changes after version `base`, in order: `(election, term)` now led at `term`,
    /// or no longer led when `term` is 0. Applying them to any version from `base` on
    /// gives the heartbeat's version (each change is an assignment).
    Delta {
        /// The version the changes start after.
        base: u64,
        /// The changes.
        changes: Vec<(ElectionName, Term)>,
    },
}

/// Everything one step produced for one peer, to be sent together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The peer.
    pub to: election_core::NodeId,
    /// The messages, in order.
    pub messages: Vec<Message>,
}
