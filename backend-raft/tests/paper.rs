//! Paper-style tests: each quotes the rule of the Raft paper (§5) or Ongaro's thesis (§3.10,
//! §6, §9.6) that it checks, on one core fed by hand or on the simulated network.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Sim, default_config, election, id};
use election_core::{LossReason, NodeId};
use election_raft::core::{HardState, Message, Node, Transmit};

fn members(n: usize) -> BTreeSet<NodeId> {
    (0..n).map(id).collect()
}

/// Node n1 of three, started at `t0`, from `state`.
fn node(t0: Instant, state: Vec<(election_core::ElectionName, HardState)>) -> Node {
    Node::new(default_config(&id(0), &members(3), 7), t0, state).unwrap()
}

/// Everything the node wants to send, persisting first as the call order requires.
fn drain(n: &mut Node) -> (Vec<(election_core::ElectionName, HardState)>, Vec<Transmit>) {
    let mut persisted = Vec::new();
    while let Some(p) = n.poll_persist() {
        persisted.extend(p);
    }
    let mut out = Vec::new();
    while let Some(t) = n.poll_transmit() {
        out.push(t);
    }
    (persisted, out)
}

fn vote(term: u64) -> Message {
    Message::Vote {
        election: election(0),
        term,
        force: false,
    }
}

fn granted(out: &[Transmit]) -> Option<bool> {
    out.iter().flat_map(|t| &t.messages).find_map(|m| match m {
        Message::VoteResp { granted, .. } | Message::PreVoteResp { granted, .. } => Some(*granted),
        _ => None,
    })
}

/// A moment when the start-up quiet time (one minimum election timeout) is over.
fn later(t0: Instant) -> Instant {
    t0 + Duration::from_secs(1)
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on a
/// first-come-first-served basis."
#[test]
fn a_server_votes_for_at_most_one_candidate_per_term() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    n.handle_message(later(t0), &id(1), vote(1));
    let (persisted, out) = drain(&mut n);
    assert_eq!(granted(&out), Some(true));
    assert_eq!(persisted[0].1.vote, Some(id(1)), "the vote is persisted");
    // n1 now refuses other candidates for a while (decision 033); after that, still no.
    n.handle_message(later(t0) + Duration::from_secs(1), &id(2), vote(1));
    assert_eq!(granted(&drain(&mut n).1), Some(false));
}

/// §5.1: "If a server receives a request with a higher term, it updates its current term
/// to the new value", and (Figure 2) persists it before responding.
#[test]
fn a_higher_term_is_adopted_and_persisted_before_the_answer() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    n.handle_message(later(t0), &id(1), vote(5));
    let (persisted, out) = drain(&mut n);
    assert_eq!(n.term(&election(0)), 5);
    assert_eq!(persisted[0].1.term, 5);
    assert!(!out.is_empty());
}

/// Figure 2: "currentTerm, votedFor ... updated on stable storage before responding to
/// RPCs": a restarted server does not vote twice in the same term.
#[test]
fn a_restarted_server_does_not_vote_twice_in_a_term() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    n.handle_message(later(t0), &id(1), vote(1));
    let (persisted, _) = drain(&mut n);
    drop(n);
    let t1 = later(t0) + Duration::from_secs(1);
    let mut n = node(t1, persisted);
    n.handle_message(later(t1), &id(2), vote(1));
    assert_eq!(granted(&drain(&mut n).1), Some(false));
    n.handle_message(later(t1), &id(2), vote(2));
    assert_eq!(
        granted(&drain(&mut n).1),
        Some(true),
        "a higher term is a new vote"
    );
}

/// §9.6 (pre-vote): "a candidate would first ask other servers whether its log was up to
/// date enough to get their vote"; the question changes no term.
#[test]
fn a_pre_vote_changes_no_state() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    n.handle_message(
        later(t0),
        &id(1),
        Message::PreVote {
            election: election(0),
            term: 3,
            force: false,
        },
    );
    let (persisted, out) = drain(&mut n);
    assert!(persisted.is_empty());
    assert_eq!(n.term(&election(0)), 0);
    assert_eq!(granted(&out), Some(true));
}

/// §6 (disruptive servers): "if a server receives a RequestVote request within the
/// minimum election timeout of hearing from a current leader, it does not update its term
/// or grant its vote." Also for a server that has just started.
#[test]
fn a_follower_that_heard_a_leader_recently_ignores_votes() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    // Just started: quiet.
    n.handle_message(t0 + Duration::from_millis(10), &id(1), vote(1));
    assert_eq!(
        drain(&mut n).1.len(),
        0,
        "ignored during the start-up quiet time"
    );
    let t = later(t0);
    n.handle_message(
        t,
        &id(2),
        Message::Heartbeat {
            round: 1,
            incarnation: 9,
            version: 1,
            update: Some(election_raft::core::SetUpdate::Full(vec![(election(0), 1)])),
        },
    );
    let _ = drain(&mut n);
    assert_eq!(n.leader(&election(0)), Some((id(2), 1)));
    n.handle_message(t + Duration::from_millis(100), &id(1), vote(2));
    assert!(
        granted(&drain(&mut n).1).is_none(),
        "no answer within the lease"
    );
    assert_eq!(n.term(&election(0)), 1, "and no term change");
    n.handle_message(t + Duration::from_millis(400), &id(1), vote(2));
    assert_eq!(
        granted(&drain(&mut n).1),
        Some(true),
        "after the lease the vote is granted"
    );
}

