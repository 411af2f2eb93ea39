//! `ZooKeeperConfig`: where ZooKeeper is, how to authenticate, where our znodes live, and
//! timeouts.

use std::fmt;
use std::time::Duration;

use election_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How to reach ZooKeeper and where to keep election znodes.
///
/// Every field has a default, so an empty TOML table is a valid configuration for a local
/// ZooKeeper on `127.0.0.1:2181` without authentication.
///
/// The digest credentials are never logged: `Debug` redacts them and they are never
/// serialized (so `elector config` cannot print them). Prefer
/// [`digest_auth_env`](Self::digest_auth_env), which names an environment variable holding
/// them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZooKeeperConfig {
    /// ZooKeeper's connect string: comma-separated `host:port` pairs, optionally followed by
    /// a chroot path that must already exist, as in `zk1:2181,zk2:2181,zk3:2181/apps`. The
    /// client connects to one server and moves to another if it fails. Default
    /// `127.0.0.1:2181`.
    pub connect_string: String,

    /// Parent znode of every election: election `NAME` lives in `<prefix>/NAME`, created
    /// (persistent, with its parents) as needed. An absolute ZooKeeper path, below the
    /// chroot if the connect string has one. Default `/elector`.
    pub prefix: String,

    /// The session timeout to ask ZooKeeper for. ZooKeeper negotiates it into its
    /// `[minSessionTimeout, maxSessionTimeout]` range; the backend refuses to start if the
    /// negotiated value exceeds `timing.ttl`, and measures every deadline with the
    /// negotiated value. Default: none, meaning `timing.ttl`.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Option<Duration>,

    /// How long establishing a session may take before
    /// [`ZooKeeperBackend::connect`](crate::ZooKeeperBackend::connect) (or a campaign that
    /// needs a new session after an expiry) fails. Default 3 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,

    /// Timeout of every request to ZooKeeper. The effective value is capped at the lease
    /// timing's `renew_interval`, so a stuck request never eats a renewal's budget.
    /// Default 1 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,

    /// How long before a renewal started the ZooKeeper *leader* may last have heard of our
    /// session while the server we talk to (a follower) still answers us: the follower
    /// passes the session touches it receives on to the leader only in its replies to the
    /// leader's pings (every `tickTime / 2`), and ZooKeeper keeps a follower in the quorum
    /// while it trails the leader by up to `syncLimit × tickTime`. Each renewal's deadline
    /// is measured from the start of a request that was answered at least this long before
    /// the renewal began (see the crate documentation), so this is counted in the margin.
    ///
    /// Set it to `(syncLimit + 1) × tickTime` of the ensemble (the ZooKeeper sample
    /// configuration, `tickTime=2000` and `syncLimit=5`, gives `12s`; then `timing.ttl`
    /// must be at least `follower_lag + 2 × renew_interval + clock_drift + kill_grace`).
    /// `0s` is right only for a standalone server (no followers). Required when the
    /// connect string names several servers; default `0s` when it names one (which is
    /// wrong if that one address is a load balancer or DNS name in front of an ensemble:
    /// set it then).
    #[serde(with = "humantime_serde")]
    pub follower_lag: Option<Duration>,

    /// Digest credentials `user:password` (ZooKeeper's `addauth digest user:password`).
    /// When set, every znode this backend creates is readable and writable by that user
    /// only (`creator_all` ACL). Never serialized or logged; prefer
    /// [`digest_auth_env`](Self::digest_auth_env). Default: none (world-writable znodes).
    #[serde(skip_serializing)]
    pub digest_auth: Option<String>,

    /// Name of an environment variable holding the digest credentials `user:password`,
    /// read at connect time. Default: none.
    pub digest_auth_env: Option<String>,
}

impl Default for ZooKeeperConfig {
    fn default() -> Self {
        ZooKeeperConfig {
            connect_string: "127.0.0.1:2181".to_owned(),
            prefix: "/elector".to_owned(),
            session_timeout: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(1),
            follower_lag: None,
            digest_auth: None,
            digest_auth_env: None,
        }
    }
}

impl fmt::Debug for ZooKeeperConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperConfig")
            .field("connect_string", &self.connect_string)
            .field("prefix", &self.prefix)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("follower_lag", &self.follower_lag)
            .field(
                "digest_auth",
                &self.digest_auth.as_ref().map(|_| "<redacted>"),
            )
            .field("digest_auth_env", &self.digest_auth_env)
            .finish()
    }
}

/// The longest accepted prefix, in bytes.
const MAX_PREFIX_LEN: usize = 512;

impl ZooKeeperConfig {
    /// A configuration for `connect_string` with every other setting at its default.
    pub fn with_connect_string(connect_string: impl Into<String>) -> Self {
        ZooKeeperConfig {
            connect_string: connect_string.into(),
            ..ZooKeeperConfig::default()
        }
    }

