//! Test support for elector backends: the conformance suite every backend passes, launchers
//! for the real servers (redis, etcd, ZooKeeper), a fault-injecting TCP proxy, and a
//! history checker. Test-only (`publish = false`); it depends on `election-core` and on no
//! backend crate, so every backend can use it as a dev-dependency.
//!
//! # The pieces
//!
//! - [`conformance`]: seventeen properties of the election contract, each an
//!   `async fn(&dyn Harness)` that panics with a message naming the backend and what went
//!   wrong, and [`conformance_suite!`] to turn them into one `#[tokio::test]` each. A
//!   backend supplies a [`Harness`](conformance::Harness) that hands out nodes it can cut
//!   off and heal, and its timing [`Bounds`](conformance::Bounds).
//! - [`launch`]: [`RedisServer`](launch::RedisServer), [`EtcdServer`](launch::EtcdServer),
//!   [`EtcdCluster`](launch::EtcdCluster), [`ZooKeeperServer`](launch::ZooKeeperServer),
//!   [`ZooKeeperEnsemble`](launch::ZooKeeperEnsemble) (with a proxy on every quorum link):
//!   [`PostgresServer`](launch::PostgresServer) (and its hot standby):
//!   real servers on free loopback ports in temporary directories, with SIGSTOP/SIGCONT,
//!   SIGKILL and restarts (data kept or emptied) as faults.
//! - [`proxy`]: [`FaultProxy`](proxy::FaultProxy), which passes, blackholes, delays or
//!   resets each direction of TCP traffic, changed at runtime.
//! - [`flood`]: [`Flood`](flood::Flood), idle and slow-loris TCP connections against one
//!   port from chosen loopback source addresses, for starvation tests.
//! - [`history`]: [`History`](history::History), a thread-safe record of grants, losses,
//!   resignations and fenced writes, and a checker for double grants, falling epochs,
//!   overlapping holders and stale writes accepted.
//! - [`chaos`]: the chaos instrument: three real hosts of `elector run --supervise` (and
//!   agents for raft and bully) under seeded random kills, pauses, partitions and server
//!   restarts, children writing through a shared fence, and a checker of their history;
//!   the `chaos` binary of this package runs it (see `docs/chaos.md`).
//! - [`wait_until`] and [`init_tracing`]: waiting on a condition with a deadline instead of
//!   sleeping, and logs in test output filtered by `RUST_LOG`.
//!
//! # What the suite checks, and what it does not
//!
//! The suite checks the behaviour a user of any backend relies on: election alone and in
//! contention, at most one holder at a time (several nodes contending in a loop, checked by
//! [`History`](history::History)), epochs unique and strictly rising across resign, drop,
//! expiry and re-election, immediate handover on resign and on drop, `lost()` within the
//! backend's `loss_within` after a cut-off, another node elected only after the cut-off
//! holder's deadline has passed (an ordering read from the monotonic clock, never from a
//! sleep), no other candidate granted inside a lost holder's kill grace when what made it
//! miss its deadline (a cut-off, a stalled server or driver) wakes up inside that window,
//! `observe()` reporting every change including "no leader", withdrawn candidacies,
//! independent elections, name validation, epochs rising across the restarts each backend
//! declares it survives ([`Restart`](conformance::Restart)), and a holder whose runtime is
//! frozen (not just cut off) fenced off when it wakes.
//!
//! It does not check fairness among waiting candidates, restarts a backend says it cannot
//! survive (its harness documents which and why), or performance.
//!
//! Epochs are not made here: the suite only checks what backends grant.
//!
//! # Settings and their defaults
//!
//! | Setting | Default | Where |
//! |---|---|---|
//! | slack added to every [`Bounds`](conformance::Bounds) value | 2 s ([`conformance::SLACK`]) | decision 013 |
//! | liveness wait (an uncontested election, a stream's next change) | `2 × takeover_within + 10 s` | conformance |
//! | candidacy registration time before a handover | 300 ms | conformance |
//! | grants in the `at_most_one_holder` contest | 15, among up to 3 nodes | conformance |
//! | readiness deadline: redis / etcd / ZooKeeper / ensemble member / PostgreSQL | 20 s / 30 s / 60 s / 90 s / 30 s | launch |
//! | etcd Raft timings: single member / cluster | 10 ms, 100 ms / 50 ms, 500 ms | decision 011 |
//! | redis persistence | AOF, `appendfsync always`, no RDB | decision 012 |
//! | ZooKeeper `tickTime` / min / max session | 500 ms / 1 s / 30 s | launch |
//! | clean-stop grace before SIGKILL on `restart(Keep)` | 10 s | launch |
//! | bytes the proxy holds per direction before back-pressure | 4 MiB | proxy |
//! | [`wait_until`] poll interval | 5 ms | lib |
//!
//! # Using it from a backend crate
//!
//! ```toml
//! [dev-dependencies]
//! election-tests = { path = "../tests" }
//! tokio = { workspace = true }
//! ```
//!
//! ```text
//! async fn harness() -> std::sync::Arc<dyn election_tests::conformance::Harness> {
//!     // Start a RedisServer, put a FaultProxy in front of each node's connection,
//!     // and let TestNode::cut_off set Fault::Blackhole on that node's proxy.
//! }
//! election_tests::conformance_suite!(harness);
//! ```
//!
//! `tests/tests/memory_conformance.rs` in this crate is a complete, working harness.
//!
//! A server binary that is missing makes the launcher fail with the Debian package to
//! install and `scripts/install-deps.sh`; tests never skip for it.

pub mod chaos;
pub mod conformance;
pub mod flood;
pub mod history;
pub mod launch;
pub mod proxy;
pub mod tmpfs;
mod wait;

pub use wait::{init_tracing, init_tracing_or, wait_until};
