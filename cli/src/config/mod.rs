//! The one configuration model: built-in defaults < config file < `ELECTOR_*` environment <
//! command-line flags, merged by figment, with the source of every value kept for
//! `elector config`. It knows the shape of `[backend.KIND]` tables only as values; what
//! they mean is [`crate::backend`]'s business.

mod entries;
mod settings;
mod sources;

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use election_core::NodeId;
use figment::Figment;

use crate::exit::Failure;
pub(crate) use entries::BackendEntries;
pub(crate) use settings::{Restart, Settings};
use sources::describe_tag;
pub(crate) use sources::{FlagValues, figment, figment_error};

/// The config file read when `--config` is not given, if it exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/elector/elector.toml";
/// The socket of an agent run by root (a system service).
pub(crate) const SYSTEM_AGENT_SOCKET: &str = "/run/elector/agent.sock";
/// The prefix of configuration environment variables; nesting is written `__`.
pub(crate) const ENV_PREFIX: &str = "ELECTOR_";

/// The loaded configuration: the merged figment (with sources) and the typed settings.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The merged layers.
    pub(crate) figment: Figment,
    /// The typed settings.
    pub(crate) settings: Settings,
    /// The config file that was read, if any.
    pub(crate) file: Option<PathBuf>,
}

/// Loads and type-checks the configuration (without backend-specific checks).
pub(crate) fn load(config_file: Option<&Path>, flags: &FlagValues) -> Result<Loaded, Failure> {
    let (figment, file) = figment(config_file, flags)?;
    let settings: Settings = figment
        .extract()
        .map_err(|e| Failure::config(figment_error(e)))?;
    Ok(Loaded {
        figment,
        settings,
        file,
    })
}

impl Loaded {
    /// Where the value at dotted `key` came from, in words.
    pub(crate) fn source_of(&self, key: &str) -> String {
        match self.figment.find_value(key) {
            Ok(v) => describe_tag(&self.figment, v.tag(), key),
            Err(_) => "built-in default".to_owned(),
        }
    }

    /// A validation error for `key`, naming where its value came from.
    pub(crate) fn invalid(&self, key: &str, reason: impl std::fmt::Display) -> Failure {
        Failure::config(anyhow!(
            "invalid configuration: {key} (from {}): {reason}",
            self.source_of(key)
        ))
    }

    /// The agent's Unix socket: `agent.socket`; else the system agent's
    /// `/run/elector/agent.sock` for root, or for anyone once that socket or its directory
    /// exists (so the members of `agent.socket_group` find it, and an agent running as its
    /// own user in systemd's `RuntimeDirectory=elector` binds it); else
    /// `$XDG_RUNTIME_DIR/elector/agent.sock`,
    /// else `/tmp/elector-UID/agent.sock` (whose directory the agent refuses unless it is
    /// this user's own).
    pub(crate) fn agent_socket(&self) -> PathBuf {
        if let Some(p) = &self.settings.agent.socket {
            return p.clone();
        }
        let system = PathBuf::from(SYSTEM_AGENT_SOCKET);
        let uid = nix::unistd::geteuid();
        if uid.is_root() || system.exists() || system.parent().is_some_and(Path::is_dir) {
            return system;
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("elector/agent.sock"),
            _ => PathBuf::from(format!("/tmp/elector-{uid}/agent.sock")),
        }
    }

    /// The node id: `node_id`, else the hostname; validated.
    pub(crate) fn node_id(&self) -> Result<NodeId, Failure> {
        match &self.settings.node_id {
            Some(id) => NodeId::new(id.clone()).map_err(|e| self.invalid("node_id", e)),
            None => {
                let host = nix::unistd::gethostname().map_err(|e| {
                    Failure::config(anyhow!(
                        "node_id is not set and the hostname cannot be read: {e}"
                    ))
                })?;
                let host = host.to_string_lossy().into_owned();
                NodeId::new(host.clone()).map_err(|e| {
                    Failure::config(anyhow!(
                        "node_id is not set and the hostname {host:?} is not a valid node id ({e}); set node_id in the config file or ELECTOR_NODE_ID"
                    ))
                })
            }
        }
    }

    /// The settings of backend `kind`, from `[backend.KIND]`.
    #[allow(dead_code, reason = "used by the backend features")]
    pub(crate) fn backend_settings<T: serde::de::DeserializeOwned + Default>(
        &self,
        kind: &str,
    ) -> Result<T, Failure> {
        let key = format!("backend.{kind}");
        if !self.figment.contains(&key) {
            return Ok(T::default());
        }
        self.figment
            .extract_inner::<T>(&key)
            .map_err(|e| Failure::config(figment_error(key_first(e, &key))))
    }

    /// Every check of the general settings (the backend's own are in
    /// [`crate::backend`]).
    pub(crate) fn check(&self) -> Result<(), Failure> {
        self.node_id()?;
        self.settings.timing.validate().map_err(|e| match e {
            election_core::Error::Config { key, reason } => self.invalid(&key, reason),
            e => Failure::config(e.into()),
        })?;
        if self.settings.run.restart_delay.is_zero() {
            return Err(self.invalid("run.restart_delay", "must be greater than zero"));
        }
        if self.settings.run.restart_delay_max < self.settings.run.restart_delay {
            return Err(self.invalid(
                "run.restart_delay_max",
                "must be at least run.restart_delay",
            ));
        }
        if let Some(name) = &self.settings.run.election {
            election_core::ElectionName::new(name.clone())
                .map_err(|e| self.invalid("run.election", e))?;
        }
        if self.settings.agent.max_elections == 0 {
            return Err(self.invalid("agent.max_elections", "must be at least 1"));
        }
        if self.settings.agent.elections.len() > self.settings.agent.max_elections {
            return Err(self.invalid(
                "agent.elections",
                format!(
                    "lists {} elections, more than agent.max_elections ({})",
                    self.settings.agent.elections.len(),
                    self.settings.agent.max_elections
                ),
            ));
        }
        if self.settings.agent.forget_after.is_zero() {
            return Err(self.invalid("agent.forget_after", "must be greater than zero"));
        }
        for name in &self.settings.agent.elections {
            election_core::ElectionName::new(name.clone())
                .map_err(|e| self.invalid("agent.elections", e))?;
        }
        Ok(())
    }
}

/// figment 0.10 names a bad key inside an `extract_inner(KEY)` as `inner.KEY`
/// (`conect_string.backend.zookeeper`); put `KEY` first, as the file spells it.
fn key_first(e: figment::Error, key: &str) -> figment::Error {
    let suffix = format!(".{key}");
    e.into_iter()
        .map(|mut e| {
            let path = e.path.join(".");
            if let Some(inner) = path.strip_suffix(&suffix) {
                e.path = key
                    .split('.')
                    .chain(inner.split('.'))
                    .map(str::to_owned)
                    .collect();
            }
            e
        })
        .reduce(figment::Error::chain)
        .unwrap_or_else(|| figment::Error::from(format!("invalid {key}")))
}

#[cfg(test)]
mod tests;
