//! [`PostgresConfig`]: where the server is, how to log in, how long to wait, which table
//! holds the leases.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use election_core::{Error, LeaseTiming, Result};
use serde::{Deserialize, Serialize, Serializer};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes); longer ones are
/// silently truncated by the server, so they are refused here instead.
const MAX_IDENTIFIER_LEN: usize = 63;

/// How to reach PostgreSQL and which table to keep the leases in. Every field has a
/// default; see each field.
///
/// `Debug` and `Serialize` redact secrets (the password and any password inside `url`), so
/// a printed or logged configuration is safe to share.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection string, as a URL (`postgres://user:password@host:port/db?sslmode=require`)
    /// or in libpq's `key=value` form (`host=db1,db2 user=elector
    /// target_session_attrs=read-write`). Default empty: everything from the `PG*`
    /// environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
    /// `PGAPPNAME`), which also fills whatever the string leaves out; then `localhost`,
    /// port 5432, user `$USER`, database = user, as libpq does. `sslmode` is `disable`,
    /// `prefer` (the default: TLS if the server offers it) or `require`; with TLS the
    /// server's certificate is always verified (against [`tls_ca_file`](Self::tls_ca_file)
    /// or the system's roots).
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// Password; overrides one in `url` and `PGPASSWORD`. Default none. Never logged or
    /// serialized; prefer [`password_file`](Self::password_file) or
    /// [`password_env`](Self::password_env).
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password, read at connect time; used
    /// when [`password`](Self::password) is not set. Default none. Connecting fails with a
    /// configuration error if the variable is named but not set.
    pub password_env: Option<String>,
    /// A file whose first line is the password, read at connect time; used when neither
    /// [`password`](Self::password) nor [`password_env`](Self::password_env) is set.
    /// Default none.
    pub password_file: Option<PathBuf>,
    /// Schema of the lease table. Default `public`. Must exist.
    pub schema: String,
    /// Name of the lease table, created at connect if missing (one row per election).
    /// Default `elector_leases`. Its NOTIFY channel is `<schema>.<table>`.
    pub table: String,
    /// Longest wait for a connection (TCP, TLS, authentication, and the table check) to be
    /// established, each attempt. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest any one statement may take: sent to the server as `statement_timeout`, and
    /// the client gives up (and replaces the connection) after the same time. Default 1 s.
    /// Must be below the leadership budget `ttl - clock_drift - kill_grace`, so that a
    /// stuck server or a blocked row lock cannot hold a renewal past the leadership
    /// deadline (renewals are in any case cut off at that deadline).
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// A PEM file of CA certificates to trust instead of the system's roots (a private
    /// CA). Default none (the system's roots).
    pub tls_ca_file: Option<PathBuf>,
    /// This client's PEM certificate, for servers that ask for one (`clientcert` in
    /// `pg_hba.conf`). Default none. Set together with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`. Default none.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            password: None,
            password_env: None,
            password_file: None,
            schema: "public".into(),
            table: "elector_leases".into(),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(1),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .finish()
    }
}

