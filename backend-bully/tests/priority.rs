//! Priorities order the Bully candidates before ids (decision record 135), on the simulated
//! network with its invariants checked after every step. `n1` has priority 10, `n2` and
//! `n3` the default 0: `n1` is the highest node although its id is the lowest.

mod common;

use std::time::Duration;

use common::{Sim, election, id};
use election_core::LossReason;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn cluster(seed: u64) -> Sim {
    let mut s = Sim::new_configured(seed, 3, &[], |c| {
        c.priorities = [(id(0), 10)].into();
    });
    s.recampaign = true;
    s
}

fn settle(s: &mut Sim, within: Duration) -> usize {
    let e = election(0);
    let ok = s
        .run_until_cond(within, |s| s.settled(std::slice::from_ref(&e)))
        .unwrap();
    assert!(ok, "no settled leader within {within:?}:\n{}", s.dump(&[e]));
    s.lease_holder(&e).unwrap()
}

fn leases(s: &Sim) -> Vec<(usize, Option<LossReason>)> {
    s.leases
        .get(&election(0))
        .map(|ls| ls.iter().map(|l| (l.node, l.reason)).collect())
        .unwrap_or_default()
}

#[test]
fn the_candidate_of_highest_priority_wins_the_election_whatever_its_id() {
    for seed in 0..10 {
        let mut s = cluster(seed);
        for n in 0..3 {
            s.campaign(n, &election(0)).unwrap();
        }
        assert_eq!(settle(&mut s, ms(2000)), 0, "seed {seed}");
    }
}

#[test]
fn equal_priorities_fall_back_to_the_greatest_id() {
    let mut s = Sim::new_configured(1, 3, &[], |c| {
        c.priorities = [(id(0), 4), (id(1), 4)].into();
    });
    for n in 0..3 {
        s.campaign(n, &election(0)).unwrap();
    }
    assert_eq!(
        settle(&mut s, ms(2000)),
        1,
        "n2: priority 4 and the greater id"
    );
}

#[test]
fn a_returning_preferred_node_does_not_preempt_a_live_leader_and_wins_the_next_election() {
    for seed in 0..10 {
        let mut s = cluster(seed);
        s.crash(0);
        s.campaign(1, &election(0)).unwrap();
        s.campaign(2, &election(0)).unwrap();
        assert_eq!(
            settle(&mut s, ms(2000)),
            2,
            "seed {seed}: n3 leads while n1 is down"
        );
        // n1 comes back, and flaps: never a move while n3 lives.
        for _ in 0..5 {
            s.restart(0);
            s.campaign(0, &election(0)).unwrap();
            s.run_for(ms(700)).unwrap();
            s.crash(0);
            s.run_for(ms(200)).unwrap();
        }
        s.restart(0);
        s.campaign(0, &election(0)).unwrap();
        s.run_for(Duration::from_secs(5)).unwrap();
        assert_eq!(leases(&s), vec![(2, None)], "seed {seed}: no preemption");
        // The next election (n3 resigns, its child stopped): n1 wins it.
        assert!(s.resign(2, &election(0)).unwrap());
        assert_eq!(settle(&mut s, ms(2000)), 0, "seed {seed}");
        assert_eq!(
            leases(&s),
            vec![(2, Some(LossReason::Resigned)), (0, None)],
            "seed {seed}"
        );
    }
}
