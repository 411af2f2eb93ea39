//! A Bully cluster over real TCP on loopback, in one test process: the shared
//! `election_peer::test_support::Cluster` (every node its own `BullyNode` with its own data
//! dir, and a `FaultProxy` on every ordered peer pair) configured for Bully.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use election_bully::{BullyConfig, BullyNode};
use election_peer::test_support::{ClusterBackend, Member};

pub const SECRET: &str = "bully-tests-shared-secret";

/// The Bully backend, for the shared cluster.
pub struct Bully;

impl ClusterBackend for Bully {
    type Node = BullyNode;
    type Config = BullyConfig;

    fn configure(m: Member) -> BullyConfig {
        BullyConfig {
            node_id: Some(m.id),
            listen: m.listen,
            peers: m.peers,
            voters_only: m.voters_only,
            data_dir: m.data_dir,
            secret: Some(SECRET.into()),
            ..BullyConfig::default()
        }
    }

    async fn start(config: BullyConfig) -> election_core::Result<BullyNode> {
        BullyNode::start(config).await
    }

    fn crash(node: BullyNode) {
        node.crash();
    }

    async fn shutdown(node: BullyNode) {
        node.shutdown().await;
    }

    fn stall(node: &BullyNode) -> election_peer::Stall {
        node.stall()
    }
}

pub type Cluster = election_peer::test_support::Cluster<Bully>;

/// Timings for tests on a busy 2-core machine: the defaults' shape, slowed down so that a
/// stalled scheduler does not depose leaders at random.
pub fn relaxed(c: &mut BullyConfig) {
    c.heartbeat = Duration::from_millis(50);
    c.failure_timeout = Duration::from_millis(600);
    c.answer_timeout = Duration::from_millis(200);
    c.clock_drift = Duration::from_millis(50);
    c.kill_grace = Duration::from_millis(100);
}

/// The crate's default timings.
pub fn defaults(_: &mut BullyConfig) {}
