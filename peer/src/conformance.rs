//! Test support (feature `test-support`): the conformance suite's [`Harness`] over a
//! [`Cluster`]: each test node is a cluster member; cutting a node off blackholes every
//! proxy to and from it; stalling it stalls its driver; a restart crashes every member and
//! starts it again on its data dir.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use election_core::{Backend, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use tokio::time::Instant;

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
    cluster: Arc<Mutex<Cluster<B>>>,
}

impl<B: ConformanceBackend> ClusterHarness<B> {
    /// A harness over `cluster`.
    pub fn new(cluster: Cluster<B>) -> ClusterHarness<B> {
        ClusterHarness {
            cluster: Arc::new(Mutex::new(cluster)),
        }
    }
}

fn lock<B: ClusterBackend>(c: &Mutex<Cluster<B>>) -> MutexGuard<'_, Cluster<B>> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

struct Member<B: ClusterBackend> {
    cluster: Arc<Mutex<Cluster<B>>>,
    index: usize,
    stalled: Mutex<Option<crate::Stall>>,
}

#[async_trait]
impl<B: ClusterBackend> TestNode for Member<B> {
    fn id(&self) -> NodeId {
        lock(&self.cluster).ids[self.index].clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        lock(&self.cluster).node(self.index).clone()
    }

    async fn cut_off(&self) {
        lock(&self.cluster).isolate(self.index);
    }

    async fn heal(&self) {
        lock(&self.cluster).heal();
    }

    async fn stall(&self) {
        let stall = B::stall(lock(&self.cluster).node(self.index));
        *self.stalled.lock().unwrap_or_else(|p| p.into_inner()) = Some(stall);
    }

    async fn resume(&self) {
        self.stalled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    async fn freeze(&self) {
        self.stall().await;
    }

    async fn thaw(&self) {
        self.resume().await;
    }
}

#[async_trait]
impl<B: ConformanceBackend> Harness for ClusterHarness<B> {
    fn name(&self) -> &str {
        B::NAME
    }

    fn max_nodes(&self) -> usize {
        lock(&self.cluster).n()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(Arc::new(Member {
            cluster: self.cluster.clone(),
            index,
            stalled: Mutex::new(None),
        }))
    }

    fn bounds(&self) -> Bounds {
        B::bounds(&lock(&self.cluster).config(0))
    }

    /// Every member crashing and starting again on its data dir, all at once: terms and
    /// epochs are persisted before they are used. Not a member that lost its data dir: it
    /// forgets its votes and promises (each backend's crate documentation says so).
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {
        let n = lock(&self.cluster).n();
        for i in 0..n {
            lock(&self.cluster).crash(i);
        }
        for i in 0..n {
            // A crashed node's listener closes asynchronously: retry while its port is taken.
            let deadline = Instant::now() + Duration::from_secs(10);
            let node = loop {
                let config = lock(&self.cluster).config(i);
                match B::start(config).await {
                    Ok(node) => break node,
                    Err(e) if e.is_retryable() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("node {i} did not start again: {e}"),
                }
            };
            lock(&self.cluster).nodes[i] = Some(Arc::new(node));
        }
    }
}
