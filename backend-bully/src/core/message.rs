//! The messages Bully nodes exchange. Per-election messages carry the election's name;
//! heartbeats and their acknowledgements are per node and cover every election at once.

use election_core::{ElectionName, NodeId};

/// An epoch as carried on the wire (the raw value of [`election_core::Epoch`]).
pub type EpochNo = u64;

/// One protocol message between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// ELECTION: "I am holding an election in `election`; answer ALIVE if you are a higher
    /// live candidate." Sent to every peer (lower ones acknowledge it, for the quorum
    /// rule). `epoch` is the highest epoch the sender has seen (informational: receivers
    /// answer with their own and do not adopt it).
    Election {
        /// The election.
        election: ElectionName,
        /// The sender's highest epoch seen.
        epoch: EpochNo,
    },
    /// ALIVE: the answer of a higher campaigning node, which takes the election over.
    Alive {
        /// The election.
        election: ElectionName,
    },
    /// The answer of every other node to ELECTION: its highest epoch seen, and whether it
    /// would follow a new leader now (`false` while it heard from a live leader within the
    /// failure timeout, or just restarted).
    ElectionAck {
        /// The election.
        election: ElectionName,
        /// The receiver's highest epoch seen.
        epoch: EpochNo,
        /// Whether it has no live leader to stay loyal to.
        granted: bool,
    },
    /// VICTORY: the sender leads `election` from `epoch` on. Always followed, in the same
    /// batch, by a [`Message::Heartbeat`] that carries the election too and is
    /// acknowledged.
    Victory {
        /// The election.
        election: ElectionName,
        /// The new leadership's epoch.
        epoch: EpochNo,
    },
    /// A leader's heartbeat round: every election the sender leads, with its epoch.
    Heartbeat {
        /// Round number, increasing within one incarnation of the sender.
        round: u64,
        /// Identifies one run of the sender's process; rounds restart with it.
        incarnation: u64,
        /// Every election the sender leads (granted or not yet), with its epoch.
        leads: Vec<(ElectionName, EpochNo)>,
    },
    /// The answer to a [`Message::Heartbeat`]: every listed election is accepted except
    /// `rejects`, each with the receiver's highest epoch seen there.
    Ack {
        /// The round acknowledged.
        round: u64,
        /// The incarnation the acknowledged heartbeat carried.
        incarnation: u64,
        /// Elections of the round that the receiver refuses.
        rejects: Vec<(ElectionName, EpochNo)>,
    },
    /// The sender resigned the leadership of `election` at `epoch`: followers drop their
    /// loyalty to it at once and campaigning ones hold an election.
    Abdicate {
        /// The election.
        election: ElectionName,
        /// The resigned leadership's epoch.
        epoch: EpochNo,
    },
}

/// Everything one step produced for one peer, to be sent together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The peer.
    pub to: NodeId,
    /// The messages, in order.
    pub messages: Vec<Message>,
}
