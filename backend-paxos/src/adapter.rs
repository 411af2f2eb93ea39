//! The PaxosLease backend's pieces of the shared peer node: [`PaxosNode`], the PaxosLease core as an
//! [`ElectionCore`](election_peer::ElectionCore), its state-file format, and [`PaxosConfig`] as a
//! [`PeerNodeConfig`](election_peer::PeerNodeConfig).

use election_core::NodeId;
use election_peer::{PeerNode, PersistedState, StateFormat};

use crate::core::{HardState, Message, Node, NodeConfig};
use crate::{KIND, PaxosConfig, codec};

/// One member of a PaxosLease election cluster: the shared [`PeerNode`] running the PaxosLease core.
/// Elects among its peers by PaxosLease, for any number of elections over one authenticated connection
/// per peer; see the crate documentation. Start it with `PaxosNode::start(config)`
/// ([`PeerNode::start`] from a [`PaxosConfig`]).
///
/// Dropping the handle stops the node abruptly, as [`crash`](PeerNode::crash) does; call
/// [`shutdown`](PeerNode::shutdown) to hand leaderships over first.
pub type PaxosNode = PeerNode<Node>;

election_peer::forward_peer_node_config! {
    config: PaxosConfig,
    core: Node,
    core_config: NodeConfig,
    hard_state: HardState,
}

impl PersistedState for HardState {
    /// ```text
    /// elector-paxos-state v1
    /// <election> <highest accepted epoch> <its proposer id or ->
    /// ```
    const FORMAT: StateFormat = StateFormat {
        header: "elector-paxos-state v1",
        file: "paxos-state",
        setting: "paxos.data_dir",
        holds: "this node's fencing floors (highest accepted epochs); losing it on a majority lets epochs go back,",
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
