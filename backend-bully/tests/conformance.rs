//! The conformance suite against a 3-member Bully cluster over real TCP: each test node is a
//! cluster member; cutting a node off blackholes every proxy to and from it.

mod cluster;

use std::sync::Arc;

use cluster::{Bully, Cluster, relaxed};
use election_bully::BullyConfig;
use election_peer::conformance::{ClusterHarness, ConformanceBackend};
use election_tests::conformance::{Bounds, Harness};

impl ConformanceBackend for Bully {
    const NAME: &'static str = "bully";

    fn bounds(c: &BullyConfig) -> Bounds {
        Bounds {
            // The lease: the last majority-acknowledged round was sent before the cut.
            loss_within: c.lease_budget(),
            // The followers stay loyal for failure_timeout after they last heard the
            // leader; then a candidate waits up to answer_timeout for higher nodes; a
            // failed round backs off up to another failure_timeout.
            takeover_within: c.failure_timeout * 2 + c.answer_timeout * 2,
            // Inside the lease: followers stay loyal until failure_timeout after they last
            // heard the leader, which is lease + clock_drift + kill_grace.
            kill_grace: c.kill_grace,
        }
    }
}

async fn harness() -> Arc<dyn Harness> {
    Arc::new(ClusterHarness::new(Cluster::start(3, relaxed).await))
}

election_tests::conformance_suite!(harness);
