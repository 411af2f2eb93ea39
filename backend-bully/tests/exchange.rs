//! The Bully message exchanges, one test per rule, on the simulated network (virtual time,
//! no drops unless a test says so). Node `nK` has rank K: `n3` is higher than `n2`.

mod common;

use std::time::Duration;

use common::{NewWith, Sim, election};
use election_bully::core::Message;
use election_core::LossReason;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn sim(n: usize, quorum: bool) -> Sim {
    let mut s = Sim::new_with(7, n, &[], quorum);
    s.keep_log = true;
    s
}

/// Runs until `e` has a lease holder known by every live node, or fails with a dump.
fn settle(s: &mut Sim, within: Duration) -> usize {
    let e = election(0);
    let ok = s
        .run_until_cond(within, |s| s.settled(std::slice::from_ref(&e)))
        .unwrap();
    assert!(ok, "no settled leader within {within:?}:\n{}", s.dump(&[e]));
    s.lease_holder(&e).unwrap()
}

fn epoch_of(s: &Sim, node: usize) -> u64 {
    s.nodes[node].as_ref().unwrap().epoch(&election(0))
}

#[test]
fn election_to_a_higher_live_node_is_answered_alive_and_the_higher_node_wins() {
    let mut s = sim(3, true);
    let e = election(0);
    s.campaign(0, &e).unwrap();
    s.campaign(2, &e).unwrap();
    let leader = settle(&mut s, ms(2000));
    assert_eq!(leader, 2, "the highest candidate leads");
    let alive_to_n1 = s
        .sent
        .iter()
        .any(|(from, to, m)| *from == 2 && *to == 0 && matches!(m, Message::Alive { .. }));
    let election_to_n3 = s
        .sent
        .iter()
        .any(|(from, to, m)| *from == 0 && *to == 2 && matches!(m, Message::Election { .. }));
    assert!(
        election_to_n3 && alive_to_n1,
        "n1 sent ELECTION to n3 and n3 answered ALIVE"
    );
}

