//! The crate's error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use election_core::NodeId;

use crate::FrameError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the transport. Messages name the peer and its address.
///
/// [`Transport::bind`](crate::Transport::bind) returns the configuration, TLS-file and
/// bind errors; the connection errors are logged and counted in
/// [`TransportStats`](crate::TransportStats), never returned, because the transport
/// reconnects by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or breaks an invariant. Fix the configuration.
    #[error("invalid transport configuration: {key}: {reason}")]
    Config {
        /// The setting, such as `send_queue_len` or `peers.n2`.
        key: String,
        /// Which rule failed.
        reason: String,
    },

    /// A TLS file could not be read or holds no usable certificate or key.
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// The listening socket could not be opened (address in use, not local, no permission).
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        /// The configured listen address.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },

    /// A TCP or TLS read, write or connect failed, or the peer closed the connection.
    #[error("{} at {addr}: {what}: {source}", PeerName(.peer))]
    Io {
        /// The peer, once known.
        peer: Option<NodeId>,
        /// Its address.
        addr: String,
        /// What was being done.
        what: &'static str,
        /// The operating system's or TLS library's error.
        source: io::Error,
    },

    /// The peer sent bytes that are not a valid frame (oversized, wrong version, malformed).
    #[error("{} at {addr}: {source}", PeerName(.peer))]
    Frame {
        /// The peer, once known.
        peer: Option<NodeId>,
        /// Its address.
        addr: String,
        /// What was wrong with the frame.
        source: FrameError,
    },

    /// The peer failed authentication: a wrong shared secret, a bad MAC (forged, modified
    /// or replayed frame), a TLS failure, or a certificate that does not name it.
    #[error("{} at {addr} failed authentication: {reason}", PeerName(.peer))]
    Auth {
        /// The peer, once known.
        peer: Option<NodeId>,
        /// Its address.
        addr: String,
        /// What failed.
        reason: String,
    },

    /// A connection claimed a node id that is not in the configured peer set.
    #[error("unknown node {claimed} at {addr}: not in this transport's peer set")]
    UnknownPeer {
        /// The id it claimed.
        claimed: NodeId,
        /// Its address.
        addr: String,
    },

    /// A known peer's Hello named another node as its destination (a wrong address in its
    /// configuration).
    #[error("peer {peer} at {addr} meant to reach node {to}, but this is node {me}")]
    Misaddressed {
        /// The peer.
        peer: NodeId,
        /// Its address.
        addr: String,
        /// The node it meant to reach.
        to: NodeId,
        /// This node.
        me: NodeId,
    },

    /// A step of connecting took longer than allowed.
    #[error("{} at {addr}: {what} timed out after {millis} ms", PeerName(.peer))]
    Timeout {
        /// The peer, once known.
        peer: Option<NodeId>,
        /// Its address.
        addr: String,
        /// The step.
        what: &'static str,
        /// The limit, in milliseconds.
        millis: u64,
    },

    /// The peer broke the protocol's order (such as data before the handshake ended).
    #[error("{} at {addr}: protocol violation: {detail}", PeerName(.peer))]
    Protocol {
        /// The peer, once known.
        peer: Option<NodeId>,
        /// Its address.
        addr: String,
        /// What happened.
        detail: &'static str,
    },
}

struct PeerName<'a>(&'a Option<NodeId>);

impl fmt::Display for PeerName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "peer {id}"),
            None => f.write_str("unidentified peer"),
        }
    }
}

impl Error {
    /// The peer address concerned, for connection errors.
    pub fn addr(&self) -> Option<&str> {
        match self {
            Error::Config { .. } | Error::TlsFile { .. } | Error::Bind { .. } => None,
            Error::Io { addr, .. }
            | Error::Frame { addr, .. }
            | Error::Auth { addr, .. }
            | Error::UnknownPeer { addr, .. }
            | Error::Misaddressed { addr, .. }
            | Error::Timeout { addr, .. }
            | Error::Protocol { addr, .. } => Some(addr),
        }
    }

    pub(crate) fn config(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<Error> for election_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Config { key, reason } => election_core::Error::config(key, reason),
            Error::TlsFile { .. } => election_core::Error::config("auth.tls", e),
            Error::Bind { addr, .. } => {
                let detail = e.to_string();
                election_core::Error::unavailable(
                    "transport",
                    addr.to_string(),
                    None,
                    detail,
                    Some(Box::new(e)),
                )
            }
            other => {
                let addr = other.addr().unwrap_or_default().to_owned();
                election_core::Error::protocol("transport", addr, None, other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use election_core::ErrorKind;

    #[test]
    fn converted_errors_keep_their_kind_and_name_the_address() {
        let bind = Error::Bind {
            addr: "127.0.0.1:7000".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        let core: election_core::Error = bind.into();
        assert_eq!(core.kind(), ErrorKind::Unavailable);
        assert!(core.to_string().contains("127.0.0.1:7000"), "{core}");
        let core: election_core::Error = Error::config("send_queue_len", "zero").into();
        assert_eq!(core.kind(), ErrorKind::Config);
        let auth = Error::Auth {
            peer: Some(NodeId::new("n2").unwrap()),
            addr: "127.0.0.1:7002".into(),
            reason: "bad MAC".into(),
        };
        assert_eq!(
            auth.to_string(),
            "peer n2 at 127.0.0.1:7002 failed authentication: bad MAC"
        );
        let core: election_core::Error = auth.into();
        assert_eq!(core.kind(), ErrorKind::Protocol);
        assert!(core.to_string().contains("127.0.0.1:7002"), "{core}");
    }
}
