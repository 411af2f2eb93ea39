//! The backend choice, typed: [`Kind`] names a backend, [`BackendConfig`] holds the chosen
//! one's settings, read from `[backend.KIND]` once per command (extracted, then validated),
//! with errors that name `backend.KIND.key` and where its value came from. The one place
//! that knows every backend: adding a kind means one variant in [`Kind`], one in
//! [`BackendConfig`] and one arm in each match below.
//!
//! Lease backends (redis, etcd, zookeeper, postgres) are opened directly; peer backends
//! (raft, bully, paxos) are opened only inside `elector agent`, whose callers reach them
//! through it.

mod kind;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use election_core::Backend;
use election_peer::Membership;

use crate::config::{BackendEntries, DEFAULT_CONFIG_FILE, Loaded};
use crate::exit::Failure;
pub(crate) use kind::Kind;

#[cfg(not(any(
    feature = "raft",
    feature = "bully",
    feature = "paxos",
    feature = "redis",
    feature = "etcd",
    feature = "zookeeper",
    feature = "postgres"
)))]
compile_error!(
    "elector needs at least one backend feature: raft, bully, paxos, redis, etcd, zookeeper or postgres"
);

/// The kind `[backend] kind` selects, checked against the known and compiled-in kinds.
pub(crate) fn selected_kind(loaded: &Loaded) -> Result<Kind, Failure> {
    let Some(name) = loaded.settings.backend.kind.as_deref() else {
        return Err(Failure::config(anyhow!(
            "invalid configuration: missing key backend.kind: choose one of {} in [backend] of {} (or --config FILE), ELECTOR_BACKEND__KIND, or --backend",
            Kind::all_names(),
            DEFAULT_CONFIG_FILE
        )));
    };
    if name == "memory" {
        return Err(loaded.invalid(
            "backend.kind",
            format!(
                "the memory backend is not available to elector: it lives inside one \
                 process and coordinates nothing between hosts, so every host would run \
                 the job; choose one of {}",
                Kind::all_names()
            ),
        ));
    }
    let Ok(kind) = name.parse::<Kind>() else {
        return Err(loaded.invalid(
            "backend.kind",
            format!(
                "unknown backend {name:?}; known backends: {}",
                Kind::all_names()
            ),
        ));
    };
    if !kind.is_compiled_in() {
        return Err(loaded.invalid(
            "backend.kind",
            format!(
                "this elector was built without the `{kind}` feature; rebuild with `--features {kind}`"
            ),
        ));
    }
    Ok(kind)
}

/// The selected backend's own settings (`[backend.KIND]`), defaults filled in; a peer
/// backend's `node_id` defaults to the top-level `node_id`.
#[derive(Clone)]
pub(crate) enum BackendConfig {
    /// `[backend.raft]`.
    #[cfg(feature = "raft")]
    Raft(election_raft::RaftConfig),
    /// `[backend.bully]`.
    #[cfg(feature = "bully")]
    Bully(election_bully::BullyConfig),
    /// `[backend.paxos]`.
    #[cfg(feature = "paxos")]
    Paxos(election_paxos::PaxosConfig),
    /// `[backend.redis]`.
    #[cfg(feature = "redis")]
    Redis(election_redis::RedisConfig),
    /// `[backend.etcd]`.
    #[cfg(feature = "etcd")]
    Etcd(election_etcd::EtcdConfig),
    /// `[backend.zookeeper]`.
    #[cfg(feature = "zookeeper")]
    ZooKeeper(election_zookeeper::ZooKeeperConfig),
    /// `[backend.postgres]`.
    #[cfg(feature = "postgres")]
    Postgres(election_postgres::PostgresConfig),
}

impl BackendConfig {
    /// The selected backend's settings, extracted and validated: what every command that
    /// uses the backend starts from.
    pub(crate) fn load(loaded: &Loaded) -> Result<Self, Failure> {
        let config = Self::extract(loaded)?;
        config.validate(loaded)?;
        Ok(config)
    }

