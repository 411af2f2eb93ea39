//! Exhaustive checking of the PaxosLease core (`election_peer::sim::explore`): three nodes
//! campaigning in one election; every interleaving of deliveries (in any order, however
//! late), a duplicate, timeouts (late by up to 0.4 x clock_drift, clock rates 0.5 x
//! clock_drift apart over one lease), a crash and restart, and a resign,
//! breadth-first up to a bounded number of actions, states deduplicated. In every state:
//! at most one granted leader per epoch, and a node is granted an epoch at most once;
//! granted epochs strictly rise; no node's epoch goes back, live or persisted, across
//! restarts; and no two leases overlap in true time (unless the first was resigned, the old
//! holder's kill grace lies between them).

mod common;

use common::Paxos;
use election_peer::sim::explore::{Bounds, Explorer};

fn bounds(depth: usize, duplicates: usize) -> Bounds {
    Bounds {
        depth,
        crashes: 1,
        duplicates,
        resigns: 1,
    }
}

fn explore(explorer: &Explorer<Paxos>, what: &str, replay: &str) {
    explorer.assert_every_invariant_holds(what, replay);
}

#[test]
fn every_interleaving_from_boot_up_to_7_actions_keeps_the_invariants() {
    explore(
        &Explorer::new(bounds(7, 0), |_| {}),
        "from boot",
        "cargo test -p election-paxos --test explore from_boot -- --nocapture",
    );
}

#[test]
fn every_interleaving_after_a_grant_up_to_6_actions_keeps_the_invariants() {
    explore(
        &Explorer::new(bounds(6, 1), |_| {}).from_a_leader(),
        "after a grant",
        "cargo test -p election-paxos --test explore after_a_grant -- --nocapture",
    );
}

const DEEP: &str = "cargo test --release -p election-paxos --test explore -- --ignored --nocapture";

#[test]
#[ignore = "deep exploration, run by hand: cargo test --release -p election-paxos --test explore -- --ignored --nocapture"]
fn deep_every_interleaving_from_boot_up_to_10_actions_keeps_the_invariants() {
    explore(&Explorer::new(bounds(10, 1), |_| {}), "from boot", DEEP);
}

#[test]
#[ignore = "deep exploration, run by hand: cargo test --release -p election-paxos --test explore -- --ignored --nocapture"]
fn deep_every_interleaving_after_a_grant_up_to_8_actions_keeps_the_invariants() {
    explore(
        &Explorer::new(bounds(8, 1), |_| {}).from_a_leader(),
        "after a grant",
        DEEP,
    );
}
