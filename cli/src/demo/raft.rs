//! The raft demo cluster: three raft nodes on loopback for `elector demo`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::anyhow;
use election_core::{Backend as _, Candidate, ElectionName, NodeId};
use election_raft::{RaftConfig, RaftNode};

use super::cluster::Cluster;
use crate::exit::{self, Failure};

/// Three raft nodes on loopback with temporary data dirs and a random shared secret.
pub(super) async fn cluster(election: &ElectionName) -> Result<Cluster, Failure> {
    let software = |e: anyhow::Error| Failure::new(exit::SOFTWARE, e);
    // Free ports: bind, read back, release (the nodes bind them again at once).
    let mut ports = Vec::new();
    for _ in 0..3 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| software(e.into()))?;
        ports.push(l.local_addr().map_err(|e| software(e.into()))?.port());
    }
    let ids: Vec<NodeId> = (1..=3)
        .map(|i| NodeId::new(format!("n{i}")))
        .collect::<Result<_, _>>()?;
    let peers: BTreeMap<NodeId, String> = ids
        .iter()
        .zip(&ports)
        .map(|(id, p)| (id.clone(), format!("127.0.0.1:{p}")))
        .collect();
    let secret = format!(
        "demo-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let dirs = tempfile::tempdir().map_err(|e| software(e.into()))?;
    let mut nodes = Vec::new();
    let mut electors = Vec::new();
    for (id, port) in ids.iter().zip(&ports) {
        let config = RaftConfig {
            node_id: Some(id.clone()),
            listen: ([127, 0, 0, 1], *port).into(),
            peers: peers.clone(),
            data_dir: dirs.path().join(id.as_str()),
            secret: Some(secret.clone()),
            // Roomier than the LAN defaults: the demo may run on a busy machine.
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            clock_drift: Duration::from_millis(40),
            kill_grace: Duration::from_millis(100),
            ..RaftConfig::default()
        };
        let node = RaftNode::start(config)
            .await
            .map_err(|e| software(anyhow!(e).context("starting a demo raft node")))?;
        electors.push((
            id.clone(),
            node.election(election, Candidate::new(id.clone()))?,
        ));
        nodes.push(Some(node));
    }
    let nodes = Arc::new(Mutex::new(nodes));
    let crashing = nodes.clone();
    Ok(Cluster {
        description: format!(
            "three raft nodes n1, n2, n3 on 127.0.0.1 ports {}, {}, {} (temporary data dirs)",
            ports[0], ports[1], ports[2]
        ),
        kind: crate::backend::Kind::Raft.as_str(),
        nodes: electors,
        crash: Box::new(move |i| {
            let node = crashing.lock().unwrap_or_else(PoisonError::into_inner)[i].take();
            if let Some(n) = node {
                n.crash();
            }
        }),
        _keep: Box::new((nodes, dirs)),
    })
}
