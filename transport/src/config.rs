//! The transport's settings and their invariants.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use election_core::NodeId;

use crate::codec::{HEADER_LEN, MIN_MAX_FRAME_LEN, TAG_LEN};
use crate::{Error, Result};

/// Default [`TransportConfig::max_frame_len`]: 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;
/// Default [`TransportConfig::send_queue_len`]: 1024 messages per peer.
pub const DEFAULT_SEND_QUEUE_LEN: usize = 1024;
/// Default [`TransportConfig::reconnect_min`]: 50 ms.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(50);
/// Default [`TransportConfig::reconnect_max`]: 2 s.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(2);
/// Default [`TransportConfig::handshake_timeout`]: 2 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default [`TransportConfig::max_handshakes`]: 64 connections.
pub const DEFAULT_MAX_HANDSHAKES: usize = 64;
/// Default [`TransportConfig::max_handshakes_per_source`]: 8 connections.
pub const DEFAULT_MAX_HANDSHAKES_PER_SOURCE: usize = 8;
/// Shortest accepted [`Secret`], in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Everything a [`Transport`](crate::Transport) needs. Build it with
/// [`TransportConfig::new`], which fills in the defaults, then adjust fields.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node's id, as its peers know it.
    pub me: NodeId,
    /// Address to listen on for peers' connections, such as `127.0.0.1:7000`. Port 0 picks
    /// a free port; read it back with [`Transport::local_addr`](crate::Transport::local_addr).
    pub listen: SocketAddr,
    /// Every peer's id and `host:port`. May include `me` (its address is ignored). Frames
    /// from any node not listed here are refused.
    pub peers: BTreeMap<NodeId, String>,
    /// How peers prove who they are. No default: choose one.
    pub auth: Auth,
    /// Largest frame accepted or sent, counted after the 4-byte length prefix (version,
    /// kind and body). Default 1 MiB ([`DEFAULT_MAX_FRAME_LEN`]); at least 1024 bytes. A
    /// longer incoming frame closes the connection; a longer payload is refused by `send`.
    pub max_frame_len: usize,
    /// Messages queued per peer while its connection is slow or down. Default 1024
    /// ([`DEFAULT_SEND_QUEUE_LEN`]); at least 1. When full, the *oldest* queued message is
    /// dropped and counted: for election traffic the newest message supersedes older ones.
    pub send_queue_len: usize,
    /// First delay before reconnecting to a peer after a failure. Default 50 ms
    /// ([`DEFAULT_RECONNECT_MIN`]). Doubles on each failure up to `reconnect_max`; each
    /// wait is drawn uniformly from [half, all] of the current delay (jitter).
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts. Default 2 s ([`DEFAULT_RECONNECT_MAX`]).
    /// Bounds how long a restarted peer waits for our messages.
    pub reconnect_max: Duration,
    /// Longest time a TCP connect plus the whole handshake may take, either side; an
    /// incoming connection that has not authenticated by then is closed, however slowly it
    /// keeps sending. Default 2 s ([`DEFAULT_HANDSHAKE_TIMEOUT`]); above zero. A handshake
    /// is two round trips (shared secret) or three (TLS, with certificate checks): a few
    /// milliseconds on a LAN, so 2 s leaves a wide margin for a starved process or a
    /// 200 ms WAN round trip while keeping each idle connection's cost short.
    pub handshake_timeout: Duration,
    /// Most incoming connections that have not finished authenticating, in total.
    /// Default 64 ([`DEFAULT_MAX_HANDSHAKES`]); at least `max_handshakes_per_source`.
    /// Authenticated peers never count: their connections are always admitted. A new
    /// connection past the cap displaces the oldest unauthenticated one that has not yet
    /// sent a valid first handshake frame (or, failing that, the oldest), so idle or
    /// slow-loris connections cannot keep a real peer out.
    pub max_handshakes: usize,
    /// Most incoming connections that have not finished authenticating from one source IP
    /// address. Default 8 ([`DEFAULT_MAX_HANDSHAKES_PER_SOURCE`]); at least 1. Past it a
    /// new connection from that address displaces that address's oldest pending one, as
    /// above: a flood from one address cannot touch other addresses' handshakes.
    pub max_handshakes_per_source: usize,
}

impl TransportConfig {
    /// A configuration with every tunable at its default.
    pub fn new(
        me: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, String>,
        auth: Auth,
    ) -> Self {
        TransportConfig {
            me,
            listen,
            peers,
            auth,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            send_queue_len: DEFAULT_SEND_QUEUE_LEN,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_source: DEFAULT_MAX_HANDSHAKES_PER_SOURCE,
        }
    }

    /// Largest payload [`Transport::send`](crate::Transport::send) accepts:
    /// `max_frame_len` less the header and the MAC tag.
    pub fn max_payload_len(&self) -> usize {
        self.max_frame_len.saturating_sub(HEADER_LEN + TAG_LEN)
    }

    /// The peers other than this node.
    pub(crate) fn remote_peers(&self) -> impl Iterator<Item = (&NodeId, &String)> {
        self.peers.iter().filter(|(id, _)| **id != self.me)
    }

