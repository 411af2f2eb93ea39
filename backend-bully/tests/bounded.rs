//! Issue 14, item 2: a peer cannot grow this node's state without bound, and forgetting
//! never costs safety (decision record 105).
//!
//! - 100,000 distinct election names from an authenticated peer (VICTORY, ELECTION and
//!   heartbeat rounds listing them) keep the core at `max_elections` at most and the state
//!   file bounded; once idle they are forgotten, file included. A heartbeat entry the node
//!   cannot hold is refused without a promise (epoch 0), so the leader does not count it.
//! - "At most one leader accepted per epoch" survives forgetting: a forgotten acceptance's
//!   epoch is never accepted again for another leader, also after a restart from the state
//!   file (the floor is persisted).
//! - Seeded random schedules with a short `forget_after` keep every simulator invariant,
//!   and what a node persists for a name it forgot never goes back.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use common::{Sim, default_config, election, id};
use election_bully::core::{HardState, Message, Node, NodeConfig};
use election_core::ElectionName;
use election_peer::StateFile;
use election_peer::sim::Harshness;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn members(n: usize) -> BTreeSet<election_core::NodeId> {
    (0..n).map(id).collect()
}

fn name(i: usize) -> ElectionName {
    ElectionName::new(format!("junk-{i}")).unwrap()
}

/// Drains the node as the driver does: persist (forgotten first), then drop the
/// transmits; returns the refusals in the `Ack`s sent.
fn drain(node: &mut Node, file: &mut StateFile<HardState>) -> Vec<(ElectionName, u64)> {
    let mut changes = Vec::new();
    while let Some(b) = node.poll_persist() {
        changes.extend(b);
    }
    let mut forget = Vec::new();
    let mut floor = 0;
    while let Some(f) = node.poll_forget() {
        floor = floor.max(f.floor);
        forget.extend(f.elections);
    }
    file.save_and_forget(changes, &forget, floor).unwrap();
    let mut refused = Vec::new();
    while let Some(t) = node.poll_transmit() {
        for m in t.messages {
            if let Message::Ack { rejects, .. } = m {
                refused.extend(rejects);
            }
        }
    }
    while node.poll_event().is_some() {}
    refused
}

fn config(max_elections: usize, forget_after: Duration) -> NodeConfig {
    let mut c = default_config(&id(0), &members(3), 7);
    c.max_elections = max_elections;
    c.forget_after = forget_after;
    c
}

