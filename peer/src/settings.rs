//! [`PeerSettings`]: what the shared node needs from a backend's configuration, and the
//! transport settings built from them (listen, peers, authentication, reconnect cap).

use std::collections::{BTreeMap, BTreeSet};
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

/// `Err(Error::Config)` naming `<kind>.<key>` unless `ok`.
fn rule(kind: &str, key: &str, ok: bool, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!("{kind}.{key}"), reason()))
    }
}

/// The membership rules every peer backend shares: `node_id` is set; at most 64 members
/// (the peers and this node); every voter-only node is a member and not all of them are;
/// every other member's address is `host:port`.
///
/// # Errors
/// [`Error::Config`] naming `<kind>.node_id`, `<kind>.peers`, `<kind>.voters_only` or
/// `<kind>.peers.<id>` and the rule broken.
pub fn check_membership(
    kind: &str,
    node_id: Option<&NodeId>,
    peers: &BTreeMap<NodeId, String>,
    voters_only: &BTreeSet<NodeId>,
) -> Result<()> {
    let Some(me) = node_id else {
        return Err(Error::config(format!("{kind}.node_id"), "is required"));
    };
    let mut members: BTreeSet<&NodeId> = peers.keys().collect();
    members.insert(me);
    rule(kind, "peers", members.len() <= 64, || {
        format!("{} members; at most 64 are supported", members.len())
    })?;
    for v in voters_only {
        rule(kind, "voters_only", members.contains(v), || {
            format!("{v} is not a member (list it under peers)")
        })?;
    }
    rule(
        kind,
        "voters_only",
        voters_only.len() < members.len(),
        || "every member is a voter only, so no one could ever lead".into(),
    )?;
    for (id, addr) in peers {
        if id == me {
            continue;
        }
        rule(
            kind,
            &format!("peers.{id}"),
            addr.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()),
            || format!("address {addr:?} is not host:port"),
        )?;
    }
    Ok(())
}

/// Exactly one authentication method is set (`secret`, `secret_file`, `tls`).
///
/// # Errors
/// [`Error::Config`] naming `<kind>.secret` when none or several are set.
pub fn check_auth(kind: &str, secret: bool, secret_file: bool, tls: bool) -> Result<()> {
    let auths = usize::from(secret) + usize::from(secret_file) + usize::from(tls);
    rule(kind, "secret", auths == 1, || {
        format!(
            "exactly one of {kind}.secret, {kind}.secret_file and {kind}.tls must be set \
             ({auths} are): peers must authenticate each other"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn membership_errors_name_the_backend_and_the_rule() {
        let peers: BTreeMap<NodeId, String> = [
            (id("a"), "127.0.0.1:1".to_string()),
            (id("b"), "nowhere".to_string()),
        ]
        .into();
        let none = BTreeSet::new();
        let err = check_membership("raft", None, &peers, &none).unwrap_err();
        assert!(err.to_string().contains("raft.node_id"), "{err}");
        let err = check_membership("bully", Some(&id("a")), &peers, &none).unwrap_err();
        assert!(err.to_string().contains("bully.peers.b"), "{err}");
        let all: BTreeSet<NodeId> = [id("a"), id("b")].into();
        let ok_peers: BTreeMap<NodeId, String> = [(id("b"), "h:2".to_string())].into();
        let err = check_membership("raft", Some(&id("a")), &ok_peers, &all).unwrap_err();
        assert!(err.to_string().contains("no one could ever lead"), "{err}");
        check_membership("raft", Some(&id("a")), &ok_peers, &none).unwrap();
    }

    #[test]
    fn exactly_one_authentication_method_is_required() {
        check_auth("raft", true, false, false).unwrap();
        check_auth("raft", false, false, true).unwrap();
        for (s, f, t) in [
            (false, false, false),
            (true, true, false),
            (true, true, true),
        ] {
            let err = check_auth("bully", s, f, t).unwrap_err().to_string();
            assert!(
                err.contains("bully.secret") && err.contains("exactly one"),
                "{err}"
            );
        }
    }
}
