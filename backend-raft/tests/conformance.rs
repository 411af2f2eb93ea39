//! The conformance suite against a 3-member Raft cluster over real TCP: each test node is a
//! cluster member; cutting a node off blackholes every proxy to and from it.

mod cluster;

use std::sync::Arc;

use cluster::{Cluster, Raft, relaxed};
use election_peer::conformance::{ClusterHarness, ConformanceBackend};
use election_raft::RaftConfig;
use election_tests::conformance::{Bounds, Harness};

impl ConformanceBackend for Raft {
    const NAME: &'static str = "raft";

    fn bounds(c: &RaftConfig) -> Bounds {
        Bounds {
            // The lease: the last quorum-acknowledged round was sent before the cut.
            loss_within: c.lease_budget(),
            // The followers' lease runs out election_timeout_min after they last heard the
            // leader; a follower's timer fires within election_timeout_max of that; one
            // split vote costs another election_timeout_max.
            takeover_within: c.election_timeout_min + c.election_timeout_max * 2,
            // Inside the lease: followers refuse others until election_timeout_min after
            // they last heard the leader, which is lease + clock_drift + kill_grace.
            kill_grace: c.kill_grace,
        }
    }
}

async fn harness() -> Arc<dyn Harness> {
    Arc::new(ClusterHarness::new(Cluster::start(3, relaxed).await))
}

election_tests::conformance_suite!(harness);
