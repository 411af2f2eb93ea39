//! A peer cannot grow this node's state without bound, and forgetting never costs safety
//! (decision record 105).
//!
//! - 100,000 distinct election names from an authenticated peer (PREPARE and PROPOSE for
//!   them) keep the core at `max_elections` at most and the state file bounded; requests it
//!   cannot hold go unanswered and are counted; once idle the names are forgotten, file
//!   included.
//! - The fencing floor survives forgetting: an election forgotten and mentioned again
//!   promises no ballot at or below the floor it had, also after a restart from the state
//!   file (the floor is persisted).
//! - Seeded random schedules with a short `forget_after` keep every simulator invariant,
//!   and what a node persists for a name it forgot never goes back.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use common::{Sim, default_config, election, id};
use election_core::ElectionName;
use election_paxos::core::{HardState, Message, Node, NodeConfig};
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

/// Drains the node as the driver does: persist (forgotten first), then count the answers.
fn drain(node: &mut Node, file: &mut StateFile<HardState>) -> usize {
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
    let mut answers = 0;
    while let Some(t) = node.poll_transmit() {
        answers += t.messages.len();
    }
    while node.poll_event().is_some() {}
    answers
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
    let path = dir.path().join("paxos-state");
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let mut node = Node::new(config(MAX, ms(1000)), t0, Vec::new()).unwrap();
    let n3 = id(2);
    // Past the restart abstention.
    let mut now = t0 + ms(200);
    let (mut most, mut biggest, mut answered) = (0, 0, 0);
    for batch in 0..100u64 {
        // 1,000 new names per 100 ms: 500 prepare and 500 propose requests of n3.
        let base = batch as usize * 1000;
        for i in base..base + 500 {
            let m = Message::Prepare {
                election: name(i),
                ballot: 2,
                incarnation: 1,
            };
            node.handle_message(now, &n3, m);
        }
        for i in base + 500..base + 1000 {
            let m = Message::Propose {
                election: name(i),
                ballot: 2,
                epoch: 2,
                incarnation: 1,
            };
            node.handle_message(now, &n3, m);
        }
        node.handle_timeout(now);
        answered += drain(&mut node, &mut file);
        most = most.max(node.tracked());
        biggest = biggest.max(fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
        assert!(node.tracked() <= MAX, "{} elections held", node.tracked());
        now += ms(100);
    }
    assert!(node.stats().ignored_elections > 0);
    assert_eq!(answered as u64 + node.stats().ignored_elections, 100_000);
    // Each line is at most ~30 bytes: bounded by MAX lines (plus compaction slack).
    assert!(
        biggest < 40 * 2 * MAX as u64,
        "state file grew to {biggest} bytes"
    );
    // Idle: everything goes, the file too (only the floor remains).
    for _ in 0..40 {
        now += ms(200);
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    assert_eq!(node.tracked(), 0, "{most} at most, {} left", node.tracked());
    assert_eq!(node.floor(), 2);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "elector-paxos-state v1\n#floor 2\n");
}

#[test]
fn a_forgotten_election_promises_nothing_at_or_below_its_floor_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let mut node = Node::new(config(10, ms(1000)), t0, Vec::new()).unwrap();
    let e = election(0);
    let now = t0 + ms(200);
    node.handle_message(
        now,
        &id(2),
        Message::Propose {
            election: e.clone(),
            ballot: 130,
            epoch: 130,
            incarnation: 1,
        },
    );
    drain(&mut node, &mut file);
    let mut now = now;
    for _ in 0..20 {
        now += ms(200);
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    assert_eq!(node.tracked(), 0);
    drop(node);
    let file = StateFile::<HardState>::open(dir.path()).unwrap();
    assert_eq!(file.floor(), 130);
    let mut node = Node::restore(config(10, ms(1000)), now, Vec::new(), file.floor()).unwrap();
    let later = now + ms(200);
    for (ballot, promised) in [(129, false), (130, false), (193, true)] {
        node.handle_message(
            later,
            &id(1),
            Message::Prepare {
                election: e.clone(),
                ballot,
                incarnation: 1,
            },
        );
        let t = node.poll_transmit().unwrap();
        assert!(
            matches!(t.messages[..], [Message::PrepareAck { promised: p, .. }] if p == promised),
            "ballot {ballot}: {:?}",
            t.messages
        );
    }
}

/// Random schedules, as in `tests/sim.rs`, with elections forgotten after 400 ms.
#[test]
fn schedules_with_a_short_forget_after_keep_every_invariant() {
    let total: u64 = std::env::var("PAXOS_BOUNDED_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut forgets = 0;
    for seed in 0..total {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf0_4907);
        let n = if rng.random_bool(0.7) { 3 } else { 5 };
        let mut sim = Sim::new_configured(seed, n, &[], |c| {
            c.forget_after = ms(400);
            c.max_elections = 2;
        });
        sim.recampaign = true;
        sim.drop_rate = [0.0, 0.05, 0.2][rng.random_range(0..3)];
        sim.harden(Harshness::draw(&mut rng));
        sim.chaos_time = ms(2000);
        let elections: Vec<_> = (0..3).map(election).collect();
        let campaigners: Vec<usize> = (0..n).collect();
        if let Err(why) = sim.chaos(&mut rng, &elections, &campaigners) {
            panic!("seed {seed}: {why}\n{}", sim.log.join("\n"));
        }
        if let Err(why) = sim.run_for(ms(3000)) {
            panic!("seed {seed}: {why}");
        }
        forgets += sim.forgets;
    }
    assert!(forgets > 0, "no schedule forgot an election");
}
