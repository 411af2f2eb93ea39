//! [`RedisConfig`]: where the server is, how to log in, how long to wait, which keys to use.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use election_core::{Error, LeaseTiming, Result};
use serde::{Deserialize, Serialize, Serializer};

/// How to reach Redis and which keys to use. Every field has a default; see each field.
///
/// `Debug` and `Serialize` redact secrets (the password and any password inside `url`), so
/// a printed or logged configuration is safe to share; keep real secrets in the environment
/// with [`password_env`](Self::password_env).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Server URL: `redis://[user[:password]@]host[:port][/db]` or `rediss://…` for TLS
    /// (certificates checked against the system's roots; append `#insecure` to skip the
    /// check, for tests only). Default `redis://127.0.0.1:6379`. With
    /// [`sentinel`](Self::sentinel) set, only the scheme, credentials and database of this
    /// URL are used; the host comes from the sentinels.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// ACL user name; overrides one in `url`. Default none (the `default` user).
    pub username: Option<String>,
    /// Password; overrides one in `url`. Default none. Never logged or serialized; prefer
    /// [`password_env`](Self::password_env).
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password, read at connect time; used
    /// when [`password`](Self::password) is not set. Default none. Connecting fails with a
    /// configuration error if the variable is named but not set.
    pub password_env: Option<String>,
    /// Database index; overrides one in `url`. Default none (the URL's, else 0).
    pub database: Option<i64>,
    /// Longest wait for a TCP (and TLS) connection to be established, each attempt.
    /// Default 2 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the answer to any one command. Default 1 s. Must be shorter than
    /// the leadership budget `ttl - clock_drift - kill_grace`, so a blackholed connection
    /// cannot hold a renewal past the leadership deadline (renewals are in any case cut
    /// off at that deadline).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Prefix of every key. Default `elector:`. The keys of election `E` are
    /// `{<prefix>E}:leader`, `{<prefix>E}:epoch` and the pub/sub channel
    /// `{<prefix>E}:channel`: one hash tag per election, so all keys of an election live in
    /// one Redis Cluster slot. Must not contain `{`, `}` or whitespace.
    pub key_prefix: String,
    /// For `rediss://`: a PEM file of CA certificates to trust instead of the system's
    /// roots (a private CA). Default none (the system's roots).
    pub tls_ca_file: Option<PathBuf>,
    /// For `rediss://` with client authentication (`tls-auth-clients yes`): this client's
    /// PEM certificate. Default none. Set together with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`. Default none.
    pub tls_key_file: Option<PathBuf>,
    /// Find the master through Redis Sentinel instead of `url`'s host. Default none.
    pub sentinel: Option<SentinelConfig>,
    /// Run `CONFIG SET notify-keyspace-events` at connect to add key-expiry events (`Kx`)
    /// to what the server already has, so waiters learn of an expired lease from a push
    /// instead of from their timer. Default `false` (needs the `CONFIG` permission and
    /// changes server-wide settings). Waiters always subscribe to these events and use
    /// them when the server sends them; without them they wake at the holder's remaining
    /// TTL, which is just as fast on loopback.
    pub keyspace_notifications: bool,
}

/// Redis Sentinel: the master is looked up by name, and again after a failover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentinelConfig {
    /// The monitored master's name, as in `sentinel monitor NAME …`. Default `mymaster`.
    pub master_name: String,
    /// The sentinels, as `host:port`. Default empty (which is refused: at least one).
    pub addresses: Vec<String>,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        SentinelConfig {
            master_name: "mymaster".into(),
            addresses: Vec::new(),
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            username: None,
            password: None,
            password_env: None,
            database: None,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            key_prefix: "elector:".into(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            sentinel: None,
            keyspace_notifications: false,
        }
    }
}

