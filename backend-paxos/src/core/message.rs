//! The messages PaxosLease nodes exchange. Every message names its election; one step's
//! messages to one peer travel together in one batch, so the renewals of every election a
//! node leads share one packet per peer.

use election_core::ElectionName;

use super::LeaseSet;

/// An epoch as carried on the wire (the raw value of [`election_core::Epoch`]): the ballot
/// of the round that started a leadership.
pub type EpochNo = u64;

/// A ballot (proposal number): `counter * 64 + member index`, so that two members never use
/// the same one and every member can pick one above any it has seen.
pub type Ballot = u64;

/// What an acceptor holds open, as it answers a prepare request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// No accepted proposal is open.
    None,
    /// The asking proposer's own proposal is open for this much longer (µs).
    Yours(u64),
    /// Another proposer's proposal is open for this much longer (µs).
    Other(u64),
}

/// One protocol message between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Phase 1 request: "promise to reject any ballot below `ballot`, and tell me what you
    /// hold open."
    Prepare {
        /// The election.
        election: ElectionName,
        /// The round's ballot.
        ballot: Ballot,
        /// The proposer's run; the answer echoes it.
        incarnation: u64,
    },
    /// Phase 1 answer.
    PrepareAck {
        /// The election.
        election: ElectionName,
        /// The ballot answered.
        ballot: Ballot,
        /// The incarnation the request carried.
        incarnation: u64,
        /// Whether the acceptor promised `ballot`.
        promised: bool,
        /// The acceptor's highest promised ballot or fencing floor, whichever is higher.
        seen: Ballot,
        /// What the acceptor holds open.
        open: Open,
    },
    /// Phase 2 request: "accept me as the lease owner at `ballot`, for one lease time from
    /// when you accept." `epoch` is the leadership's epoch: `ballot` for a new leadership,
    /// the first round's ballot for a renewal.
    Propose {
        /// The election.
        election: ElectionName,
        /// The round's ballot.
        ballot: Ballot,
        /// The leadership's epoch.
        epoch: EpochNo,
        /// The proposer's run; the answer echoes it.
        incarnation: u64,
    },
    /// Phase 2 answer.
    ProposeAck {
        /// The election.
        election: ElectionName,
        /// The ballot answered.
        ballot: Ballot,
        /// The incarnation the request carried.
        incarnation: u64,
        /// Whether the acceptor accepted it.
        accepted: bool,
        /// The acceptor's highest promised ballot or fencing floor.
        seen: Ballot,
    },
    /// The sender gives up its lease of `election` at `epoch` (a resign, or a round that
    /// failed before it was granted): acceptors holding that proposal open drop it at once.
    Release {
        /// The election.
        election: ElectionName,
        /// The leadership's epoch.
        epoch: EpochNo,
        /// The proposer's run that proposed it (a ballot, hence an epoch, may be used again
        /// by a later run of the same node, for a round that was never granted).
        incarnation: u64,
    },
    /// A resigning lease owner's RELEASE to the one candidate it knows to be waiting for
    /// its lease, with a promise: "I gave up `epoch`, hold nothing open, and promised you
    /// `ballot`". The candidate does what a RELEASE asks, then starts its round at
    /// `ballot` on the spot and counts the sender's promise, so the next lease needs only
    /// the propose phase (decision record 130).
    Handoff {
        /// The election.
        election: ElectionName,
        /// The released leadership's epoch.
        epoch: EpochNo,
        /// The releasing proposer's run (as in [`Message::Release`]).
        incarnation: u64,
        /// The ballot promised: one of the candidate's own (`counter * 64 + its index`),
        /// above everything the sender has seen.
        ballot: Ballot,
        /// The candidate's run, as its last request carried it: another run of the
        /// candidate takes only the release.
        candidate: u64,
    },
    /// A leader's renewal of many leases at once, one phase (decision record 131): "accept
    /// my proposal at `ballot` again, for one lease time from now", for each entry
    /// `(election, ballot, epoch)`, where `ballot` is the one a majority last accepted in
    /// that leadership. The acceptor applies its propose rule to each entry and answers
    /// with one [`Message::ExtendAck`] listing only the refusals.
    Extend {
        /// The proposer's run; the answer echoes it.
        incarnation: u64,
        /// The renewal tick, echoed.
        round: u64,
        /// The index of the first entry within the tick's renewals, echoed.
        first: u32,
        /// The leases to extend.
        entries: Vec<(ElectionName, Ballot, EpochNo)>,
    },
    /// The answer to [`Message::Extend`]: every entry but `refused` was accepted.
    ExtendAck {
        /// The incarnation the request carried.
        incarnation: u64,
        /// The renewal tick.
        round: u64,
        /// The index of the request's first entry.
        first: u32,
        /// How many entries the request held.
        count: u32,
        /// The elections whose entry was refused (or is unknown here).
        refused: Vec<ElectionName>,
    },
    /// A leader's renewal of every lease it holds, named by their digest instead of
    /// listed (decision record 142): "if you hold open exactly these proposals of mine,
    /// keep every one of them open for one lease time from now". One message per peer per
    /// tick, whatever the number of leases. Answered by [`Message::ExtendAllAck`]; a
    /// mismatch makes the leader send this tick's [`Message::Extend`] entries instead.
    ExtendAll {
        /// The proposer's run; the answer echoes it.
        incarnation: u64,
        /// The renewal tick, echoed.
        round: u64,
        /// The digest of every lease the sender leads: `(election, ballot, epoch)` with
        /// the ballot a majority last accepted in that leadership.
        leases: LeaseSet,
    },
    /// The answer to [`Message::ExtendAll`]: `matched` when the acceptor held open exactly
    /// the proposals of the sender that the digest names, and so extended them all.
    ExtendAllAck {
        /// The incarnation the request carried.
        incarnation: u64,
        /// The renewal tick.
        round: u64,
        /// Whether every lease was extended (else none was).
        matched: bool,
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
