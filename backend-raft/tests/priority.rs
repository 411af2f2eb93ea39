//! Preferred leaders (decision record 134), on the simulated network with its invariants
//! checked after every step (one leader per term, granted terms rise, and no two leases
//! overlap: after a leader steps down for a preferred candidate, which is not a resign, the
//! old holder's kill grace and the unused drift bound lie between the two leases).
//!
//! n1 has priority 10, n2 and n3 the default 0, and the stable period is 2 s: the leader
//! steps down for a campaigning member of higher priority once that member has been caught
//! up and answering every heartbeat round, with no restart and no gap longer than the
//! minimum election timeout, for 2 s.

mod common;

use std::time::Duration;

use common::{Sim, election, id};
use election_core::LossReason;

const STABLE: Duration = Duration::from_secs(2);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Three nodes, n1 preferred, every node campaigning again after a loss (a supervise loop).
fn cluster(seed: u64) -> Sim {
    let mut sim = Sim::new_configured(seed, 3, &[], |c| {
        c.priority_stable = STABLE;
        if c.me == id(0) {
            c.priority = 10;
        }
    });
    sim.recampaign = true;
    sim
}

fn campaign_all(sim: &mut Sim) {
    for n in 0..sim.n() {
        sim.campaign(n, &election(0)).unwrap();
    }
}

/// The leases of election 0 live at or granted after `from`, as (node, reason).
fn leases_since(sim: &Sim, from: Duration) -> Vec<(usize, Option<LossReason>)> {
    sim.leases
        .get(&election(0))
        .map(|ls| {
            ls.iter()
                .filter(|l| l.start >= from || l.end > from)
                .map(|l| (l.node, l.reason))
                .collect()
        })
        .unwrap_or_default()
}

fn yields(sim: &Sim) -> usize {
    sim.leases.get(&election(0)).map_or(0, |ls| {
        ls.iter()
            .filter(|l| l.reason == Some(LossReason::Yielded))
            .count()
    })
}

/// Brings the cluster up with n1 down, so that n2 or n3 leads; returns the leader.
fn led_by_another(sim: &mut Sim) -> usize {
    sim.crash(0);
    campaign_all(sim);
    sim.run_for(Duration::from_secs(2)).unwrap();
    let l = sim
        .lease_holder(&election(0))
        .expect("a leader among n2, n3");
    assert_ne!(l, 0);
    l
}

#[test]
fn a_preferred_node_that_comes_back_takes_leadership_back_once_after_the_stable_period() {
    for seed in 0..20 {
        let mut sim = cluster(seed);
        let other = led_by_another(&mut sim);
        sim.restart(0);
        sim.campaign(0, &election(0)).unwrap();
        let back = sim.now;
        // Not before the stable period: the returning node must prove itself first.
        sim.run_for(STABLE - ms(100)).unwrap();
        assert_eq!(
            sim.lease_holder(&election(0)),
            Some(other),
            "seed {seed}: leadership moved before the stable period"
        );
        // Then once: the old leader steps down (Yielded), n1 is elected after its lease.
        sim.run_for(Duration::from_secs(2)).unwrap();
        assert_eq!(
            sim.lease_holder(&election(0)),
            Some(0),
            "seed {seed}: n1 did not take leadership back:\n{}",
            sim.dump(&[election(0)])
        );
        let ls = sim.leases[&election(0)].clone();
        let old = ls
            .iter()
            .find(|l| l.node == other && l.reason == Some(LossReason::Yielded))
            .expect("the old leader stepped down for n1");
        let new = ls.iter().find(|l| l.node == 0).unwrap();
        assert!(
            new.start >= back + STABLE,
            "seed {seed}: transfer at {:?}, back at {back:?}",
            new.start
        );
        // The handover rule (also checked by the simulator after every step): the old
        // child's kill grace lies between the two leases.
        let cfg = &sim.configs[0];
        assert!(
            new.start >= old.end + cfg.kill_grace,
            "seed {seed}: {old:?} then {new:?}"
        );
        // And it stays: nothing moves on a healthy network.
        sim.run_for(STABLE * 5).unwrap();
        assert_eq!(
            leases_since(&sim, back),
            vec![(other, Some(LossReason::Yielded)), (0, None)],
            "seed {seed}"
        );
    }
}

#[test]
fn a_flapping_preferred_node_never_moves_leadership_and_takes_it_once_it_stays_up() {
    for seed in 0..10 {
        let mut sim = cluster(seed);
        let other = led_by_another(&mut sim);
        let from = sim.now;
        // Up 1.2 s, down 0.3 s, ten times: never up for the 2 s stable period.
        for _ in 0..10 {
            sim.restart(0);
            sim.campaign(0, &election(0)).unwrap();
            sim.run_for(ms(1200)).unwrap();
            sim.crash(0);
            sim.run_for(ms(300)).unwrap();
        }
        assert_eq!(
            leases_since(&sim, from),
            vec![(other, None)],
            "seed {seed}: a flapping node moved leadership"
        );
        assert_eq!(sim.lease_holder(&election(0)), Some(other));
        // It stays up: one move, after the stable period, and no more.
        sim.restart(0);
        sim.campaign(0, &election(0)).unwrap();
        sim.run_for(STABLE * 4).unwrap();
        assert_eq!(
            leases_since(&sim, from),
            vec![(other, Some(LossReason::Yielded)), (0, None)],
            "seed {seed}"
        );
    }
}

