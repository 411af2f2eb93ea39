//! Counters, updated lock-free by the connection tasks.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of the transport's counters since it started. All counts only grow.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct TransportStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> TransportStats {
                TransportStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters! {
    /// Data frames written to a peer's connection.
    frames_sent,
    /// Payload bytes in those frames.
    bytes_sent,
    /// Data frames received, authenticated and delivered to the [`Inbox`](crate::Inbox).
    frames_received,
    /// Payload bytes in those frames.
    bytes_received,
    /// Keepalives written: empty data frames sent on a connection idle for
    /// [`KEEPALIVE_INTERVAL`](crate::KEEPALIVE_INTERVAL) (not counted in `frames_sent`).
    keepalives_sent,
    /// Keepalives received, authenticated (not counted in `frames_received`, not delivered).
    keepalives_received,
    /// Messages dropped from a full send queue (the oldest one goes; see
    /// [`TransportConfig::send_queue_len`](crate::TransportConfig::send_queue_len)).
    queue_drops,
    /// Calls to [`Transport::send`](crate::Transport::send) that returned `false` (unknown
    /// peer or ourselves, payload too large, transport shut down).
    sends_refused,
    /// Connections closed because a peer failed authentication: wrong shared secret, bad
    /// MAC (forged, modified or replayed frame), TLS failure, certificate not naming it.
    auth_failures,
    /// Connections closed on a frame longer than the maximum frame length.
    oversized_frames,
    /// Connections closed on a frame with an unknown version byte.
    bad_version_frames,
    /// Connections closed on a malformed frame or a frame out of protocol order.
    malformed_frames,
    /// Connections closed because the dialer claimed a node id not in the peer set, or
    /// addressed another node.
    unknown_peer_frames,
    /// Incoming connections that completed authentication.
    connections_accepted,
    /// Outgoing connections that completed authentication (under TLS 1.3 the acceptor
    /// checks our certificate after our side of the handshake ends, so it may still
    /// refuse one counted here).
    connections_established,
    /// Outgoing connection attempts that failed before completing (refused, timed out,
    /// rejected).
    connect_failures,
    /// Incoming connections closed because they had not authenticated within
    /// [`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout).
    handshake_timeouts,
    /// Incoming connections closed, unauthenticated, to make room for a newer one (the
    /// caps [`TransportConfig::max_handshakes`](crate::TransportConfig::max_handshakes)
    /// and `max_handshakes_per_source`).
    handshakes_displaced,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