impl PostgresConfig {
    /// The defaults with `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            ..PostgresConfig::default()
        }
    }

    /// Checks the settings that do not need the network: the connection string's form,
    /// the identifiers, the timeouts against `timing`, the TLS files' pairing. The error
    /// names the setting (`postgres.KEY`).
    pub fn validate(&self, timing: &LeaseTiming) -> Result<()> {
        if !self.url.trim().is_empty() {
            tokio_postgres::Config::from_str(&self.url).map_err(|e| {
                Error::config(
                    "postgres.url",
                    format!(
                        "{:?} is not a PostgreSQL connection string ({e}); write \
                         postgres://user@host:port/database or host=... port=... user=...",
                        redact_url(&self.url)
                    ),
                )
            })?;
        }
        for (key, value) in [
            ("postgres.schema", &self.schema),
            ("postgres.table", &self.table),
        ] {
            if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN || value.contains('\0') {
                return Err(Error::config(
                    key,
                    format!(
                        "{value:?} must be 1 to {MAX_IDENTIFIER_LEN} bytes without NUL \
                         (PostgreSQL truncates longer names)"
                    ),
                ));
            }
        }
        let h = humantime::format_duration;
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "postgres.connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.statement_timeout < Duration::from_millis(1) {
            return Err(Error::config(
                "postgres.statement_timeout",
                "must be at least 1ms (PostgreSQL counts it in milliseconds; 0 would disable it)",
            ));
        }
        if self.statement_timeout >= timing.hold_budget() {
            return Err(Error::config(
                "postgres.statement_timeout",
                format!(
                    "{} must be below ttl - clock_drift - kill_grace ({}): a renewal that \
                     may take longer could not be retried before the leadership deadline",
                    h(self.statement_timeout),
                    h(timing.hold_budget())
                ),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(Error::config(
                if self.tls_cert_file.is_some() {
                    "postgres.tls_key_file"
                } else {
                    "postgres.tls_cert_file"
                },
                "tls_cert_file and tls_key_file are set together (a client certificate needs its key)",
            ));
        }
        Ok(())
    }

    /// The password from the settings (inline, environment variable, file), if any.
    pub(crate) fn resolve_password(&self) -> Result<Option<String>> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(Error::config(
                    "postgres.password_env",
                    format!("the environment variable {var} is not set (or not UTF-8)"),
                )),
            };
        }
        if let Some(file) = &self.password_file {
            return match std::fs::read_to_string(file) {
                Ok(text) => Ok(Some(text.lines().next().unwrap_or_default().to_owned())),
                Err(e) => Err(Error::config(
                    "postgres.password_file",
                    format!("cannot read {}: {e}", file.display()),
                )),
            };
        }
        Ok(None)
    }

    /// The client library's settings: the connection string over the `PG*` environment,
    /// then libpq's defaults, then the password from the settings.
    pub(crate) fn pg_config(&self) -> Result<tokio_postgres::Config> {
        self.pg_config_with(|k| std::env::var(k).ok())
    }

    pub(crate) fn pg_config_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<tokio_postgres::Config> {
        let mut c = if self.url.trim().is_empty() {
            tokio_postgres::Config::new()
        } else {
            tokio_postgres::Config::from_str(&self.url)
                .map_err(|e| Error::config("postgres.url", e))?
        };
        if c.get_hosts().is_empty() {
            let hosts = env("PGHOST").unwrap_or_else(|| "localhost".into());
            for h in hosts.split(',') {
                if h.starts_with('/') {
                    c.host_path(h);
                } else {
                    c.host(h);
                }
            }
        }
        if c.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                for p in p.split(',') {
                    let port = p.trim().parse::<u16>().map_err(|_| {
                        Error::config("postgres.url", format!("PGPORT={p:?} is not a port"))
                    })?;
                    c.port(port);
                }
            }
        }
        if c.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into());
            c.user(user);
        }
        if c.get_dbname().is_none() {
            let db = env("PGDATABASE").unwrap_or_else(|| c.get_user().unwrap_or("").to_owned());
            c.dbname(db);
        }
        if c.get_application_name().is_none() {
            c.application_name(env("PGAPPNAME").as_deref().unwrap_or("elector"));
        }
        if !self.url.contains("sslmode") {
            if let Some(mode) = env("PGSSLMODE") {
                let mode = match mode.as_str() {
                    "disable" => tokio_postgres::config::SslMode::Disable,
                    "prefer" | "allow" => tokio_postgres::config::SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => {
                        tokio_postgres::config::SslMode::Require
                    }
                    other => {
                        return Err(Error::config(
                            "postgres.url",
                            format!("PGSSLMODE={other:?} is not disable, prefer or require"),
                        ));
                    }
                };
                c.ssl_mode(mode);
            }
        }
        if let Some(p) = self.resolve_password()? {
            c.password(p);
        } else if c.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                c.password(p);
            }
        }
        c.connect_timeout(self.connect_timeout);
        // The server cuts off any statement after this long, whoever waits for it.
        let ms = self.statement_timeout.as_millis().max(1);
        let options = match c.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c statement_timeout={ms}"),
            _ => format!("-c statement_timeout={ms}"),
        };
        c.options(options);
        Ok(c)
    }

    /// `schema.table`, quoted for SQL.
    pub(crate) fn quoted_table(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The NOTIFY channel: `schema.table` as one name.
    pub(crate) fn channel(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// An identifier in double quotes, inner quotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal in single quotes, inner quotes doubled.
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The connection string with any password replaced by `<redacted>`.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        // postgres://user:password@host/...
        let (authority, tail) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_owned(),
        };
        let tail = redact_query_password(tail);
        format!("{scheme}://{authority}{tail}")
    } else {
        // key=value form.
        url.split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=<redacted>".to_owned()
                } else {
                    kv.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query = query
        .split('&')
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=<redacted>"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{path}?{query}")
}

