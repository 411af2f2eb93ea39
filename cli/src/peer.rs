//! Peer backends hosted by `elector agent` (raft, bully): their members are the agents
//! themselves, so one code path reads their settings (`[backend.KIND]`, with `node_id`
//! defaulting to the top-level `node_id`), validates them, finds the kill grace their
//! leader lease leaves, and starts the node inside the agent. `elector run`, `status` and
//! `watch` reach them through the local agent (see [`crate::agent_client`]).
#![cfg_attr(
    not(any(feature = "raft", feature = "bully")),
    allow(
        dead_code,
        reason = "without a peer backend compiled in nothing uses the generic path"
    )
)]

use std::time::Duration;

use election_core::{Backend, NodeId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Loaded;
use crate::exit::Failure;

/// The settings every peer backend's config shares, as the cli needs them.
pub(crate) trait PeerConfig: DeserializeOwned + Serialize + Default {
    /// The backend kind, as in `[backend] kind`.
    const KIND: &'static str;
    /// The key of its kill grace, as written in the config file.
    const KILL_GRACE_KEY: &'static str;
    /// The node id slot, defaulted from the top-level `node_id`.
    fn node_id_mut(&mut self) -> &mut Option<NodeId>;
    /// The backend's own validation.
    fn check(&self) -> election_core::Result<()>;
    /// The kill grace its leader lease subtracts.
    fn kill_grace(&self) -> Duration;
}

#[cfg(feature = "raft")]
impl PeerConfig for election_raft::RaftConfig {
    const KIND: &'static str = "raft";
    const KILL_GRACE_KEY: &'static str = "backend.raft.kill_grace";
    fn node_id_mut(&mut self) -> &mut Option<NodeId> {
        &mut self.node_id
    }
    fn check(&self) -> election_core::Result<()> {
        self.validate()
    }
    fn kill_grace(&self) -> Duration {
        self.kill_grace
    }
}

#[cfg(feature = "bully")]
impl PeerConfig for election_bully::BullyConfig {
    const KIND: &'static str = "bully";
    const KILL_GRACE_KEY: &'static str = "backend.bully.kill_grace";
    fn node_id_mut(&mut self) -> &mut Option<NodeId> {
        &mut self.node_id
    }
    fn check(&self) -> election_core::Result<()> {
        self.validate()
    }
    fn kill_grace(&self) -> Duration {
        self.kill_grace
    }
}

/// Whether `kind` is a peer backend (hosted by the agent), compiled in or not.
pub(crate) fn is_peer(kind: &str) -> bool {
    matches!(kind, "raft" | "bully")
}

/// `[backend.KIND]` with `node_id` defaulting to the top-level `node_id`, not validated.
pub(crate) fn settings<C: PeerConfig>(loaded: &Loaded) -> Result<C, Failure> {
    let mut config = loaded.backend_settings::<C>(C::KIND)?;
    let slot = config.node_id_mut();
    if slot.is_none() {
        *slot = Some(loaded.node_id()?);
    }
    Ok(config)
}

/// `[backend.KIND]`, validated, with `node_id` defaulting to the top-level `node_id`.
pub(crate) fn config<C: PeerConfig>(loaded: &Loaded) -> Result<C, Failure> {
    let config = settings::<C>(loaded)?;
    config.check().map_err(|e| match e {
        election_core::Error::Config { key, reason } => {
            loaded.invalid(&format!("backend.{key}"), reason)
        }
        e => e.into(),
    })?;
    Ok(config)
}

/// The kill grace peer backend `kind`'s leader lease leaves, and its key; `None` for a
/// kind that is not a compiled-in peer backend.
pub(crate) fn kill_grace(
    loaded: &Loaded,
    kind: &str,
) -> Option<Result<(Duration, &'static str), Failure>> {
    fn of<C: PeerConfig>(loaded: &Loaded) -> Result<(Duration, &'static str), Failure> {
        Ok((config::<C>(loaded)?.kill_grace(), C::KILL_GRACE_KEY))
    }
    match kind {
        #[cfg(feature = "raft")]
        "raft" => Some(of::<election_raft::RaftConfig>(loaded)),
        #[cfg(feature = "bully")]
        "bully" => Some(of::<election_bully::BullyConfig>(loaded)),
        _ => {
            let _ = loaded;
            None
        }
    }
}

/// Checks peer backend `kind`'s settings; `None` if it is not a compiled-in peer kind.
pub(crate) fn check(loaded: &Loaded, kind: &str) -> Option<Result<(), Failure>> {
    kill_grace(loaded, kind).map(|r| r.map(|_| ()))
}

/// Peer backend `kind`'s effective settings as JSON; `None` if unreadable or not a peer.
pub(crate) fn effective_settings(loaded: &Loaded, kind: &str) -> Option<serde_json::Value> {
    match kind {
        #[cfg(feature = "raft")]
        "raft" => serde_json::to_value(settings::<election_raft::RaftConfig>(loaded).ok()?).ok(),
        #[cfg(feature = "bully")]
        "bully" => serde_json::to_value(settings::<election_bully::BullyConfig>(loaded).ok()?).ok(),
        _ => {
            let _ = loaded;
            None
        }
    }
}

/// Starts this host's member of peer backend `kind` (in the agent); `None` if it is not
/// a compiled-in peer kind.
pub(crate) async fn start(
    loaded: &Loaded,
    kind: &str,
) -> Option<Result<std::sync::Arc<dyn Backend>, Failure>> {
    match kind {
        #[cfg(feature = "raft")]
        "raft" => Some(start_raft(loaded).await),
        #[cfg(feature = "bully")]
        "bully" => Some(start_bully(loaded).await),
        _ => {
            let _ = loaded;
            None
        }
    }
}

#[cfg(feature = "raft")]
async fn start_raft(loaded: &Loaded) -> Result<std::sync::Arc<dyn Backend>, Failure> {
    let config = config::<election_raft::RaftConfig>(loaded)?;
    Ok(std::sync::Arc::new(
        election_raft::RaftNode::start(config).await?,
    ))
}

#[cfg(feature = "bully")]
async fn start_bully(loaded: &Loaded) -> Result<std::sync::Arc<dyn Backend>, Failure> {
    let config = config::<election_bully::BullyConfig>(loaded)?;
    Ok(std::sync::Arc::new(
        election_bully::BullyNode::start(config).await?,
    ))
}
