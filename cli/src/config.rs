//! The one configuration model: built-in defaults < config file < `ELECTOR_*` environment <
//! command-line flags, merged by figment, with the source of every value kept for
//! `elector config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use election_core::{LeaseTiming, NodeId};
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::exit::Failure;

/// The config file read when `--config` is not given, if it exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/elector/elector.toml";
/// The prefix of configuration environment variables; nesting is written `__`.
pub(crate) const ENV_PREFIX: &str = "ELECTOR_";
/// Every backend kind this program knows, whether compiled in or not.
pub(crate) const KNOWN_KINDS: &[&str] = &["raft", "bully", "redis", "etcd", "zookeeper"];

/// The whole configuration, after merging.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// This node's id. Default: the hostname.
    pub(crate) node_id: Option<String>,
    /// `[backend]`: `kind` selects the backend; `[backend.KIND]` holds its settings.
    pub(crate) backend: BackendSection,
    /// `[timing]`: lease timing for lease backends (redis, etcd, zookeeper), and the pace
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
    /// `raft`, `bully`, `redis`, `etcd` or `zookeeper`. No default.
    pub(crate) kind: Option<String>,
    /// `[backend.raft]`: `election_raft::RaftConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) raft: Option<Value>,
    /// `[backend.bully]`: `election_bully::BullyConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bully: Option<Value>,
    /// `[backend.redis]`: `election_redis::RedisConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis: Option<Value>,
    /// `[backend.etcd]`: `election_etcd::EtcdConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) etcd: Option<Value>,
    /// `[backend.zookeeper]`: `election_zookeeper::ZooKeeperConfig`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) zookeeper: Option<Value>,
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
    /// Where the agent's HTTP API listens, and where `elector run`/`status` find it.
    /// Default `127.0.0.1:7207`.
    pub(crate) listen: SocketAddr,
    /// Elections the agent reports on in `/v1/status` even before anyone campaigns.
    pub(crate) elections: Vec<String>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7207)),
            elections: Vec::new(),
        }
    }
}

/// Values given as command-line flags, as dotted keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlagValues {
    dict: Dict,
}

impl FlagValues {
    /// Sets `key` (dotted) to `value`.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) {
        let nested = figment::util::nest(key, value.into());
        if let Value::Dict(_, d) = nested {
            merge_into(&mut self.dict, d);
        }
    }

    /// Sets `key` to a duration, written as humantime does.
    pub(crate) fn set_duration(&mut self, key: &str, d: Duration) {
        self.set(key, humantime::format_duration(d).to_string());
    }

    /// Parses `KEY=VALUE` from `--set`; VALUE is read as a TOML value, else as a string.
    pub(crate) fn set_pair(&mut self, pair: &str) -> anyhow::Result<()> {
        let (key, raw) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {pair:?}: expected KEY=VALUE"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .map(toml_to_value)
            .unwrap_or_else(|| Value::from(raw.to_owned()));
        self.set(key.trim(), value);
        Ok(())
    }
}

