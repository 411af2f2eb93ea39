//! The Bully backend's pieces of the shared peer node: [`BullyNode`], the Bully core as an
//! [`ElectionCore`](election_peer::ElectionCore), its state-file format, and [`BullyConfig`] as a
//! [`PeerNodeConfig`](election_peer::PeerNodeConfig).

use election_core::NodeId;
use election_peer::{PeerNode, PersistedState, StateFormat};

use crate::core::{HardState, Message, Node, NodeConfig};
use crate::{BullyConfig, KIND, codec};

/// One member of a Bully election cluster: the shared [`PeerNode`] running the Bully core.
/// Elects among its peers, for any number of elections over one authenticated connection
/// per peer; see the crate documentation. Start it with `BullyNode::start(config)`
/// ([`PeerNode::start`] from a [`BullyConfig`]).
///
/// Dropping the handle stops the node abruptly, as [`crash`](PeerNode::crash) does; call
/// [`shutdown`](PeerNode::shutdown) to hand leaderships over first.
pub type BullyNode = PeerNode<Node>;

election_peer::forward_peer_node_config! {
    config: BullyConfig,
    core: Node,
    core_config: NodeConfig,
    hard_state: HardState,
}

impl PersistedState for HardState {
    /// ```text
    /// elector-bully-state v1
    /// <election> <highest epoch seen> <accepted leader id or ->
    /// ```
    const FORMAT: StateFormat = StateFormat {
        header: "elector-bully-state v1",
        file: "bully-state",
        setting: "bully.data_dir",
        holds: "this node's highest epochs seen; losing it lets epochs go back,",
    };

    fn to_parts(&self) -> (u64, Option<&NodeId>) {
        (self.epoch, self.leader.as_ref())
    }

    fn from_parts(epoch: u64, leader: Option<NodeId>) -> Self {
        HardState { epoch, leader }
    }
}

election_peer::forward_election_core! {
    core: Node,
    message: Message,
    hard_state: HardState,
    kind: KIND,
    // Events go first: a loss ends the local `Leadership`, and observers see a new leader,
    // before any peer can act on this step's messages.
    events_before_send: true,
    codec: codec,
}

#[cfg(test)]
mod tests {
    use super::*;

    election_peer::test_support::state_file_tests! {
        hard_state: HardState,
        sample: HardState {
            epoch: 7,
            leader: Some(NodeId::new("n2").unwrap()),
        },
        corrupt_line: "backup seven -",
    }
}
