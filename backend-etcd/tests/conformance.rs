//! The whole conformance suite against a real etcd: each test starts its own single-member
//! etcd, and each node is its own client connection through its own fault proxy; cutting a
//! node off blackholes its proxy in both directions.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{Backend, LeaseTiming, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use election_tests::launch::{Data, EtcdServer};
use election_tests::proxy::{Direction, Fault};
use support::{ProxiedNode, timing};

struct EtcdHarness {
    // Dropped after the nodes: the server outlives its clients.
    nodes: Vec<Arc<EtcdNode>>,
    timing: LeaseTiming,
    lease_ttl: Duration,
    _server: Arc<EtcdServer>,
}

/// A node, and the server every node shares (stalling it stalls them all).
struct EtcdNode(ProxiedNode, Arc<EtcdServer>);

#[async_trait]
impl TestNode for EtcdNode {
    fn id(&self) -> NodeId {
        self.0.id.clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.0.backend.clone())
    }

    async fn cut_off(&self) {
        self.0.proxy.set(Direction::Both, Fault::Blackhole);
    }

    async fn heal(&self) {
        self.0.proxy.set(Direction::Both, Fault::Pass);
    }

    async fn stall(&self) {
        tokio::task::block_in_place(|| self.1.pause()).expect("SIGSTOP etcd");
    }

    async fn resume(&self) {
        tokio::task::block_in_place(|| self.1.resume()).expect("SIGCONT etcd");
    }

    async fn freeze(&self) {
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

/// etcd's lessor looks for expired leases every 500 ms (etcd 3.4 `lessor.runLoop`).
const LESSOR_TICK: Duration = Duration::from_millis(500);

#[async_trait]
impl Harness for EtcdHarness {
    fn name(&self) -> &str {
        "etcd"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            // The deadline rule: the start of the last successful keep-alive (before the
            // cut) plus ttl - clock_drift - kill_grace.
            loss_within: self.timing.hold_budget(),
            // etcd ends the lease its TTL (whole seconds) after the last keep-alive, notices
            // within one lessor tick, and the waiter's watch fires at once.
            takeover_within: self.lease_ttl + LESSOR_TICK + self.timing.retry_interval,
            kill_grace: self.timing.kill_grace,
        }
    }

    /// With its data only: the epoch is the key's create revision, and an etcd that lost
    /// its data starts its revisions again near 1 (the crate documentation says so).
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {
        tokio::task::block_in_place(|| self._server.restart(Data::Keep)).expect("restart etcd");
    }
}

async fn harness() -> Arc<dyn Harness> {
    let server = Arc::new(support::etcd());
    let timing = timing();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let node = ProxiedNode::start(server.addr(), &format!("node-{i}"), timing).await;
        nodes.push(Arc::new(EtcdNode(node, server.clone())));
    }
    let lease_ttl = nodes[0].0.backend.lease_ttl();
    Arc::new(EtcdHarness {
        nodes,
        timing,
        lease_ttl,
        _server: server,
    })
}

election_tests::conformance_suite!(harness);
