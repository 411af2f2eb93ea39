//! Golden scenario traces (in the style of etcd's datadriven tests): a short script on the
//! simulated network whose event trace is checked in under `tests/snapshots/`. A change of
//! behaviour shows up as a readable diff; `INSTA_UPDATE=always` accepts it.

mod common;

use std::time::Duration;

use common::{Sim, election};

fn trace(sim: &Sim) -> String {
    sim.log
        .iter()
        .filter(|l| !l.contains("lease extended"))
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

/// campaign n1 n2 n3 / stabilize / isolate the leader / tick 1 s / heal / tick 1 s
#[test]
fn golden_partition_of_the_leader_and_heal() {
    let mut sim = Sim::new(42, 3, &[]);
    sim.keep_log = true;
    sim.recampaign = true;
    let e = election(0);
    for i in 0..3 {
        sim.campaign(i, &e).unwrap();
    }
    assert!(
        sim.run_until_cond(Duration::from_secs(2), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    let leader = sim.lease_holder(&e).unwrap();
    sim.isolate(leader);
    sim.run_for(Duration::from_secs(1)).unwrap();
    sim.heal();
    sim.run_for(Duration::from_secs(1)).unwrap();
    insta::assert_snapshot!(trace(&sim));
}

/// campaign n1 n2 n3 / stabilize / leader resigns / tick 500 ms
#[test]
fn golden_resign_transfers_leadership() {
    let mut sim = Sim::new(43, 3, &[]);
    sim.keep_log = true;
    let e = election(0);
    for i in 0..3 {
        sim.campaign(i, &e).unwrap();
    }
    assert!(
        sim.run_until_cond(Duration::from_secs(2), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    sim.run_for(Duration::from_millis(100)).unwrap();
    let leader = sim.lease_holder(&e).unwrap();
    sim.resign(leader, &e).unwrap();
    sim.run_for(Duration::from_millis(500)).unwrap();
    insta::assert_snapshot!(trace(&sim));
}
