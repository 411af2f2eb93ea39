//! The whole conformance suite against a real ZooKeeper: each test starts its own server
//! (the stall property SIGSTOPs it), and each node is its own session through its own fault
//! proxy; cutting a node off blackholes its proxy in both directions.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{Backend, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use election_tests::launch::{Data, ZooKeeperServer};
use election_tests::proxy::{Direction, Fault};
use support::{ProxiedNode, TICK, timing};

struct ZkHarness {
    // Dropped after the nodes: the server outlives its clients.
    nodes: Vec<Arc<ZkNode>>,
    hold_budget: Duration,
    session_timeout: Duration,
    retry: Duration,
    kill_grace: Duration,
    _server: Arc<ZooKeeperServer>,
}

/// A node, and the server every node shares (stalling it stalls them all).
struct ZkNode(ProxiedNode, Arc<ZooKeeperServer>);

#[async_trait]
impl TestNode for ZkNode {
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
        tokio::task::block_in_place(|| self.1.pause()).expect("SIGSTOP zookeeper");
    }

    async fn resume(&self) {
        tokio::task::block_in_place(|| self.1.resume()).expect("SIGCONT zookeeper");
    }

    async fn freeze(&self) {
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

#[async_trait]
impl Harness for ZkHarness {
    fn name(&self) -> &str {
        "zookeeper"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            // The deadline rule with the negotiated session timeout: the start of the last
            // answered renewal (before the cut) plus timeout - clock_drift - kill_grace.
            loss_within: self.hold_budget,
            // ZooKeeper expires the session on the first tick boundary after its timeout
            // ran from the last packet it received; the waiter's watch then fires at once.
            takeover_within: self.session_timeout + TICK * 2 + self.retry,
            kill_grace: self.kill_grace,
        }
    }

    /// With its data only: the epoch is the znode's czxid, and a ZooKeeper that lost its
    /// data starts its zxids again near 1 (the crate documentation says so).
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {
        tokio::task::block_in_place(|| self._server.restart(Data::Keep))
            .expect("restart zookeeper");
    }
}

async fn harness() -> Arc<dyn Harness> {
    let server = Arc::new(support::zookeeper());
    let timing = timing();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let node = ProxiedNode::start(server.addr(), &format!("node-{i}"), timing).await;
        nodes.push(Arc::new(ZkNode(node, server.clone())));
    }
    let session_timeout = nodes[0].0.backend.session_timeout().await.unwrap();
    assert!(session_timeout <= timing.ttl);
    Arc::new(ZkHarness {
        nodes,
        hold_budget: session_timeout - timing.safety_margin(),
        session_timeout,
        retry: timing.retry_interval,
        kill_grace: timing.kill_grace,
        _server: server,
    })
}

election_tests::conformance_suite!(harness);