    /// The selected backend's settings, not validated (for showing them).
    pub(crate) fn extract(loaded: &Loaded) -> Result<Self, Failure> {
        #[cfg(test)]
        counters::EXTRACTS.with(|c| c.set(c.get() + 1));
        let kind = selected_kind(loaded)?;
        let key = kind.as_str();
        Ok(match kind {
            #[cfg(feature = "raft")]
            Kind::Raft => {
                let mut c: election_raft::RaftConfig = loaded.backend_settings(key)?;
                default_node_id(&mut c.node_id, loaded)?;
                Self::Raft(c)
            }
            #[cfg(feature = "bully")]
            Kind::Bully => {
                let mut c: election_bully::BullyConfig = loaded.backend_settings(key)?;
                default_node_id(&mut c.node_id, loaded)?;
                Self::Bully(c)
            }
            #[cfg(feature = "paxos")]
            Kind::Paxos => {
                let mut c: election_paxos::PaxosConfig = loaded.backend_settings(key)?;
                default_node_id(&mut c.node_id, loaded)?;
                Self::Paxos(c)
            }
            #[cfg(feature = "redis")]
            Kind::Redis => Self::Redis(loaded.backend_settings(key)?),
            #[cfg(feature = "etcd")]
            Kind::Etcd => Self::Etcd(loaded.backend_settings(key)?),
            #[cfg(feature = "zookeeper")]
            Kind::ZooKeeper => Self::ZooKeeper(loaded.backend_settings(key)?),
            #[cfg(feature = "postgres")]
            Kind::Postgres => Self::Postgres(loaded.backend_settings(key)?),
            // `selected_kind` refuses a kind that is not compiled in.
            #[allow(unreachable_patterns, reason = "reached only with a feature off")]
            other => unreachable!("backend {other} is not compiled in"),
        })
    }

    /// The backend's own checks, without connecting.
    pub(crate) fn validate(&self, loaded: &Loaded) -> Result<(), Failure> {
        #[cfg(test)]
        counters::VALIDATES.with(|c| c.set(c.get() + 1));
        let checked = match self {
            #[cfg(feature = "raft")]
            Self::Raft(c) => c.validate(),
            #[cfg(feature = "bully")]
            Self::Bully(c) => c.validate(),
            #[cfg(feature = "paxos")]
            Self::Paxos(c) => c.validate(),
            #[cfg(feature = "redis")]
            Self::Redis(c) => c.validate(&loaded.settings.timing),
            #[cfg(feature = "etcd")]
            Self::Etcd(c) => c.validate(),
            #[cfg(feature = "zookeeper")]
            Self::ZooKeeper(c) => c.validate(),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => c.validate(&loaded.settings.timing),
        };
        checked.map_err(|e| config_error(loaded, e))
    }

