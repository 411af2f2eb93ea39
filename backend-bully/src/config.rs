//! [`BullyConfig`]: every setting, its default, and the rules that make a combination safe.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use election_core::{Error, NodeId, Result};
use election_peer::{PeerSettings, TlsConfig, check_auth, check_membership};
use serde::{Deserialize, Serialize};

use crate::core::NodeConfig;

/// The settings of one Bully member. Durations are written as strings such as `"25ms"` in
/// configuration files.
///
/// The timing defaults (heartbeat 25 ms, failure timeout 150 ms, answer timeout 50 ms,
/// clock drift 25 ms, kill grace 50 ms) give a crash failover of about 200 ms on a LAN and a
/// leader lease of 75 ms per acknowledged heartbeat round; see decision record 081 and
/// [`validate`](Self::validate) for the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BullyConfig {
    /// This node's id. Required (the CLI fills it in from its own node id). Ids are ranked
    /// by byte order: the greatest id is the "highest" node. Default: none.
    pub node_id: Option<NodeId>,
    /// Address to listen on for peers. Default `127.0.0.1:7500`; port 0 picks a free port
    /// (read it back with [`BullyNode::local_addr`](crate::BullyNode::local_addr)).
    pub listen: SocketAddr,
    /// Every member's id and `host:port`, this node included or not (its address is
    /// ignored). Static: messages from any other node are refused. Default: empty (a
    /// one-node cluster).
    pub peers: BTreeMap<NodeId, String>,
    /// Members that acknowledge (count towards the majority) but never campaign. Every
    /// other member is a candidate. Default: none.
    pub voters_only: BTreeSet<NodeId>,
    /// Directory of this node's state file (highest epoch seen per election). Default
    /// `./elector-bully`. Losing it can let epochs go back: keep it.
    pub data_dir: PathBuf,
    /// Interval between a leader's heartbeat rounds. Default 25 ms.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A leader not heard from for this long is presumed failed, and a follower stays
    /// loyal to a leader (refuses any other) for this long after last hearing it. Default
    /// 150 ms. Crash failover takes about `failure_timeout + answer_timeout`.
    #[serde(with = "humantime_serde")]
    pub failure_timeout: Duration,
    /// How long a candidate waits for ALIVE from higher nodes (and acknowledgements) to
    /// its ELECTION before declaring victory. Default 50 ms; at least a round trip.
    #[serde(with = "humantime_serde")]
    pub answer_timeout: Duration,
    /// Bound on the clock-rate difference between members and on timer lateness over one
    /// lease. Default 25 ms; at least 5 % of `failure_timeout`.
    #[serde(with = "humantime_serde")]
    pub clock_drift: Duration,
    /// Time the CLI gives a guarded child between SIGTERM and SIGKILL once leadership is
    /// lost. Default 50 ms. Counted in the lease margin, so the child is dead before another
    /// node can be elected; a longer grace needs a longer `failure_timeout`.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
    /// The majority rule. Default `true`: a node leads only once a majority of all members
    /// (itself included) accepted its VICTORY, and steps down when a majority stops
    /// acknowledging its heartbeats, so a minority side never elects. `false` is classic
    /// Bully: any node that hears no higher candidate leads, so a partition can elect one
    /// leader per side (split brain); epochs still fence their writes.
    pub quorum: bool,
    /// Seed of the retry-jitter RNG. Default: none (a fresh seed per start). Set it to
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
    /// [`Error::TooManyElections`] and peers' mentions of new elections are ignored (a
    /// heartbeat entry is refused without a promise) and counted in
    /// [`PeerStats::ignored_elections`](election_peer::PeerStats); see decision record 105.
    pub max_elections: usize,
    /// An election with no local candidate, no leader, no running promise and nothing to
    /// persist is forgotten, memory and state file alike, once idle for this long (checked
    /// every eighth of it). Default 10 min; at least `failure_timeout`. Its epoch raises
    /// the node's persisted floor, above which every election it does not hold starts, so
    /// a forgotten acceptance is never given twice at one epoch.
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
    /// Members' priorities as candidates, by id (a member not listed has priority 0).
    /// The Bully order is by (priority, id): the highest campaigning member wins an
    /// election. Give every member the same map (like `peers`): members that disagree on
    /// the order disagree on who should win, which costs failed election rounds, not
    /// safety (epochs, the majority rule and the leases do not depend on the order).
    /// Bully never preempts a live leader, so a member of higher priority that comes back
    /// waits for the next election (the leader's failure or resign): no flapping, and no
    /// anti-flap period to set. See decision record 135. Default: empty.
    pub priorities: BTreeMap<NodeId, u32>,
}

