//! The agent's wire types, shared by the agent ([`super::server`], [`super::http`]) and
//! its client ([`super::client`]), and `/v1/status` rendered for people.

use election_core::LeaderInfo;
use serde::{Deserialize, Serialize};

pub(crate) use super::history::{Change, Why};

/// The `Upgrade` protocol of a hold: `POST /v1/elections/{election}/campaign` with
/// `Connection: upgrade` and `Upgrade: elector-hold/1` answers `101 Switching Protocols`
/// once this node is elected (409 `{"leader"}` if another node leads), and the connection
/// then carries the hold as lines of text:
///
/// - agent → caller, first: [`Granted`] as JSON;
/// - caller → agent: `renew RTT_US` (the caller's last round trip, for the metric) to ask
///   for the hold's current deadline, answered by [`HoldUpdate::Extended`]; `resign` once
///   the caller's command is gone, answered by [`HoldUpdate::Ended`] and then the end of
///   the connection;
/// - agent → caller, at any time: [`HoldUpdate::Ended`] (revoked or lost).
///
/// Deadlines are nanoseconds on the host's boot clock (see [`crate::clock`]), absolute, so
/// a line read late still names the right instant; the caller checks that the agent's
/// clock is its own (`now_ns` within the caller's round trip) and refuses the hold
/// otherwise. The caller renews, rather than the agent pushing by itself, so that a
/// stopped caller stops extending its hold: the agent resigns once the last deadline it
/// gave plus the kill grace and `timing.clock_drift` has passed.
///
/// With a deadline page ([`Granted::deadline_page`], decision 126) the agent also stores
/// every new deadline there while the caller is alive (a `renew` within
/// `caller_timeout_ms`), and the caller's keeper and guard read it when their own
/// deadline comes: the caller then renews only every third of the caller timeout, and the
/// answers serve as acknowledgements. A caller that cannot map the page renews at a third
/// of the lease and takes its deadlines from the answers, as without one.
pub(crate) const HOLD_PROTOCOL: &str = "elector-hold/1";

/// The longest line either side sends on a hold connection.
pub(crate) const MAX_HOLD_LINE: usize = 1024;

/// The first line of a hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Granted {
    /// The hold's id (unguessable), for logs and status.
    pub(crate) hold: String,
    /// Who leads (this node), epoch and since.
    pub(crate) info: LeaderInfo,
    /// The hold lasts until then, on the boot clock.
    pub(crate) deadline_ns: i64,
    /// The agent's boot clock when it wrote this line.
    pub(crate) now_ns: i64,
    /// The hold's deadline page (see [`super::deadline_page`]), if the agent made one:
    /// the caller that maps it needs to `renew` only every third of `caller_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline_page: Option<std::path::PathBuf>,
    /// With a page: the agent stops storing deadlines into it once the caller's last
    /// `renew` is this old.
    #[serde(default)]
    pub(crate) caller_timeout_ms: u64,
}

/// A later line of a hold, from the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HoldUpdate {
    /// The hold lasts until `deadline_ns` (boot clock), as of `now_ns`.
    Extended {
        /// The hold's deadline, on the boot clock.
        deadline_ns: i64,
        /// The agent's boot clock when it wrote this line.
        now_ns: i64,
    },
    /// The hold ended.
    Ended {
        /// Why.
        reason: HoldEnd,
    },
}

/// Why a hold ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HoldEnd {
    /// `elector resign` or the agent's shutdown: stop the command, then resign.
    Revoked,
    /// The agent's leadership ended (lost or lapsed): stop the command, then resign.
    Lost,
    /// The caller resigned: done.
    Resigned,
}

/// `GET /v1/elections/{election}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeaderAnswer {
    /// The leader as the backend knows it.
    pub(crate) leader: Option<LeaderInfo>,
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

/// One member of a peer backend's cluster in `/v1/status`, as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberStatus {
    /// Its node id.
    pub(crate) id: String,
    /// Its `host:port` for peers.
    pub(crate) address: String,
    /// Whether it is this node.
    #[serde(default)]
    pub(crate) me: bool,
    /// Reachable now: this node; a peer with an authenticated connection to this node open
    /// and heard from within the last 3 s.
    pub(crate) reachable: bool,
    /// Milliseconds since it was last heard from; `None` for this node and for a peer never
    /// heard from since the agent started.
    pub(crate) last_heard_ms: Option<u64>,
}

impl From<&election_peer::Member> for MemberStatus {
    fn from(m: &election_peer::Member) -> Self {
        MemberStatus {
            id: m.id.to_string(),
            address: m.address.clone(),
            me: m.is_me,
            reachable: m.reachable,
            last_heard_ms: m
                .last_heard
                .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)),
        }
    }
}

impl MemberStatus {
    /// One line: id, address, and whether it is reachable.
    pub(crate) fn describe(&self) -> String {
        let state = if self.me {
            "this node".to_owned()
        } else {
            let heard = match self.last_heard_ms {
                Some(ms) => format!("last heard {:.1} s ago", ms as f64 / 1000.0),
                None => "never heard from".to_owned(),
            };
            let reach = if self.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            };
            format!("{reach}, {heard}")
        };
        format!("{} {}: {state}", self.id, self.address)
    }
}

/// How many of the last changes `elector status` prints.
const RECENT: usize = 5;

