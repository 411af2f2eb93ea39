//! Leader election on the PostgreSQL a team already runs: a lease row per election changed
//! only by single-statement compare-and-set, expiry on the server's clock, epochs that keep
//! rising across restarts and failovers, handoff by `LISTEN`/`NOTIFY`, and **fenced writes
//! checked in the writer's own transaction**.
//!
//! ```no_run
//! use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! use election_postgres::{PostgresBackend, PostgresConfig};
//! # async fn example() -> election_core::Result<()> {
//! let backend = PostgresBackend::connect(
//!     PostgresConfig::with_url("postgres://elector@db.internal/app?sslmode=require"),
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
//! All elections live in one table (`public.elector_leases` by default, created at connect
//! if missing), one row per election:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS public.elector_leases (
//!     election text PRIMARY KEY,
//!     token    text,            -- NULL: nobody holds it
//!     node     text NOT NULL,   -- the last holder
//!     epoch    bigint NOT NULL, -- the last epoch handed out
//!     since    timestamptz NOT NULL,
//!     expires  timestamptz NOT NULL  -- by the server's clock
//! );
//! ```
//!
//! Every change is **one statement** that compares the per-leadership token (the node id
//! and 128 random bits, new for each acquisition), so there is no read-modify-write race:
//!
//! - **acquire**: `INSERT … ON CONFLICT (election) DO UPDATE … WHERE token IS NULL OR
//!   expires <= clock_timestamp()`, setting the token, the next epoch and `expires =
//!   clock_timestamp() + ttl`, and `pg_notify`; when the row is held it returns the holder
//!   and its time left by the server's clock;
//! - **renew**: `UPDATE … SET expires = clock_timestamp() + ttl WHERE token = $mine AND
//!   expires > clock_timestamp()`;
//! - **release**: `UPDATE … SET token = NULL, expires = clock_timestamp() WHERE token =
//!   $mine`, and `pg_notify`. The row stays: its epoch is the election's counter.
//!
//! Expiry is decided on the server's clock only (`clock_timestamp()`, the real time at
//! each statement, not the transaction's start), so the clients' wall clocks never matter;
//! the holder's own deadline is on its monotonic clock (below).
//!
//! **Waiters wake on a push, not a poll.** Acquire and release `NOTIFY` the table's channel
//! (`<schema>.<table>`, payload the election name) when they commit. Each backend keeps one
//! `LISTEN` connection for all its elections (opened when a campaign first has to wait or an
//! observer first reads, so a one-shot `try_campaign` costs one connection, and checked
//! with a `SELECT 1` every `renew_interval`). A release wakes the next candidate, whose
//! acquisition follows one round trip later. An expiry notifies no one: a waiter also wakes
//! when the holder's time left (returned by its failed acquisition) runs out, which is when
//! the server lets the next acquisition through. While the `LISTEN` connection is down,
//! waiters poll every `retry_interval`, and its return wakes them all to look again.
//! `observe()` works the same way: it re-reads the row on each notification and when the
//! holder's time runs out, so it reports every acquisition, release and expiry (as "no
//! leader").
//!
//! **Many elections over two connections.** Every election of a backend shares its command
//! connection (statements prepared once per connection, pipelined) and its `LISTEN`
//! connection (partitioned leadership).
//!
//! **Loss is reported in time.** The holder measures its deadline from the monotonic
//! instant at which it *started* its last successful renewal (election-core's
//! [`LeaseTiming`](election_core::LeaseTiming) rule: `start + ttl - clock_drift -
//! kill_grace`); the server computed `expires` no earlier than that. It renews every
//! `renew_interval` and retries every `retry_interval`, each attempt cut off at the
//! deadline. Every statement is also bounded by `statement_timeout`, set on the server
//! (`-c statement_timeout` at login: a statement stuck on a row lock is cancelled there) and
//! on the client (which then drops the connection, since later statements would queue behind
//! the stuck one, and opens a new one); it must be below the hold budget. So a stalled server,
//! a blackholed connection or a long lock cannot hold a renewal past the deadline, and
//! [`Leadership::lost`](election_core::Leadership::lost) resolves at the deadline even if the
//! server never answers. A renewal that finds another token (or no live lease: the row was
//! lost) ends the leadership at once as [`LossReason::Revoked`](election_core::LossReason::Revoked);
//! so does one the server refuses for good (a revoked privilege).
//!
//! **A loss is never released early (the handover rule).** After a loss the renewal loop
//! only stops: no release is sent, so a release cannot wait in the socket of a stalled server
//! and let the next candidate in while the old holder's child is in its kill grace. The row
//! runs out a TTL after the last renewal reached the server, unless the holder resigns (or
//! drops the `Leadership`) once its work has stopped, as `elector run` does once its child
//! is gone.
//!
//! # Where the epoch comes from
//!
//! The acquisition sets `epoch = max(stored + 1, server clock in µs)` in the same
//! statement, so epochs are strictly increasing per election and never below the server's
//! clock in microseconds (decision record 112, the same rule as the Redis backend's):
//!
//! - across a **restart** (clean or crash) the row is durable like any committed row;
//! - after the **promotion of an asynchronous standby that missed the last commits** (or a
//!   restore from an older backup, or a lost table, which is created again at the next
//!   connection), the stored epoch is older, but the server's clock is past every epoch
//!   handed out before, because those were taken from an earlier reading of (a clock
//!   synchronised with) the same clock, or ran ahead of it by at most one per acquisition,
//!   and acquisitions take far longer than 1 µs.
//!
//! What can still break monotonicity: a standby (or restored server) whose clock is behind
//! the old primary's by more than the time between the lost acquisitions and the failover;
//! the server's clock set back and the row lost before any new acquisition; someone writing
//! the `epoch` column by hand. `synchronous_commit = remote_apply` with a synchronous
//! standby makes the clock argument unnecessary (no committed acquisition is lost), at the
//! cost of a standby round trip per statement. Epochs look like timestamps (about 1.8 ×
//! 10¹⁵ today), not 1, 2, 3.
//!
//! # Fenced writes in the same database
//!
//! This is what no lock service can give: the data write and the fence check in **one
//! transaction**. [`PostgresBackend::fence`] returns a [`PostgresFence`] whose
//! [`check`](PostgresFence::check) runs in the writer's transaction: it succeeds only if the
//! writer's epoch is the election's current one and its lease is live by the server's
//! clock, and it locks the election's row `FOR SHARE` until the transaction ends, so no new
//! leadership can be granted before the write commits (or rolls back). A write that passed
//! the check therefore commits before any newer leader exists, even if the writer was paused
//! for minutes between the check and the commit: the newer leader's acquisition waits for
//! the lock.
//!
//! ```no_run
//! # use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
//! # use election_postgres::{PostgresBackend, PostgresConfig, tokio_postgres};
//! # async fn example(backend: PostgresBackend, leadership: election_core::Leadership,
//! #     mut db: tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let fence = backend.fence(&ElectionName::new("payments")?);
//! let tx = db.transaction().await?;
//! // Err(StaleEpoch) once a newer leader exists, Err(Lost) once this lease ran out.
//! fence.check(&tx, leadership.epoch()).await?;
//! tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! The same check in plain SQL, for writers in any language, as a `WHERE` clause of the
//! write itself (zero rows changed: a stale epoch, stop writing) or as a `SELECT` at the
//! start of the transaction ([`PostgresFence::check_sql`]):
//!
//! ```sql
//! UPDATE accounts SET balance = balance - 10
//! WHERE id = 1
//!   AND EXISTS (SELECT 1 FROM public.elector_leases
//!               WHERE election = 'payments' AND epoch = $ELECTOR_EPOCH
//!                 AND token IS NOT NULL AND expires > clock_timestamp()
//!               FOR SHARE);
//! ```
//!
//! Keep fenced transactions short: while one is open, the election's renewals and
//! acquisitions wait for its lock (each up to `statement_timeout`, then cancelled by the
//! server): a `campaign` keeps waiting, a `try_campaign` reports the election busy
//! (`None`), and a holder whose renewals keep waiting lets go at its deadline.
//!
//! # Guarantees and limits
//!
//! - At most one token holds the row at a time on one primary. Without process pauses, a
//!   holder stops (its `lost()` resolves) before the server lets another node acquire: the
//!   deadline ends `clock_drift + kill_grace` before `expires`.
//! - **Asynchronous replication loses acquisitions on failover.** If the primary dies and a
//!   standby that missed the latest acquisition is promoted, another node can be elected
//!   while the first still believes it leads, until its next renewal (at most
//!   `renew_interval` later) finds no live lease and ends it as `Revoked`. The epoch still
//!   rises (above), so a [`Fence`](election_core::Fence) or a fenced write refuses the older
//!   leader. A synchronous standby (`synchronous_standby_names`, `synchronous_commit = on`
//!   or `remote_apply`) closes that window.
//! - **What the client must point at**: the primary. A standby refuses writes, which
//!   [`PostgresBackend::connect`] reports as `Unavailable` ("read-only standby"); list every
//!   host with `target_session_attrs=read-write` (`host=db1,db2 …`) so that reconnections
//!   find the promoted one, or point at a proxy or DNS name that follows the primary.
//! - **Pauses are fenced, not prevented**: a holder paused past its deadline (GC, SIGSTOP)
//!   may act late; only the epoch (and the fenced write) protects the resource then.
//! - **The server's wall clock.** A step forward of the server's clock expires leases
//!   early (another node can be elected before the holder's deadline); a step back
//!   lengthens them (safe, a slower failover). Run the server with a slewing clock.
//! - Acquisition is not fair: whichever waiter's statement runs first wins.
//! - **One connection serves its statements in order.** A statement of one election that
//!   waits on a row lock (an open fenced write) delays the statements of the backend's
//!   other elections queued behind it, up to `statement_timeout`; give elections with
//!   long fenced writes their own backend.
//! - Rows are never deleted (one small row per election name ever used).
//! - A `campaign` that times out, or is dropped mid-acquisition, releases the lease in the
//!   background in case the statement did run. An acquisition stuck in a stalled server's
//!   socket that runs when the server wakes may take the lease for a candidate that gave
//!   up; nobody acts on it and it runs out a TTL later (a slower failover, never two
//!   holders).
//!
//! # Settings
//!
//! [`PostgresConfig`] (each field documents its default): `url` (empty: the `PG*`
//! environment and libpq's defaults; a URL or `key=value` string, `sslmode=disable`,
//! `prefer` or `require`), `password` (none; never logged or serialized), `password_env`
//! (none: the name of an environment variable), `password_file` (none: a file whose first
//! line is the password), `schema` (`public`), `table` (`elector_leases`),
//! `connect_timeout` (2 s), `statement_timeout` (1 s; must be below `ttl - clock_drift -
//! kill_grace`), `tls_ca_file` / `tls_cert_file` / `tls_key_file` (none: the system's
//! roots, no client certificate; TLS is rustls, and the server's certificate is always
//! verified, including its host name).
//!
//! Timing comes from [`LeaseTiming`](election_core::LeaseTiming): `ttl` is the lease on
//! the server; `renew_interval`, `retry_interval`, `clock_drift` and `kill_grace` as
//! documented there.
//!
//! The user needs `SELECT, INSERT, UPDATE` on the table, and `CREATE` on the schema only if
//! the table does not exist yet (PostgreSQL 15 and later grant nobody `CREATE` on `public`
//! by default: have an owner run the `CREATE TABLE` above and grant the three privileges).
//!
//! # Errors
//!
//! [`PostgresBackend::connect`] and every call return [`election_core::Error`] naming the
//! backend, the address (`host:port/database as user`, never a password) and the election:
//! `Config` for an invalid setting (the key named, such as `postgres.url`), `Unavailable`
//! for an unreachable or timed-out server, one that is starting or shutting down, a
//! read-only standby, a cancelled statement (`statement_timeout`), a lock or serialization
//! conflict, or a lack of resources (retryable: a leadership whose renewals meet them lapses
//! as `Expired`, never `Revoked`), and `Protocol` for a refused login (with what to check),
//! a missing database, a missing privilege (with what to grant), or a row another program
//! wrote. `campaign` returns an `Unavailable` error instead of waiting while the server
//! cannot be reached; the caller decides whether to retry.

mod backend;
mod config;
mod conn;
mod elector;
mod fence;
mod holder;
mod lease;
mod observe;
mod sql;

pub use backend::PostgresBackend;
pub use config::PostgresConfig;
pub use fence::PostgresFence;
/// The client library, re-exported so that fenced writes use the same version.
pub use tokio_postgres;
