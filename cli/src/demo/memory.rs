//! The demo cluster of a build without raft: three nodes on an in-process lease server.

use election_core::{Backend as _, Candidate, ElectionName, LeaseTiming, MemoryServer, NodeId};

use super::cluster::Cluster;
use crate::exit::Failure;

/// Three nodes sharing an in-process lease server (a build without raft).
pub(super) async fn cluster(election: &ElectionName) -> Result<Cluster, Failure> {
    let server = MemoryServer::new(LeaseTiming::fast_for_tests())?;
    let mut nodes = Vec::new();
    let mut conns = Vec::new();
    for i in 1..=3 {
        let node = NodeId::new(format!("n{i}"))?;
        let conn = server.connect();
        nodes.push((node.clone(), conn.election(election, Candidate::new(node))?));
        conns.push(conn);
    }
    let crashed = conns.clone();
    Ok(Cluster {
        description: "three nodes n1, n2, n3 share an in-process lease server (this build has no raft backend)".into(),
        kind: "memory",
        nodes,
        crash: Box::new(move |i| crashed[i].cut_off()),
        _keep: Box::new(conns),
    })
}
