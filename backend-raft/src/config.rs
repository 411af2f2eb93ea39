//! [`RaftConfig`]: every setting, its default, and the rules that make a combination safe.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use election_core::{Error, NodeId, Result};
use election_peer::{PeerSettings, TlsConfig, check_auth, check_membership};
use serde::{Deserialize, Serialize};

use crate::core::NodeConfig;

/// The settings of one Raft member. Durations are written as strings such as `"25ms"` in
/// configuration files.
///
/// The timing defaults (heartbeat 50 ms, election timeout 200–400 ms, clock drift 25 ms,
/// kill grace 50 ms) give a crash failover of about 220 ms on a LAN and a leader lease of
/// 125 ms per acknowledged heartbeat round; see decision records 030 and 118 and
/// [`validate`](Self::validate) for the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// This node's id. Required (the CLI fills it in from its own node id). Default: none.
    pub node_id: Option<NodeId>,
    /// Address to listen on for peers. Default `127.0.0.1:7400`; port 0 picks a free port
    /// (read it back with [`RaftNode::local_addr`](crate::RaftNode::local_addr)).
    pub listen: SocketAddr,
    /// Every member's id and `host:port`, this node included or not (its address is
    /// ignored). Static: messages from any other node are refused. Default: empty (a
    /// one-node cluster).
    pub peers: BTreeMap<NodeId, String>,
    /// Members that vote but never campaign (tie-breakers, witnesses). Default: none.
    pub voters_only: BTreeSet<NodeId>,
    /// Directory of this node's state file (term and vote per election). Default
    /// `./elector-raft`. Losing it lets this node vote twice in a term: keep it.
    pub data_dir: PathBuf,
    /// Interval between a leader's heartbeat rounds. Default 50 ms.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout. Also how long a follower that heard
    /// from a live leader refuses to vote for anyone else (the leader lease). Default
    /// 200 ms.
    #[serde(with = "humantime_serde")]
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout. Default 400 ms. A wider range makes
    /// split votes rarer and the median failover slower.
    #[serde(with = "humantime_serde")]
    pub election_timeout_max: Duration,
    /// Bound on the clock-rate difference between members and on timer lateness over one
    /// lease. Default 25 ms; at least 5 % of `election_timeout_min`.
    #[serde(with = "humantime_serde")]
    pub clock_drift: Duration,
    /// Time the CLI gives a guarded child between SIGTERM and SIGKILL once leadership is
    /// lost. Default 50 ms. Counted in the lease margin, so the child is dead before another
    /// node can be elected; a longer grace needs a longer `election_timeout_min`.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
    /// Seed of the election-timeout RNG. Default: none (a fresh seed per start). Set it to
    /// replay a run.
    pub rng_seed: Option<u64>,
    /// A shared secret authenticating peers (HMAC-SHA256 on every frame), inline. Default:
    /// none. Prefer `secret_file`.
    pub secret: Option<String>,
    /// File holding the shared secret (one trailing newline ignored). Default: none.
    pub secret_file: Option<PathBuf>,
    /// Mutual TLS instead of a shared secret. Default: none. Exactly one of `secret`,
    /// `secret_file` and `tls` must be set.
    pub tls: Option<TlsConfig>,
    /// At most this many elections are held (kept in memory and in the state file) at
    /// once. Default 20,000; at least 1. Past it a new local campaign fails with
    /// [`Error::TooManyElections`] and peers' mentions of new elections are ignored
    /// (counted in [`PeerStats::ignored_elections`](election_peer::PeerStats)); see
    /// decision record 105.
    pub max_elections: usize,
    /// An election with no local candidate, no leader, no claim and no running promise is
    /// forgotten, memory and state file alike, once idle for this long (checked every
    /// eighth of it). Default 10 min; at least `election_timeout_max`. Its term raises the
    /// node's persisted floor, above which every election it does not hold starts, so a
    /// forgotten vote is never cast twice.
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
    /// This node's priority as a candidate: higher is preferred. Where a campaigning member
    /// of higher priority than the leader has been caught up and answering every
    /// heartbeat for `priority_stable`, the leader steps down for it (its child is
    /// stopped, as on any loss, and the target is elected once the old lease and its kill
    /// grace have run out). Equal priorities never move leadership. Default 0, the least
    /// preferred: only members given a priority above 0 are ever handed leadership this
    /// way. See decision record 134.
    pub priority: u32,
    /// How long a candidate of higher priority must have been healthy (answering every
    /// heartbeat, no restart, no gap longer than `election_timeout_min`) before the leader
    /// steps down for it: the anti-flap period. A preferred member that comes back takes
    /// leadership back once, after this long; one that flaps faster never does. Default
    /// (unset) 5 s or 2 x `election_timeout_max`, whichever is longer (see
    /// [`priority_stable`](Self::priority_stable)); a value set must be at least
    /// 2 x `election_timeout_max`.
    #[serde(default, with = "humantime_serde")]
    pub priority_stable: Option<Duration>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            node_id: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7400)),
            peers: BTreeMap::new(),
            voters_only: BTreeSet::new(),
            data_dir: PathBuf::from("elector-raft"),
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(200),
            election_timeout_max: Duration::from_millis(400),
            clock_drift: Duration::from_millis(25),
            kill_grace: Duration::from_millis(50),
            rng_seed: None,
            secret: None,
            secret_file: None,
            tls: None,
            max_elections: DEFAULT_MAX_ELECTIONS,
            forget_after: DEFAULT_FORGET_AFTER,
            priority: 0,
            priority_stable: None,
        }
    }
}