fn serialize_redacted_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_are_valid() {
        PostgresConfig::default()
            .validate(&LeaseTiming::default())
            .unwrap();
    }

    #[test]
    fn passwords_are_redacted_in_every_form() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:<redacted>@h:5432/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://h/db?user=u&password=secret"),
            "postgresql://h/db?user=u&password=<redacted>"
        );
        assert_eq!(
            redact_url("host=h password=secret user=u"),
            "host=h password=<redacted> user=u"
        );
        let c = PostgresConfig {
            password: Some("hunter2".into()),
            ..PostgresConfig::with_url("postgres://u:secret@h/db")
        };
        let shown = format!("{c:?} {}", serde_json::to_string(&c).unwrap());
        assert!(
            !shown.contains("secret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn the_environment_fills_what_the_url_leaves_out() {
        let c = PostgresConfig::with_url("postgres://db1:6000/app")
            .pg_config_with(env(&[
                ("PGHOST", "ignored"),
                ("PGUSER", "alice"),
                ("PGPASSWORD", "pw"),
            ]))
            .unwrap();
        assert_eq!(c.get_ports(), [6000]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_dbname(), Some("app"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert!(c.get_options().unwrap().contains("statement_timeout=1000"));
        let c = PostgresConfig::default()
            .pg_config_with(env(&[("PGHOST", "a,b"), ("PGPORT", "7"), ("USER", "bob")]))
            .unwrap();
        assert_eq!(c.get_hosts().len(), 2);
        assert_eq!(c.get_dbname(), Some("bob"));
    }

    #[test]
    fn a_configured_password_wins_over_the_url_and_environment() {
        let c = PostgresConfig {
            password: Some("mine".into()),
            ..PostgresConfig::with_url("postgres://u:url@h/db")
        }
        .pg_config_with(env(&[("PGPASSWORD", "envpw")]))
        .unwrap();
        assert_eq!(c.get_password(), Some(&b"mine"[..]));
        let err = PostgresConfig {
            password_env: Some("ELECTOR_TEST_SURELY_UNSET_VAR".into()),
            ..PostgresConfig::default()
        }
        .pg_config_with(env(&[]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("postgres.password_env"), "{err}");
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let t = LeaseTiming::default();
        let cases = [
            (
                PostgresConfig::with_url("postgres://h:notaport/db"),
                "postgres.url",
            ),
            (
                PostgresConfig {
                    table: String::new(),
                    ..PostgresConfig::default()
                },
                "postgres.table",
            ),
            (
                PostgresConfig {
                    schema: "x".repeat(64),
                    ..PostgresConfig::default()
                },
                "postgres.schema",
            ),
            (
                PostgresConfig {
                    statement_timeout: Duration::from_secs(9),
                    ..PostgresConfig::default()
                },
                "postgres.statement_timeout",
            ),
            (
                PostgresConfig {
                    tls_cert_file: Some("c.pem".into()),
                    ..PostgresConfig::default()
                },
                "postgres.tls_key_file",
            ),
        ];
        for (c, key) in cases {
            let err = c.validate(&t).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        let c = PostgresConfig {
            schema: "My Schema".into(),
            ..PostgresConfig::default()
        };
        assert_eq!(c.quoted_table(), "\"My Schema\".\"elector_leases\"");
        assert_eq!(c.channel(), "My Schema.elector_leases");
    }
}