fn merge_into(into: &mut Dict, from: Dict) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge_into(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn toml_to_value(v: toml::Value) -> Value {
    Value::serialize(v).unwrap_or_else(|_| Value::from(String::new()))
}

struct Named<P> {
    name: &'static str,
    inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

struct Flags(Dict);

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flag")
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

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

/// Environment keys that `elector run` sets for its child, not configuration.
const CHILD_ENV_KEYS: &[&str] = &["epoch", "election", "backend", "config", "log_format"];

/// Builds the layered figment.
pub(crate) fn figment(
    config_file: Option<&Path>,
    flags: &FlagValues,
) -> Result<(Figment, Option<PathBuf>), Failure> {
    let mut fig = Figment::new().merge(Named {
        name: "built-in default",
        inner: Serialized::defaults(Settings::default()),
    });
    let file = match config_file {
        Some(path) => {
            if !path.is_file() {
                return Err(Failure::config(anyhow!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            Some(path.to_path_buf())
        }
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    if let Some(path) = &file {
        // Read it ourselves so a TOML syntax error carries the line and column.
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))
            .map_err(Failure::config)?;
        if let Err(e) = toml::from_str::<toml::Table>(&text) {
            return Err(Failure::config(anyhow!(
                "config file {}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', " ")
            )));
        }
        fig = fig.merge(Toml::file_exact(path));
    }
    fig = fig.merge(Env::prefixed(ENV_PREFIX).ignore(CHILD_ENV_KEYS).split("__"));
    fig = fig.merge(Flags(flags.dict.clone()));
    Ok((fig, file))
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

/// One line per figment error (figment can report several).
pub(crate) fn figment_error(e: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
    anyhow!("invalid configuration: {}", lines.join("; "))
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

    /// The selected backend kind, checked against the known and compiled-in kinds.
    pub(crate) fn backend_kind(&self) -> Result<&'static str, Failure> {
        let Some(kind) = self.settings.backend.kind.as_deref() else {
            return Err(Failure::config(anyhow!(
                "invalid configuration: missing key backend.kind: choose one of {} in [backend] of {} (or --config FILE), ELECTOR_BACKEND__KIND, or --backend",
                KNOWN_KINDS.join(", "),
                DEFAULT_CONFIG_FILE
            )));
        };
        if kind == "memory" {
            return Err(self.invalid(
                "backend.kind",
                format!(
                    "the memory backend is not available to elector: it lives inside one \
                     process and coordinates nothing between hosts, so every host would run \
                     the job; choose one of {}",
                    KNOWN_KINDS.join(", ")
                ),
            ));
        }
        let Some(known) = KNOWN_KINDS.iter().find(|k| **k == kind) else {
            return Err(self.invalid(
                "backend.kind",
                format!(
                    "unknown backend {kind:?}; known backends: {}",
                    KNOWN_KINDS.join(", ")
                ),
            ));
        };
        if !crate::backends::compiled_in(known) {
            return Err(self.invalid(
                "backend.kind",
                format!(
                    "this elector was built without the `{known}` feature; rebuild with `--features {known}`"
                ),
            ));
        }
        Ok(known)
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
            .map_err(|e| Failure::config(figment_error(e)))
    }

    /// The most a guarded child may get between SIGTERM and SIGKILL: the kill grace the
    /// backend's leadership deadline already subtracts (`timing.kill_grace`, or
    /// `backend.KIND.kill_grace` for the peer backends raft and bully), and the key that
    /// sets it.
    pub(crate) fn kill_grace_limit(&self) -> Result<(Duration, &'static str), Failure> {
        if let Some(kind) = self.settings.backend.kind.as_deref() {
            if let Some(peer) = crate::peer::kill_grace(self, kind) {
                return peer;
            }
        }
        Ok((self.settings.timing.kill_grace, "timing.kill_grace"))
    }

    /// The kill grace for `run`: the flag or `run.kill_grace`, else the backend's (see
    /// [`Loaded::kill_grace_limit`]); refused if it exceeds the backend's, because then the
    /// child could outlive the lease.
    pub(crate) fn kill_grace(&self) -> Result<Duration, Failure> {
        let (limit, key) = self.kill_grace_limit()?;
        match self.settings.run.kill_grace {
            None => Ok(limit),
            Some(g) if g <= limit => Ok(g),
            Some(g) => Err(self.invalid(
                "run.kill_grace",
                format!(
                    "{} exceeds {key} ({}): the leadership deadline leaves only {key} for the child to die, so a longer grace could let it run on after another node is elected; raise {key} instead",
                    humantime::format_duration(g),
                    humantime::format_duration(limit)
                ),
            )),
        }
    }

    /// Every check `elector config --check` runs that needs no backend connection.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        self.node_id()?;
        self.settings.timing.validate().map_err(|e| match e {
            election_core::Error::Config { key, reason } => self.invalid(&key, reason),
            e => Failure::config(e.into()),
        })?;
        self.kill_grace()?;
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
        for name in &self.settings.agent.elections {
            election_core::ElectionName::new(name.clone())
                .map_err(|e| self.invalid("agent.elections", e))?;
        }
        let kind = self.backend_kind()?;
        crate::backends::check_settings(self, kind)
    }

    /// Every effective value with its source, as `(dotted key, TOML value, source)`.
    pub(crate) fn entries(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Ok(root) = self.figment.find_value("") {
            walk(&self.figment, "", &root, &mut out);
        } else if let Ok(v) = self.figment.extract::<Value>() {
            walk(&self.figment, "", &v, &mut out);
        }
        if self.settings.node_id.is_none() {
            let host = self
                .node_id()
                .map(|n| format!("{:?}", n.as_str()))
                .unwrap_or_else(|_| "(invalid hostname)".to_owned());
            out.insert(0, ("node_id".into(), host, "hostname".into()));
        }
        // The selected backend's settings as the backend reads them: given values are shown
        // as its `Serialize` renders them (it redacts secrets), the rest as defaults.
        let mut effective = Vec::new();
        if let Ok(kind) = self.backend_kind() {
            if let Some(v) = crate::backends::effective_settings(self, kind) {
                flatten_json(&format!("backend.{kind}"), &v, &mut effective);
            }
        }
        for (key, value, _) in out.iter_mut() {
            if let Some((_, v)) = effective.iter().find(|(k, _)| k == key) {
                *value = v.clone();
            }
        }
        for (key, value) in effective {
            if !out
                .iter()
                .any(|(k, _, _)| *k == key || key.starts_with(&format!("{k}.")))
            {
                let peer_node_id = key
                    .strip_prefix("backend.")
                    .and_then(|k| k.strip_suffix(".node_id"))
                    .is_some_and(crate::peer::is_peer);
                let source = if peer_node_id {
                    "node_id"
                } else {
                    "built-in default (backend)"
                };
                out.push((key, value, source.into()));
            }
        }
        for (key, value, _) in out.iter_mut() {
            if key.starts_with("backend.") && is_secret(key) && value != "null" {
                *value = "\"<redacted>\"".into();
            }
        }
        out
    }
}

/// Whether a key holds a secret that must not be printed. (URLs with credentials are
/// redacted by the backend crates' own `Serialize`.)
fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    matches!(last, "password" | "secret" | "token")
}

fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten_json(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Null => {}
        leaf => out.push((prefix.to_owned(), leaf.to_string())),
    }
}

fn walk(fig: &Figment, prefix: &str, v: &Value, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Dict(_, d) if !d.is_empty() => {
            for (k, v) in d {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(fig, &key, v, out);
            }
        }
        Value::Empty(..) => {}
        leaf => {
            let rendered = serde_json::to_string(leaf).unwrap_or_else(|_| "?".into());
            out.push((
                prefix.to_owned(),
                rendered,
                describe_tag(fig, leaf.tag(), prefix),
            ));
        }
    }
}

