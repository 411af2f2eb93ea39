//! The PaxosLease backend's pieces of the shared peer node: [`PaxosNode`], the PaxosLease core as an
//! [`ElectionCore`], its state-file format, and [`PaxosConfig`] as a [`PeerNodeConfig`].

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use election_core::{ElectionName, NodeId, Result};
use election_peer::wire::DecodeError;
use election_peer::{
    CoreEvent, ElectionCore, Forget, PeerNode, PeerNodeConfig, PeerSettings, PersistedState,
    StateFormat,
};

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

impl PeerNodeConfig for PaxosConfig {
    type Core = Node;
    type CoreConfig = NodeConfig;

    fn validate(&self) -> Result<()> {
        PaxosConfig::validate(self)
    }

    fn rng_seed(&self) -> Option<u64> {
        self.rng_seed
    }

    fn core_config(&self, seed: u64, incarnation: u64) -> Result<NodeConfig> {
        self.node_config(seed, incarnation)
    }

    fn peer_settings(&self) -> Result<PeerSettings> {
        PaxosConfig::peer_settings(self)
    }

    fn new_core(
        config: NodeConfig,
        now: Instant,
        state: &BTreeMap<ElectionName, HardState>,
        floor: u64,
    ) -> Result<Node> {
        Node::restore(
            config,
            now,
            state.iter().map(|(k, v)| (k.clone(), v.clone())),
            floor,
        )
    }
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

impl ElectionCore for Node {
    type Message = Message;
    type HardState = HardState;
    type DecodeError = DecodeError;

    const KIND: &'static str = KIND;
    /// Events go first: a loss ends the local `Leadership`, and observers see a new leader,
    /// before any peer can act on this step's messages.
    const EVENTS_BEFORE_SEND: bool = true;

    fn id(&self) -> &NodeId {
        Node::id(self)
    }

    fn campaign(&mut self, now: Instant, election: &ElectionName) -> bool {
        Node::campaign(self, now, election)
    }

    fn withdraw(&mut self, now: Instant, election: &ElectionName) {
        Node::withdraw(self, now, election);
    }

    fn resign(&mut self, now: Instant, election: &ElectionName) -> bool {
        Node::resign(self, now, election)
    }

    fn expire(&mut self, now: Instant, election: &ElectionName) -> bool {
        Node::expire(self, now, election)
    }

    fn handle_message(&mut self, now: Instant, from: &NodeId, message: Message) -> bool {
        Node::handle_message(self, now, from, message)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        Node::poll_timeout(self)
    }

    fn poll_transmit(&mut self) -> Option<(NodeId, Vec<Message>)> {
        Node::poll_transmit(self).map(|t| (t.to, t.messages))
    }

    fn poll_event(&mut self) -> Option<CoreEvent> {
        Node::poll_event(self)
    }

    fn poll_persist(&mut self) -> Option<Vec<(ElectionName, HardState)>> {
        Node::poll_persist(self)
    }

    fn poll_forget(&mut self) -> Option<Forget> {
        Node::poll_forget(self)
    }

    fn refuses_new(&self, election: &ElectionName) -> Option<usize> {
        Node::refuses_new(self, election)
    }

    fn tracked(&self) -> usize {
        Node::tracked(self)
    }

    fn ignored(&self) -> u64 {
        Node::stats(self).ignored_elections
    }

    fn encode(messages: &[Message], max_len: usize) -> Vec<Bytes> {
        codec::encode(messages, max_len)
    }

    fn decode(payload: &[u8]) -> Result<Vec<Message>, DecodeError> {
        codec::decode(payload)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use election_peer::StateFile;

    use super::*;

    #[test]
    fn saved_epochs_and_accepted_leaders_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::<HardState>::open(dir.path()).unwrap();
        let e = ElectionName::new("backup").unwrap();
        let v = NodeId::new("n2").unwrap();
        f.save(vec![(
            e.clone(),
            HardState {
                epoch: 7,
                leader: Some(v.clone()),
            },
        )])
        .unwrap();
        let again = StateFile::<HardState>::open(dir.path()).unwrap();
        assert_eq!(
            again.state()[&e],
            HardState {
                epoch: 7,
                leader: Some(v)
            }
        );
        let text = fs::read_to_string(dir.path().join("paxos-state")).unwrap();
        assert!(text.starts_with("elector-paxos-state v1\n"), "{text}");
    }

    #[test]
    fn a_corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("paxos-state"),
            "elector-paxos-state v1\nbackup seven -\n",
        )
        .unwrap();
        let err = StateFile::<HardState>::open(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("corrupt") && err.contains("line 2") && err.contains("paxos.data_dir"),
            "{err}"
        );
    }
}
