//! [`PaxosConfig`]: every setting, its default, and the rules that make a combination safe.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use election_core::{Error, NodeId, Result};
use election_peer::{PeerSettings, TlsConfig, check_auth, check_membership};
use serde::{Deserialize, Serialize};

use crate::core::NodeConfig;

/// The settings of one PaxosLease member. Durations are written as strings such as
/// `"25ms"` in configuration files.
///
/// The timing defaults (lease 150 ms, renew 25 ms, round timeout 50 ms, back-off 20 ms,
/// clock drift 25 ms, kill grace 50 ms) give a leader 75 ms of lease per accepted round
/// and a crash failover of at most one lease time plus a back-off and two round trips; see
/// decision record 117 and [`validate`](Self::validate) for the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaxosConfig {
    /// This node's id. Required (the CLI fills it in from its own node id). Default: none.
    pub node_id: Option<NodeId>,
    /// Address to listen on for peers. Default `127.0.0.1:7600`; port 0 picks a free port
    /// (read it back with [`PaxosNode::local_addr`](crate::PaxosNode::local_addr)).
    pub listen: SocketAddr,
    /// Every member's id and `host:port`, this node included or not (its address is
    /// ignored). Every member is an acceptor. Static: messages from any other node are
    /// refused. Default: empty (a one-node cluster).
    pub peers: BTreeMap<NodeId, String>,
    /// Members that are acceptors only and never propose. Default: none.
    pub voters_only: BTreeSet<NodeId>,
    /// Directory of this node's state file (the fencing floor per election: the highest
    /// leadership epoch its acceptor accepted). Default `./elector-paxos`. Losing it on a
    /// majority can let epochs go back: keep it.
    pub data_dir: PathBuf,
    /// The maximum lease time `T`: an acceptor keeps an accepted proposal open for this
    /// long after accepting it, and a restarted node takes no part for this long. Must be
    /// the same on every member. Default 150 ms.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Interval between a leader's renewal rounds (one prepare/propose round for every
    /// election it leads, batched per peer). Default 25 ms.
    #[serde(with = "humantime_serde")]
    pub renew: Duration,
    /// How long one phase of a round waits for a majority of answers before it fails.
    /// Default 50 ms; at least a round trip, at most `lease`.
    #[serde(with = "humantime_serde")]
    pub round_timeout: Duration,
    /// Upper bound of the random delay before a proposer retries a collided or failed
    /// round; after a RELEASE the candidates take turns a quarter of it apart. Default 20 ms.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Bound on the clock-rate difference between members and on timer lateness over one
    /// lease. Default 25 ms; at least 5 % of `lease`.
    #[serde(with = "humantime_serde")]
    pub clock_drift: Duration,
    /// Time the CLI gives a guarded child between SIGTERM and SIGKILL once leadership is
    /// lost. Default 50 ms. Counted in the lease margin, so the child is dead before any
    /// acceptor lets another proposer in; a longer grace needs a longer `lease`.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
    /// Seed of the back-off RNG. Default: none (a fresh seed per start). Set it to replay a
    /// run.
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
    /// [`Error::TooManyElections`] and peers' requests for new elections go unanswered and
    /// are counted in [`PeerStats::ignored_elections`](election_peer::PeerStats).
    pub max_elections: usize,
    /// An election with no local candidate, no leader known, nothing open and nothing to
    /// persist is forgotten, memory and state file alike, once idle for this long
    /// (checked every eighth of it). Default 10 min; at least `lease`. Its floor raises the
    /// node's persisted floor, with which every election it does not hold starts.
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
}

impl Default for PaxosConfig {
    fn default() -> Self {
        PaxosConfig {
            node_id: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7600)),
            peers: BTreeMap::new(),
            voters_only: BTreeSet::new(),
            data_dir: PathBuf::from("elector-paxos"),
            lease: Duration::from_millis(150),
            renew: Duration::from_millis(25),
            round_timeout: Duration::from_millis(50),
            backoff: Duration::from_millis(20),
            clock_drift: Duration::from_millis(25),
            kill_grace: Duration::from_millis(50),
            rng_seed: None,
            secret: None,
            secret_file: None,
            tls: None,
            max_elections: DEFAULT_MAX_ELECTIONS,
            forget_after: DEFAULT_FORGET_AFTER,
        }
    }
}

/// The default of [`PaxosConfig::max_elections`].
pub const DEFAULT_MAX_ELECTIONS: usize = 20_000;
/// The default of [`PaxosConfig::forget_after`]: 10 minutes.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(600);