impl Default for BullyConfig {
    fn default() -> Self {
        BullyConfig {
            node_id: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7500)),
            peers: BTreeMap::new(),
            voters_only: BTreeSet::new(),
            data_dir: PathBuf::from("elector-bully"),
            heartbeat: Duration::from_millis(25),
            failure_timeout: Duration::from_millis(150),
            answer_timeout: Duration::from_millis(50),
            clock_drift: Duration::from_millis(25),
            kill_grace: Duration::from_millis(50),
            quorum: true,
            rng_seed: None,
            secret: None,
            secret_file: None,
            tls: None,
            max_elections: DEFAULT_MAX_ELECTIONS,
            forget_after: DEFAULT_FORGET_AFTER,
            priorities: BTreeMap::new(),
        }
    }
}

/// The default of [`BullyConfig::max_elections`].
pub const DEFAULT_MAX_ELECTIONS: usize = 20_000;
/// The default of [`BullyConfig::forget_after`]: 10 minutes.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(600);

impl BullyConfig {
    /// How long one acknowledged heartbeat round lets a leader lead:
    /// `failure_timeout - clock_drift - kill_grace` (75 ms by default).
    pub fn lease_budget(&self) -> Duration {
        self.failure_timeout
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
                Err(Error::config(format!("bully.{key}"), reason))
            }
        };
        check_membership(
            "bully",
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
            "answer_timeout",
            !self.answer_timeout.is_zero() && self.answer_timeout <= self.failure_timeout,
            format!(
                "answer_timeout ({}) must be greater than zero and at most failure_timeout ({})",
                h(self.answer_timeout),
                h(self.failure_timeout)
            ),
        )?;
        rule(
            "clock_drift",
            self.clock_drift * 20 >= self.failure_timeout,
            format!(
                "clock_drift ({}) must be at least 5% of failure_timeout ({}): it covers \
                 clock-rate differences and timer lateness between a leader and its followers",
                h(self.clock_drift),
                h(self.failure_timeout)
            ),
        )?;
        rule(
            "failure_timeout",
            self.failure_timeout >= self.clock_drift + self.kill_grace + self.heartbeat * 2,
            format!(
                "failure_timeout ({}) must be at least clock_drift ({}) + kill_grace ({}) + \
                 2 x heartbeat ({}): the leader lease is failure_timeout - clock_drift - \
                 kill_grace counted from an acknowledged heartbeat, and it must outlast one \
                 lost heartbeat round, or every dropped packet would depose the leader",
                h(self.failure_timeout),
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
            self.forget_after >= self.failure_timeout,
            format!(
                "forget_after ({}) must be at least failure_timeout ({}): an election \
                 forgotten between two of its rounds would be created again at once",
                h(self.forget_after),
                h(self.failure_timeout)
            ),
        )?;
        let members = self.members();
        if let Some(unknown) = self.priorities.keys().find(|k| !members.contains(*k)) {
            return Err(Error::config(
                "bully.priorities",
                format!("{unknown} is not a member (node_id or a key of peers)"),
            ));
        }
        check_auth(
            "bully",
            self.secret.is_some(),
            self.secret_file.is_some(),
            self.tls.is_some(),
        )
    }

    /// The settings the shared peer node needs: transport (with the reconnect backoff
    /// capped at `failure_timeout`, so that a member that comes back is heard from within
    /// one failure timeout rather than the transport's default 2 s), state file, the
    /// `try_campaign` window and half the lease budget.
    pub(crate) fn peer_settings(&self) -> Result<PeerSettings> {
        let me = self
            .node_id
            .clone()
            .ok_or_else(|| Error::config("bully.node_id", "is required"))?;
        Ok(PeerSettings {
            me,
            listen: self.listen,
            peers: self.peers.clone(),
            secret: self.secret.clone(),
            secret_file: self.secret_file.clone(),
            tls: self.tls.clone(),
            data_dir: self.data_dir.clone(),
            reconnect_max: self.failure_timeout,
            try_window: self.failure_timeout * 2 + self.answer_timeout * 3,
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
            failure_timeout: self.failure_timeout,
            answer_timeout: self.answer_timeout,
            clock_drift: self.clock_drift,
            kill_grace: self.kill_grace,
            quorum: self.quorum,
            seed,
            incarnation,
            max_elections: self.max_elections,
            forget_after: self.forget_after,
            priorities: self.priorities.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> BullyConfig {
        BullyConfig {
            node_id: Some(NodeId::new("a").unwrap()),
            secret: Some("0123456789abcdef".into()),
            ..BullyConfig::default()
        }
    }

    #[test]
    fn defaults_with_an_id_and_a_secret_are_valid_and_use_the_quorum_rule() {
        valid().validate().unwrap();
        assert_eq!(valid().lease_budget(), Duration::from_millis(75));
        assert!(valid().quorum);
    }

    #[test]
    fn a_kill_grace_that_eats_the_lease_is_refused_naming_the_rule() {
        let c = BullyConfig {
            kill_grace: Duration::from_secs(2),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("bully.failure_timeout"), "{err}");
        assert!(err.contains("kill_grace"), "{err}");
    }

    #[test]
    fn an_answer_timeout_longer_than_the_failure_timeout_is_refused() {
        let c = BullyConfig {
            answer_timeout: Duration::from_secs(1),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("bully.answer_timeout"), "{err}");
    }

    #[test]
    fn the_transport_reconnect_backoff_is_capped_at_the_failure_timeout() {
        let c = BullyConfig {
            failure_timeout: Duration::from_millis(300),
            answer_timeout: Duration::from_millis(100),
            kill_grace: Duration::from_millis(100),
            ..valid()
        };
        c.validate().unwrap();
        let t = c
            .peer_settings()
            .unwrap()
            .transport_config("bully")
            .unwrap();
        assert_eq!(t.reconnect_max, Duration::from_millis(300));
    }

    #[test]
    fn missing_or_double_authentication_is_refused() {
        let none = BullyConfig {
            secret: None,
            ..valid()
        };
        let err = none.validate().unwrap_err().to_string();
        assert!(err.contains("bully.secret"), "{err}");
        let both = BullyConfig {
            secret_file: Some("/x".into()),
            ..valid()
        };
        assert!(both.validate().is_err());
    }

    #[test]
    fn voters_only_must_be_members_and_not_everyone() {
        let c = BullyConfig {
            voters_only: [NodeId::new("zz").unwrap()].into(),
            ..valid()
        };
        assert!(c.validate().is_err());
        let c = BullyConfig {
            voters_only: [NodeId::new("a").unwrap()].into(),
            ..valid()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn priorities_must_name_members() {
        let mut c = valid();
        c.priorities = [(NodeId::new("a").unwrap(), 3)].into();
        c.validate().unwrap();
        c.priorities = [(NodeId::new("zz").unwrap(), 3)].into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("bully.priorities"), "{err}");
    }

    #[test]
    fn config_files_use_human_durations_and_refuse_unknown_keys() {
        let c: BullyConfig = serde_json::from_str(
            r#"{"node_id":"a","failure_timeout":"300ms","quorum":false,"secret":"0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(c.failure_timeout, Duration::from_millis(300));
        assert!(!c.quorum);
        assert!(serde_json::from_str::<BullyConfig>(r#"{"failure_timout":"3s"}"#).is_err());
    }
}