fn describe_tag(fig: &Figment, tag: Tag, key: &str) -> String {
    let Some(md) = fig.get_metadata(tag) else {
        return "built-in default".to_owned();
    };
    match &md.source {
        Some(figment::Source::File(path)) => format!("file {}", path.display()),
        _ if md.name.contains("environment") => format!(
            "environment variable {ENV_PREFIX}{}",
            key.replace('.', "__").to_ascii_uppercase()
        ),
        _ => md.name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[cfg(feature = "redis")]
    #[test]
    fn flags_override_the_file_and_sources_are_reported() {
        let f = file("node_id = \"n1\"\n[backend]\nkind = \"redis\"\n[timing]\nttl = \"20s\"\n");
        let mut flags = FlagValues::default();
        flags.set_duration("run.min_hold", Duration::from_secs(5));
        flags.set_pair("timing.kill_grace=\"1s\"").unwrap();
        let l = load(Some(f.path()), &flags).unwrap();
        assert_eq!(l.settings.timing.ttl, Duration::from_secs(20));
        assert_eq!(l.settings.run.min_hold, Duration::from_secs(5));
        assert_eq!(l.settings.timing.kill_grace, Duration::from_secs(1));
        assert!(
            l.source_of("timing.ttl")
                .contains(&f.path().display().to_string())
        );
        assert_eq!(l.source_of("run.min_hold"), "command-line flag");
        assert_eq!(l.source_of("timing.clock_drift"), "built-in default");
        l.check().unwrap();
    }

    #[test]
    fn an_unknown_backend_is_refused_listing_the_known_ones() {
        let f = file("[backend]\nkind = \"zoo\"\n");
        let l = load(Some(f.path()), &FlagValues::default()).unwrap();
        let e = l.backend_kind().unwrap_err();
        let msg = format!("{:#}", e.error);
        assert!(msg.contains("backend.kind"), "{msg}");
        assert!(msg.contains("raft, bully, redis, etcd, zookeeper"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
    }

    #[test]
    fn the_memory_kind_is_refused_because_it_coordinates_nothing() {
        let f = file("[backend]\nkind = \"memory\"\n");
        let l = load(Some(f.path()), &FlagValues::default()).unwrap();
        let msg = format!("{:#}", l.backend_kind().unwrap_err().error);
        assert!(msg.contains("backend.kind"), "{msg}");
        assert!(msg.contains("coordinates nothing"), "{msg}");
    }

    #[test]
    fn the_memory_settings_table_is_an_unknown_key() {
        let f = file("[backend.memory]\n");
        let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
        assert!(format!("{:#}", e.error).contains("memory"));
    }

    #[test]
    fn a_bad_duration_names_the_key_and_the_file() {
        let f = file("[timing]\nttl = \"ten seconds\"\n");
        let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
        let msg = format!("{:#}", e.error);
        assert!(msg.contains("timing.ttl"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
    }

    #[test]
    fn a_toml_syntax_error_names_the_line() {
        let f = file("[timing]\nttl = \n");
        let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
        let msg = format!("{:#}", e.error);
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_kill_grace_longer_than_the_timing_allows_is_refused() {
        let f = file("[backend]\nkind = \"redis\"\n[run]\nkill_grace = \"5s\"\n");
        let l = load(Some(f.path()), &FlagValues::default()).unwrap();
        let msg = format!("{:#}", l.check().unwrap_err().error);
        assert!(msg.contains("run.kill_grace"), "{msg}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let f = file("[timing]\nttll = \"5s\"\n");
        let e = load(Some(f.path()), &FlagValues::default()).unwrap_err();
        assert!(format!("{:#}", e.error).contains("ttll"));
    }
}
