//! Leader election on etcd v3, with etcd's own election recipe, so that `etcdctl elect`
//! and any other client of etcd's `concurrency.Election` take part in the same elections.
//!
//! ```no_run
//! # async fn example() -> election_core::Result<()> {
//! use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! use election_etcd::{EtcdBackend, EtcdConfig};
//!
//! let backend = EtcdBackend::connect(
//!     EtcdConfig::with_endpoints(["http://127.0.0.1:2379"]),
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
//! Election `NAME` is the set of keys under `<prefix>NAME/` (prefix `elector/` by
//! default). Each candidate grants itself a lease of `ttl` (rounded up to whole seconds,
//! which is what etcd leases count in) and creates the key `<prefix>NAME/<lease id in hex>`
//! under that lease with a transaction "create revision == 0", storing its node id as the
//! value. The candidate whose key has the **lowest create revision leads**; every other
//! candidate watches only the deletion of the key created just before its own (no herd,
//! no polling) and then reads the queue again. This is exactly what etcd's
//! `concurrency.Election.Campaign` does, so `etcdctl elect elector/NAME VALUE` queues with
//! our candidates, and `etcdctl elect -l elector/NAME` prints our leader's node id.
//!
//! Candidates and leaders keep their lease alive every `renew_interval` (retrying every
//! `retry_interval` after a failure). Resigning revokes the lease, which deletes the key in
//! the same step, so the next candidate's watch fires at once. Dropping a `campaign` future
//! or a [`Leadership`](election_core::Leadership) revokes in the background.
//!
//! A campaign's transaction only creates our key if it is absent, so it is safe to send
//! twice, and it is sent again after an ambiguous failure (the connection broke after the
//! request left, so etcd may have applied it). A second send that answers "not applied"
//! is then recognised by our own lease on the key, and the campaign takes its place in the
//! queue from that key: a reset mid-request neither fails the campaign nor leaks a key.
//! Other requests are sent again only when the connection was refused before they left.
//!
//! # Guarantees
//!
//! - **Epoch = the leader key's create revision.** etcd revisions are cluster-wide,
//!   persisted and only rise, and every leadership writes a new key, so epochs strictly
//!   increase across leaderships, also across etcd restarts with their data. What breaks
//!   this: restoring etcd from an *older* snapshot, or wiping its data directory (revisions
//!   restart near 1), or pointing the backend at a different cluster. After either, fence
//!   stores must be reset (or the new cluster's revision raised above the old one, e.g. by
//!   writing a key many times) before epochs can be trusted again.
//! - **The deadline rule.** A leader's deadline is the *start* of its lease's last round
//!   trip (the grant, or a keep-alive) that came back with TTL > 0, plus
//!   `ttl - clock_drift - kill_grace`; [`lost()`](election_core::Leadership::lost)
//!   resolves then at the latest, even if etcd never answers. etcd starts its TTL no earlier
//!   than our request left, and keeps the lease at least `ttl` (rounded up), so the holder
//!   lets go first. A keep-alive that answers TTL 0 (the lease was revoked or expired), or
//!   the deletion of our key by anyone, ends leadership at once as
//!   [`LossReason::Revoked`](election_core::LossReason::Revoked). After any loss the lease
//!   stops being renewed, and nothing more (the handover rule): it is not revoked, so a
//!   revoke cannot wait in the socket of a stalled etcd and let the next candidate in during
//!   the old holder's kill grace. It runs out at its TTL unless the holder resigns (or drops
//!   the `Leadership`) once its work has stopped.
//! - **Every request has a timeout**: `min(request_timeout, renew_interval)`, below the
//!   hold budget, so a stuck request cannot outlive a renewal.
//! - **Failover over endpoints.** Requests are balanced over all configured endpoints; a
//!   member that dies is skipped and the lease is kept alive through the others.
//!
//! # Not guaranteed
//!
//! - A leader paused (GC, SIGSTOP) past its deadline may act late: pass the epoch to every
//!   guarded write and let the resource refuse stale ones
//!   ([`Fence`](election_core::Fence)).
//! - [`LeaderInfo::since`](election_core::LeaderInfo::since): etcd keeps no timestamps,
//!   and the key's value is the bare node id (so that etcdctl prints it). `since` is the
//!   grant time for this process's own leaderships and, for others', the time this elector
//!   first read that leader's key. It is for display only.
//! - A value written by a foreign campaigner that is not a valid node id (for example
//!   `etcdctl elect NAME "hello world"`) is reported with the disallowed characters
//!   replaced by `_`.
//! - Fairness is FIFO by create revision; a candidate that loses its lease (cut off for a
//!   whole TTL) rejoins at the back of the queue.
//! - etcd may raise a lease TTL to its minimum (`1.5 × election timeout`, in whole
//!   seconds): crash failover then takes that long; the holder's deadline is unchanged.
//!
//! # Settings
//!
//! [`EtcdConfig`] (all optional): `endpoints` (default `["http://127.0.0.1:2379"]`),
//! `prefix` (default `elector/`), `username` / `password` / `password_env` (default none;
//! the password is never logged or serialized), `tls` with `ca_file`, `cert_file`,
//! `key_file`, `domain` (default none), `connect_timeout` (default 2 s), `request_timeout`
//! (default 1 s, capped at `renew_interval`). Timing comes from
//! [`LeaseTiming`](election_core::LeaseTiming) (default TTL 10 s, renew every 2 s, retry
//! every 500 ms, margin 200 ms drift + 2 s kill grace).
//!
//! # Errors
//!
//! Every call returns [`election_core::Error`], naming `etcd`, the endpoints and the
//! election: `Unavailable` when etcd does not answer in time (retry), `Protocol` when it
//! refuses us (credentials, permissions), `Config` for invalid settings.

mod backend;
mod config;
mod conn;
mod elector;
mod holder;
mod keys;
mod lease;
mod observe;
mod watch;

pub use backend::EtcdBackend;
pub use config::{EtcdConfig, EtcdTls};
