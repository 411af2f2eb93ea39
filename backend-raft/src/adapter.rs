//! The Raft backend's pieces of the shared peer node: [`RaftNode`], the Raft core as an
//! [`ElectionCore`](election_peer::ElectionCore), its state-file format, and [`RaftConfig`] as a
//! [`PeerNodeConfig`](election_peer::PeerNodeConfig).

use election_core::NodeId;
use election_peer::{PeerNode, PersistedState, StateFormat};

use crate::core::{HardState, Message, Node, NodeConfig};
use crate::{KIND, RaftConfig, codec};

/// One member of a Raft election cluster: the shared [`PeerNode`] running the Raft core.
/// Elects among its peers, for any number of elections over one authenticated connection
/// per peer; see the crate documentation. Start it with `RaftNode::start(config)`
/// ([`PeerNode::start`] from a [`RaftConfig`]).
///
/// Dropping the handle stops the node abruptly, as [`crash`](PeerNode::crash) does; call
/// [`shutdown`](PeerNode::shutdown) to hand leaderships over first.
pub type RaftNode = PeerNode<Node>;

election_peer::forward_peer_node_config! {
    config: RaftConfig,
    core: Node,
    core_config: NodeConfig,
    hard_state: HardState,
}

impl PersistedState for HardState {
    /// ```text
    /// elector-raft-state v1
    /// <election> <term> <vote node id or ->
    /// ```
    const FORMAT: StateFormat = StateFormat {
        header: "elector-raft-state v1",
        file: "raft-state",
        setting: "raft.data_dir",
        holds: "this node's terms and votes,",
    };

    fn to_parts(&self) -> (u64, Option<&NodeId>) {
        (self.term, self.vote.as_ref())
    }

    fn from_parts(term: u64, vote: Option<NodeId>) -> Self {
        HardState { term, vote }
    }
}

election_peer::forward_election_core! {
    core: Node,
    message: Message,
    hard_state: HardState,
    kind: KIND,
    // Messages go first, then events (persist, then send, then events).
    events_before_send: false,
    codec: codec,
}

#[cfg(test)]
mod tests {
    use super::*;

    election_peer::test_support::state_file_tests! {
        hard_state: HardState,
        sample: HardState {
            term: 7,
            vote: Some(NodeId::new("n2").unwrap()),
        },
        corrupt_line: "backup seven -",
    }
}
