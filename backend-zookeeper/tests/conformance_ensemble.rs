//! The whole conformance suite against a real 3-member ZooKeeper ensemble (`tickTime`
//! 200 ms, `syncLimit` 10, `zookeeper.follower_lag` 2.2 s): each test starts its own
//! ensemble; node `i` has its own session on member `i` (leader or follower, as the
//! ensemble's election fell) through its own fault proxy, and cutting a node off
//! blackholes that proxy in both directions. A stall SIGSTOPs every member; the restart is
//! a rolling restart of every member with its data, which moves the ZooKeeper leadership.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{Backend, NodeId, Result};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use election_tests::launch::{ENSEMBLE_TICK, ZooKeeperEnsemble};
use election_tests::proxy::{Direction, Fault};
use support::{ProxiedNode, ensemble_follower_lag, ensemble_timing};

struct EnsembleHarness {
    // Dropped after the nodes: the ensemble outlives its clients.
    nodes: Vec<Arc<EnsembleNode>>,
    hold_budget: Duration,
    session_timeout: Duration,
    renew: Duration,
    retry: Duration,
    kill_grace: Duration,
    ensemble: Arc<ZooKeeperEnsemble>,
}

/// A node, and the ensemble every node shares (stalling it stalls them all).
struct EnsembleNode(ProxiedNode, Arc<ZooKeeperEnsemble>);

#[async_trait]
impl TestNode for EnsembleNode {
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
        tokio::task::block_in_place(|| {
            self.1
                .members()
                .iter()
                .try_for_each(|m| m.pause())
                .expect("SIGSTOP every zookeeper member")
        });
    }

    async fn resume(&self) {
        tokio::task::block_in_place(|| {
            self.1
                .members()
                .iter()
                .try_for_each(|m| m.resume())
                .expect("SIGCONT every zookeeper member")
        });
    }

    async fn freeze(&self) {
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

#[async_trait]
impl Harness for EnsembleHarness {
    fn name(&self) -> &str {
        "zookeeper-ensemble"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            // The deadline rule: at most the hold budget after the start of the last
            // answered renewal before the cut (with a follower lag, the deadline is
            // anchored earlier still).
            loss_within: self.hold_budget,
            // The leader expires the session a tick boundary after its timeout; the
            // waiter's watch fires, and its lead is confirmed: an idle session needs a
            // second round one follower lag after the first (and each round a renewal
            // interval at most).
            takeover_within: self.session_timeout
                + ENSEMBLE_TICK * 2
                + ensemble_follower_lag()
                + self.renew * 2
                + self.retry,
            kill_grace: self.kill_grace,
        }
    }

    /// With their data only: a member's data directory holds its `myid`.
    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {
        tokio::task::block_in_place(|| self.ensemble.rolling_restart())
            .expect("rolling restart of the zookeeper ensemble");
    }
}

async fn harness() -> Arc<dyn Harness> {
    let ensemble = Arc::new(support::ensemble());
    let timing = ensemble_timing();
    let mut nodes = Vec::new();
    for (i, member) in ensemble.members().iter().enumerate() {
        let node =
            ProxiedNode::start_in_ensemble(member.addr(), &format!("node-{}", i + 1), timing).await;
        nodes.push(Arc::new(EnsembleNode(node, ensemble.clone())));
    }
    let session_timeout = nodes[0].0.backend.session_timeout().await.unwrap();
    assert!(session_timeout <= timing.ttl);
    Arc::new(EnsembleHarness {
        nodes,
        hold_budget: session_timeout - timing.safety_margin(),
        session_timeout,
        renew: timing.renew_interval,
        retry: timing.retry_interval,
        kill_grace: timing.kill_grace,
        ensemble,
    })
}

election_tests::conformance_suite!(harness);
