//! A short chaos run of every backend (docs/chaos.md): three hosts of the real
//! `elector run --supervise` against the real server (or three agents), seeded kills,
//! pauses, partitions and server restarts, children writing through a shared fence, and
//! the history checker; each test asserts that it found no violation.
//!
//! The child that elector guards is this test binary itself, running only the ignored
//! test [`chaos_child`]. Replay a failure with the seed it prints (`CHAOS_SEED=S`), or
//! run longer with the `chaos` binary of election-tests. `.config/nextest.toml` puts these
//! tests in a group of one thread, so two chaos runs never share the machine.

use std::time::Duration;

use election_tests::chaos::{self, Backend, ChildCommand, Options};

/// Seconds of chaos per backend: the six runs together stay under 3 minutes on 2 cores.
const SECONDS: u64 = 20;

fn chaos(backend: Backend, seed: u64) {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seed);
    let me = std::env::current_exe().expect("the test binary's path");
    let mut opts = Options::new(
        backend,
        env!("CARGO_BIN_EXE_elector"),
        ChildCommand::test_harness(me, "chaos_child"),
    );
    opts.seed = seed;
    opts.seconds = Some(Duration::from_secs(SECONDS));
    let report = chaos::run(&opts).unwrap_or_else(|e| {
        panic!("the chaos run of {backend} (seed {seed}) could not be made: {e}")
    });
    assert!(
        report.is_clean(),
        "chaos found violations on {backend}; replay with CHAOS_SEED={seed}, or run \
         `cargo run --release -p election-tests --bin chaos -- --backend {backend} \
         --seconds {SECONDS} --seed {seed}`\n{report}"
    );
}

/// The child program of the chaos runs (started by `elector run`); run by hand, or with
/// every ignored test, it has nothing to do.
#[test]
#[ignore = "the child process of the chaos runs"]
fn chaos_child() {
    if chaos::started_as_child() {
        chaos::child_main()
    }
    eprintln!("chaos_child: not started by a chaos run (no CHAOS_FENCE): nothing to do");
}

#[cfg(feature = "redis")]
#[test]
fn chaos_redis() {
    chaos(Backend::Redis, 101);
}

#[cfg(feature = "etcd")]
#[test]
fn chaos_etcd() {
    chaos(Backend::Etcd, 102);
}

#[cfg(feature = "zookeeper")]
#[test]
fn chaos_zookeeper() {
    chaos(Backend::ZooKeeper, 103);
}

#[cfg(feature = "postgres")]
#[test]
fn chaos_postgres() {
    chaos(Backend::Postgres, 106);
}

#[cfg(feature = "raft")]
#[test]
fn chaos_raft() {
    chaos(Backend::Raft, 104);
}

#[cfg(feature = "bully")]
#[test]
fn chaos_bully() {
    chaos(Backend::Bully, 105);
}
