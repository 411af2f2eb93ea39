//! Leader election on ZooKeeper with its classic recipe: ephemeral sequential znodes, the
//! lowest sequence leads, each waiter watches only its predecessor, and the epoch is the
//! leader znode's czxid.
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! use election_zookeeper::{ZooKeeperBackend, ZooKeeperConfig};
//!
//! // An ensemble with tickTime=500 and syncLimit=5: (5 + 1) × 500 ms of follower lag.
//! let config = ZooKeeperConfig {
//!     follower_lag: Some(std::time::Duration::from_secs(3)),
//!     ..ZooKeeperConfig::with_connect_string("zk1:2181,zk2:2181,zk3:2181")
//! };
//! let backend = ZooKeeperBackend::connect(config, LeaseTiming::default()).await?;
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
//! EPHEMERAL_SEQUENTIAL child `<prefix>/NAME/<random hex>__lock__` (ZooKeeper appends a
//! 10-digit sequence number) holding its node id. The candidate with the **lowest sequence
//! leads**; every other candidate sets a watch only on the candidate just before it (no
//! herd effect, no polling) and reads the children again when that watch fires. This is
//! the "Leader Election" recipe of the ZooKeeper documentation.
//!
//! **Shared with kazoo.** The names are those of kazoo's `Lock` recipe, which its
//! `Election` uses, and the queue is ordered as kazoo orders it (by the sequence after
//! `__lock__`, other children ignored). So `kazoo.Election(client, "/elector/NAME", "id")`
//! and `elector run --election NAME` on the same ZooKeeper share one election: one leader
//! among all, each side seeing the other's (`contenders()` lists our node ids; our
//! `leader()` reports a kazoo contender by its identifier, made a valid node id, or
//! `kazoo-<sequence>` without one). Candidates named `n_<sequence>`, as this backend's
//! earlier versions wrote them, are still queued, but kazoo does not see them: upgrade every
//! elector of an election before kazoo joins it.
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
//! - **The deadline rule.** A leader renews every `renew_interval` with a round of `sync`
//!   then `exists` on its own znode (see [Ensembles](#ensembles) for why not a plain read).
//!   The server we talk to touches the session when it receives a request, no earlier than
//!   the request was sent; the ZooKeeper leader expires the session no earlier than a
//!   session timeout after the last touch it counted (on a tick boundary, later still). The
//!   deadline is the *anchor* of the last answered round plus `negotiated timeout -
//!   clock_drift - kill_grace`, where the anchor is the round's start when
//!   `zookeeper.follower_lag` is zero (a standalone server), else the start of the latest
//!   round answered at least `follower_lag` before it (or when the session was
//!   established, if later). The grant's first deadline comes from such a round too, run
//!   once our znode is seen at the head of the queue.
//!   [`lost()`](election_core::Leadership::lost) resolves at the deadline at the latest,
//!   even if ZooKeeper never answers. So with no process pauses, and a follower lag within
//!   `follower_lag`, the old leader has let go before its znode can disappear and a
//!   waiter's watch can fire.
//! - **Revocation at once.** The session expiring or closing, or our znode being deleted
//!   (by anyone) or owned by another session, ends the leadership at once as
//!   [`LossReason::Revoked`](election_core::LossReason::Revoked). After any loss our znode
//!   is not deleted at once (the handover rule: a delete sent at the deadline could wait in
//!   the socket of a stalled server and land inside the old holder's kill grace). The
//!   session is shared with other elections and kept alive by the client, so the znode is
//!   deleted once the window has passed (deadline + `clock_drift + kill_grace`, when the
//!   server would have expired the session from the last renewal), or sooner when the
//!   holder resigns or drops the `Leadership` once its work has stopped.
//! - **Every request has a timeout**: `min(request_timeout, renew_interval)` (a renewal
//!   round of `sync` then `exists` shares one).
//! - **Fairness** is FIFO by sequence number.
//!
//! # Ensembles
//!
//! A client talks to one server of the ensemble at a time (the connect string names them
//! all; after that server fails the client moves to another within the session timeout,
//! keeping the session and so the leadership, its epoch unchanged). That server may be a **follower**: it answers reads
//! from its own copy of the data, forwards writes to the ZooKeeper leader, and passes the
//! session touches it receives on to the leader only in its replies to the leader's pings
//! (every `tickTime / 2`). Only the leader expires sessions. A follower cut off from the
//! leader keeps answering plain reads for up to `syncLimit × tickTime`, until it gives up
//! on the leader, while the leader, hearing nothing of our session, expires it and lets a
//! waiter lead: renewing with plain reads let the old holder extend its deadline past the
//! waiter's grant (1.5 s to 1.9 s of two leaders with `tickTime` 200 ms and `syncLimit` 10;
//! more with ZooKeeper's defaults).
//!
//! So each renewal is `sync` then `exists`. A follower answers `sync` only after a round
//! trip to the leader, and the `exists` behind it sees at least what the leader had
//! committed then (our znode's deletion included): an answered round proves the server
//! was part of the quorum after the round started. It does not prove the leader has
//! counted *this* round's touch yet, which rides on the follower's next ping reply; it
//! proves the leader counted the touches the follower had received before its last ping
//! reply ahead of our `sync`. `zookeeper.follower_lag` bounds how far that lies back:
//! the ping interval plus how far the follower trails the leader, which ZooKeeper lets
//! grow to `syncLimit × tickTime` before it drops the follower. Deadlines are anchored
//! at a round answered at least that long before (above). Waiting candidates next in line
//! run the same rounds, so their lead is confirmed at once when their turn comes.
//!
//! What an ensemble needs:
//!
//! - `zookeeper.follower_lag = (syncLimit + 1) × tickTime` of the ensemble: 12 s for
//!   ZooKeeper's sample `tickTime=2000`, `syncLimit=5`; the backend refuses a connect
//!   string naming several servers without it, and refuses to start when the hold budget
//!   (`session timeout - clock_drift - kill_grace`) is below `follower_lag + 2 ×
//!   renew_interval`. A steady leader's deadline then lies about `session timeout -
//!   clock_drift - kill_grace - follower_lag - renew_interval` ahead, so `timing.ttl` (and
//!   the servers' `maxSessionTimeout`, 20 ticks by default) must grow with the lag: with
//!   the sample configuration, `ttl = "20s"` or more. Shorter ticks shrink the lag.
//! - A candidate whose session has been idle longer than `follower_lag` (a library user's
//!   first campaign on an old session, with no waiting in line) confirms its lead with a
//!   second round one follower lag after the first: uncontested elections on an idle
//!   session take that much longer. A fresh session (each `elector run`) does not wait.
//! - Reads for [`leader()`](election_core::LeaderElector::leader) and
//!   [`observe()`](election_core::LeaderElector::observe) are plain reads, answered by the
//!   server we talk to: a follower's answer may be up to its lag behind the leader.
//!
//! # Not guaranteed
//!
//! - A follower that trails the ZooKeeper leader by more than `follower_lag` (while the
//!   leader keeps it in the quorum), or a `follower_lag` set below `(syncLimit + 1) ×
//!   tickTime`, can let the old holder's deadline outlast the session at the leader.
//!   `follower_lag = 0s` is right only for a standalone server.
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
//! - A child of an election's znode that is not a candidate (neither `…__lock__<10 digits>`
//!   nor `n_<digits>`) is not in the queue, as kazoo ignores it too. A kazoo contender
//!   leads by its place in the queue like ours; its epoch is its znode's czxid as well.
//!
//! # Settings
//!
//! [`ZooKeeperConfig`] (all optional): `connect_string` (default `127.0.0.1:2181`; several
//! servers comma-separated, an optional chroot suffix such as `/apps`), `prefix` (default
//! `/elector`), `session_timeout` (default: `timing.ttl`; at most `timing.ttl`),
//! `connect_timeout` (default 3 s), `request_timeout` (default 1 s, capped at
//! `renew_interval`; one renewal round of `sync` and `exists` gets one such timeout),
//! `follower_lag` (required when the connect string names several servers, default `0s`
//! for one; see [Ensembles](#ensembles)), `digest_auth` / `digest_auth_env` (`user:password`, default none;
//! never logged or serialized; with it our znodes get the `creator_all` ACL). Timing comes
//! from [`LeaseTiming`](election_core::LeaseTiming) (default TTL 10 s, renew every 2 s,
//! retry every 500 ms, margin 200 ms drift + 2 s kill grace).
//!
//! # Errors
//!
//! Every call returns [`election_core::Error`], naming `zookeeper`, the connect string and
//! the election: `Unavailable` when ZooKeeper does not answer in time (retry), `Protocol`
//! when it refuses us (credentials, ACLs),
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
