//! A PaxosLease cluster over real TCP on loopback, in one test process: the shared
//! `election_peer::test_support::Cluster` (every node its own `PaxosNode` with its own data
//! dir, and a `FaultProxy` on every ordered peer pair) configured for PaxosLease.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use election_paxos::{PaxosConfig, PaxosNode};
use election_peer::test_support::{ClusterBackend, Member};

pub const SECRET: &str = "paxos-tests-shared-secret";

/// The PaxosLease backend, for the shared cluster.
pub struct Paxos;

impl ClusterBackend for Paxos {
    type Node = PaxosNode;
    type Config = PaxosConfig;

    fn configure(m: Member) -> PaxosConfig {
        PaxosConfig {
            node_id: Some(m.id),
            listen: m.listen,
            peers: m.peers,
            voters_only: m.voters_only,
            data_dir: m.data_dir,
            secret: Some(SECRET.into()),
            ..PaxosConfig::default()
        }
    }

    async fn start(config: PaxosConfig) -> election_core::Result<PaxosNode> {
        PaxosNode::start(config).await
    }

    fn crash(node: PaxosNode) {
        node.crash();
    }

    async fn shutdown(node: PaxosNode) {
        node.shutdown().await;
    }

    fn stall(node: &PaxosNode) -> election_peer::Stall {
        node.stall()
    }
}

pub type Cluster = election_peer::test_support::Cluster<Paxos>;

/// Timings for tests on a busy 2-core machine: the defaults' shape, slowed down so that a
/// stalled scheduler does not depose leaders at random.
pub fn relaxed(c: &mut PaxosConfig) {
    c.lease = Duration::from_millis(600);
    c.renew = Duration::from_millis(50);
    c.round_timeout = Duration::from_millis(150);
    c.backoff = Duration::from_millis(40);
    c.clock_drift = Duration::from_millis(50);
    c.kill_grace = Duration::from_millis(100);
}

/// The crate's default timings.
pub fn defaults(_: &mut PaxosConfig) {}
