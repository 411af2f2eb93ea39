//! `EtcdConfig`: where etcd is, how to authenticate, where our keys live, and timeouts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use election_core::{Error, Result};
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use serde::{Deserialize, Serialize};

/// How to reach etcd and where to keep election keys.
///
/// Every field has a default, so an empty TOML table is a valid configuration for a local
/// etcd on `127.0.0.1:2379` without TLS or authentication.
///
/// The password is never logged: `Debug` redacts it and it is never serialized (so
/// `elector config` cannot print it). Prefer [`password_env`](Self::password_env), which
/// names an environment variable holding the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdConfig {
    /// etcd client URLs, such as `http://10.0.0.1:2379` or `https://etcd-1.example:2379`.
    /// Requests are balanced over all of them, and a failed member is skipped. Default
    /// `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,

    /// Prefix of every key this backend writes. The election `NAME` lives under
    /// `<prefix>NAME/`, so with the default prefix `elector/` the etcdctl equivalent is
    /// `etcdctl elect elector/NAME VALUE`. Default `elector/`.
    pub prefix: String,

    /// User name for etcd authentication. Default: none (no authentication).
    pub username: Option<String>,

    /// Password for [`username`](Self::username). Never serialized or logged; prefer
    /// [`password_env`](Self::password_env). Default: none.
    #[serde(skip_serializing)]
    pub password: Option<String>,

    /// Name of an environment variable that holds the password, read at connect time.
    /// Default: none.
    pub password_env: Option<String>,

    /// TLS settings; required for `https://` endpoints. Default: none (plain HTTP).
    pub tls: Option<EtcdTls>,

    /// How long connecting (and the first request that checks the connection) may take
    /// before [`EtcdBackend::connect`](crate::EtcdBackend::connect) fails. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,

    /// Timeout of every request to etcd. The effective value is capped at the lease
    /// timing's `renew_interval`, so a stuck request never eats a renewal's budget.
    /// Default 1 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// TLS for the connection to etcd (rustls with the `ring` provider).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdTls {
    /// PEM file with the CA certificate(s) that sign the etcd servers' certificates.
    /// Required: no system trust roots are used. Default: none.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for etcd's `--client-cert-auth`. Set together with
    /// `key_file`. Default: none.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`. Default: none.
    pub key_file: Option<PathBuf>,
    /// Server name to verify in the servers' certificates, when it differs from the
    /// endpoint's host. Default: the endpoint's host.
    pub domain: Option<String>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            prefix: "elector/".to_owned(),
            username: None,
            password: None,
            password_env: None,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_env", &self.password_env)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The longest accepted key prefix, in bytes.
const MAX_PREFIX_LEN: usize = 512;