#[test]
fn a_hundred_thousand_names_from_a_peer_keep_the_core_and_the_state_file_bounded() {
    const MAX: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bully-state");
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let mut node = Node::new(config(MAX, ms(1000)), t0, Vec::new()).unwrap();
    let (n2, n3) = (id(1), id(2));
    let mut now = t0 + ms(500);
    let (mut most, mut biggest, mut refused_unheld) = (0, 0, 0);
    let mut sent = 0;
    for batch in 0..100u64 {
        // 1,000 new names per 100 ms: a heartbeat round of n3 leading 400 (n3 is the
        // highest node), 400 VICTORY of n3 and 200 ELECTION of n2.
        let base = batch as usize * 1000;
        let leads = (base..base + 400).map(|i| (name(i), 1)).collect();
        node.handle_message(
            now,
            &n3,
            Message::Heartbeat {
                round: batch + 1,
                incarnation: 1,
                leads,
            },
        );
        for i in base + 400..base + 800 {
            let m = Message::Victory {
                election: name(i),
                epoch: 1,
            };
            node.handle_message(now, &n3, m);
        }
        for i in base + 800..base + 1000 {
            let m = Message::Election {
                election: name(i),
                epoch: 0,
            };
            node.handle_message(now, &n2, m);
        }
        sent += 1000;
        node.handle_timeout(now);
        let refused = drain(&mut node, &mut file);
        // Entries it could not hold are refused at epoch 0: no promise, no deposition.
        refused_unheld += refused.iter().filter(|(_, e)| *e == 0).count();
        most = most.max(node.tracked());
        biggest = biggest.max(fs::metadata(&path).unwrap().len());
        assert!(node.tracked() <= MAX, "{} elections held", node.tracked());
        now += ms(100);
    }
    assert_eq!(sent, 100_000);
    let ignored = node.stats().ignored_elections;
    // Each line is at most "junk-99999 <epoch> n3\n" (25 bytes); appends are compacted
    // once they outnumber the elections by 4,096.
    let bound = (2 * MAX as u64 + 4096 + 2) * 25;
    assert!(biggest <= bound, "state file reached {biggest} bytes");
    // Idle now: n3 falls silent and is presumed failed after failure_timeout; then every
    // election is idle for forget_after.
    let end = now + ms(1000 + 150 + 2 * 125 + 200);
    while now < end {
        now += ms(50);
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    let last = node.tracked();
    let left = fs::read_to_string(&path).unwrap();
    println!(
        "bully core: {sent} names sent, at most {most} held (max {MAX}), {ignored} mentions \
         ignored ({refused_unheld} heartbeat entries refused without a promise), {} \
         forgotten, state file at most {biggest} bytes, {last} held and {} bytes once idle; \
         floor {}",
        node.stats().forgotten,
        left.len(),
        node.floor()
    );
    assert!(
        ignored > 0 && refused_unheld > 0,
        "the limit was never reached"
    );
    assert_eq!(last, 0, "idle elections were not forgotten");
    assert_eq!(
        left,
        "elector-bully-state v1\n#floor 1\n",
        "floor: {}",
        node.floor()
    );
    let file = StateFile::<HardState>::open(dir.path()).unwrap();
    assert!(file.state().is_empty());
    assert_eq!(file.floor(), 1);
}

/// The default limit fits 10,000+ elections: 20,000 campaigns are all held.
#[test]
fn the_default_limit_holds_twenty_thousand_local_campaigns_and_refuses_past_it() {
    let t0 = Instant::now();
    let mut c = config(election_bully::DEFAULT_MAX_ELECTIONS, ms(600_000));
    c.members = members(1);
    let mut node = Node::new(c, t0, Vec::new()).unwrap();
    for i in 0..election_bully::DEFAULT_MAX_ELECTIONS {
        assert!(node.campaign(t0, &name(i)));
    }
    assert_eq!(node.tracked(), election_bully::DEFAULT_MAX_ELECTIONS);
    let past = name(1_000_000);
    assert_eq!(
        node.refuses_new(&past),
        Some(election_bully::DEFAULT_MAX_ELECTIONS)
    );
    assert!(!node.campaign(t0, &past));
    assert_eq!(node.refuses_new(&name(3)), None);
}

#[test]
fn a_forgotten_acceptance_is_never_given_to_another_leader_at_its_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let cfg = config(100, ms(1000));
    let mut node = Node::new(cfg.clone(), t0, Vec::new()).unwrap();
    let e = election(0);
    let round = |r, epoch| Message::Heartbeat {
        round: r,
        incarnation: 1,
        leads: vec![(e.clone(), epoch)],
    };
    let mut now = t0 + ms(200);
    node.handle_message(now, &id(2), round(1, 5));
    assert_eq!(drain(&mut node, &mut file), vec![]);
    assert_eq!(node.leader(&e).map(|l| l.1), Some(5));
    // n3 falls silent: presumed failed, then idle for forget_after: forgotten.
    while node.tracked() > 0 {
        now += ms(100);
        assert!(now < t0 + ms(5000), "never forgotten");
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    assert_eq!(node.floor(), 5);
    assert!(!file.state().contains_key(&e));
    // n2 claims epoch 5 too: this node accepted n3 at 5 and must not accept n2 there.
    node.handle_message(now, &id(1), round(1, 5));
    assert_eq!(drain(&mut node, &mut file), vec![(e.clone(), 6)]);
    // The same after a restart from the file alone.
    let reopened = StateFile::<HardState>::open(dir.path()).unwrap();
    assert_eq!(reopened.floor(), 5);
    let t1 = now + ms(10);
    let state: Vec<_> = reopened
        .state()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut again = Node::restore(cfg, t1, state, reopened.floor()).unwrap();
    let mut file = reopened;
    let now = t1 + ms(200);
    again.handle_message(now, &id(1), round(1, 5));
    assert_eq!(drain(&mut again, &mut file), vec![(e.clone(), 6)]);
    // An epoch above the floor is accepted.
    again.handle_message(now, &id(1), round(2, 7));
    assert_eq!(drain(&mut again, &mut file), vec![]);
    assert_eq!(again.leader(&e).map(|l| l.1), Some(7));
}

/// Random schedules where elections go idle and are forgotten (forget_after 300 ms):
/// nodes campaign, withdraw and resign in random elections under partitions, drops,
/// crashes and restarts. Every simulator invariant holds after every step, and what a
/// node persists for a name it forgot is checked against what it had persisted before.
#[test]
fn forgetting_and_recreating_elections_keeps_every_invariant() {
    let schedules: u64 = std::env::var("BULLY_FORGET_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut forgets = 0;
    for seed in 0..schedules {
        match forget_schedule(seed) {
            Ok(f) => forgets += f,
            Err(why) => panic!(
                "seed {seed}: {why}\nreplay: BULLY_FORGET_SCHEDULES={} cargo test -p \
                 election-bully --test bounded forgetting",
                seed + 1
            ),
        }
    }
    println!("bully: {schedules} schedules, {forgets} elections forgotten");
    assert!(forgets > schedules, "too few elections were forgotten");
}

fn forget_schedule(seed: u64) -> Result<u64, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb0b0_2026);
    let n = if rng.random_bool(0.7) { 3 } else { 5 };
    let quorum = rng.random_bool(0.8);
    let mut sim = Sim::new_configured(seed, n, &[], |c| {
        c.forget_after = ms(300);
        c.quorum = quorum;
    });
    sim.drop_rate = [0.0, 0.05, 0.2][rng.random_range(0..3)];
    sim.harden(Harshness::draw(&mut rng));
    let elections: Vec<_> = (0..4).map(election).collect();
    let end = Duration::from_secs(6);
    while sim.now < end {
        let next = sim.now + ms(rng.random_range(20..400));
        sim.run_until(next)?;
        let e = &elections[rng.random_range(0..elections.len())];
        let c = rng.random_range(0..n);
        match rng.random_range(0..10) {
            0 | 1 => sim.campaign(c, e)?,
            2 | 3 => sim.withdraw(c, e)?,
            4 => {
                if let Some(h) = sim.lease_holder(e) {
                    sim.resign(h, e)?;
                }
            }
            5 => sim.crash(c),
            6 => sim.restart(c),
            7 => sim.isolate(c),
            _ => sim.heal(),
        }
    }
    // Healed: everyone up; one election campaigned again must elect a leader.
    sim.heal();
    sim.drop_rate = 0.0;
    sim.late_rate = 0.0;
    sim.dup_rate = 0.0;
    for i in 0..n {
        sim.restart(i);
    }
    let e = &elections[0];
    for i in 0..n {
        sim.campaign(i, e)?;
    }
    let bound = Duration::from_secs(5);
    if !sim.run_until_cond(bound, |s| s.settled(std::slice::from_ref(e)))? {
        return Err(format!(
            "no leader after the heal:\n{}",
            sim.dump(&elections)
        ));
    }
    Ok(sim.forgets)
}