    /// Checks the settings without touching the network. The error names the setting
    /// (`zookeeper.<field>`) and the rule.
    pub fn validate(&self) -> Result<()> {
        validate_connect_string(&self.connect_string)?;
        validate_prefix(&self.prefix)?;
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "zookeeper.connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config(
                "zookeeper.request_timeout",
                "must be greater than zero",
            ));
        }
        if self.session_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config(
                "zookeeper.session_timeout",
                "must be greater than zero",
            ));
        }
        if self.follower_lag.is_none() && self.server_count() > 1 {
            return Err(Error::config(
                "zookeeper.follower_lag",
                format!(
                    "must be set when the connect string names several servers ({}): set it \
                     to (syncLimit + 1) × tickTime of the ensemble (12s for ZooKeeper's sample \
                     tickTime=2000, syncLimit=5): a follower cut off from the ensemble's \
                     leader can still answer us that long after the leader last heard of \
                     our session",
                    self.connect_string
                ),
            ));
        }
        if self.digest_auth.is_some() && self.digest_auth_env.is_some() {
            return Err(Error::config(
                "zookeeper.digest_auth",
                "set either digest_auth or digest_auth_env, not both",
            ));
        }
        if let Some(a) = &self.digest_auth {
            check_digest("zookeeper.digest_auth", a)?;
        }
        Ok(())
    }

    /// How many servers the connect string names.
    fn server_count(&self) -> usize {
        let hosts = self
            .connect_string
            .split('/')
            .next()
            .unwrap_or(&self.connect_string);
        hosts.split(',').filter(|h| !h.trim().is_empty()).count()
    }

    /// [`follower_lag`](Self::follower_lag) in force: as set, else zero (one server).
    pub(crate) fn effective_follower_lag(&self) -> Duration {
        self.follower_lag.unwrap_or(Duration::ZERO)
    }

    /// The digest credentials, from the config or from the environment variable it names.
    pub(crate) fn digest(&self) -> Result<Option<String>> {
        if let Some(a) = &self.digest_auth {
            return Ok(Some(a.clone()));
        }
        match &self.digest_auth_env {
            None => Ok(None),
            Some(var) => match std::env::var(var) {
                Ok(a) => {
                    check_digest("zookeeper.digest_auth_env", &a)?;
                    Ok(Some(a))
                }
                Err(e) => Err(Error::config(
                    "zookeeper.digest_auth_env",
                    format!("environment variable {var} cannot be read: {e}"),
                )),
            },
        }
    }

    /// The connect string without anything secret, for messages.
    pub fn address(&self) -> &str {
        &self.connect_string
    }
}

fn check_digest(key: &str, value: &str) -> Result<()> {
    match value.split_once(':') {
        Some((user, _)) if !user.is_empty() => Ok(()),
        // Never echo the value: it holds a password.
        _ => Err(Error::config(
            key,
            "must be of the form user:password with a non-empty user",
        )),
    }
}

