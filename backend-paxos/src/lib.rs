//! Leader election by PaxosLease (Trencseni, Gazsó, Reinhardt, "PaxosLease: Diskless
//! Paxos for Leases", arXiv:1209.4187, the lease negotiation of Keyspace and ScalienDB)
//! among the nodes themselves (no external service), over authenticated peer connections.
//!
//! # Model
//!
//! A static set of members; every member is an **acceptor**, and every member that is not
//! voters-only a **proposer**. Each runs a [`PaxosNode`]: a sans-IO state machine
//! ([`core::Node`]) driven by a tokio task over `election-transport` (one authenticated
//! connection per peer; many elections multiplexed over it, one step's messages batched
//! per peer; wire format version 3). Per election:
//!
//! - **Prepare.** A campaigning proposer picks a ballot above every ballot it has seen
//!   (`counter * 64 + member index`: unique per member) and sends PREPARE to every
//!   acceptor. An acceptor promises the ballot if it is at least its highest promise and
//!   above its fencing floor, and reports what it holds open. An acceptor that holds
//!   *another* proposer's proposal open reports it (and how long it has left) without
//!   promising.
//! - **Propose.** With promises from a majority that hold nothing open (a leader renewing
//!   may count its own open proposal as nothing), the proposer notes the time and sends
//!   PROPOSE. An acceptor accepts if the ballot is at least its highest promise, and keeps
//!   the proposal open for one lease time `T` from when it accepted it, on its own clock.
//!   Once a majority accepted, the proposer leads until `send time + T - clock_drift -
//!   kill_grace`, on its own clock.
//! - **Renew.** Every `renew` the leader extends every lease it holds in one phase, with
//!   the ballot a majority last accepted in each leadership. To each peer it sends one
//!   EXTENDALL naming the set `(election, ballot, epoch)` by a digest (a count and two
//!   order-free hash combinations): an acceptor that holds open exactly those proposals of
//!   that leader, and no other of its, keeps every one open for `T` from now, in O(1), and
//!   answers "matched"; otherwise it extends none and answers "mismatch", and the leader
//!   sends it the same leases listed in EXTEND requests, to which the acceptor applies the
//!   propose rule entry by entry (never over another proposer's open lease), answering
//!   once with the refusals (decision records 131 and 142). Each extended lease counts
//!   from the tick's send time. An entry refused by some acceptor, or not accepted by a
//!   majority within half the lease budget, gets a full round. A leader that cannot renew
//!   steps down at its deadline.
//! - **Collisions.** A round refused by a higher promise, or not answered by a majority
//!   within `round_timeout`, is retried after a random back-off below `backoff` with a
//!   higher ballot; a round blocked by another proposer's open lease is retried once
//!   enough of those leases have run out. A new leadership's proposal that failed is
//!   released at once (nobody was granted it).
//! - **Release.** [`Leadership::resign`](election_core::Leadership::resign) ends the
//!   leadership locally, then sends RELEASE: acceptors drop the lease at once. To the first
//!   member after it that its acceptor saw waiting for the lease it sends a HANDOFF instead:
//!   the release with its acceptor's promise of that candidate's next ballot, so the
//!   candidate proposes on receipt, three one-way messages in all (decision record 130).
//!   Other campaigning peers take turns a quarter of `backoff` apart in member order after
//!   the resigning one (the first in the step that handles the RELEASE). The resigning node
//!   does not propose for one lease time.
//! - **Restarts.** Acceptors keep their promises and accepted proposals in memory only. A
//!   node that starts answers no PREPARE or PROPOSE, and proposes nothing, for one lease
//!   time: whatever it accepted before it crashed has run out by then.
//!
//! # Guarantees
//!
//! - **Leases do not overlap.** Two majorities intersect: an acceptor of the later round's
//!   majority either held the earlier lease open (and the later proposer would not have
//!   proposed) or had let it run out, which on its clock is one lease time after it
//!   accepted, hence after the earlier holder's deadline plus the kill grace, within the
//!   drift bound. So the old holder's `lost()` fires, and its guarded child is dead, before
//!   any other node leads.
//! - **Epochs rise and are never shared, also across a restart of every node.** The epoch
//!   of a leadership is the ballot of the round that started it. Ballots are unique per
//!   member, and a lower ballot's lease always ends before a higher one's starts, so epochs
//!   rise with time. An acceptor persists the highest epoch it accepted (one fsync per
//!   leadership, not per renewal) before it answers, and promises no ballot at or below it:
//!   a majority remembers every granted epoch, so after every node restarts at once the
//!   next leadership's ballot is above it (decision record 115).
//! - **The handover rule.** Only the holder's resign (or drop) sends RELEASE. A leadership
//!   that lapsed (lost renewals, a stalled driver) steps down quietly: the acceptors keep
//!   the lease open until it runs out on their clocks, and the holder itself cannot win it
//!   back meanwhile (its own open lease blocks it like anyone else's).
//! - **A minority side never grants.** A proposer cut off from a majority cannot renew and
//!   loses its lease at its deadline; no majority, no new lease.
//!
//! **Bounded state** (decision record 105): at most `max_elections` elections are held;
//! past it a new campaign fails with [`election_core::Error::TooManyElections`] and peers'
//! requests for new names go unanswered and are counted
//! ([`PeerStats::ignored_elections`]). An election with nothing running and nothing open is
//! forgotten once idle for `forget_after`, state file included; its floor raises the node's
//! persisted floor, with which every election it does not hold starts.
//!
//! - **Members.** [`PaxosNode`] is a [`Membership`]: [`Membership::members`] lists every
//!   configured member with its address, whether it is reachable now (an authenticated
//!   connection from it is open and it was heard from within the last 3 s) and how long ago
//!   it was last heard from (see `election_peer`'s crate documentation).
//!
//! # What is not guaranteed
//!
//! Process pauses break every timing rule (that is what epochs and fences are for).
//! Liveness needs a majority that can talk to each other; two proposers can collide for a
//! few rounds before the back-off separates them. Membership is static and `lease` must be
//! the same on every member. Losing the data dirs of enough nodes that some majority has
//! none left can let epochs go back (the leases stay exclusive: that rests on timing alone).
//! A full disk stops progress, not safety: a raised floor that cannot be written is never
//! acted on (the messages that depend on it are dropped and grants held back) and the
//! write is retried until space is freed; a write that failed partway is never appended to, and a `kill -9` meanwhile leaves a file
//! the restart reads (`tests/full_disk.rs`).
//!
//! # Where the epoch comes from
//!
//! The ballot of the round that started the leadership, above every acceptor's persisted
//! floor of its majority; see above and decision record 115.
//!
//! # Settings ([`PaxosConfig`])
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `node_id` | required | this member's id |
//! | `listen` | `127.0.0.1:7600` | address for peers; port 0 picks one |
//! | `peers` | empty | every member's id → `host:port` |
//! | `voters_only` | none | members that accept but never propose |
//! | `data_dir` | `./elector-paxos` | the state file (fencing floor per election) |
//! | `lease` | 150 ms | maximum lease time `T`: acceptors' open time; restart quiet time |
//! | `renew` | 25 ms | interval of a leader's renewal rounds |
//! | `round_timeout` | 50 ms | how long a phase waits for a majority |
//! | `backoff` | 20 ms | bound of the random retry delay after a collision |
//! | `clock_drift` | 25 ms | clock-rate and timer-lateness bound over one lease |
//! | `kill_grace` | 50 ms | the CLI's SIGTERM → SIGKILL grace, inside the lease margin |
//! | `rng_seed` | random | seed of the back-off jitter |
//! | `secret` / `secret_file` / `tls` | one required | peer authentication (HMAC-SHA256 or mutual TLS) |
//! | `max_elections` | 20,000 | most elections held at once (memory and state file) |
//! | `forget_after` | 10 min | an idle election is forgotten after this long |
//!
//! Unauthenticated frames never reach the core: the transport drops them. The driver, node
//! handle, state file and transport settings are shared with the Raft and Bully backends
//! (crate `election-peer`).
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_paxos::{PaxosConfig, PaxosNode};
//! use election_core::{Backend, Candidate, ElectionName, NodeId};
//! let me = NodeId::new("node-3")?;
//! let node = PaxosNode::start(PaxosConfig {
//!     node_id: Some(me.clone()),
//!     peers: [
//!         (NodeId::new("node-1")?, "10.0.0.1:7600".to_string()),
//!         (NodeId::new("node-2")?, "10.0.0.2:7600".to_string()),
//!     ]
//!     .into(),
//!     secret_file: Some("/etc/elector/secret".into()),
//!     ..PaxosConfig::default()
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

pub use adapter::PaxosNode;
pub use codec::{WIRE_VERSION, decode, encode};
pub use config::{DEFAULT_FORGET_AFTER, DEFAULT_MAX_ELECTIONS, PaxosConfig};
pub use election_peer::wire::DecodeError;
pub use election_peer::{Member, Members, Membership, PeerStats, Stall, TlsConfig};

/// The backend kind, as in [`Backend::kind`](election_core::Backend::kind).
const KIND: &str = "paxos";