#[test]
fn victory_goes_to_every_peer_with_an_epoch_above_every_epoch_seen() {
    let mut s = sim(3, true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    let first = settle(&mut s, ms(2000));
    let first_epoch = epoch_of(&s, first);
    assert!(first_epoch >= 1, "epoch 0 is never granted");
    for to in (0..3).filter(|&p| p != first) {
        assert!(
            s.sent.iter().any(|(f, t, m)| *f == first
                && *t == to
                && matches!(m, Message::Victory { epoch, .. } if *epoch == first_epoch)),
            "VICTORY at epoch {first_epoch} went to n{}",
            to + 1
        );
    }
    s.resign(first, &e).unwrap();
    let second = settle(&mut s, ms(2000));
    assert!(epoch_of(&s, second) > first_epoch);
}

#[test]
fn victory_is_made_durable_before_it_is_sent() {
    let mut s = sim(1, true);
    let e = election(0);
    s.campaign(0, &e).unwrap();
    settle(&mut s, ms(2000));
    // The simulator moves poll_persist output to `disk` before any transmit of the step;
    // a one-node cluster's only VICTORY is its own.
    assert_eq!(s.disk[0][&e].epoch, epoch_of(&s, 0));
    assert_eq!(s.disk[0][&e].leader.as_ref(), Some(&common::id(0)));
}

#[test]
fn a_victory_with_an_epoch_below_the_highest_seen_is_refused() {
    let mut s = sim(3, true);
    let e = election(0);
    s.campaign(2, &e).unwrap();
    settle(&mut s, ms(2000));
    let seen = epoch_of(&s, 0);
    let now = s.instant();
    let n1 = s.nodes[0].as_mut().unwrap();
    let refused_before = n1.stats().refused_victories;
    n1.handle_message(
        now,
        &common::id(1),
        Message::Victory {
            election: e.clone(),
            epoch: seen - 1,
        },
    );
    assert_eq!(n1.stats().refused_victories, refused_before + 1);
    assert_eq!(n1.leader(&e), Some((common::id(2), seen)));
}

#[test]
fn a_follower_that_misses_heartbeats_holds_an_election_and_the_next_highest_wins() {
    let mut s = sim(3, true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    assert_eq!(settle(&mut s, ms(2000)), 2);
    let old = epoch_of(&s, 2);
    s.crash(2);
    let new = settle(&mut s, ms(2000));
    assert_eq!(new, 1, "the highest live candidate takes over");
    assert!(epoch_of(&s, 1) > old);
}

#[test]
fn a_higher_node_coming_back_does_not_preempt_a_live_leader() {
    let mut s = sim(3, true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    settle(&mut s, ms(2000));
    s.crash(2);
    assert_eq!(settle(&mut s, ms(2000)), 1);
    s.restart(2);
    s.campaign(2, &e).unwrap();
    s.run_for(ms(3000)).unwrap();
    assert_eq!(s.lease_holder(&e), Some(1), "n2 still leads");
    assert_eq!(
        s.nodes[2].as_ref().unwrap().leader(&e).map(|l| l.0),
        Some(common::id(1)),
        "the restarted higher node follows the live leader"
    );
}

#[test]
fn resign_abdicates_and_the_highest_waiting_candidate_wins() {
    let mut s = sim(4, true);
    let e = election(0);
    s.campaign(0, &e).unwrap();
    assert_eq!(settle(&mut s, ms(2000)), 0);
    s.campaign(1, &e).unwrap();
    s.campaign(2, &e).unwrap();
    s.run_for(ms(500)).unwrap();
    assert_eq!(
        s.lease_holder(&e),
        Some(0),
        "candidates wait while n1 leads"
    );
    let sent_before = s.sent.len();
    s.resign(0, &e).unwrap();
    assert!(
        s.sent[sent_before..]
            .iter()
            .any(|(f, _, m)| *f == 0 && matches!(m, Message::Abdicate { .. })),
        "resign sends ABDICATE"
    );
    let at = s.now;
    let next = settle(&mut s, ms(2000));
    assert_eq!(next, 2, "the highest waiting candidate wins");
    let took = s.now - at;
    assert!(
        took < s.configs[0].failure_timeout,
        "the handoff took {took:?}: it must not wait for the failure timeout"
    );
}

#[test]
fn with_quorum_a_cut_off_leader_steps_down_and_the_minority_never_elects() {
    let mut s = sim(5, true);
    let e = election(0);
    for i in 0..5 {
        s.campaign(i, &e).unwrap();
    }
    assert_eq!(settle(&mut s, ms(2000)), 4);
    s.partition(&[3, 4]);
    s.run_for(ms(3000)).unwrap();
    let leases = &s.leases[&e];
    let first = &leases[0];
    assert_eq!(first.node, 4);
    assert_eq!(first.reason, Some(LossReason::QuorumLost));
    assert!(
        leases.iter().skip(1).all(|l| l.node <= 2),
        "only the majority side (n1..n3) elects: {leases:?}"
    );
    assert_eq!(s.lease_holder(&e), Some(2));
}

#[test]
fn without_quorum_a_partition_elects_one_leader_per_side_with_distinct_epochs() {
    let mut s = sim(4, false);
    let e = election(0);
    for i in 0..4 {
        s.campaign(i, &e).unwrap();
    }
    assert_eq!(settle(&mut s, ms(2000)), 3);
    s.partition(&[2, 3]);
    s.run_for(ms(2000)).unwrap();
    // Split brain, the classic weakness: n2 leads {n1, n2}, n4 still leads {n3, n4}.
    let n2 = s.nodes[1].as_ref().unwrap().lease_until(&e);
    let n4 = s.nodes[3].as_ref().unwrap().lease_until(&e);
    assert!(
        n2.is_some() && n4.is_some(),
        "{}",
        s.dump(std::slice::from_ref(&e))
    );
    assert_ne!(epoch_of(&s, 1), epoch_of(&s, 3), "epochs stay unique");
    // Healing resolves it: the lower epoch steps down.
    s.heal();
    let leader = settle(&mut s, ms(2000));
    let epochs: Vec<u64> = [1, 3].iter().map(|&i| epoch_of(&s, i)).collect();
    assert_eq!(epoch_of(&s, leader), *epochs.iter().max().unwrap());
}

#[test]
fn a_restarted_node_resumes_from_its_persisted_highest_epoch() {
    let mut s = sim(3, true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    settle(&mut s, ms(2000));
    for _ in 0..3 {
        let h = s.lease_holder(&e).unwrap();
        s.resign(h, &e).unwrap();
        s.campaign(h, &e).unwrap();
        settle(&mut s, ms(2000));
    }
    let before = epoch_of(&s, 0);
    s.crash(0);
    s.restart(0);
    assert_eq!(epoch_of(&s, 0), before, "the epoch survives the restart");
}

#[test]
fn a_voter_only_node_acknowledges_but_never_campaigns() {
    let mut s = Sim::new_with(3, 3, &[2], true);
    let e = election(0);
    for i in 0..3 {
        s.campaign(i, &e).unwrap();
    }
    assert_eq!(
        settle(&mut s, ms(2000)),
        1,
        "n3 is a voter only; n2 is highest"
    );
    assert!(!s.nodes[2].as_ref().unwrap().is_campaigning(&e));
}

#[test]
fn a_restarted_node_promises_no_new_leader_for_one_failure_timeout() {
    let mut s = sim(3, true);
    let e = election(0);
    s.campaign(2, &e).unwrap();
    settle(&mut s, ms(2000));
    s.crash(0);
    s.restart(0);
    let now = s.instant();
    let n1 = s.nodes[0].as_mut().unwrap();
    let epoch = n1.epoch(&e);
    n1.handle_message(
        now,
        &common::id(1),
        Message::Victory {
            election: e.clone(),
            epoch: epoch + 5,
        },
    );
    assert_eq!(
        n1.epoch(&e),
        epoch,
        "nothing accepted during the boot quiet period"
    );
}

#[test]
fn an_absurd_epoch_from_a_peer_never_wraps_epochs_around() {
    let mut s = sim(3, true);
    let e = election(0);
    s.run_for(ms(500)).unwrap();
    // A (buggy) authenticated peer announces the largest epoch there is.
    let now = s.instant();
    let n1 = s.nodes[0].as_mut().unwrap();
    n1.handle_message(
        now,
        &common::id(2),
        Message::Victory {
            election: e.clone(),
            epoch: u64::MAX,
        },
    );
    assert_eq!(n1.epoch(&e), u64::MAX);
    s.crash(2);
    s.campaign(0, &e).unwrap();
    s.run_for(ms(2000)).unwrap();
    assert!(
        s.leases.get(&e).is_none_or(|l| l.is_empty()),
        "no epoch is left above u64::MAX, so nobody may lead: {:?}",
        s.leases.get(&e)
    );
}
