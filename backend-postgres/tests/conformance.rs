//! The whole conformance suite against a real PostgreSQL: each test starts its own cluster,
//! and each node is its own `PostgresBackend` (command and LISTEN connections) through its
//! own fault proxy; cutting a node off blackholes its proxy both ways. Stalling stops the
//! postmaster and every backend process.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{Backend, LeaseTiming, NodeId, Result};
use election_postgres::PostgresBackend;
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use election_tests::launch::{Data, PostgresServer};
use election_tests::proxy::{Direction, Fault, FaultProxy};

struct PgHarness {
    // Dropped before the server: clients first.
    nodes: Vec<Arc<PgNode>>,
    timing: LeaseTiming,
    _server: Arc<PostgresServer>,
}

struct PgNode {
    id: NodeId,
    backend: PostgresBackend,
    proxy: FaultProxy,
    /// Shared by every node: stalling it stalls them all.
    server: Arc<PostgresServer>,
}

#[async_trait]
impl TestNode for PgNode {
    fn id(&self) -> NodeId {
        self.id.clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.backend.clone())
    }

    async fn cut_off(&self) {
        self.proxy.set(Direction::Both, Fault::Blackhole);
    }

    async fn heal(&self) {
        self.proxy.set(Direction::Both, Fault::Pass);
    }

    async fn stall(&self) {
        tokio::task::block_in_place(|| self.server.pause()).expect("SIGSTOP postgres");
    }

    async fn resume(&self) {
        tokio::task::block_in_place(|| self.server.resume()).expect("SIGCONT postgres");
    }

    async fn freeze(&self) {
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

#[async_trait]
impl Harness for PgHarness {
    fn name(&self) -> &str {
        "postgres"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            // The deadline rule, from the start of the last successful renewal.
            loss_within: self.timing.hold_budget(),
            // The row expires `ttl` after the last renewal ran (server clock); the waiter
            // wakes at the remaining time it was told, and retries within
            // `retry_interval` if its own attempt failed meanwhile.
            takeover_within: self.timing.ttl + self.timing.retry_interval,
            kill_grace: self.timing.kill_grace,
        }
    }

    /// Both: the epoch is `max(stored + 1, server clock in µs)`, so even a cluster that
    /// lost its data (the table is created again at reconnect) hands out epochs above
    /// every earlier one (decision 112).
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData, Restart::EmptyData]
    }

    async fn restart(&self, restart: Restart) {
        let data = match restart {
            Restart::KeepData => Data::Keep,
            Restart::EmptyData => Data::Empty,
        };
        tokio::task::block_in_place(|| self._server.restart(data)).expect("restart postgres");
    }
}

async fn harness() -> Arc<dyn Harness> {
    let server = Arc::new(tokio::task::block_in_place(common::server));
    let timing = common::timing();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
        let backend = common::connect(&server.url_for(proxy.addr()), timing).await;
        nodes.push(Arc::new(PgNode {
            id: common::node(&format!("node-{i}")),
            backend,
            proxy,
            server: server.clone(),
        }));
    }
    Arc::new(PgHarness {
        nodes,
        timing,
        _server: server,
    })
}

election_tests::conformance_suite!(harness);
