//! The agent's wire types, shared by the agent ([`super::server`], [`super::http`]) and
//! its client ([`super::client`]), and `/v1/status` rendered for people.

use election_core::LeaderInfo;
use serde::{Deserialize, Serialize};

/// A granted hold, as the campaign endpoint returns it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Granted {
    /// The hold's id for renew and resign.
    pub(crate) hold: u64,
    /// Who leads (this node), epoch and since.
    pub(crate) info: LeaderInfo,
    /// Lease left when the agent answered.
    pub(crate) lease_left_ms: u64,
}

/// `GET /v1/elections/{election}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeaderAnswer {
    /// The leader as the backend knows it.
    pub(crate) leader: Option<LeaderInfo>,
}

/// `POST /v1/holds/{id}/renew`, when the hold lasts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RenewAnswer {
    /// Lease left when the agent answered.
    pub(crate) lease_left_ms: u64,
}

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

impl Status {
    /// `/v1/status` for people.
    pub(crate) fn render(&self) -> String {
        let status = self.clone();
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
                (Some(l), false) => {
                    format!("{}: led by {} at epoch {}", e.election, l.node, l.epoch)
                }
                (None, _) => format!("{}: no leader", e.election),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}