    /// The kind these settings are for.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            #[cfg(feature = "raft")]
            Self::Raft(_) => Kind::Raft,
            #[cfg(feature = "bully")]
            Self::Bully(_) => Kind::Bully,
            #[cfg(feature = "paxos")]
            Self::Paxos(_) => Kind::Paxos,
            #[cfg(feature = "redis")]
            Self::Redis(_) => Kind::Redis,
            #[cfg(feature = "etcd")]
            Self::Etcd(_) => Kind::Etcd,
            #[cfg(feature = "zookeeper")]
            Self::ZooKeeper(_) => Kind::ZooKeeper,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Kind::Postgres,
        }
    }

    /// The most a guarded child may get between SIGTERM and SIGKILL: the kill grace the
    /// backend's leadership deadline already subtracts (`timing.kill_grace`, or
    /// `backend.KIND.kill_grace` for the peer backends, whose leader lease subtracts its
    /// own), and the key that sets it.
    #[cfg_attr(
        not(any(
            feature = "redis",
            feature = "etcd",
            feature = "zookeeper",
            feature = "postgres"
        )),
        allow(unused_variables, reason = "only the lease backends use the timing")
    )]
    pub(crate) fn kill_grace_limit(&self, loaded: &Loaded) -> (Duration, &'static str) {
        match self {
            #[cfg(feature = "raft")]
            Self::Raft(c) => (c.kill_grace, "backend.raft.kill_grace"),
            #[cfg(feature = "bully")]
            Self::Bully(c) => (c.kill_grace, "backend.bully.kill_grace"),
            #[cfg(feature = "paxos")]
            Self::Paxos(c) => (c.kill_grace, "backend.paxos.kill_grace"),
            #[cfg(feature = "redis")]
            Self::Redis(_) => (loaded.settings.timing.kill_grace, "timing.kill_grace"),
            #[cfg(feature = "etcd")]
            Self::Etcd(_) => (loaded.settings.timing.kill_grace, "timing.kill_grace"),
            #[cfg(feature = "zookeeper")]
            Self::ZooKeeper(_) => (loaded.settings.timing.kill_grace, "timing.kill_grace"),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => (loaded.settings.timing.kill_grace, "timing.kill_grace"),
        }
    }

    /// The kill grace for `elector run`: `run.kill_grace`, else the backend's (see
    /// [`BackendConfig::kill_grace_limit`]); refused if it exceeds the backend's, because
    /// then the child could outlive the leadership.
    pub(crate) fn kill_grace(&self, loaded: &Loaded) -> Result<Duration, Failure> {
        let (limit, key) = self.kill_grace_limit(loaded);
        match loaded.settings.run.kill_grace {
            None => Ok(limit),
            Some(g) if g <= limit => Ok(g),
            Some(g) => Err(loaded.invalid(
                "run.kill_grace",
                format!(
                    "{} exceeds {key} ({}): the leadership deadline leaves only {key} for the child to die, so a longer grace could let it run on after another node is elected; raise {key} instead",
                    humantime::format_duration(g),
                    humantime::format_duration(limit)
                ),
            )),
        }
    }

    /// The settings as the backend reads them, for `elector config` (secrets are
    /// redacted by the backend crates' `Serialize`).
    pub(crate) fn entries(&self) -> BackendEntries {
        let settings = match self {
            // The anti-flap period in force, also when it follows election_timeout_max.
            #[cfg(feature = "raft")]
            Self::Raft(c) => serde_json::to_value(election_raft::RaftConfig {
                priority_stable: Some(c.priority_stable()),
                ..c.clone()
            }),
            #[cfg(feature = "bully")]
            Self::Bully(c) => serde_json::to_value(c),
            #[cfg(feature = "paxos")]
            Self::Paxos(c) => serde_json::to_value(c),
            #[cfg(feature = "redis")]
            Self::Redis(c) => serde_json::to_value(c),
            #[cfg(feature = "etcd")]
            Self::Etcd(c) => serde_json::to_value(c),
            #[cfg(feature = "zookeeper")]
            Self::ZooKeeper(c) => serde_json::to_value(c),
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => serde_json::to_value(c),
        };
        let kind = self.kind();
        BackendEntries {
            kind: kind.as_str(),
            settings: settings.unwrap_or(serde_json::Value::Null),
            node_id_defaulted: kind.is_hosted_by_agent(),
        }
    }

    /// Opens the backend in this process: connects a lease backend's client, or starts
    /// this host's member of a peer backend (in the agent).
    pub(crate) async fn open(&self, loaded: &Loaded) -> Result<Arc<dyn Backend>, Failure> {
        Ok(self.open_hosted(loaded).await?.backend)
    }

    /// [`open`](Self::open), and for a peer backend its view of the members too (the
    /// agent's status shows it).
    pub(crate) async fn open_hosted(&self, loaded: &Loaded) -> Result<Opened, Failure> {
        /// A peer node, both as the backend and as its members' view.
        #[cfg(any(feature = "raft", feature = "bully", feature = "paxos"))]
        fn peer<N: Backend + Membership + 'static>(node: N) -> Opened {
            let node = Arc::new(node);
            Opened {
                backend: node.clone(),
                members: Some(node),
            }
        }
        /// A lease backend: no members.
        #[cfg(any(
            feature = "redis",
            feature = "etcd",
            feature = "zookeeper",
            feature = "postgres"
        ))]
        fn lease<B: Backend + 'static>(backend: B) -> Opened {
            Opened {
                backend: Arc::new(backend),
                members: None,
            }
        }
        let opened: election_core::Result<Opened> = match self.clone() {
            #[cfg(feature = "raft")]
            Self::Raft(c) => election_raft::RaftNode::start(c).await.map(peer),
            #[cfg(feature = "bully")]
            Self::Bully(c) => election_bully::BullyNode::start(c).await.map(peer),
            #[cfg(feature = "paxos")]
            Self::Paxos(c) => election_paxos::PaxosNode::start(c).await.map(peer),
            #[cfg(feature = "redis")]
            Self::Redis(c) => election_redis::RedisBackend::connect(c, loaded.settings.timing)
                .await
                .map(lease),
            #[cfg(feature = "etcd")]
            Self::Etcd(c) => election_etcd::EtcdBackend::connect(c, loaded.settings.timing)
                .await
                .map(lease),
            #[cfg(feature = "zookeeper")]
            Self::ZooKeeper(c) => {
                election_zookeeper::ZooKeeperBackend::connect(c, loaded.settings.timing)
                    .await
                    .map(lease)
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(c) => {
                election_postgres::PostgresBackend::connect(c, loaded.settings.timing)
                    .await
                    .map(lease)
            }
        };
        // A configuration error found while opening (a secret file that cannot be read):
        // name the key as written.
        opened.map_err(|e| config_error(loaded, e))
    }
}