impl PaxosConfig {
    /// How long one round accepted by a majority lets its proposer lead, from the send
    /// time of its propose requests: `lease - clock_drift - kill_grace` (75 ms by default).
    pub fn lease_budget(&self) -> Duration {
        self.lease
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
                Err(Error::config(format!("paxos.{key}"), reason))
            }
        };
        check_membership(
            "paxos",
            self.node_id.as_ref(),
            &self.peers,
            &self.voters_only,
        )?;
        rule(
            "renew",
            !self.renew.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "backoff",
            !self.backoff.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "round_timeout",
            !self.round_timeout.is_zero() && self.round_timeout <= self.lease,
            format!(
                "round_timeout ({}) must be greater than zero and at most lease ({})",
                h(self.round_timeout),
                h(self.lease)
            ),
        )?;
        rule(
            "clock_drift",
            self.clock_drift * 20 >= self.lease,
            format!(
                "clock_drift ({}) must be at least 5% of lease ({}): it covers clock-rate \
                 differences and timer lateness between a proposer and its acceptors",
                h(self.clock_drift),
                h(self.lease)
            ),
        )?;
        rule(
            "lease",
            self.lease >= self.clock_drift + self.kill_grace + self.renew * 2,
            format!(
                "lease ({}) must be at least clock_drift ({}) + kill_grace ({}) + 2 x renew \
                 ({}): a leader leads for lease - clock_drift - kill_grace from the send time \
                 of its last accepted round, and that must outlast one failed renewal, or \
                 every dropped packet would depose the leader",
                h(self.lease),
                h(self.clock_drift),
                h(self.kill_grace),
                h(self.renew)
            ),
        )?;
        rule(
            "max_elections",
            self.max_elections > 0,
            "must be greater than zero".into(),
        )?;
        rule(
            "forget_after",
            self.forget_after >= self.lease,
            format!(
                "forget_after ({}) must be at least lease ({}): an election forgotten \
                 between two of its rounds would be created again at once",
                h(self.forget_after),
                h(self.lease)
            ),
        )?;
        check_auth(
            "paxos",
            self.secret.is_some(),
            self.secret_file.is_some(),
            self.tls.is_some(),
        )
    }

    /// The settings the shared peer node needs: transport (with the reconnect backoff
    /// capped at `lease`, so that a member that comes back is heard from within one lease
    /// time), state file, the `try_campaign` window and half the lease budget.
    pub(crate) fn peer_settings(&self) -> Result<PeerSettings> {
        let me = self
            .node_id
            .clone()
            .ok_or_else(|| Error::config("paxos.node_id", "is required"))?;
        Ok(PeerSettings {
            me,
            listen: self.listen,
            peers: self.peers.clone(),
            secret: self.secret.clone(),
            secret_file: self.secret_file.clone(),
            tls: self.tls.clone(),
            data_dir: self.data_dir.clone(),
            reconnect_max: self.lease,
            try_window: self.lease * 2 + self.round_timeout * 2 + self.backoff * 3,
        })
    }

    /// The core's view of these settings.
    pub(crate) fn node_config(&self, seed: u64, incarnation: u64) -> Result<NodeConfig> {
        self.validate()?;
        Ok(NodeConfig {
            me: self.node_id.clone().expect("validated"),
            members: self.members(),
            voters_only: self.voters_only.clone(),
            lease: self.lease,
            renew: self.renew,
            round_timeout: self.round_timeout,
            backoff: self.backoff,
            clock_drift: self.clock_drift,
            kill_grace: self.kill_grace,
            seed,
            incarnation,
            max_elections: self.max_elections,
            forget_after: self.forget_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> PaxosConfig {
        PaxosConfig {
            node_id: Some(NodeId::new("a").unwrap()),
            secret: Some("0123456789abcdef".into()),
            ..PaxosConfig::default()
        }
    }

    #[test]
    fn defaults_with_an_id_and_a_secret_are_valid() {
        valid().validate().unwrap();
        assert_eq!(valid().lease_budget(), Duration::from_millis(75));
    }

    #[test]
    fn a_kill_grace_that_eats_the_lease_is_refused_naming_the_rule() {
        let c = PaxosConfig {
            kill_grace: Duration::from_secs(2),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("paxos.lease"), "{err}");
        assert!(err.contains("kill_grace"), "{err}");
    }

    #[test]
    fn a_round_timeout_longer_than_the_lease_is_refused() {
        let c = PaxosConfig {
            round_timeout: Duration::from_secs(1),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("paxos.round_timeout"), "{err}");
    }

    #[test]
    fn a_drift_bound_below_5_percent_of_the_lease_is_refused() {
        let c = PaxosConfig {
            clock_drift: Duration::from_millis(1),
            ..valid()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("paxos.clock_drift"), "{err}");
    }

    #[test]
    fn the_transport_reconnect_backoff_is_capped_at_the_lease() {
        let c = PaxosConfig {
            lease: Duration::from_millis(300),
            ..valid()
        };
        c.validate().unwrap();
        let t = c
            .peer_settings()
            .unwrap()
            .transport_config("paxos")
            .unwrap();
        assert_eq!(t.reconnect_max, Duration::from_millis(300));
    }

    #[test]
    fn missing_or_double_authentication_is_refused() {
        let none = PaxosConfig {
            secret: None,
            ..valid()
        };
        let err = none.validate().unwrap_err().to_string();
        assert!(err.contains("paxos.secret"), "{err}");
        let both = PaxosConfig {
            secret_file: Some("/x".into()),
            ..valid()
        };
        assert!(both.validate().is_err());
    }

    #[test]
    fn config_files_use_human_durations_and_refuse_unknown_keys() {
        let c: PaxosConfig = serde_json::from_str(
            r#"{"node_id":"a","lease":"300ms","renew":"50ms","secret":"0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(c.lease, Duration::from_millis(300));
        assert!(serde_json::from_str::<PaxosConfig>(r#"{"leese":"3s"}"#).is_err());
    }
}
