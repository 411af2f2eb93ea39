//! The conformance suite against a 3-member PaxosLease cluster over real TCP: each test node
//! is a cluster member; cutting a node off blackholes every proxy to and from it.

mod cluster;

use std::sync::Arc;

use cluster::{Cluster, Paxos, relaxed};
use election_paxos::PaxosConfig;
use election_peer::conformance::{ClusterHarness, ConformanceBackend};
use election_tests::conformance::{Bounds, Harness};

impl ConformanceBackend for Paxos {
    const NAME: &'static str = "paxos";

    fn bounds(c: &PaxosConfig) -> Bounds {
        Bounds {
            // The lease: the last round a majority accepted was sent before the cut.
            loss_within: c.lease_budget(),
            // The acceptors keep the old lease open for one lease time after they last
            // accepted it; then a candidate's retry comes within a back-off, and a round
            // or two (each within round_timeout) wins.
            takeover_within: c.lease * 2 + c.round_timeout * 4 + c.backoff * 2,
            // Inside the lease: acceptors hold it open until lease after they accepted,
            // which is lease + clock_drift + kill_grace after the holder's deadline.
            kill_grace: c.kill_grace,
        }
    }
}

async fn harness() -> Arc<dyn Harness> {
    Arc::new(ClusterHarness::new(Cluster::start(3, relaxed).await))
}

election_tests::conformance_suite!(harness);
