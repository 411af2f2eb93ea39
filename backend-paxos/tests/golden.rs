//! Golden scenarios: short scripted runs of the simulated network whose traces (virtual
//! time, every PREPARE / PROMISE / PROPOSE / ACCEPT / RELEASE and refusal, leader changes,
//! grants and losses) are checked in under `tests/snapshots/`. A change in the exchange
//! shows up as a diff to review: `cargo insta review` (or `INSTA_UPDATE=always cargo test
//! -p election-paxos --test golden` and read the diff). Renewal rounds are left out of the
//! trace after the first grant, to keep it short.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Sim, election};
use election_paxos::core::Message;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn scripted(n: usize) -> Sim {
    let mut s = Sim::new(42, n, &[]);
    s.keep_log = true;
    // Fixed delays: the trace depends on no random draw but the cores' back-off.
    s.delay = (ms(1), ms(1));
    s
}

/// The trace without the renewals of a live leader (an EXTEND batch every 25 ms, or a
/// full PREPARE/PROPOSE round where an extension failed), which say nothing new: the
/// EXTEND/EXTENDED lines and those of every ballot that proposed a renewal (its ballot is
/// not its epoch).
fn trace(s: &Sim) -> String {
    let renewals: BTreeSet<u64> = s
        .sent
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Propose { ballot, epoch, .. } if ballot != epoch => Some(*ballot),
            _ => None,
        })
        .collect();
    s.trace
        .iter()
        .filter(|l| {
            let ballot = l
                .split("ballot ")
                .nth(1)
                .and_then(|r| r.split([' ', ')']).next())
                .and_then(|v| v.parse::<u64>().ok());
            !ballot.is_some_and(|b| renewals.contains(&b)) && !l.contains("EXTEND")
        })
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn golden_start_crash_of_the_leader_and_resign() {
    let mut s = scripted(3);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    s.run_for(ms(200)).unwrap();
    let leader = s.lease_holder(&e).expect("a leader");
    s.crash(leader);
    s.run_for(ms(400)).unwrap();
    s.restart(leader);
    s.campaign(leader, &e).unwrap();
    s.run_for(ms(200)).unwrap();
    let now = s.lease_holder(&e).expect("a leader");
    s.resign(now, &e).unwrap();
    s.run_for(ms(50)).unwrap();
    insta::assert_snapshot!(trace(&s));
}

#[test]
fn golden_a_minority_side_never_grants_and_the_majority_waits_for_the_lease_to_run_out() {
    let mut s = scripted(5);
    let e = election(0);
    s.campaign(0, &e).unwrap();
    s.run_for(ms(200)).unwrap();
    assert_eq!(s.lease_holder(&e), Some(0));
    for i in 1..5 {
        s.campaign(i, &e).unwrap();
    }
    s.partition(&[0, 1]);
    s.run_for(ms(400)).unwrap();
    s.heal();
    s.run_for(ms(100)).unwrap();
    insta::assert_snapshot!(trace(&s));
}
