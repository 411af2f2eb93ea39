//! The configuration's shape: every key, its type and its built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use election_core::LeaseTiming;
use figment::value::Value;
use serde::{Deserialize, Serialize};

/// The whole configuration, after merging.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// This node's id. Default: the hostname.
    pub(crate) node_id: Option<String>,
    /// `[backend]`: `kind` selects the backend; `[backend.KIND]` holds its settings.
    pub(crate) backend: BackendSection,
    /// `[timing]`: lease timing for lease backends (redis, etcd, zookeeper, postgres), and the pace
    /// of renewals through the agent.
    pub(crate) timing: LeaseTiming,
    /// `[run]`: defaults of `elector run`.
    pub(crate) run: RunSettings,
    /// `[agent]`: the local agent.
    pub(crate) agent: AgentSettings,
}

/// `[backend]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BackendSection {
    /// `raft`, `bully`, `paxos`, `redis`, `etcd`, `zookeeper` or `postgres`. No default.
    pub(crate) kind: Option<String>,
    /// `[backend.raft]`: `election_raft::RaftConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) raft: Option<Value>,
    /// `[backend.bully]`: `election_bully::BullyConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bully: Option<Value>,
    /// `[backend.paxos]`: `election_paxos::PaxosConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) paxos: Option<Value>,
    /// `[backend.redis]`: `election_redis::RedisConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis: Option<Value>,
    /// `[backend.etcd]`: `election_etcd::EtcdConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) etcd: Option<Value>,
    /// `[backend.zookeeper]`: `election_zookeeper::ZooKeeperConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) zookeeper: Option<Value>,
    /// `[backend.postgres]`: `election_postgres::PostgresConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) postgres: Option<Value>,
}

/// When `elector run --supervise` restarts a command that exited.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Restart {
    /// Never: elector exits with the command's code.
    Never,
    /// When the command exits non-zero or by a signal.
    #[default]
    OnFailure,
    /// Whenever it exits.
    Always,
}

/// `[run]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RunSettings {
    /// Election name. Default: the command's file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) election: Option<String>,
    /// Cron mode: how long to wait to be elected. Default: none (one attempt).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub(crate) wait: Option<Duration>,
    /// Cron mode: keep leadership at least this long after the command started. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub(crate) min_hold: Duration,
    /// SIGTERM-to-SIGKILL grace for the command. Default: `timing.kill_grace`; never more.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub(crate) kill_grace: Option<Duration>,
    /// Supervise mode restart policy. Default `on-failure`.
    pub(crate) restart: Restart,
    /// First restart delay, doubled after each quick failure. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub(crate) restart_delay: Duration,
    /// Longest restart delay. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub(crate) restart_delay_max: Duration,
    /// Exit code when another node leads. Default 0.
    pub(crate) skipped_exit_code: u8,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            election: None,
            wait: None,
            min_hold: Duration::from_secs(30),
            kill_grace: None,
            restart: Restart::OnFailure,
            restart_delay: Duration::from_secs(1),
            restart_delay_max: Duration::from_secs(30),
            skipped_exit_code: 0,
        }
    }
}

/// `[agent]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AgentSettings {
    /// Where the agent's read-only HTTP API listens (health, status, the leader check,
    /// metrics). Default `127.0.0.1:7207`.
    pub(crate) listen: SocketAddr,
    /// The agent's Unix socket: the whole API, including what changes leadership (the
    /// hold protocol, resign). `elector run`, `status` and `resign` use it. Default
    /// `/run/elector/agent.sock` for root, and for anyone once it exists, else
    /// `$XDG_RUNTIME_DIR/elector/agent.sock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) socket: Option<PathBuf>,
    /// A group whose members may use the socket too (socket mode 0660, its directory
    /// 0750 when the agent creates it). Default: none (0600 and 0700: the agent's user
    /// and root only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) socket_group: Option<String>,
    /// A file (mode 0600 or stricter) holding a bearer token that allows `POST
    /// /v1/elections/{election}/resign` over `listen`. Default: none (remote changes are
    /// refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) token_file: Option<PathBuf>,
    /// Elections the agent reports on in `/v1/status` even before anyone campaigns.
    pub(crate) elections: Vec<String>,
    /// Most elections the agent keeps at once; a campaign for one more is refused.
    /// Default 20,000.
    pub(crate) max_elections: usize,
    /// An election nobody campaigns in, that is not in `elections` and that this node
    /// does not lead is forgotten after this long. Default 10 minutes.
    #[serde(with = "humantime_serde")]
    pub(crate) forget_after: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7207)),
            socket: None,
            socket_group: None,
            token_file: None,
            elections: Vec::new(),
            max_elections: 20_000,
            forget_after: Duration::from_secs(600),
        }
    }
}
