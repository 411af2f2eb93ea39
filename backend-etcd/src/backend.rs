//! `EtcdBackend`: one connection to an etcd cluster, one elector per election name.

use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, Error, LeaderElector, LeaseTiming, Result};
use etcd_client::{Client, GetOptions};

use crate::config::EtcdConfig;
use crate::conn::{Conn, KIND, map_error};
use crate::elector::EtcdElector;
use crate::keys::{election_dir, ttl_seconds};
use crate::observe::SinceCache;

/// A connection to an etcd cluster (v3 API, etcd 3.4 or later).
///
/// Cheap to clone; clones share the connection. Hands out one elector per election name,
/// all multiplexed over the same connection.
#[derive(Clone, Debug)]
pub struct EtcdBackend {
    conn: Arc<Conn>,
}

impl EtcdBackend {
    /// Connects to `config.endpoints` and checks the connection with one read under the
    /// key prefix (so bad credentials, a missing permission, a TLS mismatch or an
    /// unreachable cluster are reported here, within `connect_timeout`).
    ///
    /// Fails with [`Error::Config`] for invalid settings or timings (see
    /// [`EtcdConfig::validate`] and [`LeaseTiming::validate`]), [`Error::Unavailable`]
    /// when etcd does not answer, and [`Error::Protocol`] when it refuses us.
    pub async fn connect(config: EtcdConfig, timing: LeaseTiming) -> Result<EtcdBackend> {
        timing.validate()?;
        config.validate()?;
        let ttl_secs = ttl_seconds(timing.ttl)?;
        if Duration::from_secs(ttl_secs.unsigned_abs()) != timing.ttl {
            tracing::debug!(
                ttl = %humantime::format_duration(timing.ttl),
                etcd_ttl_secs = ttl_secs,
                "etcd lease TTLs are whole seconds: rounded up (the holder's deadline still \
                 follows the configured ttl)"
            );
        }
        let address = config.address();
        let options = config.connect_options()?;
        let tls = config.tls.is_some();
        let client = match tokio::time::timeout(
            config.connect_timeout,
            Client::connect(&config.endpoints, Some(options)),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(with_hint(
                    map_error(&address, &config.prefix, None, "connecting", e),
                    tls,
                ));
            }
            Err(_) => {
                return Err(with_hint(
                    Error::unavailable(
                        KIND,
                        &address,
                        None,
                        format!(
                            "connecting: no answer within {}",
                            humantime::format_duration(config.connect_timeout)
                        ),
                        None,
                    ),
                    tls,
                ));
            }
        };
        let conn = Conn {
            client,
            timing,
            ttl_secs,
            request_timeout: config.request_timeout.min(timing.renew_interval),
            address: address.clone(),
            prefix: config.prefix.clone(),
        };
        // One read checks reachability, TLS and credentials together.
        let prefix = config.prefix.as_str();
        conn.call_within(
            config.connect_timeout,
            None,
            "checking the connection",
            |mut c| async move {
                let options = GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_limit(1);
                c.get(prefix, Some(options)).await
            },
        )
        .await
        .map_err(|e| with_hint(e, tls))?;
        tracing::debug!(address = %address, prefix = %config.prefix, "connected to etcd");
        Ok(EtcdBackend {
            conn: Arc::new(conn),
        })
    }

    /// The endpoints, comma-separated, as named in errors.
    pub fn address(&self) -> &str {
        &self.conn.address
    }

    /// The lease TTL asked of etcd: the timing's `ttl` rounded up to whole seconds.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.conn.ttl_secs.unsigned_abs())
    }

    /// The key prefix of election `name`: `<prefix><name>/`, the name to give
    /// `etcdctl elect` to take part in the same election.
    pub fn election_key_prefix(&self, name: &ElectionName) -> String {
        election_dir(&self.conn.prefix, name)
    }
}

impl Backend for EtcdBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        Ok(Arc::new(EtcdElector {
            conn: self.conn.clone(),
            name: name.clone(),
            me,
            dir: election_dir(&self.conn.prefix, name),
            since: Arc::new(SinceCache::default()),
        }))
    }
}

/// Adds what to check to an `Unavailable` error from connecting.
fn with_hint(e: Error, tls: bool) -> Error {
    match e {
        Error::Unavailable {
            backend,
            address,
            election,
            detail,
            source,
        } => Error::Unavailable {
            backend,
            address,
            election,
            detail: format!(
                "{detail} (is etcd running there, and does http:// or https:// match its \
                 --listen-client-urls?{})",
                if tls {
                    " With TLS: is etcd.tls.ca_file the CA that signed the server's \
                     certificate, and does the server require a client certificate \
                     (etcd.tls.cert_file and key_file)?"
                } else {
                    ""
                }
            ),
            source,
        },
        other => other,
    }
}
