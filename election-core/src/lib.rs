//! The elector contract: one [`LeaderElector`] trait that every backend implements, a
//! [`Leadership`] guard with an epoch for fencing, the lease timing rule, a [`Fence`] for
//! resources, and a complete in-memory backend.
//!
//! # Model
//!
//! A [`Backend`] is a connection to something that can elect: a Raft or Bully cluster of
//! the nodes themselves, or a Redis, etcd or ZooKeeper server. It hands out one
//! [`LeaderElector`] per [`ElectionName`]; many elections share one connection, each with
//! its own leader and epochs.
//!
//! [`LeaderElector::campaign`] waits until this node leads and returns a [`Leadership`]:
//!
//! ```
//! # async fn work(_epoch: election_core::Epoch) {}
//! # async fn example(elector: &dyn election_core::LeaderElector) -> election_core::Result<()> {
//! let leadership = elector.campaign().await?;
//! tokio::select! {
//!     reason = leadership.lost() => eprintln!("stopped leading: {reason}"),
//!     () = work(leadership.epoch()) => leadership.resign().await?,
//! }
//! # Ok(()) }
//! ```
//!
//! # Guarantees every backend gives
//!
//! - **Epochs.** Within one election, each leadership gets an [`Epoch`] strictly greater
//!   than every earlier one, never shared by two leaderships, and never going back, also
//!   across restarts as far as the backend's durable state allows. Each backend crate
//!   documents where its epoch comes from and what could break this.
//! - **Loss is reported in time.** [`Leadership::lost`] resolves when leadership ends, and
//!   for lease backends no later than the deadline of [`LeaseTiming`]: the start of the last
//!   successful renewal plus the TTL, less the clock-drift and kill-grace margin. It
//!   resolves then even if the backend never answers. [`Leadership::is_held`] is false from
//!   that same moment. Without process pauses, a leader therefore stops before any other
//!   node can be elected.
//! - **Pauses are fenced, not prevented.** A process paused past its deadline (GC,
//!   SIGSTOP, a VM stall) may act late on a leadership it no longer holds. Pass the epoch
//!   with every guarded write and let the resource refuse stale ones: [`Fence`] does this
//!   in-process and documents the recipe for real stores.
//! - **Handoff is immediate.** [`Leadership::resign`] releases at once and the next
//!   candidate is elected without waiting for a TTL; dropping a `Leadership` resigns
//!   best-effort; dropping a `campaign` future withdraws the candidacy.
//! - **A loss is never handed over early (the handover rule).** When a leadership ends by
//!   expiry or any loss the holder did not choose, the backend does not release it by
//!   itself: the lease runs out on the server (or the followers' promises expire) no
//!   earlier than the deadline plus the kill grace, even if the server, the network or the
//!   backend's own task stalls and wakes up in between. Only the holder's resign or drop
//!   releases early, so resign or drop a lost `Leadership` only once its work has stopped
//!   (`elector run` waits for the child's process group to be gone).
//!
//! # Deadlines kept elsewhere
//!
//! A backend whose leadership is extended in another process (`elector agent` for its
//! local callers) grants with [`LeaseKeeper::grant_with_source`]: a [`DeadlineSource`],
//! such as a word of memory shared with that process, is read only when the keeper's own
//! deadline has passed, and the first lapse any reader sees is final. Nothing then wakes
//! per extension; [`LossWatch::lost_checking_every`] lets a holder whose deadline is also
//! enforced by a guard process check for an expiry only now and then.
//!
//! # Deadlines shared by many leaderships
//!
//! A backend that renews many leaderships with one round (the peer backends' leaders)
//! keeps their common deadline in a [`LeaseGroup`]: extending it is one store, and one task
//! of the group wakes the holders' `lost()` only when the deadline passes unextended (or
//! the host was suspended), so an idle holder costs no wake-up per lease. A keeper is
//! covered only by extensions made after it [joined](LeaseGroup::join); one made after the
//! group's deadline had passed covers none of the earlier members, so a late round revives
//! no leadership (decision record 143).
//!
//! # What it does not guarantee
//!
//! Fairness among waiting candidates depends on the backend. A single Redis server is not
//! consensus. Timing guarantees assume the holder's process runs; epochs are what protect
//! you when it does not.
//!
//! **Suspend.** Deadlines are tokio `Instant`s (`CLOCK_MONOTONIC`), which stand still
//! while the host is suspended, while servers' TTLs and peers' timers run on. A
//! leadership therefore also compares `CLOCK_BOOTTIME` with `CLOCK_MONOTONIC`
//! ([`suspended_ns`]): once their difference has grown since the grant, the host was
//! suspended and the leadership is over ([`LossReason::Expired`]), whatever its deadline
//! says; [`Leadership::lost`] also waits on a timer on the boot clock, so it resolves at
//! resume when the suspend outlasted the deadline. What remains: a suspend *during* the
//! campaign's own round trip, before the grant, is not seen (its deadline counts from the
//! request's start on the monotonic clock, so it is late by the suspend's length: seconds
//! at most in practice, against a suspend inside one request). `lost()` needs a tokio
//! runtime with I/O and time enabled (`enable_all`, as every backend's connections need
//! too); where the host gives no timerfd it falls back to tokio's timer alone and resolves
//! only when the monotonic clock reaches the deadline. `is_held()` is right in every case.
//!
//! # Testing your own code
//!
//! [`MemoryBackend`] is a complete backend in one process, passing the same conformance
//! suite as the real ones; [`MemoryBackend::cut_off`] simulates a partition.

mod boot_clock;
mod elector;
mod epoch;
mod error;
mod fence;
mod leadership;
mod lease_group;
mod memory;
mod names;
mod timing;

pub use boot_clock::{boot_now_ns, inject_suspend, suspended_between, suspended_ns};
pub use elector::{Backend, LeaderElector, LeaderStream};
pub use epoch::Epoch;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use fence::Fence;
pub use leadership::{
    DeadlineSource, LeaderInfo, Leadership, LeadershipControl, LeaseKeeper, LossReason, LossWatch,
};
pub use lease_group::LeaseGroup;
pub use memory::{MemoryBackend, MemoryServer};
pub use names::{Candidate, ElectionName, MAX_ELECTION_NAME_LEN, MAX_NODE_ID_LEN, NodeId};
pub use timing::LeaseTiming;

/// The environment variables `elector run` sets for the guarded process.
pub mod env {
    /// The epoch of the leadership the process runs under.
    pub const EPOCH: &str = "ELECTOR_EPOCH";
    /// The election's name.
    pub const ELECTION: &str = "ELECTOR_ELECTION";
    /// This node's id.
    pub const NODE_ID: &str = "ELECTOR_NODE_ID";
    /// The backend kind, such as `etcd`.
    pub const BACKEND: &str = "ELECTOR_BACKEND";
}
