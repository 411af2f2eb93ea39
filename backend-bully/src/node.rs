//! [`BullyNode`]: the public handle, [`Backend`] for it, and one elector per election
//! (the shared [`PeerNode`] running the Bully core).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use election_core::{Backend, Candidate, ElectionName, LeaderElector, NodeId, Result};
use election_peer::PeerNode;
use election_transport::TransportStats;

use crate::BullyConfig;
use crate::adapter::KIND;
use crate::core::Node;

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct BullyStats {
    /// Authenticated payloads that did not decode (another wire version, corruption).
    pub decode_errors: u64,
    /// The transport's counters (refused, oversized, unauthenticated frames, ...).
    pub transport: TransportStats,
}

/// One member of a Bully election cluster: elects among its peers, for any number of
/// elections over one authenticated connection per peer. See the crate documentation.
///
/// Dropping the handle stops the node abruptly, as [`crash`](Self::crash) does; call
/// [`shutdown`](Self::shutdown) to hand leaderships over first.
#[derive(Debug)]
pub struct BullyNode {
    node: PeerNode<Node>,
}

impl BullyNode {
    /// Validates `config`, reads the state file in `data_dir`, listens on `listen` and
    /// starts connecting to the peers.
    ///
    /// # Errors
    /// [`Error::Config`](election_core::Error::Config) for invalid settings, an unreadable
    /// secret or TLS file, or a corrupt state file;
    /// [`Error::Unavailable`](election_core::Error::Unavailable) when the listen address
    /// cannot be bound.
    pub async fn start(config: BullyConfig) -> Result<BullyNode> {
        config.validate()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = config
            .rng_seed
            .unwrap_or(nanos ^ (u64::from(std::process::id()) << 32));
        let core_config = config.node_config(seed, nanos)?;
        let node = PeerNode::<Node>::start(config.peer_settings()?, |state| {
            Node::new(
                core_config,
                std::time::Instant::now(),
                state.iter().map(|(k, v)| (k.clone(), v.clone())),
            )
        })
        .await?;
        Ok(BullyNode { node })
    }

    /// The address peers connect to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        self.node.id()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> BullyStats {
        let s = self.node.stats();
        BullyStats {
            decode_errors: s.decode_errors,
            transport: s.transport,
        }
    }

    /// Stops gracefully: every leadership this node holds ends (its `lost()` resolves
    /// with `Shutdown`) and is abdicated (campaigning peers hold an election at once), queued
    /// messages are flushed, then connections close. Pending campaigns fail with
    /// [`Error::Closed`](election_core::Error::Closed).
    pub async fn shutdown(self) {
        self.node.shutdown().await;
    }

    /// Fault injection: stalls the node's driver as if the process were stopped, until the
    /// returned [`Stall`](election_peer::Stall) is dropped (messages queue meanwhile;
    /// leaderships' `lost()` still fire at their deadlines).
    pub fn stall(&self) -> election_peer::Stall {
        self.node.stall()
    }

    /// Stops abruptly, as `kill -9` would: no resign, no further message. Leaderships
    /// this node held are not ended; they lapse at their lease deadline, as the other
    /// nodes assume. The state file is left as it was.
    pub fn crash(self) {
        self.node.crash();
    }
}

impl Backend for BullyNode {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// An elector for `name`. Bully members campaign only as themselves: `me` must be this
    /// node's id.
    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        self.node.election(name, me)
    }
}