/// An opened backend ([`BackendConfig::open_hosted`]).
pub(crate) struct Opened {
    /// The backend.
    pub(crate) backend: Arc<dyn Backend>,
    /// A peer backend's members, as this node sees them; `None` for a lease backend.
    pub(crate) members: Option<Arc<dyn Membership>>,
}

/// Every check that needs no connection, for the commands that use the backend (`run`,
/// `agent`, `config --check`): the general settings, the backend's own, and the run's
/// kill grace against the backend's.
pub(crate) fn checked(loaded: &Loaded) -> Result<BackendConfig, Failure> {
    loaded.check()?;
    let backend = BackendConfig::load(loaded)?;
    backend.kill_grace(loaded)?;
    Ok(backend)
}

/// A peer backend's `node_id`, defaulted from the top-level one.
#[cfg(any(feature = "raft", feature = "bully", feature = "paxos"))]
fn default_node_id(
    slot: &mut Option<election_core::NodeId>,
    loaded: &Loaded,
) -> Result<(), Failure> {
    if slot.is_none() {
        *slot = Some(loaded.node_id()?);
    }
    Ok(())
}

/// A backend's configuration error, with its key placed under `backend.` so that it names
/// the key as written in the config file, and the source of that key.
fn config_error(loaded: &Loaded, e: election_core::Error) -> Failure {
    match e {
        election_core::Error::Config { key, reason } => {
            let key = if key.starts_with("timing.") {
                key
            } else {
                format!("backend.{key}")
            };
            loaded.invalid(&key, reason)
        }
        e => e.into(),
    }
}

/// How often this thread extracted and validated backend settings, for the test that
/// each command does both once.
#[cfg(test)]
pub(crate) mod counters {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static EXTRACTS: Cell<usize> = const { Cell::new(0) };
        pub(crate) static VALIDATES: Cell<usize> = const { Cell::new(0) };
    }

    /// `(extracts, validates)` since the last call, and resets both.
    #[cfg_attr(
        not(any(feature = "redis", feature = "raft")),
        allow(dead_code, reason = "the counting tests use redis or raft")
    )]
    pub(crate) fn take() -> (usize, usize) {
        (
            EXTRACTS.with(|c| c.replace(0)),
            VALIDATES.with(|c| c.replace(0)),
        )
    }
}

#[cfg(test)]
mod tests;
