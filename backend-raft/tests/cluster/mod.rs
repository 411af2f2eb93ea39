//! A Raft cluster over real TCP on loopback, in one test process: every node its own
//! `RaftNode` with its own data dir, and a `FaultProxy` on every ordered peer pair (node i
//! dials node j through proxy (i, j)), so partitions can be symmetric or one-way.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, NodeId};
use election_raft::{RaftConfig, RaftNode};
use election_tests::proxy::{Direction, Fault, FaultProxy};
use tempfile::TempDir;

pub const SECRET: &str = "raft-tests-shared-secret";

/// Timings for tests on a busy 2-core machine: the defaults' shape, slowed down so that a
/// stalled scheduler does not depose leaders at random.
pub fn relaxed(c: &mut RaftConfig) {
    c.heartbeat = Duration::from_millis(50);
    c.election_timeout_min = Duration::from_millis(500);
    c.election_timeout_max = Duration::from_millis(900);
    c.clock_drift = Duration::from_millis(50);
    c.kill_grace = Duration::from_millis(100);
}

/// The crate's default timings.
pub fn defaults(_: &mut RaftConfig) {}

pub struct Cluster {
    pub ids: Vec<NodeId>,
    pub listen: Vec<SocketAddr>,
    pub proxies: BTreeMap<(usize, usize), FaultProxy>,
    pub nodes: Vec<Option<Arc<RaftNode>>>,
    pub dirs: Vec<TempDir>,
    timing: fn(&mut RaftConfig),
    voters_only: Vec<usize>,
}

impl Cluster {
    pub async fn start(n: usize, timing: fn(&mut RaftConfig)) -> Cluster {
        Self::start_with(n, timing, &[]).await
    }

    pub async fn start_with(
        n: usize,
        timing: fn(&mut RaftConfig),
        voters_only: &[usize],
    ) -> Cluster {
        let ids: Vec<NodeId> = (1..=n)
            .map(|i| NodeId::new(format!("node-{i}")).unwrap())
            .collect();
        // Hold each node's port until the node starts, so that the proxies (port 0) cannot
        // be given the same one.
        let reserved: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        let listen: Vec<SocketAddr> = reserved.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut proxies = BTreeMap::new();
        for i in 0..n {
            for (j, &upstream) in listen.iter().enumerate() {
                if i != j {
                    proxies.insert((i, j), FaultProxy::start(upstream).await.unwrap());
                }
            }
        }
        let mut c = Cluster {
            ids,
            listen,
            proxies,
            nodes: (0..n).map(|_| None).collect(),
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            timing,
            voters_only: voters_only.to_vec(),
        };
        for (i, port) in reserved.into_iter().enumerate() {
            drop(port);
            c.restart(i).await;
        }
        c
    }

    pub fn n(&self) -> usize {
        self.ids.len()
    }

    pub fn config(&self, i: usize) -> RaftConfig {
        let mut c = RaftConfig {
            node_id: Some(self.ids[i].clone()),
            listen: self.listen[i],
            peers: (0..self.n())
                .map(|j| {
                    let addr = if i == j {
                        self.listen[j]
                    } else {
                        self.proxies[&(i, j)].addr()
                    };
                    (self.ids[j].clone(), addr.to_string())
                })
                .collect(),
            voters_only: self
                .voters_only
                .iter()
                .map(|&v| self.ids[v].clone())
                .collect(),
            data_dir: self.dirs[i].path().to_owned(),
            secret: Some(SECRET.into()),
            ..RaftConfig::default()
        };
        (self.timing)(&mut c);
        c
    }

    /// Starts node `i` (again), from its data dir.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        // After a crash the old listener closes asynchronously: retry while the port is
        // still taken.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let node = loop {
            match RaftNode::start(self.config(i)).await {
                Ok(node) => break node,
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("node {i} did not start: {e}"),
            }
        };
        self.nodes[i] = Some(Arc::new(node));
    }

    pub fn node(&self, i: usize) -> &Arc<RaftNode> {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn elector(&self, i: usize, e: &ElectionName) -> Arc<dyn LeaderElector> {
        self.node(i)
            .election(e, Candidate::new(self.ids[i].clone()))
            .unwrap()
    }

    /// kill -9 analogue.
    pub fn crash(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("running");
        let node = Arc::try_unwrap(node).expect("no other handle on the node");
        node.crash();
    }

    pub async fn shutdown(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("running");
        let node = Arc::try_unwrap(node).expect("no other handle on the node");
        node.shutdown().await;
    }

    /// Blackholes every link between `side` and the rest, both ways.
    pub fn partition(&self, side: &[usize]) {
        for (&(i, j), p) in &self.proxies {
            if side.contains(&i) != side.contains(&j) {
                p.set(Direction::Both, Fault::Blackhole);
            }
        }
    }

    pub fn isolate(&self, i: usize) {
        self.partition(&[i]);
    }

    pub fn heal(&self) {
        for p in self.proxies.values() {
            p.set(Direction::Both, Fault::Pass);
        }
    }

    /// Index of a node id.
    pub fn index(&self, id: &NodeId) -> usize {
        self.ids.iter().position(|x| x == id).unwrap()
    }
}
