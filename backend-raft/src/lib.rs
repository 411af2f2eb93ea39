//! Leader election by Raft among the nodes themselves: no external service. A sans-IO
//! core ([`core::Node`]) that is simulation-tested, and a tokio driver ([`RaftNode`]) that
//! implements [`election_core::Backend`] over the authenticated `election-transport`.
//!
//! # Model
//!
//! A static set of members (`peers` plus this node; at most 64) elects, for each election
//! name, at most one leader per term. Many elections share one node: each has its own
//! follower / candidate / leader state and term, and all of them share one authenticated
//! TCP connection per peer pair and one heartbeat round per heartbeat interval. A round
//! names the *version* of the set of elections its sender leads; the set itself (or, after
//! the first time, only its changes) travels only when the receiver does not hold that
//! version yet. So 10,000 idle elections cost about as many packets as one.
//!
//! Raft's election is implemented completely, log replication not at all:
//!
//! - randomized election timeouts from a seeded ChaCha RNG (`rng_seed`);
//! - **pre-vote** (§9.6 of Ongaro's thesis): a node that cannot win does not raise terms,
//!   so a rejoining partitioned node does not disturb a healthy leader;
//! - **leader lease / check-quorum** (§6): a follower that heard from a live leader within
//!   `election_timeout_min` ignores (pre-)votes; so does a node that granted a vote within
//!   that time; a leader's lease ends `election_timeout_min - clock_drift - kill_grace`
//!   after the send time of its last heartbeat round acknowledged by a quorum (or of the
//!   vote requests that elected it), and it steps down (`lost()` = `QuorumLost`) then;
//! - **leadership transfer** (§3.10) on resign: the leader steps down at once and sends
//!   TimeoutNow to the campaigning follower that acknowledged its latest round; that
//!   follower campaigns without pre-vote and past the lease; the resigning node does not
//!   campaign there again for `election_timeout_max`;
//! - **preferred leaders** (`priority`, `priority_stable`; decision record 134): a
//!   campaigning follower of higher priority than the leader that has been caught up and
//!   has answered every heartbeat round, with no restart and no gap longer than
//!   `election_timeout_min`, for `priority_stable` (default 5 s, or 2 x
//!   `election_timeout_max` if longer) gets the leadership: the leader steps down (`lost()` = `Yielded`) *without* TimeoutNow, so its followers'
//!   promises run out on their own and its child keeps its kill grace, and the target
//!   campaigns as soon as they have (about one `election_timeout_min` later). A member
//!   that restarts or flaps starts its stable period again, so leadership moves to it
//!   once, after the period, and at most once per period;
//! - **voters that never campaign** (`voters_only`);
//! - **term and vote persisted** per election in one state file (appended and fsynced;
//!   compacted by write, fsync, rename, fsync of the directory), batched per driver step,
//!   *before* the messages that depend on them are sent.
//!
//! §5.4's up-to-date rule protects log entries; there is no log here, so every candidate
//! is "up to date". Its job of keeping a stale node from taking over a working cluster is
//! done by pre-vote and the leader lease; the transfer target is the campaigning
//! follower with the most recent acknowledged heartbeat round.
//!
//! # Guarantees
//!
//! - **Epoch = term.** Each [`election_core::Leadership`] carries its term as epoch. At most
//!   one leader per term per election (one vote per term, made durable before it is
//!   sent), so epochs of successive leaderships strictly increase, also across restarts of
//!   any minority of nodes. Checked after every step of 10,000 simulated schedules.
//! - **Loss is reported before anyone else can lead.** A leader's lease deadline is the
//!   send time of the last quorum-acknowledged round (or of its winning vote requests)
//!   plus `election_timeout_min - clock_drift - kill_grace`; every member of that quorum
//!   refuses other candidates until at least `election_timeout_min` after it *received*
//!   that round. So, with clocks whose rates differ by less than `clock_drift` per lease,
//!   `lost()` resolves, and the guarded child has `kill_grace` to die, before another node
//!   can be elected. A restarted node refuses votes, and does not campaign, for
//!   `election_timeout_min` after it starts, because it may have made such a promise just
//!   before it stopped. A leader that gave an election up (resign aside) keeps refusing
//!   other candidates for the same margin.
//! - **The handover rule.** Only the holder's resign (or drop) hands over with TimeoutNow.
//!   A leadership whose local deadline passed before the core extended it (a stalled or
//!   starved driver) steps down quietly, as after a lost quorum, so the followers' promises
//!   expire on their own and the old child keeps its kill grace.
//! - **Resign hands over in about one round trip** to a campaigning follower, which is then
//!   granted at once (its voters' promises start when they grant the vote).
//! - Undecodable, unauthenticated and unknown-sender messages are dropped and counted,
//!   never a panic ([`PeerStats`], [`decode`] is tested on random bytes and fuzzed:
//!   `fuzz/fuzz_targets/raft_codec.rs`).
//!
//! - **Bounded state** (decision record 105). At most `max_elections` elections are held;
//!   past it a new campaign fails with [`election_core::Error::TooManyElections`] and peers'
//!   mentions of new names are ignored and counted ([`PeerStats::ignored_elections`]). An
//!   election with no local candidate, no role, no leader or claim of a peer heard within
//!   `forget_after`, and no promise running is forgotten once idle for `forget_after`,
//!   state file included. Forgetting keeps one vote per term: the node persists a floor
//!   (the highest term it may have voted in there) and every election it does not hold
//!   starts above it.
//!
//! - **Members.** [`RaftNode`] is a [`Membership`]: [`Membership::members`] lists every
//!   configured member with its address, whether it is reachable now (an authenticated
//!   connection from it is open and it was heard from within the last 3 s) and how long ago
//!   it was last heard from (see `election_peer`'s crate documentation).
//!
//! # What is not guaranteed
//!
//! - Liveness needs a majority of members up and connected. A minority side never elects.
//! - A process paused (SIGSTOP, GC, VM stall) past its lease, or clocks drifting faster
//!   than `clock_drift`, can act as leader after a new leader exists: fence with the epoch.
//! - Losing a node's data dir lets it vote twice in a term: restore it, or give the node a
//!   new id.
//! - A full disk stops progress, not safety: a term or vote that cannot be written is
//!   never acted on (no vote is sent and no grant delivered at it) and the write is
//!   retried, so elections whose change cannot be persisted wait until space is freed; a
//!   write that failed partway is never appended to, and a `kill -9` meanwhile leaves a
//!   file the restart reads (`tests/full_disk.rs`).
//! - A leader whose term is at or below the floor of a member that does not hold its
//!   election (that member forgot it, e.g. after a partition longer than `forget_after`)
//!   is refused there once and steps down; it is elected again at a higher term.
//! - The default timings are fast: on an overloaded machine (a starved process, timers
//!   late by more than `clock_drift`) leases lapse and leaders change more often; raise
//!   the timings together (see decision record 030).
//!
//! # Settings ([`RaftConfig`], all with defaults)
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `node_id` | required | this member's id |
//! | `listen` | `127.0.0.1:7400` | address peers connect to |
//! | `peers` | empty | every member's id → `host:port` |
//! | `voters_only` | none | members that vote but never campaign |
//! | `data_dir` | `./elector-raft` | the state file's directory |
//! | `heartbeat` | 50 ms | interval between heartbeat rounds |
//! | `election_timeout_min` | 200 ms | lower bound of the random election timeout; the followers' lease |
//! | `election_timeout_max` | 400 ms | upper bound of the random election timeout |
//! | `clock_drift` | 25 ms | clock-rate and timer-lateness bound per lease |
//! | `kill_grace` | 50 ms | SIGTERM → SIGKILL time the CLI gives a guarded child |
//! | `rng_seed` | random | seed of the election-timeout RNG |
//! | `secret` / `secret_file` / `tls` | one required | peer authentication |
//! | `max_elections` | 20,000 | most elections held at once (memory and state file) |
//! | `forget_after` | 10 min | an idle election is forgotten after this long |
//! | `priority` | 0 | this member's priority as a candidate; higher is preferred (decision 134) |
//! | `priority_stable` | 5 s, or 2 x `election_timeout_max` if longer | how long a member of higher priority must be healthy before the leader steps down for it; a value set must be at least 2 x `election_timeout_max` |
//!
//! The transport's reconnect backoff is capped at `election_timeout_max`, so a member that
//! comes back can vote within an election or two.
//!
//! The driver, node handle, state file and transport settings are shared with the Bully
//! backend (crate `election-peer`).
//!
//! [`RaftConfig::validate`] refuses unsafe combinations, naming the rule: the lease
//! (`election_timeout_min - clock_drift - kill_grace`) must cover two heartbeats, the
//! random range must be at least one heartbeat wide, `clock_drift` at least 5 % of
//! `election_timeout_min`. Decision record 030 explains the defaults: crash failover of
//! about 200 ms median at the price of a 50 ms kill grace; raise `election_timeout_min`
//! to give a child more time.
//!
//! # Use
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_core::{Backend, Candidate, ElectionName, NodeId};
//! use election_raft::{RaftConfig, RaftNode};
//! let me = NodeId::new("db-1")?;
//! let node = RaftNode::start(RaftConfig {
//!     node_id: Some(me.clone()),
//!     listen: "127.0.0.1:7401".parse().unwrap(),
//!     peers: [("db-1", "127.0.0.1:7401"), ("db-2", "127.0.0.1:7402"), ("db-3", "127.0.0.1:7403")]
//!         .into_iter()
//!         .map(|(id, a)| (NodeId::new(id).unwrap(), a.to_string()))
//!         .collect(),
//!     secret_file: Some("/etc/elector/raft.secret".into()),
//!     ..RaftConfig::default()
//! })
//! .await?;
//! let elector = node.election(&ElectionName::new("nightly-backup")?, Candidate::new(me))?;
//! let leadership = elector.campaign().await?;
//! println!("leading at epoch {}", leadership.epoch());
//! leadership.resign().await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Testing
//!
//! `tests/sim.rs` runs 10,000 seeded schedules of the core on a simulated network
//! (drops, delays, partitions, crashes and restarts) checking the invariants after every
//! step; a failure prints `RAFT_SEED=<seed> cargo test -p election-raft --test sim
//! sim_replay`. `tests/paper.rs` checks the Raft rules one by one; `tests/tcp.rs` and
//! `tests/conformance.rs` run real clusters over loopback TCP through fault proxies.

mod adapter;
mod codec;
mod config;
pub mod core;

pub use adapter::RaftNode;
pub use codec::{WIRE_VERSION, decode, encode};
pub use config::{
    DEFAULT_FORGET_AFTER, DEFAULT_MAX_ELECTIONS, DEFAULT_PRIORITY_STABLE, RaftConfig,
};
pub use election_peer::wire::DecodeError;
pub use election_peer::{Member, Members, Membership, PeerStats, Stall, TlsConfig};

/// The backend kind, as in [`Backend::kind`](election_core::Backend::kind).
const KIND: &str = "raft";
