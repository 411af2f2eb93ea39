//! `/v1/status`: its JSON shape and its rendering for people.

use election_core::LeaderInfo;
use serde::{Deserialize, Serialize};

/// One election in `/v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ElectionStatus {
    /// The election.
    pub(crate) election: String,
    /// Its leader, as last seen.
    pub(crate) leader: Option<LeaderInfo>,
    /// Whether this node leads it.
    pub(crate) is_leader: bool,
    /// The lease this node has left, if it leads.
    pub(crate) lease_left_ms: Option<u64>,
}

/// `/v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Status {
    /// This node.
    pub(crate) node: String,
    /// The backend kind.
    pub(crate) backend: String,
    /// Every known election.
    pub(crate) elections: Vec<ElectionStatus>,
}

/// Renders `/v1/status` for people.
pub(crate) fn render_status(status: &Status) -> String {
    let status = status.clone();
    let mut out = format!("node {} ({})\n", status.node, status.backend);
    if status.elections.is_empty() {
        out.push_str("no elections known to the agent\n");
    }
    for e in status.elections {
        let line = match (&e.leader, e.is_leader) {
            (Some(l), true) => format!(
                "{}: led by this node ({}) at epoch {}, lease left {} ms",
                e.election,
                l.node,
                l.epoch,
                e.lease_left_ms.unwrap_or(0)
            ),
            (Some(l), false) => format!("{}: led by {} at epoch {}", e.election, l.node, l.epoch),
            (None, _) => format!("{}: no leader", e.election),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
