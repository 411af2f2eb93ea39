//! The agent's timeline of leader changes, for the status page and `elector status`:
//! the last [`CAPACITY`] changes of every election it keeps, newest last.
//!
//! The agent sees another node's leadership only through the backend's leader reports, so
//! for those a change says who leads now ([`Why::Elected`]) or that nobody does
//! ([`Why::NoLeader`]); why the previous leader went (it resigned, crashed or was cut off)
//! is known only where this node was the leader ([`Why::Resigned`], [`Why::Expired`],
//! [`Why::Revoked`], [`Why::QuorumLost`], [`Why::Yielded`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use election_core::{ElectionName, LeaderInfo, LossReason};
use serde::{Deserialize, Serialize};

/// How many changes the agent keeps, all elections together (bounded whatever peers do).
pub(crate) const CAPACITY: usize = 200;

/// Why the leadership of an election changed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Why {
    /// A (new) leader, as the backend reports it.
    Elected,
    /// No leader any more, as the backend reports it.
    NoLeader,
    /// This node's leadership ended because its caller resigned.
    Resigned,
    /// This node's lease ran out without a renewal.
    Expired,
    /// The backend revoked this node's lease, or `elector resign` did.
    Revoked,
    /// This node lost contact with a majority of its peers.
    QuorumLost,
    /// This node stepped down for a candidate of higher priority (a preferred leader).
    Yielded,
}

impl Why {
    fn from_loss(reason: LossReason) -> Why {
        match reason {
            LossReason::Resigned | LossReason::Shutdown => Why::Resigned,
            LossReason::Expired => Why::Expired,
            LossReason::QuorumLost => Why::QuorumLost,
            LossReason::Yielded => Why::Yielded,
            _ => Why::Revoked,
        }
    }
}

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// The election.
    pub(crate) election: String,
    /// The leader after the change (`None`: no leader), or the node that lost it.
    pub(crate) node: Option<String>,
    /// Its epoch.
    pub(crate) epoch: Option<u64>,
    /// Wall-clock milliseconds since the Unix epoch (for display).
    pub(crate) at_ms: u64,
    /// Why.
    pub(crate) why: Why,
}

/// The timeline.
#[derive(Debug, Default)]
pub(crate) struct History {
    changes: Mutex<VecDeque<Change>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl History {
    fn push(&self, change: Change) {
        let mut changes = super::server::lock(&self.changes);
        if changes.len() == CAPACITY {
            changes.pop_front();
        }
        changes.push_back(change);
    }

    /// The backend reports `leader` for `election` (only call it when it changed).
    pub(crate) fn leader(&self, election: &ElectionName, leader: Option<&LeaderInfo>) {
        self.push(Change {
            election: election.to_string(),
            node: leader.map(|l| l.node.to_string()),
            epoch: leader.map(|l| l.epoch.get()),
            at_ms: now_ms(),
            why: if leader.is_some() {
                Why::Elected
            } else {
                Why::NoLeader
            },
        });
    }

    /// This node's leadership of `election` (as `info`) ended for `reason`.
    pub(crate) fn ended(&self, election: &ElectionName, info: &LeaderInfo, reason: LossReason) {
        self.push(Change {
            election: election.to_string(),
            node: Some(info.node.to_string()),
            epoch: Some(info.epoch.get()),
            at_ms: now_ms(),
            why: Why::from_loss(reason),
        });
    }

    /// Every change kept, oldest first.
    pub(crate) fn changes(&self) -> Vec<Change> {
        super::server::lock(&self.changes).iter().cloned().collect()
    }

    /// Forgets the changes of `election` (the agent forgot it).
    pub(crate) fn forget(&self, election: &str) {
        super::server::lock(&self.changes).retain(|c| c.election != election);
    }
}

#[cfg(test)]
mod tests {
    use election_core::{Epoch, NodeId};

    use super::*;

    fn info(node: &str, epoch: u64) -> LeaderInfo {
        LeaderInfo {
            node: NodeId::new(node).unwrap(),
            epoch: Epoch(epoch),
            since: SystemTime::now(),
        }
    }

    #[test]
    fn the_timeline_keeps_the_newest_changes_within_its_capacity() {
        let h = History::default();
        let job = ElectionName::new("job").unwrap();
        for e in 0..(CAPACITY as u64 + 50) {
            h.leader(&job, Some(&info("n1", e)));
        }
        let changes = h.changes();
        assert_eq!(changes.len(), CAPACITY);
        assert_eq!(changes.last().unwrap().epoch, Some(CAPACITY as u64 + 49));
        assert_eq!(changes.first().unwrap().epoch, Some(50));
    }

    #[test]
    fn a_local_end_says_why_and_a_forgotten_election_leaves_the_timeline() {
        let h = History::default();
        let job = ElectionName::new("job").unwrap();
        let other = ElectionName::new("other").unwrap();
        h.leader(&job, Some(&info("n1", 3)));
        h.ended(&job, &info("n1", 3), LossReason::Expired);
        h.leader(&job, None);
        h.leader(&other, Some(&info("n2", 9)));
        let whys: Vec<Why> = h.changes().iter().map(|c| c.why).collect();
        assert_eq!(
            whys,
            [Why::Elected, Why::Expired, Why::NoLeader, Why::Elected]
        );
        h.forget("job");
        assert_eq!(h.changes().len(), 1);
        assert_eq!(h.changes()[0].election, "other");
    }

    #[test]
    fn a_step_down_for_a_preferred_leader_is_told_apart_from_a_revocation() {
        assert_eq!(Why::from_loss(LossReason::Yielded), Why::Yielded);
        assert_eq!(Why::from_loss(LossReason::Revoked), Why::Revoked);
        let text = serde_json::to_string(&Why::Yielded).unwrap();
        assert_eq!(
            text, "\"yielded\"",
            "the page's label is keyed by this name"
        );
    }
}
