//! Golden scenarios: short scripted runs of the simulated network whose traces (virtual
//! time, every ELECTION / ALIVE / acknowledgement / VICTORY / ABDICATE, leader changes,
//! grants and losses; heartbeats left out) are checked in under `tests/snapshots/`. A change
//! in the exchange shows up as a diff to review: `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test -p election-bully --test golden` and read the diff).

mod common;

use std::time::Duration;

use common::{NewWith, Sim, election};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn scripted(n: usize, quorum: bool) -> Sim {
    let mut s = Sim::new_with(42, n, &[], quorum);
    s.keep_log = true;
    // Fixed delays: the trace depends on no random draw but the cores' jitter.
    s.delay = (ms(1), ms(1));
    s
}

#[test]
fn golden_start_crash_of_the_leader_and_resign() {
    let mut s = scripted(3, true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    s.run_for(ms(400)).unwrap();
    s.crash(2);
    s.run_for(ms(400)).unwrap();
    s.restart(2);
    s.campaign(2, &e).unwrap();
    s.run_for(ms(400)).unwrap();
    s.resign(1, &e).unwrap();
    s.run_for(ms(100)).unwrap();
    insta::assert_snapshot!(s.trace.join("\n"));
}

#[test]
fn golden_classic_bully_splits_in_a_partition_and_the_lower_epoch_yields() {
    let mut s = scripted(4, false);
    let e = election(0);
    for i in 0..4 {
        s.campaign(i, &e).unwrap();
    }
    s.run_for(ms(400)).unwrap();
    s.partition(&[2, 3]);
    s.run_for(ms(400)).unwrap();
    s.heal();
    s.run_for(ms(200)).unwrap();
    insta::assert_snapshot!(s.trace.join("\n"));
}
