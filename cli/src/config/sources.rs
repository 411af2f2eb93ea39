//! The layers (built-in defaults < config file < `ELECTOR_*` environment < flags) merged
//! by figment, and the words that say where a value came from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{DEFAULT_CONFIG_FILE, ENV_PREFIX, Settings};
use crate::exit::Failure;

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

/// One line per figment error (figment can report several).
pub(crate) fn figment_error(e: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
    anyhow!("invalid configuration: {}", lines.join("; "))
}

pub(super) fn describe_tag(fig: &Figment, tag: Tag, key: &str) -> String {
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
