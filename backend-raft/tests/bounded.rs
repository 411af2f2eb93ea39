//! Issue 14, item 2: a peer cannot grow this node's state without bound, and forgetting
//! never costs safety (decision record 105).
//!
//! - 100,000 distinct election names from an authenticated peer (vote requests, pre-votes
//!   and heartbeat sets claiming them) keep the core at `max_elections` at most and the
//!   state file bounded; once idle they are forgotten, file included.
//! - §5.2 "each server will vote for at most one candidate in a given term" survives
//!   forgetting: a forgotten vote's term is never granted again, also after a restart from
//!   the state file (the floor is persisted).
//! - Seeded random schedules with a short `forget_after` (elections forgotten and created
//!   again under partitions, crashes and restarts) keep every simulator invariant, and
//!   what a node persists for a name it forgot never goes back (terms, votes).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use common::{Sim, default_config, election, id};
use election_core::ElectionName;
use election_peer::StateFile;
use election_peer::sim::Harshness;
use election_raft::core::{HardState, Message, Node, NodeConfig, SetUpdate};
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
/// transmits; returns the grants of `VoteResp` sent.
fn drain(node: &mut Node, file: &mut StateFile<HardState>) -> Vec<(ElectionName, u64, bool)> {
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
    let mut votes = Vec::new();
    while let Some(t) = node.poll_transmit() {
        for m in t.messages {
            if let Message::VoteResp {
                election,
                term,
                granted,
            } = m
            {
                votes.push((election, term, granted));
            }
        }
    }
    while node.poll_event().is_some() {}
    votes
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
    let path = dir.path().join("raft-state");
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let mut node = Node::new(config(MAX, ms(1000)), t0, Vec::new()).unwrap();
    let (n2, n3) = (id(1), id(2));
    let mut now = t0 + ms(500);
    let (mut most, mut biggest) = (0, 0);
    let mut sent = 0;
    for batch in 0..100u64 {
        // 1,000 new names per 100 ms: a heartbeat set claiming 400 (it replaces the last
        // one), 400 vote requests and 200 pre-votes.
        let base = batch as usize * 1000;
        let set = (base..base + 400).map(|i| (name(i), 1)).collect();
        node.handle_message(
            now,
            &n2,
            Message::Heartbeat {
                round: batch + 1,
                incarnation: 1,
                version: batch + 1,
                update: Some(SetUpdate::Full(set)),
            },
        );
        for i in base + 400..base + 800 {
            let m = Message::Vote {
                election: name(i),
                term: 1,
                force: false,
            };
            node.handle_message(now, &n3, m);
        }
        for i in base + 800..base + 1000 {
            let m = Message::PreVote {
                election: name(i),
                term: 1,
                force: false,
            };
            node.handle_message(now, &n3, m);
        }
        sent += 1000;
        node.handle_timeout(now);
        drain(&mut node, &mut file);
        most = most.max(node.tracked());
        biggest = biggest.max(fs::metadata(&path).unwrap().len());
        assert!(node.tracked() <= MAX, "{} elections held", node.tracked());
        now += ms(100);
    }
    assert_eq!(sent, 100_000);
    let ignored = node.stats().ignored_elections;
    // Each line is at most "junk-99999 <term> n3\n" (25 bytes); appends are compacted once
    // they outnumber the elections by 4,096.
    let bound = (2 * MAX as u64 + 4096 + 2) * 25;
    assert!(biggest <= bound, "state file reached {biggest} bytes");
    // Idle now: the votes' promises ended, n2 falls silent. Its last claims keep their
    // elections for forget_after after it was last heard, then they are idle too.
    let end = now + ms(2 * 1000 + 2 * 125 + 200);
    while now < end {
        now += ms(50);
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    let last = node.tracked();
    let left = fs::read_to_string(&path).unwrap();
    println!(
        "raft core: {sent} names sent, at most {most} held (max {MAX}), {ignored} mentions \
         ignored, {} forgotten, state file at most {biggest} bytes, {last} held and {} bytes \
         once idle; floor {}",
        node.stats().forgotten,
        left.len(),
        node.floor()
    );
    assert!(ignored > 0, "the limit was never reached");
    assert_eq!(last, 0, "idle elections were not forgotten");
    assert_eq!(
        left,
        "elector-raft-state v1\n#floor 1\n",
        "floor: {}",
        node.floor()
    );
    // Forgotten from the file too: a restart holds nothing.
    let file = StateFile::<HardState>::open(dir.path()).unwrap();
    assert!(file.state().is_empty());
    assert_eq!(file.floor(), 1);
}

/// The default limit fits 10,000+ elections: 15,000 campaigns are all held.
#[test]
fn the_default_limit_holds_fifteen_thousand_local_campaigns_and_refuses_past_it() {
    let t0 = Instant::now();
    let mut c = config(election_raft::DEFAULT_MAX_ELECTIONS, ms(600_000));
    c.members = members(1);
    let mut node = Node::new(c, t0, Vec::new()).unwrap();
    for i in 0..15_000 {
        assert!(node.campaign(t0, &name(i)));
    }
    assert_eq!(node.tracked(), 15_000);
    for i in 15_000..election_raft::DEFAULT_MAX_ELECTIONS {
        assert!(node.campaign(t0, &name(i)));
    }
    let past = name(1_000_000);
    assert_eq!(
        node.refuses_new(&past),
        Some(election_raft::DEFAULT_MAX_ELECTIONS)
    );
    assert!(!node.campaign(t0, &past));
    // Held ones are still accepted.
    assert_eq!(node.refuses_new(&name(3)), None);
}

#[test]
fn a_forgotten_vote_is_never_granted_again_in_its_term_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let cfg = config(100, ms(1000));
    let mut node = Node::new(cfg.clone(), t0, Vec::new()).unwrap();
    let e = election(0);
    let vote = |term| Message::Vote {
        election: e.clone(),
        term,
        force: false,
    };
    let mut now = t0 + ms(200);
    node.handle_message(now, &id(1), vote(5));
    assert_eq!(drain(&mut node, &mut file), vec![(e.clone(), 5, true)]);
    // Idle for longer than forget_after (plus two sweep intervals): forgotten.
    while node.tracked() > 0 {
        now += ms(100);
        assert!(now < t0 + ms(5000), "never forgotten");
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    assert_eq!(node.floor(), 5);
    assert!(!file.state().contains_key(&e));
    // n3 asks for term 5: this node voted for n2 in it, and must not vote again.
    node.handle_message(now, &id(2), vote(5));
    assert_eq!(drain(&mut node, &mut file), vec![(e.clone(), 6, false)]);
    // The same after a restart from the file alone (the election was forgotten again).
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
    again.handle_message(now, &id(2), vote(5));
    let answers = drain(&mut again, &mut file);
    assert!(
        answers.iter().all(|&(_, _, granted)| !granted),
        "{answers:?}"
    );
    // A term above the floor is a fresh term: granted.
    again.handle_message(now, &id(2), vote(7));
    assert_eq!(drain(&mut again, &mut file), vec![(e.clone(), 7, true)]);
}

/// Random schedules where elections go idle and are forgotten (forget_after 300 ms):
/// nodes campaign, withdraw and resign in random elections under partitions, drops,
/// crashes and restarts. Every simulator invariant holds after every step, and what a
/// node persists for a name it forgot is checked against what it had persisted before.
#[test]
fn forgetting_and_recreating_elections_keeps_every_invariant() {
    let schedules: u64 = std::env::var("RAFT_FORGET_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut forgets = 0;
    for seed in 0..schedules {
        match forget_schedule(seed) {
            Ok(f) => forgets += f,
            Err(why) => panic!(
                "seed {seed}: {why}\nreplay: RAFT_FORGET_SCHEDULES={} cargo test -p \
                 election-raft --test bounded forgetting",
                seed + 1
            ),
        }
    }
    println!("raft: {schedules} schedules, {forgets} elections forgotten");
    assert!(forgets > schedules, "too few elections were forgotten");
}

fn forget_schedule(seed: u64) -> Result<u64, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf0f0_2026);
    let n = if rng.random_bool(0.7) { 3 } else { 5 };
    let mut sim = Sim::new_configured(seed, n, &[], |c| c.forget_after = ms(300));
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

/// §6's leader lease when this node ignored a claim: full, it acknowledged n2's heartbeat
/// set without holding n2's election `e`, so it may have promised n2's lease there. Once it
/// has room again, a vote request for `e` (from n3) is not granted within that promise, the
/// next acknowledgement asks n2 for its whole set, and with it the node follows n2 in `e`.
#[test]
fn an_ignored_claim_is_never_voted_against_within_the_promise_and_is_learnt_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = StateFile::<HardState>::open(dir.path()).unwrap();
    let t0 = Instant::now();
    let mut node = Node::new(config(2, ms(1000)), t0, Vec::new()).unwrap();
    let e = election(0);
    let mut now = t0 + ms(200);
    // Full with two other elections (votes given to n3).
    for i in 1..=2 {
        let m = Message::Vote {
            election: election(i),
            term: 1,
            force: false,
        };
        node.handle_message(now, &id(2), m);
    }
    drain(&mut node, &mut file);
    assert_eq!(node.tracked(), 2);
    let heartbeat = |round, update| Message::Heartbeat {
        round,
        incarnation: 1,
        version: 1,
        update,
    };
    node.handle_message(
        now,
        &id(1),
        heartbeat(1, Some(SetUpdate::Full(vec![(e.clone(), 3)]))),
    );
    assert_eq!(node.stats().ignored_elections, 1);
    drain(&mut node, &mut file);
    // n2 keeps heartbeating (nothing changed in its set) until the two are forgotten.
    let mut round = 1;
    while node.tracked() > 0 {
        now += ms(50);
        round += 1;
        assert!(now < t0 + ms(5000), "never forgotten");
        node.handle_message(now, &id(1), heartbeat(round, None));
        node.handle_timeout(now);
        drain(&mut node, &mut file);
    }
    // Room again, before n2's next heartbeat: n3 asks for a vote in `e`.
    let m = Message::Vote {
        election: e.clone(),
        term: 9,
        force: false,
    };
    node.handle_message(now, &id(2), m);
    let answers = drain(&mut node, &mut file);
    assert!(
        answers.iter().all(|&(_, _, granted)| !granted),
        "voted inside a promised lease: {answers:?}"
    );
    // n2's next heartbeat is answered "send the whole set".
    now += ms(10);
    node.handle_message(now, &id(1), heartbeat(round + 1, None));
    let mut need_full = None;
    while let Some(t) = node.poll_transmit() {
        for m in t.messages {
            if let Message::HeartbeatAck { need_full: f, .. } = m {
                need_full = Some(f);
            }
        }
    }
    assert_eq!(need_full, Some(true));
    node.handle_message(
        now,
        &id(1),
        heartbeat(round + 2, Some(SetUpdate::Full(vec![(e.clone(), 9)]))),
    );
    drain(&mut node, &mut file);
    assert_eq!(node.leader(&e), Some((id(1), 9)));
}
