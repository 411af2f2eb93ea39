//! A Raft cluster over real TCP on loopback, in one test process: the shared
//! `election_peer::test_support::Cluster` (every node its own `RaftNode` with its own data
//! dir, and a `FaultProxy` on every ordered peer pair) configured for Raft.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use election_peer::test_support::{ClusterBackend, Member};
use election_raft::{RaftConfig, RaftNode};

pub const SECRET: &str = "raft-tests-shared-secret";

/// The Raft backend, for the shared cluster.
pub struct Raft;

impl ClusterBackend for Raft {
    type Node = RaftNode;
    type Config = RaftConfig;

    fn configure(m: Member) -> RaftConfig {
        RaftConfig {
            node_id: Some(m.id),
            listen: m.listen,
            peers: m.peers,
            voters_only: m.voters_only,
            data_dir: m.data_dir,
            secret: Some(SECRET.into()),
            ..RaftConfig::default()
        }
    }

    async fn start(config: RaftConfig) -> election_core::Result<RaftNode> {
        RaftNode::start(config).await
    }

    fn crash(node: RaftNode) {
        node.crash();
    }

    async fn shutdown(node: RaftNode) {
        node.shutdown().await;
    }

    fn stall(node: &RaftNode) -> election_peer::Stall {
        node.stall()
    }
}

pub type Cluster = election_peer::test_support::Cluster<Raft>;

/// Timings for tests on a busy 2-core machine: the defaults' shape, slowed down so that a
/// stalled scheduler does not depose leaders at random.
pub fn relaxed(c: &mut RaftConfig) {
    c.heartbeat = Duration::from_millis(50);
    c.election_timeout_min = Duration::from_millis(500);
    c.election_timeout_max = Duration::from_millis(900);
    c.clock_drift = Duration::from_millis(50);
    c.kill_grace = Duration::from_millis(100);
}

/// The crate's default timings.
pub fn defaults(_: &mut RaftConfig) {}
