//! The conformance suite against a 3-member Bully cluster over real TCP: each test node is a
//! cluster member; cutting a node off blackholes every proxy to and from it.

mod cluster;

use std::sync::Arc;

use async_trait::async_trait;
use cluster::{Cluster, relaxed};
use election_core::{Backend, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, TestNode};

struct BullyHarness {
    cluster: Arc<Cluster>,
}

struct Member {
    cluster: Arc<Cluster>,
    index: usize,
}

#[async_trait]
impl TestNode for Member {
    fn id(&self) -> NodeId {
        self.cluster.ids[self.index].clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        self.cluster.node(self.index).clone()
    }

    async fn cut_off(&self) {
        self.cluster.isolate(self.index);
    }

    async fn heal(&self) {
        self.cluster.heal();
    }
}

#[async_trait]
impl Harness for BullyHarness {
    fn name(&self) -> &str {
        "bully"
    }

    fn max_nodes(&self) -> usize {
        self.cluster.n()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(Arc::new(Member {
            cluster: self.cluster.clone(),
            index,
        }))
    }

    fn bounds(&self) -> Bounds {
        let c = self.cluster.config(0);
        Bounds {
            // The lease: the last majority-acknowledged round was sent before the cut.
            loss_within: c.lease_budget(),
            // The followers stay loyal for failure_timeout after they last heard the
            // leader; then a candidate waits up to answer_timeout for higher nodes; a
            // failed round backs off up to another failure_timeout.
            takeover_within: c.failure_timeout * 2 + c.answer_timeout * 2,
        }
    }
}

async fn harness() -> Arc<dyn Harness> {
    Arc::new(BullyHarness {
        cluster: Arc::new(Cluster::start(3, relaxed).await),
    })
}

election_tests::conformance_suite!(harness);