#[test]
fn a_leader_flapping_between_preferred_and_not_moves_at_most_once_per_stable_period() {
    // n1 leads, crashes, comes back, leads again after the stable period, crashes again...:
    // each move to n1 is a transfer, and transfers are at least one stable period apart.
    let mut sim = cluster(3);
    let _ = led_by_another(&mut sim);
    for _ in 0..4 {
        sim.restart(0);
        sim.campaign(0, &election(0)).unwrap();
        sim.run_for(ms(2600)).unwrap();
        sim.crash(0);
        sim.run_for(ms(900)).unwrap();
    }
    let ls = &sim.leases[&election(0)];
    let transfers: Vec<Duration> = ls.iter().filter(|l| l.node == 0).map(|l| l.start).collect();
    assert!(!transfers.is_empty());
    for w in transfers.windows(2) {
        assert!(w[1] >= w[0] + STABLE, "transfers {transfers:?}");
    }
    // Every lease n1 held came by a yield of the one before (it never won by failover:
    // it was down whenever a failover happened).
    assert_eq!(yields(&sim), transfers.len());
}

#[test]
fn no_transfer_while_the_preferred_node_does_not_acknowledge_heartbeats() {
    for seed in 0..5 {
        let mut sim = cluster(seed);
        let other = led_by_another(&mut sim);
        sim.restart(0);
        sim.campaign(0, &election(0)).unwrap();
        // n1 hears the leader but its acknowledgements are lost: it is not caught up as
        // far as the leader can tell, and its candidacy is not heard either.
        sim.cut.insert((0, other));
        let from = sim.now;
        sim.run_for(STABLE * 3).unwrap();
        assert_eq!(leases_since(&sim, from), vec![(other, None)], "seed {seed}");
        assert_eq!(sim.lease_holder(&election(0)), Some(other));
        // Heard again: the stable period counts from then.
        sim.cut.clear();
        let healed = sim.now;
        sim.run_for(STABLE - ms(100)).unwrap();
        assert_eq!(sim.lease_holder(&election(0)), Some(other), "seed {seed}");
        sim.run_for(Duration::from_secs(2)).unwrap();
        assert_eq!(sim.lease_holder(&election(0)), Some(0), "seed {seed}");
        assert_eq!(
            leases_since(&sim, healed),
            vec![(other, Some(LossReason::Yielded)), (0, None)],
            "seed {seed}: one transfer"
        );
    }
}

#[test]
fn equal_priorities_never_move_leadership() {
    let mut sim = Sim::new_configured(5, 3, &[], |c| {
        c.priority_stable = STABLE;
        c.priority = 7;
    });
    sim.recampaign = true;
    campaign_all(&mut sim);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let l = sim.lease_holder(&election(0)).unwrap();
    sim.run_for(STABLE * 5).unwrap();
    assert_eq!(sim.lease_holder(&election(0)), Some(l));
    assert_eq!(sim.leases[&election(0)].len(), 1);
}

#[test]
fn a_leader_of_higher_priority_keeps_leading() {
    let mut sim = cluster(8);
    campaign_all(&mut sim);
    sim.run_for(STABLE * 2).unwrap();
    assert_eq!(sim.lease_holder(&election(0)), Some(0));
    let n = sim.leases[&election(0)].len();
    sim.run_for(STABLE * 5).unwrap();
    assert_eq!(sim.leases[&election(0)].len(), n, "n1 keeps leading");
    assert_eq!(yields(&sim), n - 1);
}

#[test]
fn a_preferred_voter_that_does_not_campaign_is_not_handed_leadership() {
    let mut sim = cluster(9);
    let other = led_by_another(&mut sim);
    sim.restart(0);
    // n1 is up and healthy but never campaigns.
    sim.run_for(STABLE * 3).unwrap();
    assert_eq!(sim.lease_holder(&election(0)), Some(other));
    assert_eq!(yields(&sim), 0);
}

#[test]
fn the_step_down_bypasses_no_lease_no_timeout_now_no_forced_vote() {
    use election_raft::core::Message;
    let mut sim = cluster(11);
    sim.keep_log = true;
    let other = led_by_another(&mut sim);
    sim.restart(0);
    sim.campaign(0, &election(0)).unwrap();
    let from = sim.sent.len();
    sim.run_for(STABLE + Duration::from_secs(2)).unwrap();
    assert_eq!(sim.lease_holder(&election(0)), Some(0));
    let sent = &sim.sent[from..];
    assert!(
        sent.iter()
            .any(|(f, t, m)| *f == other && *t == 0 && matches!(m, Message::Prefer { .. })),
        "the old leader sent Prefer to n1"
    );
    for (f, t, m) in sent {
        assert!(
            !matches!(
                m,
                Message::TimeoutNow { .. }
                    | Message::Vote { force: true, .. }
                    | Message::PreVote { force: true, .. }
            ),
            "n{} -> n{}: {m:?}: a preferred transfer must not bypass the lease",
            f + 1,
            t + 1
        );
    }
    // n1 campaigned with pre-vote, as after any leader's departure.
    assert!(
        sent.iter()
            .any(|(f, _, m)| *f == 0 && matches!(m, Message::PreVote { force: false, .. }))
    );
}