impl EtcdConfig {
    /// A configuration for `endpoints` with every other setting at its default.
    pub fn with_endpoints<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..EtcdConfig::default()
        }
    }

    /// The endpoints as one string, for messages.
    pub fn address(&self) -> String {
        self.endpoints.join(",")
    }

    /// Checks the settings without touching the network or the file system. The error
    /// names the setting (`etcd.<field>`) and the rule.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::config(
                "etcd.endpoints",
                "at least one endpoint is needed, such as \"http://127.0.0.1:2379\"",
            ));
        }
        for e in &self.endpoints {
            validate_endpoint(e, self.tls.is_some())?;
        }
        if self.prefix.len() > MAX_PREFIX_LEN {
            return Err(Error::config(
                "etcd.prefix",
                format!(
                    "is {} bytes long; the limit is {MAX_PREFIX_LEN}",
                    self.prefix.len()
                ),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "etcd.connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config(
                "etcd.request_timeout",
                "must be greater than zero",
            ));
        }
        match (&self.username, &self.password, &self.password_env) {
            (_, Some(_), Some(_)) => {
                return Err(Error::config(
                    "etcd.password",
                    "set either password or password_env, not both",
                ));
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(Error::config(
                    "etcd.username",
                    "a password is set but no username",
                ));
            }
            (Some(u), None, None) => {
                return Err(Error::config(
                    "etcd.password",
                    format!("username {u:?} is set but neither password nor password_env"),
                ));
            }
            (Some(u), _, _) if u.is_empty() => {
                return Err(Error::config("etcd.username", "must not be empty"));
            }
            _ => {}
        }
        if let Some(tls) = &self.tls {
            if tls.ca_file.is_none() {
                return Err(Error::config(
                    "etcd.tls.ca_file",
                    "is required with TLS: no system trust roots are used",
                ));
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(Error::config(
                    "etcd.tls.cert_file",
                    "cert_file and key_file must be set together",
                ));
            }
        }
        Ok(())
    }

    /// The password, from the config or from the environment variable it names.
    fn password(&self) -> Result<Option<String>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        match &self.password_env {
            None => Ok(None),
            Some(var) => match std::env::var(var) {
                Ok(p) => Ok(Some(p)),
                Err(e) => Err(Error::config(
                    "etcd.password_env",
                    format!("environment variable {var} cannot be read: {e}"),
                )),
            },
        }
    }

    /// The client library's options: credentials and TLS (files read now). Timeouts are
    /// applied per request by this crate, not here.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            // HTTP/2 pings find a dead connection under an idle watch. etcd refuses pings
            // more often than every 5 s (`--grpc-keepalive-min-time`) and pings without an
            // open stream, hence the interval and `while_idle = false`.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false);
        if let (Some(user), Some(password)) = (&self.username, self.password()?) {
            // etcd's auth tokens expire (simple tokens after `--auth-token-ttl`, 5 min by
            // default); a leader that holds for longer must re-authenticate transparently.
            options = options
                .with_user(user.clone(), password)
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.options()?);
        }
        Ok(options)
    }
}

