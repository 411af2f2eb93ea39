//! Building a backend from the configuration: one place that knows every kind. Lease
//! backends (redis, etcd, zookeeper) are connected to directly; peer backends (raft,
//! bully) live in `elector agent` (see [`crate::peer`]).

use std::sync::Arc;

use anyhow::anyhow;
use election_core::Backend;

use crate::config::Loaded;
use crate::exit::Failure;

/// Whether backend `kind` was compiled into this binary.
#[allow(
    clippy::match_like_matches_macro,
    reason = "one arm per kind reads better, and the lint fires only with every feature on"
)]
pub(crate) fn compiled_in(kind: &str) -> bool {
    match kind {
        "raft" => cfg!(feature = "raft"),
        "bully" => cfg!(feature = "bully"),
        "redis" => cfg!(feature = "redis"),
        "etcd" => cfg!(feature = "etcd"),
        "zookeeper" => cfg!(feature = "zookeeper"),
        _ => false,
    }
}

/// Whether `elector run` and `status` reach this kind through the local agent (the
/// backends whose peers live in the agent process) rather than connecting directly.
pub(crate) fn via_agent(kind: &str) -> bool {
    crate::peer::is_peer(kind)
}

/// Checks the selected backend's own settings (`[backend.KIND]`) without connecting.
pub(crate) fn check_settings(loaded: &Loaded, kind: &str) -> Result<(), Failure> {
    if let Some(checked) = crate::peer::check(loaded, kind) {
        return checked;
    }
    match kind {
        #[cfg(feature = "redis")]
        "redis" => loaded
            .backend_settings::<election_redis::RedisConfig>("redis")?
            .validate(&loaded.settings.timing)
            .map_err(|e| config_error(loaded, e))?,
        #[cfg(feature = "etcd")]
        "etcd" => loaded
            .backend_settings::<election_etcd::EtcdConfig>("etcd")?
            .validate()
            .map_err(|e| config_error(loaded, e))?,
        #[cfg(feature = "zookeeper")]
        "zookeeper" => loaded
            .backend_settings::<election_zookeeper::ZooKeeperConfig>("zookeeper")?
            .validate()
            .map_err(|e| config_error(loaded, e))?,
        _ => {}
    }
    let _ = loaded;
    Ok(())
}

/// The selected backend's effective settings, defaults included, as JSON (secrets are
/// redacted by the backend crates' `Serialize`); `None` if they cannot be read.
pub(crate) fn effective_settings(loaded: &Loaded, kind: &str) -> Option<serde_json::Value> {
    if crate::peer::is_peer(kind) {
        return crate::peer::effective_settings(loaded, kind);
    }
    match kind {
        #[cfg(feature = "redis")]
        "redis" => serde_json::to_value(
            loaded
                .backend_settings::<election_redis::RedisConfig>("redis")
                .ok()?,
        )
        .ok(),
        #[cfg(feature = "etcd")]
        "etcd" => serde_json::to_value(
            loaded
                .backend_settings::<election_etcd::EtcdConfig>("etcd")
                .ok()?,
        )
        .ok(),
        #[cfg(feature = "zookeeper")]
        "zookeeper" => serde_json::to_value(
            loaded
                .backend_settings::<election_zookeeper::ZooKeeperConfig>("zookeeper")
                .ok()?,
        )
        .ok(),
        _ => {
            let _ = loaded;
            None
        }
    }
}

/// A backend's configuration error, with its key placed under `backend.` so that it
/// names the key as written in the config file, and the source of that key.
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

/// Connects to the selected backend directly (in this process): a lease backend's client,
/// or, in the agent, this host's member of a peer backend.
pub(crate) async fn connect(loaded: &Loaded, kind: &str) -> Result<Arc<dyn Backend>, Failure> {
    connect_inner(loaded, kind).await.map_err(|f| {
        // A backend's configuration error found while connecting: name the key as written.
        match f.error.downcast::<election_core::Error>() {
            Ok(e) => config_error(loaded, e),
            Err(error) => Failure {
                code: f.code,
                error,
            },
        }
    })
}

async fn connect_inner(loaded: &Loaded, kind: &str) -> Result<Arc<dyn Backend>, Failure> {
    if let Some(started) = crate::peer::start(loaded, kind).await {
        return started;
    }
    let timing = loaded.settings.timing;
    let _ = timing;
    match kind {
        #[cfg(feature = "redis")]
        "redis" => {
            let config = loaded.backend_settings::<election_redis::RedisConfig>("redis")?;
            Ok(Arc::new(
                election_redis::RedisBackend::connect(config, timing).await?,
            ))
        }
        #[cfg(feature = "etcd")]
        "etcd" => {
            let config = loaded.backend_settings::<election_etcd::EtcdConfig>("etcd")?;
            Ok(Arc::new(
                election_etcd::EtcdBackend::connect(config, timing).await?,
            ))
        }
        #[cfg(feature = "zookeeper")]
        "zookeeper" => {
            let config =
                loaded.backend_settings::<election_zookeeper::ZooKeeperConfig>("zookeeper")?;
            Ok(Arc::new(
                election_zookeeper::ZooKeeperBackend::connect(config, timing).await?,
            ))
        }
        other => Err(Failure::config(anyhow!(
            "backend {other:?} is not available in this build"
        ))),
    }
}

/// The backend `elector run`, `status` and `watch` use: the local agent for peer
/// backends, a direct connection otherwise.
pub(crate) async fn connect_client(
    loaded: &Loaded,
    kind: &'static str,
) -> Result<Arc<dyn Backend>, Failure> {
    if via_agent(kind) {
        Ok(Arc::new(crate::agent_client::AgentBackend::new(
            loaded.settings.agent.listen,
            kind,
            loaded.settings.timing,
        )))
    } else {
        connect(loaded, kind).await
    }
}
