//! The whole conformance suite against `election_core::MemoryBackend`, the reference
//! backend: one in-process lease server, one client connection per node, and
//! `MemoryBackend::cut_off` as the partition.

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{Backend, LeaseTiming, MemoryBackend, MemoryServer, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};

struct MemoryHarness {
    nodes: Vec<Arc<MemoryNode>>,
    timing: LeaseTiming,
}

struct MemoryNode {
    id: NodeId,
    conn: MemoryBackend,
}

#[async_trait]
impl TestNode for MemoryNode {
    fn id(&self) -> NodeId {
        self.id.clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.conn.clone())
    }

    async fn cut_off(&self) {
        self.conn.cut_off();
    }

    async fn heal(&self) {
        self.conn.heal();
    }

    async fn stall(&self) {
        self.conn.server().stall();
    }

    async fn resume(&self) {
        self.conn.server().resume();
    }

    async fn freeze(&self) {
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> &str {
        "memory"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            // The deadline rule: at most ttl - clock_drift - kill_grace after the last
            // successful renewal, which started before the cut-off.
            loss_within: self.timing.hold_budget(),
            // The server lets the lease go a TTL after the last renewal; a waiting
            // candidate is woken at that instant.
            takeover_within: self.timing.ttl + self.timing.retry_interval,
            kill_grace: self.timing.kill_grace,
        }
    }

    /// The in-process server has nothing to lose in a restart that keeps its data; it does
    /// not survive losing it ([`MemoryServer::wipe`] starts epochs again at 1).
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {}
}

async fn harness() -> Arc<dyn Harness> {
    let timing = LeaseTiming::fast_for_tests();
    let server = MemoryServer::new(timing).expect("valid timing");
    let nodes = (1..=3)
        .map(|i| {
            Arc::new(MemoryNode {
                id: NodeId::new(format!("node-{i}")).unwrap(),
                conn: server.connect(),
            })
        })
        .collect();
    Arc::new(MemoryHarness { nodes, timing })
}

election_tests::conformance_suite!(harness);
