//! Leader election on Redis: a lease key changed only by compare-and-set Lua scripts,
//! epochs that keep rising when Redis restarts empty, and handoff by pub/sub push.
//!
//! ```no_run
//! use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! use election_redis::{RedisBackend, RedisConfig};
//! # async fn example() -> election_core::Result<()> {
//! let backend = RedisBackend::connect(
//!     RedisConfig::with_url("redis://127.0.0.1:6379"),
//!     LeaseTiming::default(),
//! ).await?;
//! let elector = backend.election(
//!     &ElectionName::new("nightly-backup")?,
//!     Candidate::new(NodeId::new("host-1")?),
//! )?;
//! let leadership = elector.campaign().await?;
//! println!("leading at epoch {}", leadership.epoch());
//! leadership.resign().await?;
//! # Ok(()) }
//! ```
//!
//! # Model
//!
//! Election `E` is the hash `{<prefix>E}:leader` (fields `token`, `node`, `epoch`, `since`)
//! whose TTL is the lease. Every change is one atomic Lua script that compares the
//! per-leadership token (the node id and 128 random bits, new for each acquisition):
//!
//! - **acquire**: if the key is absent, allocate the next epoch, write the hash with TTL
//!   `ttl`, and `PUBLISH` on `{<prefix>E}:channel`; else report the holder and its remaining
//!   TTL;
//! - **renew**: `PEXPIRE` only if the token is still ours;
//! - **release**: `DEL` only if the token is still ours, then `PUBLISH`.
//!
//! No script deletes or overwrites a lease it does not own. All keys of an election share
//! the hash tag `{<prefix>E}`, so they live in one Redis Cluster slot (this crate talks to
//! a single server or a Sentinel-managed master; it does not follow Cluster redirects).
//!
//! **Waiters wake on a push, not a poll.** Each backend keeps one pub/sub connection
//! (opened when a campaign first has to wait or an observer first reads, so a one-shot
//! `try_campaign` costs a single connection) subscribed (by pattern) to the channels of all elections under the prefix, and to
//! keyspace events of their lease keys. A release publishes, so the next candidate's
//! acquisition starts one round trip later. Where the server does not send expiry events,
//! a waiter also wakes when the holder's remaining TTL (`PTTL`, returned by the failed
//! acquisition) runs out, which is when Redis lets the next acquisition through. While the
//! pub/sub connection is down, waiters poll every `retry_interval`. `observe()` works the
//! same way: it re-reads the lease on each push and when the holder's TTL runs out, so it
//! reports every acquisition, release and expiry (as "no leader") without polling.
//!
//! **Loss is reported in time.** The holder measures its deadline from the monotonic
//! instant at which it *started* its last successful renewal (election-core's
//! [`LeaseTiming`](election_core::LeaseTiming) rule: `start + ttl - clock_drift -
//! kill_grace`). It renews every `renew_interval` and retries every `retry_interval`, each
//! attempt cut off at the deadline; [`Leadership::lost`](election_core::Leadership::lost)
//! resolves at the deadline even if Redis never answers. A renewal that finds another
//! token (or no key: the server lost it) ends the leadership at once as
//! [`LossReason::Revoked`](election_core::LossReason::Revoked).
//!
//! **A loss is never released early (the handover rule).** After a loss the renewal loop
//! only stops: no release script is sent, so a release cannot wait in the socket of a
//! stalled server and let the next candidate in while the old holder's child is in its
//! kill grace. The key runs out a TTL after the last renewal reached Redis, unless the
//! holder resigns (or drops the `Leadership`) once its work has stopped, as `elector run`
//! does once its child is gone.
//!
//! # Where the epoch comes from
//!
//! The acquire script allocates `epoch = max(stored + 1, server TIME in µs)` and stores it
//! in `{<prefix>E}:epoch` (a plain counter without TTL), so epochs are strictly increasing
//! per key and never below the server clock in microseconds. After an **empty restart**
//! (no persistence: the counter is gone) the next epoch is the server's current time in
//! µs, which is above every epoch handed out before, because those were taken from an
//! earlier reading of the same clock (or from a counter that ran ahead of it by at most
//! one per acquisition, and acquisitions take far longer than 1 µs). The same argument
//! covers a **promoted replica** that missed the last increments. See decision record
//! 040.
//!
//! What can still break monotonicity:
//! - the server's wall clock is set back (by more than the time since the last
//!   acquisition) and, before any new acquisition, the counter is lost by an empty
//!   restart;
//! - a failover to a replica that both missed the last increments *and* whose clock is
//!   behind the old master's by more than the time between those increments and the
//!   failover;
//! - someone writes the `:epoch` key by hand.
//!
//! With persistence (AOF or RDB) the counter itself survives a restart, and the clock only
//! matters when it is lost.
//!
//! Epochs therefore look like timestamps (about 1.7 × 10¹⁵ today) rather than 1, 2, 3;
//! they stay exact in Lua's doubles until the year 2255.
//!
//! # Guarantees and limits
//!
//! - At most one token holds the lease key at a time, on one Redis server. Without process
//!   pauses, a holder stops (its `lost()` resolves) before the server lets another node
//!   acquire: the deadline ends `clock_drift + kill_grace` before the server's TTL.
//! - **One Redis is not consensus.** The lease lives in one server's memory. If that
//!   server restarts empty, or Sentinel promotes a replica that had not received the
//!   latest acquisition (replication is asynchronous), a second node can be elected while
//!   the first still believes it leads, until its next renewal finds the key gone (at most
//!   `renew_interval` later, then `Revoked`, and `elector run`'s child still has its kill
//!   grace after that: the chaos instrument sees these overlaps and counts them as explained
//!   by the data loss, docs/chaos.md). The epoch still rises in those cases (see
//!   above), so a resource guarded by a [`Fence`](election_core::Fence) or a fenced write
//!   refuses the older leader. Use etcd or ZooKeeper when that window matters.
//! - **Sentinel** is asked for the master at connect, whenever a sentinel announces a
//!   new one (`+switch-master`, followed on a pub/sub connection to the first sentinel
//!   that answers), and after a command fails (unreachable, timed out, or `READONLY` from
//!   a demoted master), at most once per `connect_timeout`. A client that missed the
//!   announcement may keep writing to an old master that is still reachable until the
//!   sentinels reconfigure it as a replica (up to about ten seconds after a manual
//!   failover); those writes are lost when it resyncs, which ends the leaderships taken
//!   there as `Revoked`.
//! - **A busy, full or stalled server is unavailable, not a revocation.** `BUSY`, `OOM`,
//!   `NOREPLICAS`, `MISCONF`, `LOADING`, `READONLY`, `MASTERDOWN` and `TRYAGAIN` replies,
//!   like a server that stops answering (a long `DEBUG SLEEP`, a slow script), make
//!   renewals fail as retryable: the leadership ends `Expired` at its deadline, which
//!   comes before the server can hand the key to another node however long it stalls, and
//!   campaigns retry until it recovers (`tests/server_errors.rs`).
//! - **Pauses are fenced, not prevented**: a holder paused past its deadline (GC, SIGSTOP)
//!   may act late; only the epoch protects the resource then.
//! - **No Redis Cluster.** An election's keys live in different slots and redirects are
//!   not followed, so [`RedisBackend::connect`] refuses a cluster node (`Config` error on
//!   `redis.url`); use a standalone server or Sentinel.
//! - **Eviction.** A server with `maxmemory` set and a `maxmemory-policy` other than
//!   `noeviction` may evict the lease key (it has a TTL, so even the `volatile-*` policies
//!   pick it): another node is then elected while the holder leads until its next renewal.
//!   [`RedisBackend::connect`] warns when it can read that configuration.
//! - **The server's wall clock.** Redis stores a key's expiry as an absolute time on the
//!   server's wall clock. A step forward (NTP, an operator) expires the lease early, and
//!   another node can be elected before the holder's deadline; a step back lengthens it
//!   (safe, only a slower failover). Run the server with a slewing clock (chrony, ntpd
//!   without steps); the epoch still fences the late holder.
//! - Acquisition is not fair: whichever waiter's script runs first wins.
//! - The epoch key of an election is never deleted (a few bytes per election name).
//! - A `campaign` that times out, or is dropped mid-acquisition, releases the lease in the
//!   background in case the script did run. If the reply was lost and the connection was
//!   replaced meanwhile, that lease may stay until its TTL runs out (no node acts on it).
//!
//! # Settings
//!
//! [`RedisConfig`] (each field documents its default):
//! `url` (`redis://127.0.0.1:6379`; `rediss://` for TLS), `username` (none), `password`
//! (none; never logged or serialized), `password_env` (none: the name of an environment
//! variable with the password), `database` (the URL's, else 0), `connect_timeout` (2 s),
//! `command_timeout` (1 s; must be below `ttl - clock_drift - kill_grace`), `key_prefix`
//! (`elector:`), `tls_ca_file` / `tls_cert_file` / `tls_key_file` (none: the system's
//! roots, no client certificate), `sentinel` (none; [`SentinelConfig`]: `master_name`
//! `mymaster`, `addresses` as a `host:port` list), `keyspace_notifications` (`false`; if
//! true, `CONFIG SET notify-keyspace-events` adds `Kx` at connect).
//!
//! Timing comes from [`LeaseTiming`](election_core::LeaseTiming): `ttl` is the key's TTL;
//! `renew_interval`, `retry_interval`, `clock_drift` and `kill_grace` as documented there.
//!
//! # Errors
//!
//! [`RedisBackend::connect`] and every call return [`election_core::Error`] naming the
//! backend, the address (never a password) and the election: `Config` for an invalid URL
//! or setting, `Unavailable` for an unreachable or timed-out server and for a server that
//! refuses writes for now (`BUSY`, `OOM`, `NOREPLICAS`, `MISCONF`, `LOADING`, `READONLY`,
//! `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`; retryable: a leadership whose renewals meet
//! them lapses as `Expired`, never `Revoked`), and
//! `Protocol` for refused credentials or a key holding another program's data (the
//! scripts check key types first and report `WRONGTYPE` with the key's name).
//! `campaign` returns an `Unavailable` error instead of waiting while Redis cannot be
//! reached; the caller decides whether to retry.

mod backend;
mod config;
mod conn;
mod elector;
mod holder;
mod keys;
mod lease;
mod observe;
mod scripts;
mod sentinel;

pub use backend::RedisBackend;
pub use config::{RedisConfig, SentinelConfig};
