//! The shared machinery of the peer-to-peer election backends (`election-raft`,
//! `election-bully`): everything but the algorithm.
//!
//! # Model
//!
//! A backend supplies a sans-IO election core (an [`ElectionCore`]: a state machine that
//! takes messages, commands and timeouts with the time as an argument, and hands out
//! messages to send, events and state to persist). This crate runs it: a [`PeerNode`]
//! starts one tokio driver task over `election-transport` (one authenticated connection per
//! peer, many elections multiplexed over it, messages batched per peer), keeps the core's
//! durable state in a [`StateFile`], and turns the core's events into
//! [`Leadership`](election_core::Leadership)s (through
//! [`LeaseKeeper`](election_core::LeaseKeeper)) and leader observations. Each backend
//! names [`PeerNode`] over its core (`RaftNode`, `BullyNode`) and starts it from its own
//! configuration, a [`PeerNodeConfig`].
//!
//! # Guarantees
//!
//! - **Persist before send, and before grant.** The core's state changes are fsynced before
//!   any message of the same step leaves and before its events (a grant, a new leader) are
//!   delivered. If the write fails (a full disk), those messages are dropped, the events
//!   wait, and the save is retried every 100 ms; the events are delivered, in order, once
//!   it succeeds (a grant's deadline is absolute, so a late one may already have lapsed).
//! - **Lease ends are local first.** A leadership's `lost()` fires when the core reports the
//!   loss or when its lease deadline passes without an extension, whichever is first.
//! - **The handover rule.** Only the holder's resign (or drop) hands a leadership over at
//!   once ([`ElectionCore::resign`]: TimeoutNow, ABDICATE). A leadership that lapsed before
//!   the core extended it (this driver was stalled or starved) is stepped down *quietly*
//!   ([`ElectionCore::expire`]): the followers' promises run out on their own, no earlier
//!   than the lease plus the kill grace, so the old holder's child keeps its grace even when
//!   this process wakes up inside it.
//! - **Crash-safe state file.** Appends are fsynced; compactions are atomic (temporary file,
//!   fsync, rename, directory fsync); a torn last line is ignored, never acted on; after a
//!   failed append the next save rewrites the file, so nothing is appended after a torn
//!   line.
//! - **Bounded state.** The core holds at most its `max_elections` and forgets idle ones
//!   ([`ElectionCore::poll_forget`]); the driver removes them from the state file and
//!   records the core's floor in one atomic compaction, before the step's messages go out.
//!   The handle publishes leaders only for elections whose leader the core knows or that an
//!   elector or stream observes (decision record 105).
//! - Unauthenticated frames never reach the core: the transport drops them. Undecodable
//!   payloads are counted ([`PeerStats::decode_errors`]) and dropped.
//!
//! # Members
//!
//! Every [`PeerNode`] is a [`Membership`]: [`Membership::members`] lists the configured
//! members, this node included, each with its address, whether it is reachable now and
//! how long ago it was last heard from. Reachable means, precisely: an authenticated
//! connection from that peer is open and an authenticated frame (a message or the
//! transport's keepalive, sent after 1 s of silence) arrived on it within
//! [`REACHABLE_WITHIN`] (3 s). So a killed member shows unreachable as soon as its
//! connection closes, a stopped, hung or partitioned one within 3 s, and one that comes
//! back as soon as it has reconnected. It is this node's view: two members may disagree.
//!
//! # What is not guaranteed
//!
//! Everything about the election itself (safety, liveness, timing) is the core's. Process
//! pauses break every timing rule (that is what epochs and fences are for). Dropping a
//! [`PeerNode`] stops it abruptly, like [`PeerNode::crash`].
//!
//! # Where the epoch comes from
//!
//! From the core: [`CoreEvent`] carries the leadership's epoch (Raft's term, Bully's
//! victory epoch), which becomes [`Epoch`](election_core::Epoch) unchanged.
//!
//! # Settings ([`PeerSettings`])
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `me` | required | this node's id |
//! | `listen` | required | address for peers; port 0 picks one |
//! | `peers` | required | every member's id → `host:port` |
//! | `secret` / `secret_file` / `tls` | one required | peer authentication (HMAC-SHA256 or mutual TLS) |
//! | `data_dir` | required | directory of the state file |
//! | `reconnect_max` | required | cap of the transport's reconnect backoff (the backend's election or failure timeout) |
//! | `try_window` | required | how long `try_campaign` waits for an election to conclude |
//!
//! The backends fill these in from their own configuration, with their own defaults.
//!
//! The [`wire`] module holds the payload framing both backends' message encodings use, and
//! their one [`DecodeError`](wire::DecodeError).
//! With the `test-support` feature, `test_support` holds a generic cluster over loopback
//! TCP with fault proxies for the backends' tests and the tests every message codec passes
//! (`codec_tests!`), `conformance` the conformance suite's harness over the cluster, and
//! `sim` a simulated network for the sans-IO cores.

#[cfg(feature = "test-support")]
pub mod conformance;
mod core;
mod driver;
mod forward;
mod members;
mod node;
mod persist;
mod settings;
#[cfg(feature = "test-support")]
pub mod sim;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod wire;

pub use crate::core::{CoreEvent, ElectionCore, Forget};

/// What the forwarding macros name, from the caller's crate.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    pub use election_core;
}
pub use members::{KEEPALIVE_INTERVAL, Member, Members, Membership, REACHABLE_WITHIN};
pub use node::{PeerNode, PeerNodeConfig, PeerStats, Stall};
pub use persist::{PersistedState, StateFile, StateFormat};
pub use settings::{PeerSettings, TlsConfig, check_auth, check_membership};
