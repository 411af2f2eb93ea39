//! An authenticated message transport between a static set of peers, shared by the Raft
//! and Bully backends.
//!
//! # Model
//!
//! Each node runs one [`Transport`]: it listens on [`TransportConfig::listen`] and keeps one
//! outgoing TCP connection to every other configured peer. Messages to a peer go over the
//! connection *we* dialed; messages from it arrive over the connection *it* dialed. So each
//! connection carries data one way, and simultaneous dials need no tie-breaking.
//! [`Transport::send`] puts a payload (opaque bytes: the protocol above encodes its own
//! messages) in the peer's bounded queue and returns at once; the [`Inbox`] yields
//! `(sender, payload)` for every authenticated message received.
//!
//! ```no_run
//! # async fn example(config: election_transport::TransportConfig, peer: election_core::NodeId)
//! # -> election_transport::Result<()> {
//! use election_transport::Transport;
//! let (transport, mut inbox) = Transport::bind(config).await?;
//! transport.send(&peer, bytes::Bytes::from_static(b"vote for me"));
//! while let Some((from, payload)) = inbox.recv().await {
//!     println!("{from}: {} bytes", payload.len());
//! }
//! # Ok(()) }
//! ```
//!
//! # Wire format
//!
//! Length-prefixed frames: a 4-byte big-endian length, a version byte
//! ([`PROTOCOL_VERSION`]; any other value is refused), a kind byte and the body. See
//! [`Frame`] and [`FrameDecoder`]; the codec is sans-IO and fuzzed
//! (`fuzz/fuzz_targets/frame_decoder.rs`).
//!
//! # Authentication
//!
//! - [`Auth::SharedSecret`]: a handshake binds the connection to fresh nonces from both
//!   sides and both node ids, each side proving the secret with HMAC-SHA256; every data
//!   frame then carries an HMAC-SHA256 tag over a per-direction key, an implicit sequence
//!   number and the payload. A recorded frame is refused on another connection and when
//!   replayed on its own. Tags are compared in constant time. Frames are *not* encrypted.
//!   See [`Transcript`] for the exact protocol.
//! - [`Auth::MutualTls`]: TLS 1.2/1.3 with rustls and the ring provider, client
//!   certificates required, every node's certificate signed by the configured CA. A
//!   peer's node id must equal a **DNS subject alternative name** of its certificate: the
//!   dialer verifies the acceptor's certificate with the node id as server name, and the
//!   acceptor checks the dialer's certificate against the id the dialer claims. Our own
//!   certificate is checked against [`TransportConfig::me`] at start.
//!
//! # Guarantees
//!
//! - Only authenticated messages from configured peers are delivered, attributed to the
//!   peer that authenticated. A connection is closed, and the event counted in
//!   [`TransportStats`], on any unauthenticated, replayed, malformed, oversized or
//!   wrong-version frame, or a Hello claiming a node id outside the peer set. Bad input
//!   never panics.
//! - Per connection, messages arrive in the order sent, each at most once.
//! - [`Transport::send`] never blocks, also when the peer is down.
//!
//! # Keepalives and reachability
//!
//! A dialer that wrote nothing for [`KEEPALIVE_INTERVAL`] (1 s) writes a keepalive: an
//! empty data frame, sealed or sent inside TLS like any other, counted in
//! [`TransportStats::keepalives_sent`] and never delivered (so [`Transport::send`] refuses
//! an empty payload). Every running peer is therefore heard from at least once a second,
//! whatever the protocol above sends. [`Transport::peers`] reports, per configured peer,
//! when it was last heard from and a [`PeerLink::reachable`] flag: an authenticated
//! connection from it is open and a frame arrived on it within [`REACHABLE_WITHIN`]
//! (3 s). A killed peer turns unreachable when its connection closes; a stopped or
//! partitioned one within 3 s. A node of an older version delivers a keepalive to its
//! protocol as an empty payload, which fails to decode and is dropped.
//!
//! # What is not guaranteed
//!
//! Delivery. Messages queued or in flight when a connection breaks are lost; a full queue
//! drops its oldest message; across a reconnection, order is kept only because one dialer
//! owns each direction. The protocols above must tolerate loss (Raft and Bully do). There is
//! no confidentiality under a shared secret. Clocks play no part.
//!
//! # Settings ([`TransportConfig`])
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `me`, `listen`, `peers`, `auth` | required | identity, listen address, peer ids → `host:port`, authentication |
//! | `max_frame_len` | 1 MiB | largest frame (after the length prefix), in and out |
//! | `send_queue_len` | 1024 | messages queued per peer; drops the oldest when full |
//! | `reconnect_min` | 50 ms | first reconnection delay; doubles per failure, with jitter |
//! | `reconnect_max` | 2 s | longest reconnection delay |
//! | `handshake_timeout` | 2 s | a TCP connect plus the whole handshake, either side |
//! | `max_handshakes` | 64 | unauthenticated incoming connections, in total |
//! | `max_handshakes_per_source` | 8 | unauthenticated incoming connections from one IP address |
//!
//! **Idle and slow connections cannot starve peers.** Only connections that have not
//! authenticated count against the caps; authenticated peers are always admitted (each
//! peer's newest connection supersedes its older ones, so they stay few). A connection that
//! has not authenticated within `handshake_timeout` is closed however slowly it keeps
//! sending (a slow-loris), and a new connection past a cap displaces the oldest pending one
//! that has not yet sent a valid first frame (else the oldest), from its own address when
//! that address holds its share. So a flood of idle connections costs at most
//! `max_handshakes` file descriptors and cannot keep a real peer's handshake (a few round
//! trips) out; a flood from one address cannot touch other addresses at all
//! ([`TransportStats::handshakes_displaced`], [`TransportStats::handshake_timeouts`]).
//!
//! Fixed: a keepalive after [`KEEPALIVE_INTERVAL`] (1 s) of silence and the [`REACHABLE_WITHIN`]
//! window (3 s), see above; handshake frames are limited to 1 KiB (so an unauthenticated peer cannot make a node buffer a large frame); a
//! write stalled for 5 s drops the connection; the inbox holds
//! [`INBOX_LEN`] messages; [`Transport::shutdown`] drains queues for up to
//! [`SHUTDOWN_GRACE`].
//!
//! There are no epochs here: the transport carries the messages from which the backends
//! above derive theirs.

mod backoff;
mod codec;
mod config;
mod conn;
mod error;
mod links;
mod mac;
mod queue;
mod stats;
mod tls;
mod transport;

pub use codec::{
    Frame, FrameDecoder, FrameError, HEADER_LEN, LENGTH_PREFIX_LEN, MIN_MAX_FRAME_LEN, NONCE_LEN,
    PROTOCOL_VERSION, TAG_LEN,
};
pub use config::{
    Auth, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_HANDSHAKES_PER_SOURCE, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MIN,
    DEFAULT_SEND_QUEUE_LEN, MIN_SECRET_LEN, Secret, TlsFiles, TransportConfig,
};
pub use election_core::NodeId;
pub use error::{Error, Result};
pub use links::{KEEPALIVE_INTERVAL, PeerLink, REACHABLE_WITHIN};
pub use mac::{FrameMac, Transcript};
pub use stats::TransportStats;
pub use transport::{INBOX_LEN, Inbox, SHUTDOWN_GRACE, Transport};