impl RedisConfig {
    /// The defaults with `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    /// Checks the settings that do not need the network: the URL's form, the key prefix,
    /// the timeouts against `timing`, the sentinel list. The error names the setting.
    pub fn validate(&self, timing: &LeaseTiming) -> Result<()> {
        timing.validate()?;
        parse_url(&self.url)?;
        if let Some(bad) = self
            .key_prefix
            .chars()
            .find(|c| matches!(c, '{' | '}') || c.is_whitespace() || c.is_control())
        {
            return Err(Error::config(
                "redis.key_prefix",
                format!(
                    "{:?} contains {bad:?}; braces would break the per-election hash tag and \
                     whitespace is not allowed",
                    self.key_prefix
                ),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "redis.connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.command_timeout.is_zero() || self.command_timeout >= timing.hold_budget() {
            return Err(Error::config(
                "redis.command_timeout",
                format!(
                    "({}) must be greater than zero and shorter than ttl - clock_drift - \
                     kill_grace ({}), so that one hung command cannot outlast a leadership",
                    humantime::format_duration(self.command_timeout),
                    humantime::format_duration(timing.hold_budget()),
                ),
            ));
        }
        if let Some(db) = self.database
            && db < 0
        {
            return Err(Error::config("redis.database", format!("{db} is negative")));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(Error::config(
                "redis.tls_cert_file",
                "set tls_cert_file and tls_key_file together (a client certificate needs its key)",
            ));
        }
        let tls_files = self.tls_ca_file.is_some() || self.tls_cert_file.is_some();
        if tls_files && !self.url.starts_with("rediss://") {
            return Err(Error::config(
                "redis.tls_ca_file",
                format!(
                    "TLS files are set but {:?} is not a rediss:// URL",
                    redact_url(&self.url)
                ),
            ));
        }
        if let Some(s) = &self.sentinel {
            if tls_files {
                return Err(Error::config(
                    "redis.sentinel",
                    "custom TLS files (tls_ca_file, tls_cert_file) are not supported with \
                     Sentinel; use certificates the system trusts",
                ));
            }
            if s.master_name.trim().is_empty() {
                return Err(Error::config(
                    "redis.sentinel.master_name",
                    "must not be empty",
                ));
            }
            if s.addresses.is_empty() {
                return Err(Error::config(
                    "redis.sentinel.addresses",
                    "name at least one sentinel as host:port",
                ));
            }
            for a in &s.addresses {
                parse_host_port(a).map_err(|reason| {
                    Error::config("redis.sentinel.addresses", format!("{a:?}: {reason}"))
                })?;
            }
        }
        Ok(())
    }

    /// The custom TLS material, read from the files named in the configuration.
    pub(crate) fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>> {
        let read = |key: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| {
                Error::config(
                    format!("redis.{key}"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })
        };
        if self.tls_ca_file.is_none() && self.tls_cert_file.is_none() {
            return Ok(None);
        }
        let root_cert = match &self.tls_ca_file {
            Some(p) => Some(read("tls_ca_file", p)?),
            None => None,
        };
        let client_tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                client_cert: read("tls_cert_file", c)?,
                client_key: read("tls_key_file", k)?,
            }),
            _ => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }

    /// The password to use: `password`, else the variable named by `password_env`.
    pub(crate) fn resolve_password(&self) -> Result<Option<String>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        match &self.password_env {
            None => Ok(None),
            Some(var) => match std::env::var(var) {
                Ok(p) => Ok(Some(p)),
                Err(e) => Err(Error::config(
                    "redis.password_env",
                    format!("environment variable {var} cannot be read: {e}"),
                )),
            },
        }
    }
}

/// Parses and checks a server URL, with a configuration error naming `redis.url`.
pub(crate) fn parse_url(url: &str) -> Result<redis::ConnectionInfo> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("redis" | "rediss" | "unix" | "redis+unix")) {
        return Err(Error::config(
            "redis.url",
            format!(
                "{:?} is not a Redis URL: expected redis://host:port/db or rediss://host:port/db",
                redact_url(url)
            ),
        ));
    }
    redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| {
        Error::config(
            "redis.url",
            format!("{:?} is not a valid Redis URL: {e}", redact_url(url)),
        )
    })
}

/// `host:port` → (host, port).
pub(crate) fn parse_host_port(s: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = port
        .parse::<u16>()
        .map_err(|e| format!("the port {port:?} is not a number from 0 to 65535: {e}"))?;
    Ok((host.to_owned(), port))
}