fn validate_connect_string(s: &str) -> Result<()> {
    let bad = |reason: String| Err(Error::config("zookeeper.connect_string", reason));
    if s.is_empty() {
        return bad("must name at least one server, such as \"127.0.0.1:2181\"".into());
    }
    let (hosts, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    if let Some(chroot) = chroot {
        if chroot.len() > 1 {
            if let Err(reason) = check_path(chroot) {
                return bad(format!("the chroot {chroot:?} {reason}"));
            }
        }
    }
    for host_port in hosts.split(',') {
        let host_port = host_port.trim();
        let Some((host, port)) = host_port.rsplit_once(':') else {
            return bad(format!(
                "{host_port:?} has no port: write servers as HOST:PORT (ZooKeeper's default \
                 is 2181), separated by commas"
            ));
        };
        if host.is_empty() || port.parse::<u16>().is_err() || host.contains("://") {
            return bad(format!("{host_port:?} is not of the form HOST:PORT"));
        }
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(Error::config(
            "zookeeper.prefix",
            format!(
                "is {} bytes long; the limit is {MAX_PREFIX_LEN}",
                prefix.len()
            ),
        ));
    }
    if prefix == "/" {
        return Err(Error::config(
            "zookeeper.prefix",
            "must not be the root: elections need a parent znode of their own, such as /elector",
        ));
    }
    check_path(prefix)
        .map_err(|reason| Error::config("zookeeper.prefix", format!("{prefix:?} {reason}")))
}

/// ZooKeeper's path rules (as `PathUtils.validatePath`), in words.
fn check_path(path: &str) -> std::result::Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must be an absolute path starting with '/'");
    }
    if path.ends_with('/') {
        return Err("must not end with '/'");
    }
    for part in path[1..].split('/') {
        if part.is_empty() {
            return Err("must not contain an empty component (\"//\")");
        }
        if part == "." || part == ".." {
            return Err("must not contain '.' or '..' components");
        }
        if part.chars().any(|c| c.is_control()) {
            return Err("must not contain control characters");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: &ZooKeeperConfig) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_default_config_is_valid_and_local() {
        let c = ZooKeeperConfig::default();
        c.validate().unwrap();
        assert_eq!(c.connect_string, "127.0.0.1:2181");
        assert_eq!(c.prefix, "/elector");
    }

    #[test]
    fn an_empty_toml_table_gives_the_defaults_and_unknown_fields_are_refused() {
        let c: ZooKeeperConfig = toml::from_str("").unwrap();
        assert_eq!(c, ZooKeeperConfig::default());
        let c: ZooKeeperConfig = toml::from_str(
            "connect_string = \"a:1,b:2/apps\"\nsession_timeout = \"4s\"\nrequest_timeout = \"250ms\"\nfollower_lag = \"1s\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.session_timeout, Some(Duration::from_secs(4)));
        assert_eq!(c.request_timeout, Duration::from_millis(250));
        assert!(toml::from_str::<ZooKeeperConfig>("hosts = \"x\"").is_err());
    }

    #[test]
    fn the_digest_credentials_are_never_printed_nor_serialized() {
        let c = ZooKeeperConfig {
            digest_auth: Some("app:hunter2".into()),
            ..ZooKeeperConfig::default()
        };
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(format!("{c:?}").contains("<redacted>"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        assert!(!toml::to_string(&c).unwrap().contains("hunter2"));
    }

    #[test]
    fn malformed_digest_credentials_are_refused_without_echoing_them() {
        for bad in ["hunter2", ":hunter2"] {
            let c = ZooKeeperConfig {
                digest_auth: Some(bad.into()),
                ..ZooKeeperConfig::default()
            };
            let e = err(&c);
            assert!(e.contains("zookeeper.digest_auth"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let both = ZooKeeperConfig {
            digest_auth: Some("a:b".into()),
            digest_auth_env: Some("X".into()),
            ..ZooKeeperConfig::default()
        };
        assert!(err(&both).contains("not both"));
    }

    #[test]
    fn the_digest_can_come_from_an_environment_variable() {
        let c = ZooKeeperConfig {
            digest_auth_env: Some("ELECTOR_ZK_TEST_SURELY_UNSET_VAR".into()),
            ..ZooKeeperConfig::default()
        };
        c.validate().unwrap();
        let e = c.digest().unwrap_err().to_string();
        assert!(e.contains("ELECTOR_ZK_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn malformed_connect_strings_are_refused_naming_the_setting() {
        for bad in [
            "",
            "host",
            "host:notaport",
            "zk://host:2181",
            "a:1,,b:2",
            "a:1/chroot/",
            "a:1//x",
        ] {
            let e = err(&ZooKeeperConfig::with_connect_string(bad));
            assert!(e.contains("zookeeper.connect_string"), "{bad}: {e}");
        }
        for ok in [
            "127.0.0.1:2181",
            "a:1,b:2,c:3",
            "a:1,b:2/apps/x",
            "[::1]:2181",
        ] {
            ZooKeeperConfig {
                follower_lag: Some(Duration::from_secs(1)),
                ..ZooKeeperConfig::with_connect_string(ok)
            }
            .validate()
            .unwrap();
        }
    }

    #[test]
    fn an_ensemble_needs_its_follower_lag_and_one_server_defaults_to_none() {
        let e = err(&ZooKeeperConfig::with_connect_string("a:1,b:2,c:3/apps"));
        assert!(e.contains("zookeeper.follower_lag"), "{e}");
        assert!(e.contains("syncLimit"), "{e}");
        let one = ZooKeeperConfig::with_connect_string("a:1/apps");
        one.validate().unwrap();
        assert_eq!(one.effective_follower_lag(), Duration::ZERO);
        let c: ZooKeeperConfig =
            toml::from_str("connect_string = \"a:1,b:2,c:3\"\nfollower_lag = \"2200ms\"\n")
                .unwrap();
        c.validate().unwrap();
        assert_eq!(c.effective_follower_lag(), Duration::from_millis(2200));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in ["elector", "/", "/a/", "/a//b", "/a/../b", ""] {
            let c = ZooKeeperConfig {
                prefix: bad.into(),
                ..ZooKeeperConfig::default()
            };
            let e = err(&c);
            assert!(e.contains("zookeeper.prefix"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let c = ZooKeeperConfig {
            request_timeout: Duration::ZERO,
            ..ZooKeeperConfig::default()
        };
        assert!(err(&c).contains("zookeeper.request_timeout"));
        let c = ZooKeeperConfig {
            session_timeout: Some(Duration::ZERO),
            ..ZooKeeperConfig::default()
        };
        assert!(err(&c).contains("zookeeper.session_timeout"));
    }
}
