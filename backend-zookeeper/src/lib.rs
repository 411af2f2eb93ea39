//! Leader election on ZooKeeper with its classic recipe: ephemeral sequential znodes, the
//! lowest sequence leads, each waiter watches only its predecessor, and the epoch is the
//! leader znode's czxid.
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! use election_zookeeper::{ZooKeeperBackend, ZooKeeperConfig};
//!
//! let backend = ZooKeeperBackend::connect(
//!     ZooKeeperConfig::with_connect_string("zk1:2181,zk2:2181,zk3:2181"),
//!     LeaseTiming::default(),
//! )
//! .await?;
//! let elector = backend.election(
//!     &ElectionName::new("nightly-backup")?,
//!     Candidate::new(NodeId::new("db-3")?),
//! )?;
//! let leadership = elector.campaign().await?;
//! println!("leading at epoch {}", leadership.epoch());
//! leadership.resign().await?;
//! # Ok(()) }
//! ```
//!
//! # Model
//!
//! Election `NAME` is the znode `<prefix>/NAME` (prefix `/elector` by default; it and its
//! parents are created as persistent znodes when needed). Each candidate creates an
//! EPHEMERAL_SEQUENTIAL child `<prefix>/NAME/n_` (ZooKeeper appends a 10-digit sequence
//! number) holding its node id. The candidate with the **lowest sequence leads**; every
//! other candidate sets a watch only on the candidate just before it (no herd effect, no
//! polling) and reads the children again when that watch fires. This is the "Leader
//! Election" recipe of the ZooKeeper documentation.
//!
//! All elections of one [`ZooKeeperBackend`] share one ZooKeeper session; its ephemeral
//! znodes live as long as the session. The session timeout is asked for as `timing.ttl`
//! (or `session_timeout`); ZooKeeper negotiates it into its `[minSessionTimeout,
//! maxSessionTimeout]`. The backend refuses to start when the negotiated timeout is longer
//! than `ttl`, and measures every deadline with the negotiated value. After a session
//! expires, the next operation establishes a new one.
//!
//! Resigning deletes our znode, so the next candidate's watch fires at once (the session
//! stays open for the backend's other elections). `resign()` waits at most the hold budget
//! (`session timeout - clock_drift - kill_grace`) for ZooKeeper to confirm; after that it
//! returns `Unavailable` and keeps deleting in the background. Dropping a `campaign`
//! future or a [`Leadership`](election_core::Leadership) deletes the znode in the
//! background, retrying while the session lives.
//!
//! # Guarantees
//!
//! - **Epoch = the leader znode's czxid**, the zxid of the transaction that created it.
//!   zxids are assigned by the ensemble's leader in one total order, persisted in the
//!   transaction log and snapshots, and only rise (in an ensemble the high 32 bits are the
//!   ZooKeeper leader epoch, which rises with every ZooKeeper leader change; a standalone
//!   server restarted with its data carries on from its last zxid). A later candidate's
//!   znode is created later, so its czxid is higher; it leads only after every lower
//!   sequence is gone. Epochs therefore strictly increase across leaderships, also across
//!   ZooKeeper restarts that keep their data. What breaks this: wiping the data directory
//!   (zxids restart near 1), restoring an *older* snapshot, or pointing the backend at a
//!   different ensemble. After any of these, fence stores must be reset before epochs can
//!   be trusted again.
//! - **The deadline rule.** A leader renews every `renew_interval` with an `exists` on its
//!   own znode; ZooKeeper touches the session when it receives any request, no earlier
//!   than the request was sent, and expires it no earlier than a session timeout after
//!   that (on a tick boundary, later still). The deadline is the *start* of the last
//!   request the server answered (the read that found us at the head of the queue, then
//!   each renewal) plus `negotiated timeout - clock_drift - kill_grace`;
//!   [`lost()`](election_core::Leadership::lost) resolves then at the latest, even if
//!   ZooKeeper never answers. So with no process pauses the old leader has let go before
//!   its znode can disappear and a waiter's watch can fire.
//! - **Revocation at once.** The session expiring or closing, or our znode being deleted
//!   (by anyone) or owned by another session, ends the leadership at once as
//!   [`LossReason::Revoked`](election_core::LossReason::Revoked). After any loss our znode
//!   is not deleted at once (the handover rule: a delete sent at the deadline could wait in
//!   the socket of a stalled server and land inside the old holder's kill grace). The
//!   session is shared with other elections and kept alive by the client, so the znode is
//!   deleted once the window has passed (deadline + `clock_drift + kill_grace`, when the
//!   server would have expired the session from the last renewal), or sooner when the
//!   holder resigns or drops the `Leadership` once its work has stopped.
//! - **Every request has a timeout**: `min(request_timeout, renew_interval)`.
//! - **Fairness** is FIFO by sequence number.
//!
//! # Not guaranteed
//!
//! - A leader paused (GC, SIGSTOP) past its deadline may act late: pass the epoch to every
//!   guarded write and let the resource refuse stale ones
//!   ([`Fence`](election_core::Fence)).
//! - [`LeaderInfo::since`](election_core::LeaderInfo::since) is the znode's `ctime`, the
//!   server's wall clock when the candidate queued (not when it began to lead); display
//!   only.
//! - A candidate cut off for longer than the session timeout loses its place and queues
//!   again at the back with a new session.
//! - A `create` whose answer is lost may still have been applied; the backend then looks
//!   for znodes of its own session that no candidacy holds and deletes them, but a second
//!   elector of the same node id in the same election on the same backend, creating at
//!   that very moment, could have its fresh znode removed (it then queues again).
//! - Anything else writing under the prefix (a child not named `n_<digits>`, or data that
//!   is not a node id) is refused with a `Protocol` error rather than interpreted.
//!
//! # Settings
//!
//! [`ZooKeeperConfig`] (all optional): `connect_string` (default `127.0.0.1:2181`; several
//! servers comma-separated, an optional chroot suffix such as `/apps`), `prefix` (default
//! `/elector`), `session_timeout` (default: `timing.ttl`; at most `timing.ttl`),
//! `connect_timeout` (default 3 s), `request_timeout` (default 1 s, capped at
//! `renew_interval`), `digest_auth` / `digest_auth_env` (`user:password`, default none;
//! never logged or serialized; with it our znodes get the `creator_all` ACL). Timing comes
//! from [`LeaseTiming`](election_core::LeaseTiming) (default TTL 10 s, renew every 2 s,
//! retry every 500 ms, margin 200 ms drift + 2 s kill grace).
//!
//! # Errors
//!
//! Every call returns [`election_core::Error`], naming `zookeeper`, the connect string and
//! the election: `Unavailable` when ZooKeeper does not answer in time (retry), `Protocol`
//! when it refuses us (credentials, ACLs) or something foreign lives under the prefix,
//! `Config` for invalid settings or a negotiated session timeout that breaks the timing
//! rules.

mod backend;
mod config;
mod conn;
mod elector;
mod holder;
mod observe;
mod orphans;
mod paths;

pub use backend::ZooKeeperBackend;
pub use config::ZooKeeperConfig;