impl Change {
    /// One line: when, which election, who, and why.
    pub(crate) fn describe(&self) -> String {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.at_ms);
        let at = humantime::format_rfc3339_seconds(at);
        let who = self.node.as_deref().unwrap_or("-");
        let epoch = self
            .epoch
            .map(|e| format!(" at epoch {e}"))
            .unwrap_or_default();
        let what = match self.why {
            Why::Elected => format!("{who} leads{epoch}"),
            Why::NoLeader => "no leader".to_owned(),
            Why::Resigned => format!("{who} resigned{epoch}"),
            Why::Expired => format!("{who}'s lease expired{epoch}"),
            Why::Revoked => format!("{who}'s lease was revoked{epoch}"),
            Why::QuorumLost => format!("{who} lost its quorum{epoch}"),
            Why::Yielded => format!("{who} stepped down for a preferred leader{epoch}"),
        };
        format!("{at} {}: {what}", self.election)
    }
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
    /// The last leader changes, oldest first (absent from agents before the status page).
    #[serde(default)]
    pub(crate) history: Vec<Change>,
    /// A peer backend's members, this node included, ordered by id; absent for a lease
    /// backend (and from agents before the members view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) members: Option<Vec<MemberStatus>>,
}

impl Status {
    /// One line for `systemctl status`: what this node leads and whom it follows, such as
    /// `leading job at epoch 7; following n2 in backup`.
    pub(crate) fn summary(&self) -> String {
        /// systemd shows one line; keep it readable.
        const MAX: usize = 300;
        let mut leading = Vec::new();
        let mut following = Vec::new();
        let mut leaderless = 0;
        for e in &self.elections {
            match (&e.leader, e.is_leader) {
                (Some(l), true) => leading.push(format!("{} at epoch {}", e.election, l.epoch)),
                (Some(l), false) => following.push(format!("{} in {}", l.node, e.election)),
                (None, _) => leaderless += 1,
            }
        }
        let mut parts = Vec::new();
        if !leading.is_empty() {
            parts.push(format!("leading {}", leading.join(", ")));
        }
        if !following.is_empty() {
            parts.push(format!("following {}", following.join(", ")));
        }
        if leaderless > 0 {
            parts.push(format!("{leaderless} without a leader"));
        }
        let line = if parts.is_empty() {
            format!("{} node {}: no elections yet", self.backend, self.node)
        } else {
            parts.join("; ")
        };
        match line.char_indices().nth(MAX) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line,
        }
    }

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
        if let Some(members) = &status.members {
            let up = members.iter().filter(|m| m.reachable).count();
            out.push_str(&format!("members ({up} of {} reachable):\n", members.len()));
            for m in members {
                out.push_str(&format!("  {}\n", m.describe()));
            }
        }
        let recent = status.history.len().saturating_sub(RECENT);
        if recent < status.history.len() {
            out.push_str("recent changes:\n");
        }
        for c in &status.history[recent..] {
            out.push_str(&format!("  {}\n", c.describe()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use election_core::{Epoch, NodeId};

    use super::*;

    fn election(name: &str, leader: Option<&str>, is_leader: bool) -> ElectionStatus {
        ElectionStatus {
            election: name.into(),
            leader: leader.map(|n| LeaderInfo {
                node: NodeId::new(n).unwrap(),
                epoch: Epoch(7),
                since: SystemTime::UNIX_EPOCH,
            }),
            is_leader,
            lease_left_ms: None,
        }
    }

    fn status(elections: Vec<ElectionStatus>) -> Status {
        Status {
            node: "n1".into(),
            backend: "raft".into(),
            elections,
            history: Vec::new(),
            members: None,
        }
    }

    #[test]
    fn the_summary_says_what_this_node_leads_and_whom_it_follows() {
        let s = status(vec![
            election("job", Some("n1"), true),
            election("backup", Some("n2"), false),
            election("idle", None, false),
        ]);
        assert_eq!(
            s.summary(),
            "leading job at epoch 7; following n2 in backup; 1 without a leader"
        );
        assert_eq!(status(vec![]).summary(), "raft node n1: no elections yet");
    }

    #[test]
    fn the_text_lists_the_members_and_which_are_unreachable() {
        let member = |id: &str, me, reachable, last_heard_ms| MemberStatus {
            id: id.into(),
            address: format!("10.0.0.{}:7000", &id[1..]),
            me,
            reachable,
            last_heard_ms,
        };
        let mut s = status(vec![election("job", Some("n2"), false)]);
        assert!(!s.render().contains("members"), "a lease backend has none");
        s.members = Some(vec![
            member("n1", true, true, None),
            member("n2", false, true, Some(250)),
            member("n3", false, false, Some(12_400)),
        ]);
        assert_eq!(
            s.render(),
            "node n1 (raft)\n\
             job: led by n2 at epoch 7\n\
             members (2 of 3 reachable):\n  \
             n1 10.0.0.1:7000: this node\n  \
             n2 10.0.0.2:7000: reachable, last heard 0.2 s ago\n  \
             n3 10.0.0.3:7000: UNREACHABLE, last heard 12.4 s ago\n"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["members"][2],
            serde_json::json!({"id": "n3", "address": "10.0.0.3:7000", "me": false, "reachable": false, "last_heard_ms": 12400})
        );
        s.members = None;
        assert!(serde_json::to_value(&s).unwrap().get("members").is_none());
    }

    #[test]
    fn a_long_summary_is_cut_to_one_readable_line() {
        let many = (0..200)
            .map(|i| election(&format!("job-{i}"), Some("n2"), false))
            .collect();
        let line = status(many).summary();
        assert!(line.chars().count() <= 301, "{}", line.len());
        assert!(line.ends_with('…'));
    }
}