/// The default of [`RaftConfig::max_elections`].
pub const DEFAULT_MAX_ELECTIONS: usize = 20_000;
/// The default of [`RaftConfig::forget_after`]: 10 minutes.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(600);
/// The default of [`RaftConfig::priority_stable`]: 5 seconds (or 2 x
/// `election_timeout_max`, if that is longer).
pub const DEFAULT_PRIORITY_STABLE: Duration = Duration::from_secs(5);

impl RaftConfig {
    /// The anti-flap period in force: [`priority_stable`](Self::priority_stable) as set,
    /// else 5 s or 2 x `election_timeout_max`, whichever is longer (so that a cluster
    /// with long election timeouts and no priorities needs no setting of its own).
    pub fn priority_stable(&self) -> Duration {
        self.priority_stable
            .unwrap_or_else(|| DEFAULT_PRIORITY_STABLE.max(self.election_timeout_max * 2))
    }

    /// How long one quorum-acknowledged heartbeat round lets a leader lead:
    /// `election_timeout_min - clock_drift - kill_grace` (125 ms by default).
    pub fn lease_budget(&self) -> Duration {
        self.election_timeout_min
            .saturating_sub(self.clock_drift + self.kill_grace)
    }

    /// Every member: the peers and this node.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut m: BTreeSet<NodeId> = self.peers.keys().cloned().collect();
        m.extend(self.node_id.clone());
        m
    }

    /// Checks the rules that make these settings safe and live; the error names the rule.
    pub fn validate(&self) -> Result<()> {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        let rule = |key: &str, ok: bool, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(format!("raft.{key}"), reason))
            }
        };
        check_membership(
            "raft",
            self.node_id.as_ref(),
            &self.peers,
            &self.voters_only,
        )?;
        rule(
            "heartbeat",
            !self.heartbeat.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "election_timeout_max",
            self.election_timeout_max >= self.election_timeout_min + self.heartbeat,
            format!(
                "election_timeout_max ({}) must be at least election_timeout_min ({}) + heartbeat \
                 ({}): a narrower random range makes split votes, hence slow failovers, likely",
                h(self.election_timeout_max),
                h(self.election_timeout_min),
                h(self.heartbeat)
            ),
        )?;
        rule(
            "clock_drift",
            self.clock_drift * 20 >= self.election_timeout_min,
            format!(
                "clock_drift ({}) must be at least 5% of election_timeout_min ({}): it covers \
                 clock-rate differences and timer lateness between a leader and its followers",
                h(self.clock_drift),
                h(self.election_timeout_min)
            ),
        )?;
        rule(
            "election_timeout_min",
            self.election_timeout_min >= self.clock_drift + self.kill_grace + self.heartbeat * 2,
            format!(
                "election_timeout_min ({}) must be at least clock_drift ({}) + kill_grace ({}) + \
                 2 x heartbeat ({}): the leader lease is election_timeout_min - clock_drift - \
                 kill_grace counted from a quorum-acknowledged heartbeat, and it must outlast one \
                 lost heartbeat round, or every dropped packet would depose the leader",
                h(self.election_timeout_min),
                h(self.clock_drift),
                h(self.kill_grace),
                h(self.heartbeat)
            ),
        )?;
        rule(
            "max_elections",
            self.max_elections > 0,
            "must be greater than zero".into(),
        )?;
        rule(
            "forget_after",
            self.forget_after >= self.election_timeout_max,
            format!(
                "forget_after ({}) must be at least election_timeout_max ({}): an election \
                 forgotten between two of its rounds would be created again at once",
                h(self.forget_after),
                h(self.election_timeout_max)
            ),
        )?;
        if let Some(stable) = self.priority_stable {
            rule(
                "priority_stable",
                stable >= self.election_timeout_max * 2,
                format!(
                    "priority_stable ({}) must be at least 2 x election_timeout_max ({}): a \
                     preferred member must be seen healthy over several election timeouts \
                     before leadership moves to it, or a flapping member would move it on \
                     every blip",
                    h(stable),
                    h(self.election_timeout_max)
                ),
            )?;
        }
        check_auth(
            "raft",
            self.secret.is_some(),
            self.secret_file.is_some(),
            self.tls.is_some(),
        )
    }

    /// The settings the shared peer node needs: transport (with the reconnect backoff
    /// capped at `election_timeout_max`: a member that comes back must be reachable within
    /// an election or two, not after the transport's default 2 s), state file, the
    /// `try_campaign` window and half the lease budget.
    pub(crate) fn peer_settings(&self) -> Result<PeerSettings> {
        let me = self
            .node_id
            .clone()
            .ok_or_else(|| Error::config("raft.node_id", "is required"))?;
        Ok(PeerSettings {
            me,
            listen: self.listen,
            peers: self.peers.clone(),
            secret: self.secret.clone(),
            secret_file: self.secret_file.clone(),
            tls: self.tls.clone(),
            data_dir: self.data_dir.clone(),
            reconnect_max: self.election_timeout_max,
            try_window: self.election_timeout_min * 2 + self.election_timeout_max * 3,
        })
    }

    /// The core's view of these settings.
    pub(crate) fn node_config(&self, seed: u64, incarnation: u64) -> Result<NodeConfig> {
        self.validate()?;
        Ok(NodeConfig {
            me: self.node_id.clone().expect("validated"),
            members: self.members(),
            voters_only: self.voters_only.clone(),
            heartbeat: self.heartbeat,
            election_timeout_min: self.election_timeout_min,
            election_timeout_max: self.election_timeout_max,
            clock_drift: self.clock_drift,
            kill_grace: self.kill_grace,
            seed,
            incarnation,
            max_elections: self.max_elections,
            forget_after: self.forget_after,
            priority: self.priority,
            priority_stable: self.priority_stable(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RaftConfig {
        RaftConfig {
            node_id: Some(NodeId::new("a").unwrap()),
            secret: Some("0123456789abcdef".into()),
            ..RaftConfig::default()
        }
    }

    #[test]
    fn the_transport_reconnect_backoff_is_capped_at_election_timeout_max() {
        let c = valid();
        c.validate().unwrap();
        let t = c.peer_settings().unwrap().transport_config("raft").unwrap();
        assert_eq!(t.reconnect_max, c.election_timeout_max);
    }

    #[test]
    fn defaults_with_an_id_and_a_secret_are_valid() {
        valid().validate().unwrap();
        assert_eq!(valid().lease_budget(), Duration::from_millis(125));
    }

    #[test]
    fn a_kill_grace_that_eats_the_lease_is_refused_naming_the_rule() {
        let c = RaftConfig {
            kill_grace: Duration::from_secs(2),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("raft.election_timeout_min"), "{err}");
        assert!(err.contains("kill_grace"), "{err}");
    }

    #[test]
    fn a_tiny_drift_bound_is_refused() {
        let c = RaftConfig {
            clock_drift: Duration::from_millis(1),
            ..valid()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("raft.clock_drift")
        );
    }

    #[test]
    fn a_narrow_timeout_range_is_refused() {
        let c = RaftConfig {
            election_timeout_max: Duration::from_millis(160),
            ..valid()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("raft.election_timeout_max")
        );
    }

    #[test]
    fn missing_or_double_authentication_is_refused() {
        let none = RaftConfig {
            secret: None,
            ..valid()
        };
        assert!(
            none.validate()
                .unwrap_err()
                .to_string()
                .contains("raft.secret")
        );
        let both = RaftConfig {
            secret_file: Some("/x".into()),
            ..valid()
        };
        assert!(both.validate().is_err());
    }

    #[test]
    fn voters_only_must_be_members_and_not_everyone() {
        let c = RaftConfig {
            voters_only: [NodeId::new("zz").unwrap()].into(),
            ..valid()
        };
        assert!(c.validate().is_err());
        let c = RaftConfig {
            voters_only: [NodeId::new("a").unwrap()].into(),
            ..valid()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn max_elections_and_forget_after_are_checked() {
        assert_eq!(valid().max_elections, 20_000);
        assert_eq!(valid().forget_after, Duration::from_secs(600));
        let c = RaftConfig {
            max_elections: 0,
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("raft.max_elections"), "{err}");
        let c = RaftConfig {
            forget_after: Duration::from_millis(10),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("raft.forget_after"), "{err}");
        let c: RaftConfig = serde_json::from_str(
            r#"{"node_id":"a","secret":"0123456789abcdef","max_elections":5,"forget_after":"1m"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.max_elections, c.forget_after),
            (5, Duration::from_secs(60))
        );
    }

    #[test]
    fn priority_defaults_to_0_and_a_short_stable_period_is_refused() {
        assert_eq!(valid().priority, 0);
        assert_eq!(valid().priority_stable(), Duration::from_secs(5));
        let c: RaftConfig = serde_json::from_str(
            r#"{"node_id":"a","secret":"0123456789abcdef","priority":3,"priority_stable":"2s"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.priority, c.priority_stable()),
            (3, Duration::from_secs(2))
        );
        c.validate().unwrap();
        // Long election timeouts and no setting: the default follows them, nothing refused.
        let c = RaftConfig {
            election_timeout_min: Duration::from_secs(2),
            election_timeout_max: Duration::from_secs(4),
            clock_drift: Duration::from_millis(100),
            ..valid()
        };
        c.validate().unwrap();
        assert_eq!(c.priority_stable(), Duration::from_secs(8));
        let c = RaftConfig {
            priority_stable: Some(Duration::from_millis(500)),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("raft.priority_stable"), "{err}");
    }

    #[test]
    fn config_files_use_human_durations_and_refuse_unknown_keys() {
        let c: RaftConfig = serde_json::from_str(
            r#"{"node_id":"a","heartbeat":"30ms","secret":"0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(c.heartbeat, Duration::from_millis(30));
        assert!(serde_json::from_str::<RaftConfig>(r#"{"hartbeat":"30ms"}"#).is_err());
    }
}
