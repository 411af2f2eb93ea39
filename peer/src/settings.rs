//! [`PeerSettings`]: what the shared node needs from a backend's configuration, and the
//! transport settings built from them (listen, peers, authentication, reconnect cap).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use election_core::{Error, NodeId, Result};
use election_transport::{Auth, Secret, TlsFiles, TransportConfig};
use serde::{Deserialize, Serialize};

/// PEM files for mutual TLS between members. Each node's certificate carries its node id
/// as a DNS subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) that sign every member's certificate.
    pub ca: PathBuf,
    /// This node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// The settings of one peer node that do not depend on the algorithm. The backend fills
/// them in from its own (already validated) configuration.
#[derive(Clone, Debug)]
pub struct PeerSettings {
    /// This node's id.
    pub me: NodeId,
    /// Address to listen on for peers; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Every member's id and `host:port`; this node's own entry is ignored.
    pub peers: BTreeMap<NodeId, String>,
    /// A shared secret, inline.
    pub secret: Option<String>,
    /// File holding the shared secret.
    pub secret_file: Option<PathBuf>,
    /// Mutual TLS files. Exactly one of `secret`, `secret_file` and `tls` is used (in
    /// that order of preference).
    pub tls: Option<TlsConfig>,
    /// Directory of the state file.
    pub data_dir: PathBuf,
    /// Cap of the transport's reconnect backoff: a member that comes back must be
    /// reachable within an election or two, not after the transport's default 2 s.
    pub reconnect_max: Duration,
    /// How long `try_campaign` waits for an election to conclude.
    pub try_window: Duration,
    /// Half a leader's lease budget: with many leaderships held, keepers are extended once
    /// the last extension is this close to its end (see
    /// [`CoreEvent::AllLeasesExtended`](crate::CoreEvent::AllLeasesExtended)).
    pub half_lease: Duration,
}

impl PeerSettings {
    /// The transport's configuration: the peers but this node, the authentication, and
    /// the reconnect cap.
    ///
    /// # Errors
    /// [`Error::Config`] naming `<kind>.secret` for an unreadable or too short secret, or
    /// when no authentication is set.
    pub fn transport_config(&self, kind: &'static str) -> Result<TransportConfig> {
        let peers = self
            .peers
            .iter()
            .filter(|(id, _)| **id != self.me)
            .map(|(id, addr)| (id.clone(), addr.clone()))
            .collect();
        let mut tconfig =
            TransportConfig::new(self.me.clone(), self.listen, peers, self.auth(kind)?);
        tconfig.reconnect_max = self.reconnect_max.max(tconfig.reconnect_min);
        Ok(tconfig)
    }

    fn auth(&self, kind: &'static str) -> Result<Auth> {
        let te =
            |e: election_transport::Error| Error::config(format!("{kind}.secret"), e.to_string());
        if let Some(s) = &self.secret {
            return Ok(Auth::SharedSecret(
                Secret::new(s.as_bytes().to_vec()).map_err(te)?,
            ));
        }
        if let Some(path) = &self.secret_file {
            return Ok(Auth::SharedSecret(Secret::from_file(path).map_err(te)?));
        }
        let Some(tls) = &self.tls else {
            return Err(Error::config(
                format!("{kind}.secret"),
                format!(
                    "one of {kind}.secret, {kind}.secret_file and {kind}.tls must be set: peers must authenticate each other"
                ),
            ));
        };
        Ok(Auth::MutualTls(TlsFiles {
            ca: tls.ca.clone(),
            cert: tls.cert.clone(),
            key: tls.key.clone(),
        }))
    }
}