/// Static membership: a message from a node outside the configuration is refused.
#[test]
fn messages_from_unknown_nodes_are_refused() {
    let t0 = Instant::now();
    let mut n = node(t0, vec![]);
    let stranger = NodeId::new("mallory").unwrap();
    assert!(!n.handle_message(later(t0), &stranger, vote(1)));
    assert_eq!(n.term(&election(0)), 0);
    assert_eq!(n.stats().unknown_sender, 1);
}

/// §5.2: "A candidate wins an election if it receives votes from a majority of the
/// servers in the full cluster for the same term"; then it "sends heartbeat messages to
/// all of the other servers to establish its authority".
#[test]
fn a_lone_campaign_wins_and_every_member_learns_the_leader() {
    let mut sim = Sim::new(1, 3, &[]);
    let e = election(0);
    sim.campaign(0, &e).unwrap();
    assert!(
        sim.run_until_cond(Duration::from_secs(2), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    assert_eq!(sim.lease_holder(&e), Some(0));
    assert_eq!(sim.nodes[1].as_ref().unwrap().leader(&e), Some((id(0), 1)));
}

/// §3.10: "the prior leader sends a TimeoutNow request to the target server ... the target
/// server starts a new election"; the transfer takes one round trip, not a timeout, and
/// the resigning leader does not win the next election.
#[test]
fn resign_transfers_to_a_campaigning_follower_in_a_round_trip() {
    let mut sim = Sim::new(2, 3, &[]);
    let e = election(0);
    for i in 0..3 {
        sim.campaign(i, &e).unwrap();
    }
    assert!(
        sim.run_until_cond(Duration::from_secs(3), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    sim.run_for(Duration::from_millis(200)).unwrap();
    let old = sim.lease_holder(&e).unwrap();
    let started = sim.now;
    assert!(sim.resign(old, &e).unwrap());
    sim.campaign(old, &e).unwrap();
    assert!(
        sim.run_until_cond(Duration::from_secs(2), |s| s.lease_holder(&e).is_some())
            .unwrap()
    );
    let new = sim.lease_holder(&e).unwrap();
    assert_ne!(new, old, "the resigning node won its election back");
    let took = sim.now - started;
    assert!(
        took < Duration::from_millis(10),
        "transfer took {took:?} of virtual time"
    );
}

/// Check-quorum (§6.2): "a leader steps down if an election timeout elapses without a
/// successful round of heartbeats to a majority of its cluster" — here at its lease
/// deadline, before the majority can elect a new leader.
#[test]
fn an_isolated_leader_steps_down_before_the_majority_elects() {
    let mut sim = Sim::new(3, 3, &[]);
    let e = election(0);
    for i in 0..3 {
        sim.campaign(i, &e).unwrap();
    }
    assert!(
        sim.run_until_cond(Duration::from_secs(3), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    let old = sim.lease_holder(&e).unwrap();
    sim.isolate(old);
    sim.recampaign = true;
    assert!(
        sim.run_until_cond(Duration::from_secs(3), |s| s
            .lease_holder(&e)
            .is_some_and(|h| h != old))
            .unwrap()
    );
    let leases = &sim.leases[&e];
    let first = leases.iter().find(|l| l.node == old).unwrap();
    let second = leases.last().unwrap();
    assert_eq!(first.reason, Some(LossReason::QuorumLost));
    assert!(
        first.end < second.start,
        "old lease {first:?} overlaps {second:?}"
    );
}

/// §9.6: with pre-vote, "a server rejoining the cluster after a partition cannot disrupt
/// the cluster" — the leader keeps its term.
#[test]
fn a_rejoining_partitioned_follower_does_not_disrupt_the_leader() {
    let mut sim = Sim::new(4, 3, &[]);
    let e = election(0);
    for i in 0..3 {
        sim.campaign(i, &e).unwrap();
    }
    assert!(
        sim.run_until_cond(Duration::from_secs(3), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    let leader = sim.lease_holder(&e).unwrap();
    let term = sim.nodes[leader].as_ref().unwrap().term(&e);
    let follower = (leader + 1) % 3;
    sim.isolate(follower);
    sim.run_for(Duration::from_secs(3)).unwrap();
    sim.heal();
    sim.run_for(Duration::from_secs(2)).unwrap();
    assert_eq!(sim.lease_holder(&e), Some(leader));
    assert_eq!(sim.nodes[leader].as_ref().unwrap().term(&e), term);
    assert_eq!(sim.nodes[follower].as_ref().unwrap().term(&e), term);
}

/// Members that vote but never campaign: `campaign` is refused, and nothing they do
/// makes them leader.
#[test]
fn a_voter_only_member_never_leads() {
    let mut sim = Sim::new(5, 3, &[2]);
    let e = election(0);
    let now = sim.instant();
    assert!(!sim.nodes[2].as_mut().unwrap().campaign(now, &e));
    sim.campaign(0, &e).unwrap();
    assert!(
        sim.run_until_cond(Duration::from_secs(3), |s| s
            .settled(std::slice::from_ref(&e)))
            .unwrap()
    );
    assert_eq!(sim.lease_holder(&e), Some(0));
    sim.isolate(0);
    sim.recampaign = false;
    sim.run_for(Duration::from_secs(3)).unwrap();
    assert!(
        sim.leases[&e].iter().all(|l| l.node != 2),
        "the voter-only member led"
    );
}
