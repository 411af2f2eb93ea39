//! Leader election by the Bully algorithm among the nodes themselves (no external
//! service), with persisted epochs and an optional majority rule, over authenticated
//! peer connections.
//!
//! # Model
//!
//! A static set of members, ranked by (priority, id): `priorities` gives members a
//! priority (default 0), and among equal priorities the greatest id (byte order) is the
//! "highest" node. Bully never preempts a live leader, priorities included: a member of
//! higher priority that comes back leads after the next election (decision record 135).
//! Each member runs a [`BullyNode`]: a sans-IO state machine ([`core::Node`]) driven
//! by a tokio task over `election-transport` (one authenticated connection per peer; many
//! elections multiplexed over it, their messages batched per peer). The exchange, per
//! election:
//!
//! - **ELECTION.** A campaigning node that knows no live leader sends ELECTION to every
//!   peer. A *higher* campaigning node answers **ALIVE** and holds its own election; every
//!   other node acknowledges, reporting its highest epoch seen and whether it would follow
//!   a new leader now. A node that got ALIVE waits one failure timeout for the VICTORY of
//!   the higher node, then tries again.
//! - **VICTORY.** When every higher node has answered without ALIVE (or the answer timeout
//!   passed: higher nodes that stay silent are presumed dead), and — with the quorum rule —
//!   a majority of all members acknowledged, the candidate declares victory with
//!   `epoch = max(every epoch seen) + 1`, made durable (write, fsync, atomic rename)
//!   **before** VICTORY goes out. With the quorum rule the leadership is granted once a
//!   majority accepted the VICTORY and (for at most `answer_timeout`) every peer heard from
//!   recently did, so that every live node knows the leader when `campaign` returns.
//! - **Heartbeats.** The leader sends one heartbeat round per interval to every peer,
//!   listing every election it leads with its epoch (the cost of a round grows with the
//!   number of elections led). Followers acknowledge, refusing entries they do not accept.
//!   A campaigning follower that misses heartbeats for the failure timeout holds an
//!   election.
//! - **ABDICATE.** [`Leadership::resign`](election_core::Leadership::resign) ends the
//!   leadership locally, then tells every peer; campaigning peers hold an election at once
//!   and the highest of them wins. The resigning node does not campaign, nor answer ALIVE,
//!   for one failure timeout.
//!
//! **"Highest id wins" applies whenever an election is held** (start-up, leader failure,
//! resign). A higher node that starts campaigning, or comes back, while a healthy leader
//! leads does *not* preempt it: it waits, like any candidate, for the leader to fail or to
//! resign (decision record 080). So handoffs are always a resign or a failure, and a
//! flapping high node cannot take leadership away from a working one.
//!
//! # Guarantees
//!
//! With the quorum rule (`quorum = true`, the default):
//!
//! - **One leader per epoch; epochs never go back.** A follower accepts a VICTORY only for
//!   an epoch above every epoch it has seen, makes it durable before acknowledging, and a
//!   leadership is granted only once a majority accepted it. Two majorities intersect, so
//!   no two leaderships share an epoch, and each new one is above the last granted one.
//!   Restarted nodes resume from their persisted highest epoch.
//! - **Leases do not overlap.** A follower that accepted a leader stays loyal to it — it
//!   acknowledges no other leader's VICTORY or ELECTION — for `failure_timeout` after it
//!   last heard it. The leader's lease runs from the send time of the latest heartbeat
//!   round a majority acknowledged, for `failure_timeout - clock_drift - kill_grace`;
//!   without such acknowledgements it steps down ([`LossReason::QuorumLost`](election_core::LossReason::QuorumLost)). So the old
//!   leader's `lost()` fires, and its guarded child is dead, before any majority can accept
//!   a new leader. A node that just restarted acknowledges no new leader for one failure
//!   timeout, since it may have promised loyalty before it crashed.
//! - **The handover rule.** Only the holder's resign (or drop) sends ABDICATE. A leadership
//!   whose local deadline passed before the core extended it (a stalled or starved driver)
//!   steps down quietly, so the followers' loyalty runs out on its own and the old child
//!   keeps its kill grace.
//! - **A minority side never elects.** A node cut off from a majority loses its lease and
//!   cannot gather a majority for a new one.
//!
//! Without the quorum rule (`quorum = false`, classic Bully): a node leads as soon as no
//! higher candidate answers, and keeps leading until it fails, resigns or sees a higher
//! epoch. A partition therefore elects one leader per side (**split brain**, the classic
//! weakness). Epochs still protect fenced resources: each side's epochs are unique (a
//! node picks the next epoch that is its own modulo the membership size) and above
//! everything that node saw, so a [`Fence`](election_core::Fence) refuses the lower one
//! once the higher has written; when the sides meet again, the lower epoch steps down.
//!
//! **Bounded state** (decision record 105). At most `max_elections` elections are held;
//! past it a new campaign fails with [`election_core::Error::TooManyElections`], peers'
//! mentions of new names are ignored and counted ([`PeerStats::ignored_elections`]), and
//! a heartbeat entry the node cannot hold is refused without a promise (so the leader does
//! not count it). An election with no local candidate, no role, no known leader and no
//! promise running is forgotten once idle for `forget_after`, state file included.
//! Forgetting keeps "one leader accepted per epoch": the node persists a floor (the highest
//! epoch at which it may have accepted a leader there) and every election it does not
//! hold starts above it; a leader at or below that floor is refused there once, steps down
//! and is elected again higher.
//!
//! - **Members.** [`BullyNode`] is a [`Membership`]: [`Membership::members`] lists every
//!   configured member with its address, whether it is reachable now (an authenticated
//!   connection from it is open and it was heard from within the last 3 s) and how long ago
//!   it was last heard from (see `election_peer`'s crate documentation).
//!
//! # What is not guaranteed
//!
//! Process pauses break every timing rule (that is what epochs and fences are for).
//! Liveness needs a majority that can talk to each other and to the highest candidate: a
//! higher candidate that can reach a candidate but not a majority keeps answering ALIVE
//! and stalls the election until the network heals. Membership is static. Losing a data
//! dir can let that node's epochs go back (the majority rule still protects grants, since
//! a majority remembers the highest epoch). A full disk stops progress, not safety: an
//! epoch that cannot be written is never acted on (no grant is delivered at it, in either
//! mode) and the write is retried until space is freed; a write that failed partway is
//! never appended to, and a `kill -9` meanwhile leaves a file the restart reads
//! (`tests/full_disk.rs`).
//!
//! # Where the epoch comes from
//!
//! The winner's persisted highest epoch seen (raised by every acknowledgement and refusal
//! it received) plus one; see above and decision record 082.
//!
//! # Settings ([`BullyConfig`])
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `node_id` | required | this member's id (its rank) |
//! | `listen` | `127.0.0.1:7500` | address for peers; port 0 picks one |
//! | `peers` | empty | every member's id → `host:port` |
//! | `voters_only` | none | members that acknowledge but never campaign |
//! | `data_dir` | `./elector-bully` | the state file (highest epoch per election) |
//! | `heartbeat` | 25 ms | interval of a leader's heartbeat rounds |
//! | `failure_timeout` | 150 ms | silence after which a leader is presumed failed; follower loyalty |
//! | `answer_timeout` | 50 ms | how long a candidate waits for ALIVE |
//! | `clock_drift` | 25 ms | clock-rate and timer-lateness bound over one lease |
//! | `kill_grace` | 50 ms | the CLI's SIGTERM → SIGKILL grace, inside the lease margin |
//! | `quorum` | `true` | the majority rule |
//! | `rng_seed` | random | seed of the retry jitter |
//! | `secret` / `secret_file` / `tls` | one required | peer authentication (HMAC-SHA256 or mutual TLS) |
//! | `max_elections` | 20,000 | most elections held at once (memory and state file) |
//! | `forget_after` | 10 min | an idle election is forgotten after this long |
//! | `priorities` | empty | member id → priority (default 0); the rank is (priority, id); the same map on every member |
//!
//! Unauthenticated frames never reach the core: the transport drops them, so an
//! unauthenticated VICTORY is never seen. Dials to an unreachable peer back off up to
//! `failure_timeout` (not the transport's default 2 s), so a member that restarts is
//! reachable again within about one failure timeout.
//!
//! The driver, node handle, state file and transport settings are shared with the Raft
//! backend (crate `election-peer`).
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_bully::{BullyConfig, BullyNode};
//! use election_core::{Backend, Candidate, ElectionName, NodeId};
//! let me = NodeId::new("node-3")?;
//! let node = BullyNode::start(BullyConfig {
//!     node_id: Some(me.clone()),
//!     peers: [
//!         (NodeId::new("node-1")?, "10.0.0.1:7500".to_string()),
//!         (NodeId::new("node-2")?, "10.0.0.2:7500".to_string()),
//!     ]
//!     .into(),
//!     secret_file: Some("/etc/elector/secret".into()),
//!     ..BullyConfig::default()
//! })
//! .await?;
//! let elector = node.election(&ElectionName::new("nightly-backup")?, Candidate::new(me))?;
//! let leadership = elector.campaign().await?;
//! println!("leading at epoch {}", leadership.epoch());
//! # Ok(()) }
//! ```

mod adapter;
mod codec;
mod config;
pub mod core;

pub use adapter::BullyNode;
pub use codec::{WIRE_VERSION, decode, encode};
pub use config::{BullyConfig, DEFAULT_FORGET_AFTER, DEFAULT_MAX_ELECTIONS};
pub use election_peer::wire::DecodeError;
pub use election_peer::{Member, Members, Membership, PeerStats, Stall, TlsConfig};

/// The backend kind, as in [`Backend::kind`](election_core::Backend::kind).
const KIND: &str = "bully";