impl EtcdTls {
    fn options(&self) -> Result<TlsOptions> {
        let mut options = TlsOptions::new();
        if let Some(ca) = &self.ca_file {
            options = options.ca_certificate(Certificate::from_pem(read("ca_file", ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            options = options.identity(Identity::from_pem(
                read("cert_file", cert)?,
                read("key_file", key)?,
            ));
        }
        if let Some(domain) = &self.domain {
            options = options.domain_name(domain.clone());
        }
        Ok(options)
    }
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::config(
            format!("etcd.tls.{field}"),
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn validate_endpoint(endpoint: &str, tls: bool) -> Result<()> {
    let bad = |reason: String| Err(Error::config("etcd.endpoints", reason));
    let rest = if let Some(rest) = endpoint.strip_prefix("http://") {
        if tls {
            return bad(format!(
                "{endpoint:?} is plain http but TLS is configured: use https://"
            ));
        }
        rest
    } else if let Some(rest) = endpoint.strip_prefix("https://") {
        if !tls {
            return bad(format!(
                "{endpoint:?} is https but no TLS is configured: set etcd.tls.ca_file"
            ));
        }
        rest
    } else if endpoint.contains("://") {
        return bad(format!(
            "{endpoint:?}: only http:// and https:// endpoints are supported"
        ));
    } else {
        endpoint
    };
    let host_port = rest.trim_end_matches('/');
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return bad(format!(
            "{endpoint:?} has no port: write it as http://HOST:PORT (etcd's default is 2379)"
        ));
    };
    if host.is_empty() || host_port.contains('/') || port.parse::<u16>().is_err() {
        return bad(format!(
            "{endpoint:?} is not of the form http://HOST:PORT or https://HOST:PORT"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: &EtcdConfig) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_default_config_is_valid_and_local() {
        let c = EtcdConfig::default();
        c.validate().unwrap();
        assert_eq!(c.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(c.prefix, "elector/");
    }

    #[test]
    fn an_empty_toml_table_gives_the_defaults_and_unknown_fields_are_refused() {
        let c: EtcdConfig = toml::from_str("").unwrap();
        assert_eq!(c, EtcdConfig::default());
        let c: EtcdConfig = toml::from_str(
            "endpoints = [\"http://a:1\", \"http://b:2\"]\nrequest_timeout = \"250ms\"\n",
        )
        .unwrap();
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.request_timeout, Duration::from_millis(250));
        assert!(toml::from_str::<EtcdConfig>("endpoint = \"x\"").is_err());
    }

    #[test]
    fn the_password_is_never_printed_nor_serialized() {
        let c = EtcdConfig {
            username: Some("root".into()),
            password: Some("hunter2".into()),
            ..EtcdConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(format!("{c:?}").contains("<redacted>"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        assert!(!toml::to_string(&c).unwrap().contains("hunter2"));
    }

    #[test]
    fn the_password_can_come_from_an_environment_variable() {
        let c = EtcdConfig {
            username: Some("root".into()),
            password_env: Some("ELECTOR_ETCD_TEST_SURELY_UNSET_VAR".into()),
            ..EtcdConfig::default()
        };
        c.validate().unwrap();
        let e = c.password().unwrap_err().to_string();
        assert!(e.contains("etcd.password_env"), "{e}");
        assert!(e.contains("ELECTOR_ETCD_TEST_SURELY_UNSET_VAR"), "{e}");
        // PATH is always set: its value stands in for a password here.
        let c = EtcdConfig {
            password_env: Some("PATH".into()),
            ..c
        };
        assert_eq!(c.password().unwrap(), std::env::var("PATH").ok());
    }

    #[test]
    fn credentials_must_come_in_pairs() {
        let user_only = EtcdConfig {
            username: Some("u".into()),
            ..EtcdConfig::default()
        };
        assert!(err(&user_only).contains("etcd.password"));
        let password_only = EtcdConfig {
            password: Some("p".into()),
            ..EtcdConfig::default()
        };
        assert!(err(&password_only).contains("etcd.username"));
        let both_sources = EtcdConfig {
            username: Some("u".into()),
            password: Some("p".into()),
            password_env: Some("P".into()),
            ..EtcdConfig::default()
        };
        assert!(err(&both_sources).contains("not both"));
    }

    #[test]
    fn malformed_endpoints_are_refused_naming_the_endpoint() {
        for bad in [
            "",
            "http://",
            "http://host",
            "http://host:notaport",
            "http://host:2379/path",
            "unix:///tmp/etcd.sock",
            "127.0.0.1",
        ] {
            let c = EtcdConfig::with_endpoints([bad]);
            let e = err(&c);
            assert!(e.contains("etcd.endpoints"), "{bad}: {e}");
        }
        assert!(err(&EtcdConfig::with_endpoints(Vec::<String>::new())).contains("at least one"));
        EtcdConfig::with_endpoints(["127.0.0.1:2379", "http://[::1]:2379"])
            .validate()
            .unwrap();
    }

    #[test]
    fn tls_and_https_must_agree() {
        let https = EtcdConfig::with_endpoints(["https://etcd:2379"]);
        assert!(err(&https).contains("etcd.tls.ca_file"));
        let tls = EtcdConfig {
            tls: Some(EtcdTls {
                ca_file: Some("/ca.pem".into()),
                ..EtcdTls::default()
            }),
            ..EtcdConfig::with_endpoints(["http://etcd:2379"])
        };
        assert!(err(&tls).contains("use https://"));
        let no_ca = EtcdConfig {
            tls: Some(EtcdTls::default()),
            ..https.clone()
        };
        assert!(err(&no_ca).contains("no system trust roots"));
        let half_identity = EtcdConfig {
            tls: Some(EtcdTls {
                ca_file: Some("/ca.pem".into()),
                cert_file: Some("/c.pem".into()),
                ..EtcdTls::default()
            }),
            ..https
        };
        assert!(err(&half_identity).contains("together"));
    }

    #[test]
    fn an_unreadable_tls_file_is_named_in_the_error() {
        let c = EtcdConfig {
            tls: Some(EtcdTls {
                ca_file: Some("/nonexistent/elector-ca.pem".into()),
                ..EtcdTls::default()
            }),
            ..EtcdConfig::with_endpoints(["https://etcd:2379"])
        };
        c.validate().unwrap();
        let e = c.connect_options().unwrap_err().to_string();
        assert!(e.contains("etcd.tls.ca_file"), "{e}");
        assert!(e.contains("/nonexistent/elector-ca.pem"), "{e}");
    }
}