    /// Checks the invariants documented on each field.
    pub fn validate(&self) -> Result<()> {
        if self.max_frame_len < MIN_MAX_FRAME_LEN || self.max_frame_len > u32::MAX as usize {
            return Err(Error::config(
                "max_frame_len",
                format!(
                    "is {}; it must be between {MIN_MAX_FRAME_LEN} and {} bytes",
                    self.max_frame_len,
                    u32::MAX
                ),
            ));
        }
        if self.send_queue_len == 0 {
            return Err(Error::config(
                "send_queue_len",
                "must be at least 1 message",
            ));
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return Err(Error::config(
                "reconnect_min",
                format!(
                    "is {:?}; it must be above zero and at most reconnect_max ({:?})",
                    self.reconnect_min, self.reconnect_max
                ),
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::config("handshake_timeout", "must be above zero"));
        }
        if self.max_handshakes_per_source == 0
            || self.max_handshakes < self.max_handshakes_per_source
        {
            return Err(Error::config(
                "max_handshakes",
                format!(
                    "max_handshakes ({}) must be at least max_handshakes_per_source ({}), \
                     which must be at least 1",
                    self.max_handshakes, self.max_handshakes_per_source
                ),
            ));
        }
        for (id, addr) in self.remote_peers() {
            if addr
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return Err(Error::config(
                    format!("peers.{id}"),
                    format!("address {addr:?} is not host:port"),
                ));
            }
        }
        if let Auth::MutualTls(_) = self.auth {
            for id in std::iter::once(&self.me).chain(self.peers.keys()) {
                if rustls::pki_types::DnsName::try_from(id.as_str()).is_err() {
                    return Err(Error::config(
                        "peers",
                        format!(
                            "node id {id:?} is not a DNS name, so no certificate can name it \
                             (mutual TLS matches a peer's id against its certificate's DNS SAN)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How peers authenticate each other. Every frame is authenticated either way.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A secret every node shares: an HMAC-SHA256 handshake with fresh nonces from both
    /// sides, then an HMAC-SHA256 tag over a per-direction sequence number and the payload
    /// on every frame. Frames are authenticated, not encrypted.
    SharedSecret(Secret),
    /// Mutual TLS 1.2/1.3 (rustls, ring): each node presents a certificate signed by the
    /// CA whose DNS subject alternative name is its node id.
    MutualTls(TlsFiles),
}

/// The PEM files for [`Auth::MutualTls`].
///
/// The certificate must carry a DNS subject alternative name equal to this node's id and
/// both the `serverAuth` and `clientAuth` extended key usages (each node both dials and
/// accepts). It is checked against `me` when the transport starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) that sign every node's certificate.
    pub ca: PathBuf,
    /// This node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// This node's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A shared secret of at least 16 bytes. Its `Debug` output never shows the bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps `bytes`; refuses fewer than [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Secret> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(Error::config(
                "auth.secret",
                format!(
                    "is {} bytes long; use at least {MIN_SECRET_LEN} random bytes",
                    bytes.len()
                ),
            ));
        }
        Ok(Secret(bytes))
    }

    /// Reads a secret from a file, ignoring one trailing newline.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Secret> {
        let path = path.into();
        let mut bytes = std::fs::read(&path).map_err(|e| {
            Error::config(
                "auth.secret_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        Secret::new(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite before the allocation is freed.
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TransportConfig {
        let me = NodeId::new("a").unwrap();
        let peers = BTreeMap::from([
            (me.clone(), "127.0.0.1:1".to_owned()),
            (NodeId::new("b").unwrap(), "127.0.0.1:2".to_owned()),
        ]);
        let auth = Auth::SharedSecret(Secret::new(*b"0123456789abcdef").unwrap());
        TransportConfig::new(me, "127.0.0.1:0".parse().unwrap(), peers, auth)
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
        assert_eq!(config().max_frame_len, 1 << 20);
    }

    #[test]
    fn handshake_limits_are_checked() {
        let c = config();
        assert_eq!(c.handshake_timeout, Duration::from_secs(2));
        assert_eq!((c.max_handshakes, c.max_handshakes_per_source), (64, 8));
        let mut c = config();
        c.handshake_timeout = Duration::ZERO;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("handshake_timeout")
        );
        let mut c = config();
        c.max_handshakes = 4;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_handshakes")
        );
        let mut c = config();
        c.max_handshakes_per_source = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn secret_debug_never_shows_the_bytes() {
        let s = Secret::new(*b"supersecretvalue").unwrap();
        let shown = format!("{s:?} {:?}", Auth::SharedSecret(s.clone()));
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    #[test]
    fn short_secrets_and_bad_settings_are_refused() {
        assert!(Secret::new(*b"short").is_err());
        let mut c = config();
        c.send_queue_len = 0;
        assert!(c.validate().is_err());
        let mut c = config();
        c.reconnect_min = c.reconnect_max * 2;
        assert!(c.validate().is_err());
        let mut c = config();
        c.max_frame_len = 10;
        assert!(c.validate().is_err());
        let mut c = config();
        c.peers
            .insert(NodeId::new("c").unwrap(), "no-port".to_owned());
        assert!(c.validate().unwrap_err().to_string().contains("peers.c"));
    }
}