/// `url` with any password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                None => userinfo.to_owned(),
            };
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn serialize_redacted_url<S: Serializer>(url: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("database", &self.database)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("sentinel", &self.sentinel)
            .field("keyspace_notifications", &self.keyspace_notifications)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LeaseTiming {
        LeaseTiming::default()
    }

    #[test]
    fn defaults_are_valid_with_default_timing() {
        RedisConfig::default().validate(&timing()).unwrap();
    }

    #[test]
    fn debug_and_serialize_never_show_a_password() {
        let c = RedisConfig {
            url: "redis://alice:s3cret@db.example:6380/2".into(),
            password: Some("hunter2".into()),
            ..RedisConfig::default()
        };
        let debug = format!("{c:?}");
        let toml = toml::to_string(&c).unwrap();
        for shown in [&debug, &toml] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(
            debug.contains("redis://alice:***@db.example:6380/2"),
            "{debug}"
        );
    }

    #[test]
    fn redact_url_keeps_everything_but_the_password() {
        assert_eq!(redact_url("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact_url("rediss://u@h:1"), "rediss://u@h:1");
        assert_eq!(redact_url("redis://:pw@h:1/3"), "redis://:***@h:1/3");
        assert_eq!(redact_url("redis://u:p@ss@h"), "redis://u:***@h");
    }

    #[test]
    fn an_invalid_url_is_a_config_error_naming_the_setting() {
        for url in [
            "http://localhost:6379",
            "localhost:6379",
            "redis://h:notaport",
        ] {
            let err = RedisConfig::with_url(url).validate(&timing()).unwrap_err();
            assert_eq!(err.kind(), election_core::ErrorKind::Config, "{url}: {err}");
            assert!(err.to_string().contains("redis.url"), "{err}");
        }
    }

    #[test]
    fn a_prefix_with_a_brace_is_refused_because_it_breaks_the_hash_tag() {
        let c = RedisConfig {
            key_prefix: "a{b".into(),
            ..RedisConfig::default()
        };
        let err = c.validate(&timing()).unwrap_err().to_string();
        assert!(
            err.contains("redis.key_prefix") && err.contains("hash tag"),
            "{err}"
        );
    }

    #[test]
    fn a_command_timeout_longer_than_the_leadership_budget_is_refused() {
        let c = RedisConfig::default();
        let err = c
            .validate(&LeaseTiming::fast_for_tests())
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis.command_timeout"), "{err}");
    }

    #[test]
    fn sentinel_needs_addresses_in_host_port_form() {
        let mut c = RedisConfig {
            sentinel: Some(SentinelConfig::default()),
            ..RedisConfig::default()
        };
        assert!(c.validate(&timing()).is_err());
        c.sentinel.as_mut().unwrap().addresses = vec!["127.0.0.1".into()];
        let err = c.validate(&timing()).unwrap_err().to_string();
        assert!(err.contains("redis.sentinel.addresses"), "{err}");
        c.sentinel.as_mut().unwrap().addresses =
            vec!["127.0.0.1:26379".into(), "[::1]:26379".into()];
        c.validate(&timing()).unwrap();
        assert_eq!(
            parse_host_port("[::1]:26379").unwrap(),
            ("::1".into(), 26379)
        );
    }

    #[test]
    fn tls_files_need_rediss_and_a_cert_needs_its_key() {
        let c = RedisConfig {
            tls_ca_file: Some("/ca.pem".into()),
            ..RedisConfig::default()
        };
        assert!(
            c.validate(&timing())
                .unwrap_err()
                .to_string()
                .contains("rediss://")
        );
        let c = RedisConfig {
            tls_cert_file: Some("/c.pem".into()),
            ..RedisConfig::with_url("rediss://h:1")
        };
        assert!(
            c.validate(&timing())
                .unwrap_err()
                .to_string()
                .contains("tls_key_file")
        );
        let c = RedisConfig {
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisConfig::with_url("rediss://h:1")
        };
        c.validate(&timing()).unwrap();
        let err = match c.tls_certificates() {
            Ok(_) => panic!("an unreadable CA file was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("redis.tls_ca_file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn password_comes_from_the_named_environment_variable() {
        let c = RedisConfig {
            password_env: Some("ELECTOR_REDIS_TEST_SURELY_UNSET_VAR".into()),
            ..RedisConfig::default()
        };
        let err = c.resolve_password().unwrap_err().to_string();
        assert!(err.contains("ELECTOR_REDIS_TEST_SURELY_UNSET_VAR"), "{err}");
        let c = RedisConfig {
            password_env: Some("PATH".into()),
            ..RedisConfig::default()
        };
        assert!(c.resolve_password().unwrap().is_some());
    }

    #[test]
    fn unknown_fields_are_refused_and_durations_are_human() {
        let c: RedisConfig =
            toml::from_str("url = \"redis://h:1\"\ncommand_timeout = \"250ms\"").unwrap();
        assert_eq!(c.command_timeout, Duration::from_millis(250));
        assert!(toml::from_str::<RedisConfig>("nope = 1").is_err());
    }
}
