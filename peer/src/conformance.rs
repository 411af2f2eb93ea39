//! Test support (feature `test-support`): the conformance suite's [`Harness`] over a
//! [`Cluster`]: each test node is a cluster member; cutting a node off blackholes every
//! proxy to and from it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use election_core::{Backend, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, TestNode};

use crate::test_support::{Cluster, ClusterBackend};

/// A peer backend the conformance suite can run against.
pub trait ConformanceBackend: ClusterBackend {
    /// The backend's name in the suite's reports (`"raft"`).
    const NAME: &'static str;
    /// How quickly a cut-off leader loses and another node takes over, for `config`.
    fn bounds(config: &Self::Config) -> Bounds;
}

/// The conformance [`Harness`] over a running [`Cluster`].
pub struct ClusterHarness<B: ClusterBackend> {
    cluster: Arc<Cluster<B>>,
}

impl<B: ConformanceBackend> ClusterHarness<B> {
    /// A harness over `cluster`.
    pub fn new(cluster: Cluster<B>) -> ClusterHarness<B> {
        ClusterHarness {
            cluster: Arc::new(cluster),
        }
    }
}

struct Member<B: ClusterBackend> {
    cluster: Arc<Cluster<B>>,
    index: usize,
    stalled: Mutex<Option<crate::Stall>>,
}

#[async_trait]
impl<B: ClusterBackend> TestNode for Member<B> {
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

    async fn stall(&self) {
        let stall = B::stall(self.cluster.node(self.index));
        *self.stalled.lock().unwrap_or_else(|p| p.into_inner()) = Some(stall);
    }

    async fn resume(&self) {
        self.stalled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

#[async_trait]
impl<B: ConformanceBackend> Harness for ClusterHarness<B> {
    fn name(&self) -> &str {
        B::NAME
    }

    fn max_nodes(&self) -> usize {
        self.cluster.n()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(Arc::new(Member {
            cluster: self.cluster.clone(),
            index,
            stalled: Mutex::new(None),
        }))
    }

    fn bounds(&self) -> Bounds {
        B::bounds(&self.cluster.config(0))
    }
}
