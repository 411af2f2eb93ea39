//! One test per rule of PaxosLease (Trencseni, Gazsó, Reinhardt, arXiv:1209.4187), driving
//! the sans-IO core by hand: every message is delivered (or dropped) explicitly and time
//! moves only when a test says so. Rules quoted from the paper are in quotation marks; the
//! others are the paper's rules in our words, or this backend's additions (decision
//! records 115 and 116).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{default_config, election, id};
use election_core::{ElectionName, LossReason};
use election_paxos::core::{HardState, Message, Node, Open};
use election_peer::CoreEvent;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A hand-driven cluster: messages wait in `wire` until delivered.
struct Net {
    t0: Instant,
    now: Instant,
    nodes: Vec<Option<Node>>,
    disk: Vec<Vec<(ElectionName, HardState)>>,
    wire: Vec<(usize, usize, Message)>,
    events: Vec<(usize, CoreEvent)>,
    restarts: u64,
}

impl Net {
    /// `n` nodes that started one lease time ago (past their restart quiet time).
    fn new(n: usize) -> Net {
        let t0 = Instant::now();
        let members: BTreeSet<_> = (0..n).map(id).collect();
        let nodes = (0..n)
            .map(|i| Some(Node::new(default_config(&id(i), &members, i as u64), t0, []).unwrap()))
            .collect();
        let lease = default_config(&id(0), &members, 0).lease;
        Net {
            t0,
            now: t0 + lease,
            nodes,
            disk: vec![Vec::new(); n],
            wire: Vec::new(),
            events: Vec::new(),
            restarts: 0,
        }
    }

    fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node is up")
    }

    /// Drains node `i`'s outputs: persisted state to its disk, messages to the wire.
    fn flush(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        while let Some(p) = node.poll_persist() {
            for (e, hs) in p {
                self.disk[i].retain(|(x, _)| x != &e);
                self.disk[i].push((e, hs));
            }
        }
        while let Some(ev) = node.poll_event() {
            self.events.push((i, ev));
        }
        while let Some(t) = node.poll_transmit() {
            let to = t.to.as_str()[1..].parse::<usize>().unwrap() - 1;
            for m in t.messages {
                self.wire.push((i, to, m));
            }
        }
    }

    fn campaign(&mut self, i: usize, e: &ElectionName) {
        let now = self.now;
        self.node(i).campaign(now, e);
        self.flush(i);
    }

    fn tick(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes[i].as_mut() {
            n.handle_timeout(now);
        }
        self.flush(i);
    }

    /// Advances time to `node i`'s next timer (at most `max`) and fires it.
    fn fire(&mut self, i: usize) {
        if let Some(t) = self.nodes[i].as_mut().and_then(|n| n.poll_timeout()) {
            self.now = self.now.max(t);
        }
        self.tick(i);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for i in 0..self.nodes.len() {
            self.tick(i);
        }
    }

    /// Delivers every message on the wire (and those they cause) that `keep` lets through;
    /// the others are lost.
    fn pump_if(&mut self, keep: impl Fn(usize, usize, &Message) -> bool) {
        while !self.wire.is_empty() {
            let batch = std::mem::take(&mut self.wire);
            for (from, to, m) in batch {
                if !keep(from, to, &m) {
                    continue;
                }
                let now = self.now;
                if let Some(n) = self.nodes[to].as_mut() {
                    n.handle_message(now, &id(from), m);
                }
                self.flush(to);
            }
        }
    }

    fn pump(&mut self) {
        self.pump_if(|_, _, _| true);
    }

    /// Takes the messages on the wire out, undelivered.
    fn take_wire(&mut self) -> Vec<(usize, usize, Message)> {
        std::mem::take(&mut self.wire)
    }

    /// Delivers `msgs` only; what they cause stays on the wire.
    fn deliver_once(&mut self, msgs: Vec<(usize, usize, Message)>) {
        for (from, to, m) in msgs {
            let now = self.now;
            if let Some(n) = self.nodes[to].as_mut() {
                n.handle_message(now, &id(from), m);
            }
            self.flush(to);
        }
    }

    fn deliver(&mut self, msgs: Vec<(usize, usize, Message)>) {
        self.wire.extend(msgs);
        self.pump();
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.wire.retain(|(_, to, _)| *to != i);
    }

    fn restart(&mut self, i: usize) {
        self.restarts += 1;
        let members: BTreeSet<_> = (0..self.nodes.len()).map(id).collect();
        let mut cfg = default_config(&id(i), &members, 100 + self.restarts);
        cfg.incarnation = 1 + self.restarts;
        let node = Node::new(cfg, self.now, self.disk[i].clone()).unwrap();
        self.nodes[i] = Some(node);
    }

    fn elected(&self) -> Vec<(usize, u64, Instant)> {
        self.events
            .iter()
            .filter_map(|(i, ev)| match ev {
                CoreEvent::Elected {
                    epoch, lease_until, ..
                } => Some((*i, *epoch, *lease_until)),
                _ => None,
            })
            .collect()
    }

    fn lost(&self) -> Vec<(usize, u64, LossReason)> {
        self.events
            .iter()
            .filter_map(|(i, ev)| match ev {
                CoreEvent::Lost { epoch, reason, .. } => Some((*i, *epoch, *reason)),
                _ => None,
            })
            .collect()
    }

    /// Runs node `i`'s campaign to a grant on a perfect network.
    fn elect(&mut self, i: usize, e: &ElectionName) -> u64 {
        self.campaign(i, e);
        for _ in 0..20 {
            self.fire(i);
            self.pump();
            if let Some(&(_, epoch, _)) = self.elected().iter().rev().find(|(n, ..)| *n == i) {
                return epoch;
            }
        }
        panic!("n{} was not elected", i + 1);
    }
}

#[test]
fn a_lease_is_granted_once_a_majority_accepted_and_is_known_to_every_acceptor() {
    // "A naive, majority vote type algorithm can be given which correctly solves the
    // distributed lease problem; correct meaning that the lease is held by no more than one
    // node at any time." PaxosLease keeps the majority and adds ballots.
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(0, &e);
    for i in 0..3 {
        assert_eq!(net.node(i).leader(&e), Some((id(0), epoch)), "n{}", i + 1);
    }
    assert!(net.node(0).lease_until(&e).is_some());
}

#[test]
fn an_acceptor_refuses_a_prepare_below_its_promise() {
    // Paxos phase 1, kept by PaxosLease: an acceptor that promised ballot n refuses any
    // prepare request numbered below n, and says what it promised.
    let mut net = Net::new(3);
    let e = election(0);
    let now = net.now;
    for (ballot, promised) in [(130, true), (66, false), (194, true)] {
        net.node(2).handle_message(
            now,
            &id(1),
            Message::Prepare {
                election: e.clone(),
                ballot,
                incarnation: 1,
            },
        );
        net.flush(2);
        let (_, _, ack) = net.take_wire().pop().unwrap();
        let Message::PrepareAck {
            promised: p, seen, ..
        } = ack
        else {
            panic!("{ack:?}")
        };
        assert_eq!(p, promised, "ballot {ballot}");
        assert_eq!(seen, if ballot == 66 { 130 } else { ballot });
    }
}

#[test]
fn a_proposer_proposes_only_when_a_majority_holds_nothing_open() {
    // PaxosLease's change to Paxos phase 2: a proposer does not adopt a value it learns in
    // phase 1; it proposes itself only if the majority's answers hold no open (unexpired)
    // accepted proposal, else it backs off until they run out.
    let mut net = Net::new(3);
    let e = election(0);
    net.elect(0, &e);
    net.campaign(2, &e);
    net.fire(2);
    let wire = net.take_wire();
    assert!(
        wire.iter()
            .all(|(_, _, m)| matches!(m, Message::Prepare { .. }))
    );
    net.deliver(wire);
    // Every answer named n1's open lease; n3 sent no propose request.
    assert!(
        net.events
            .iter()
            .all(|(i, ev)| *i != 2 || !matches!(ev, CoreEvent::Elected { .. }))
    );
    assert!(net.take_wire().is_empty());
}

#[test]
fn an_acceptor_with_another_proposers_lease_open_reports_it_without_promising() {
    // This backend's addition (decision record 116): a probing candidate does not raise the
    // promise of an acceptor that holds a live lease, so it cannot disturb that lease's
    // renewals.
    let mut net = Net::new(3);
    let e = election(0);
    net.elect(0, &e);
    let now = net.now;
    net.node(1).handle_message(
        now,
        &id(2),
        Message::Prepare {
            election: e.clone(),
            ballot: 100_002,
            incarnation: 1,
        },
    );
    net.flush(1);
    let (_, _, ack) = net.take_wire().pop().unwrap();
    assert!(
        matches!(
            ack,
            Message::PrepareAck {
                promised: false,
                open: Open::Other(left),
                ..
            } if left > 0
        ),
        "{ack:?}"
    );
    assert!(net.node(1).ballot(&e) < 100_002);
}

#[test]
fn the_proposers_deadline_counts_from_the_send_time_of_its_propose_requests() {
    // The proposer starts its lease timer before it sends the propose requests (the paper's
    // rule, in our words): the lease runs from the send time, minus the drift bound and the
    // kill grace, however late the acceptances arrive.
    let mut net = Net::new(3);
    let e = election(0);
    net.campaign(0, &e);
    net.fire(0);
    let prepares = net.take_wire();
    net.deliver_once(prepares);
    let promises = net.take_wire();
    net.deliver_once(promises);
    // Now the propose requests are on the wire; they were sent at `sent`.
    let sent = net.now;
    let proposes = net.take_wire();
    assert!(
        proposes
            .iter()
            .any(|(_, _, m)| matches!(m, Message::Propose { .. }))
    );
    net.now += ms(30);
    net.deliver(proposes);
    let (_, _, until) = net.elected()[0];
    let c = net.node(0).config().clone();
    assert_eq!(until, sent + c.lease - c.clock_drift - c.kill_grace);
}

#[test]
fn an_acceptor_keeps_an_accepted_proposal_open_for_one_lease_time_then_discards_it() {
    // The acceptor starts a timer of the lease time when it accepts, and forgets the
    // accepted proposal when it fires.
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(0, &e);
    net.crash(0);
    let lease = net.node(1).config().lease;
    net.advance(lease - ms(1));
    assert_eq!(net.node(1).leader(&e), Some((id(0), epoch)));
    net.advance(ms(1));
    assert_eq!(net.node(1).leader(&e), None);
}

#[test]
fn a_restarted_acceptor_takes_no_part_for_one_maximum_lease_time() {
    // "does not require disk writes": an acceptor forgets everything when it restarts, so
    // it answers nothing for one maximum lease time, by which any proposal it accepted
    // before has run out.
    let mut net = Net::new(3);
    let e = election(0);
    net.crash(2);
    net.restart(2);
    let now = net.now;
    let prepare = Message::Prepare {
        election: e.clone(),
        ballot: 64,
        incarnation: 1,
    };
    net.node(2).handle_message(now, &id(0), prepare.clone());
    net.flush(2);
    assert!(net.take_wire().is_empty(), "answered while restarting");
    let lease = net.node(2).config().lease;
    net.now += lease;
    let now = net.now;
    net.node(2).handle_message(now, &id(0), prepare);
    net.flush(2);
    assert_eq!(net.take_wire().len(), 1);
    assert_eq!(net.node(2).stats().ignored_restarting, 1);
}

#[test]
fn the_lease_owner_extends_its_leases_in_one_phase_batch_at_the_ballot_a_majority_accepted() {
    // This backend's renewal (decision records 131 and 142): the owner proposes the
    // ballot a majority last accepted again, for every lease it holds, in one message per
    // peer that names them by their digest; an acceptor that holds exactly those
    // proposals of the owner keeps them all open, and answers once.
    let mut net = Net::new(3);
    let e = election(0);
    let f = election(1);
    let epoch = net.elect(0, &e);
    let epoch_f = net.elect(0, &f);
    let first = net.node(0).lease_until(&e).unwrap();
    net.events.clear();
    let mut ticks = 0;
    while ticks < 6 {
        net.fire(0);
        let wire = net.take_wire();
        if wire.is_empty() {
            // A timer of an earlier deadline, which renewals moved later.
            continue;
        }
        ticks += 1;
        assert!(
            wire.iter().all(
                |(_, _, m)| matches!(m, Message::ExtendAll { leases, .. } if leases.count == 2)
            ),
            "renewals are extensions of both leases, by digest: {wire:?}"
        );
        // One request per peer names both leases.
        assert_eq!(wire.len(), 2);
        net.deliver(wire);
    }
    let later = net.node(0).lease_until(&e).unwrap();
    assert!(later > first);
    assert_eq!(net.node(0).lease_until(&f), Some(later));
    // Same leadership, same epoch, same ballot: nothing to persist, ballots do not climb.
    assert_eq!(net.node(1).leader(&e), Some((id(0), epoch)));
    assert_eq!(net.node(2).leader(&f), Some((id(0), epoch_f)));
    assert_eq!(net.node(0).ballot(&f), epoch_f);
    assert!(
        net.events
            .iter()
            .any(|(i, ev)| *i == 0 && matches!(ev, CoreEvent::AllLeasesExtended { .. }))
    );
}

#[test]
fn an_acceptor_missing_the_leases_answers_the_digest_with_a_mismatch_and_gets_them_listed() {
    // Decision record 142: a digest extends all of the owner's proposals or none. An
    // acceptor that does not hold them (here: it restarted and forgot everything) extends
    // none and says so; the owner then lists the leases to it in the same tick, each
    // under the propose rule, after which the digest matches there. The owner keeps both
    // leases throughout, on the other acceptor alone meanwhile.
    let mut net = Net::new(3);
    let e = election(0);
    let f = election(1);
    net.elect(0, &e);
    net.elect(0, &f);
    net.crash(2);
    net.restart(2);
    let mut mismatched = false;
    let mut listed = false;
    let mut matched = false;
    for _ in 0..60 {
        net.advance(ms(5));
        // Every message, answers included, one hop at a time.
        loop {
            let wire = net.take_wire();
            if wire.is_empty() {
                break;
            }
            for (from, to, m) in &wire {
                match m {
                    Message::ExtendAllAck { matched: false, .. } if *from == 2 => {
                        mismatched = true;
                    }
                    Message::Extend { entries, .. } if *to == 2 && entries.len() == 2 => {
                        listed |= mismatched;
                    }
                    Message::ExtendAllAck { matched: true, .. } if *from == 2 => {
                        matched |= listed;
                    }
                    _ => {}
                }
            }
            net.deliver_once(wire);
        }
        assert!(net.node(0).lease_until(&e).is_some_and(|t| t > net.now));
        assert!(net.node(0).lease_until(&f).is_some_and(|t| t > net.now));
    }
    assert!(
        mismatched,
        "the restarted n3 did not answer the digest with a mismatch"
    );
    assert!(
        listed,
        "the leases were not listed to n3 after the mismatch"
    );
    assert!(matched, "the digest never matched at n3 after the listing");
    assert_eq!(net.node(2).leader(&e).map(|(l, _)| l), Some(id(0)));
    assert_eq!(net.node(2).leader(&f).map(|(l, _)| l), Some(id(0)));
}

#[test]
fn an_extension_no_majority_accepted_is_retried_as_a_full_round_that_ignores_its_own_open_proposal()
{
    // The owner extends its lease by running PaxosLease again before it expires; in that
    // round it may treat an acceptor holding its own proposal open as holding nothing.
    // This is the fallback of an extension no majority accepted.
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(0, &e);
    let first = net.node(0).lease_until(&e).unwrap();
    net.fire(0);
    let lost = net.take_wire();
    assert!(
        lost.iter()
            .all(|(_, _, m)| matches!(m, Message::Extend { .. } | Message::ExtendAll { .. }))
    );
    // The extension is lost; at its deadline a full round runs.
    net.events.clear();
    for _ in 0..4 {
        net.fire(0);
        net.pump();
    }
    let later = net.node(0).lease_until(&e).unwrap();
    assert!(later > first);
    assert_eq!(net.node(1).leader(&e), Some((id(0), epoch)));
    assert!(
        net.node(0).ballot(&e) > epoch,
        "the full round used a higher ballot"
    );
    assert!(
        net.events
            .iter()
            .any(|(i, ev)| *i == 0 && matches!(ev, CoreEvent::LeaseExtended { .. }))
    );
}

#[test]
fn a_late_extension_does_not_replace_a_lease_granted_meanwhile() {
    // A late extension must not replace a lease granted meanwhile: an acceptor refuses it
    // (it holds another proposer's proposal open, and has promised a higher ballot).
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(0, &e);
    net.fire(0);
    let late: Vec<_> = net.take_wire();
    // n1 crashes with its extension in flight; n3 restarts and forgets everything; once
    // the leases ran out n2 is elected with n3.
    net.crash(0);
    net.crash(2);
    net.restart(2);
    net.advance(ms(200));
    net.elect(1, &e);
    let now = net.now;
    let refused_before = net.node(2).stats().rejected;
    // The extension by digest finds n3 holding none of n1's proposals: it extends
    // nothing. The same extension listed (as n1 sends it after a mismatch) is refused.
    let late: Vec<_> = late.into_iter().filter(|(_, to, _)| *to == 2).collect();
    let listed: Vec<_> = late
        .iter()
        .filter_map(|(from, to, m)| match m {
            Message::ExtendAll {
                incarnation, round, ..
            } => Some((
                *from,
                *to,
                Message::Extend {
                    incarnation: *incarnation,
                    round: *round,
                    first: 0,
                    entries: vec![(e.clone(), epoch, epoch)],
                },
            )),
            _ => None,
        })
        .collect();
    assert_eq!(listed.len(), 1, "{late:?}");
    net.deliver_once(late);
    assert_eq!(net.node(2).leader(&e).map(|(l, _)| l), Some(id(1)));
    net.deliver_once(listed);
    assert_eq!(net.node(2).leader(&e).map(|(l, _)| l), Some(id(1)));
    assert_eq!(net.node(2).stats().rejected, refused_before + 1);
    assert_eq!(net.now, now);
}

#[test]
fn a_leader_cut_off_from_the_majority_loses_at_its_deadline_and_the_minority_never_grants() {
    let mut net = Net::new(3);
    let e = election(0);
    net.elect(0, &e);
    let deadline = net.node(0).lease_until(&e).unwrap();
    // n1 is cut off: nothing it sends arrives, nothing reaches it.
    for _ in 0..20 {
        net.fire(0);
        net.pump_if(|from, to, _| from != 0 && to != 0);
        if net.node(0).lease_until(&e).is_none() {
            break;
        }
    }
    assert!(net.now >= deadline && net.now < deadline + ms(1));
    assert_eq!(
        net.lost(),
        vec![(0, net.elected()[0].1, LossReason::QuorumLost)]
    );
    // Campaigning again alone grants nothing.
    net.campaign(0, &e);
    for _ in 0..20 {
        net.fire(0);
        net.pump_if(|from, to, _| from != 0 && to != 0);
    }
    assert_eq!(net.elected().len(), 1);
}

#[test]
fn a_lapsed_leadership_is_not_released_and_no_one_leads_before_the_acceptors_let_it_run_out() {
    // The handover rule (DESIGN.md): a leadership that ended without a resign is never
    // handed away early; the acceptors' own timers end it, one kill grace and the drift
    // bound after the holder's deadline.
    let mut net = Net::new(3);
    let e = election(0);
    net.elect(0, &e);
    let now = net.now;
    assert!(net.node(0).expire(now, &e));
    net.flush(0);
    assert!(
        net.take_wire()
            .iter()
            .all(|(_, _, m)| !matches!(m, Message::Release { .. }))
    );
    let c = net.node(0).config().clone();
    let acceptors_free = net.now + c.lease;
    net.campaign(1, &e);
    net.campaign(0, &e);
    let mut granted_at = None;
    for _ in 0..60 {
        for i in [0, 1] {
            net.fire(i);
            net.pump();
        }
        if net.elected().len() > 1 {
            granted_at = Some(net.now);
            break;
        }
    }
    let granted_at = granted_at.expect("someone leads again");
    assert!(
        granted_at >= acceptors_free,
        "a new lease {:?} before the acceptors let the old one run out",
        acceptors_free - granted_at
    );
}

#[test]
fn resign_hands_over_to_the_waiting_candidate_before_any_timer_fires() {
    // PaxosLease's release ("the owner may release the lease early; acceptors holding its
    // proposal drop it"), with this backend's handoff (decision record 130): the resigning
    // owner's acceptor promises the waiting candidate's next ballot in the release, so the
    // candidate proposes on receipt. Ordering, not timing: from the resign to the grant
    // no timer fires and virtual time does not move.
    let mut net = Net::new(3);
    let e = election(0);
    let first = net.elect(0, &e);
    net.campaign(1, &e);
    net.fire(1);
    net.pump();
    assert!(net.elected().iter().all(|(who, ..)| *who == 0), "n2 waits");
    let now = net.now;
    assert!(net.node(0).resign(now, &e));
    net.flush(0);
    let release = net.take_wire();
    assert!(
        release
            .iter()
            .any(|(_, to, m)| *to == 1 && matches!(m, Message::Handoff { .. })),
        "{release:?}"
    );
    // The candidate proposes in the step that handles the handoff: its own promise and
    // the handoff's are a majority, so it waits for no other promise (its prepare goes
    // out too, for the acceptors a larger cluster would need).
    net.deliver_once(release);
    let answer = net.take_wire();
    assert!(
        answer
            .iter()
            .any(|(from, _, m)| *from == 1 && matches!(m, Message::Propose { .. })),
        "{answer:?}"
    );
    net.deliver(answer);
    let (who, epoch, _) = *net.elected().last().unwrap();
    assert_eq!(who, 1);
    assert!(epoch > first);
    assert_eq!(net.now, now, "granted without a timer");
    // Every acceptor knows the new leader; epochs still come from ballots.
    for i in 0..3 {
        assert_eq!(net.node(i).leader(&e), Some((id(1), epoch)));
    }
}

#[test]
fn a_release_starts_the_next_members_round_in_the_same_step() {
    // When the owner does not know of a waiting candidate (its prepare never reached the
    // owner), the plain RELEASE still starts the next member's round at once: the round
    // does not wait for a timer.
    let mut net = Net::new(3);
    let e = election(0);
    let first = net.elect(0, &e);
    net.campaign(1, &e);
    net.fire(1);
    net.pump_if(|from, to, _| !(from == 1 && to == 0));
    let now = net.now;
    assert!(net.node(0).resign(now, &e));
    net.flush(0);
    let release = net.take_wire();
    assert!(
        release
            .iter()
            .all(|(_, _, m)| matches!(m, Message::Release { .. })),
        "{release:?}"
    );
    net.deliver(release);
    let (who, epoch, _) = *net.elected().last().unwrap();
    assert_eq!(who, 1);
    assert!(epoch > first);
    assert_eq!(net.now, now, "granted without a timer");
}

#[test]
fn a_handoff_is_only_a_release_to_a_node_that_no_longer_campaigns() {
    // The promise in a handoff is used only by a candidate still campaigning; otherwise
    // the message does what RELEASE does, and the next member's turn follows.
    let mut net = Net::new(3);
    let e = election(0);
    net.elect(0, &e);
    net.campaign(1, &e);
    net.fire(1);
    net.pump();
    let now = net.now;
    net.node(1).withdraw(now, &e);
    net.flush(1);
    net.pump();
    assert!(net.node(0).resign(now, &e));
    net.flush(0);
    net.pump();
    assert_eq!(net.node(1).leader(&e), None);
    assert_eq!(net.node(2).leader(&e), None);
    assert!(net.elected().iter().all(|(who, ..)| *who == 0));
}

#[test]
fn a_propose_request_that_arrives_after_its_release_is_refused() {
    // This backend's addition: a renewal in flight when the owner resigned must not reopen
    // the lease it released.
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(0, &e);
    net.fire(0);
    net.pump_if(|_, _, m| !matches!(m, Message::Propose { .. }));
    let late: Vec<_> = net.take_wire();
    let now = net.now;
    net.node(0).resign(now, &e);
    net.flush(0);
    net.pump();
    net.deliver(late);
    assert_eq!(net.node(1).leader(&e), None);
    assert_ne!(net.node(2).leader(&e), Some((id(0), epoch)));
}

#[test]
fn colliding_proposers_back_off_at_random_and_one_wins() {
    // The paper's motivation for ballots: the naive majority algorithm "will frequently
    // block in the presence of many proposers". Two proposers start together; the higher
    // ballot's promises make the lower's propose fail; random back-off separates them.
    let mut net = Net::new(3);
    let e = election(0);
    net.campaign(0, &e);
    net.campaign(2, &e);
    for _ in 0..50 {
        for i in [0, 2] {
            net.fire(i);
        }
        net.pump();
        if !net.elected().is_empty() {
            break;
        }
    }
    assert_eq!(net.elected().len(), 1);
}

#[test]
fn after_every_node_restarts_at_once_the_next_epoch_is_above_every_granted_one() {
    // Decision record 115: acceptors persist the highest epoch they accepted (once per
    // leadership) and promise no ballot at or below it, so a majority remembers every
    // granted epoch even when every node forgot its promises.
    let mut net = Net::new(3);
    let e = election(0);
    let mut last = 0;
    for round in 0..4 {
        for i in 0..3 {
            net.crash(i);
        }
        for i in 0..3 {
            net.restart(i);
        }
        let lease = net.node(0).config().lease;
        net.now += lease;
        // A different node each time, the lowest member index last.
        let who = [2, 1, 2, 0][round];
        let epoch = net.elect(who, &e);
        assert!(epoch > last, "epoch {epoch} after {last}");
        last = epoch;
    }
}

#[test]
fn a_voters_only_member_accepts_but_never_proposes() {
    let t0 = Instant::now();
    let members: BTreeSet<_> = (0..3).map(id).collect();
    let mut c = default_config(&id(2), &members, 0);
    c.voters_only = [id(2)].into();
    let mut n = Node::new(c, t0, []).unwrap();
    assert!(!n.campaign(t0, &election(0)));
}

#[test]
fn the_state_file_holds_only_the_fencing_floor() {
    let mut net = Net::new(3);
    let e = election(0);
    let epoch = net.elect(1, &e);
    for _ in 0..5 {
        net.fire(1);
        net.pump();
    }
    for i in 0..3 {
        assert_eq!(
            net.disk[i],
            vec![(
                e.clone(),
                HardState {
                    epoch,
                    leader: Some(id(1))
                }
            )],
            "n{}: renewals write nothing",
            i + 1
        );
    }
    let _ = net.t0;
}

#[test]
fn many_leases_are_extended_in_several_requests_and_stay_held() {
    // Extensions are split into requests of about 900 bytes; every one is answered, and
    // every lease stays held across many lease times.
    let mut net = Net::new(3);
    let names: Vec<_> = (0..300).map(election).collect();
    for (k, e) in names.iter().enumerate() {
        net.elect(k % 3, e);
    }
    let start = net.now;
    let lease = net.node(0).config().lease;
    while net.now < start + lease * 4 {
        let next = (0..3)
            .filter_map(|i| net.node(i).poll_timeout())
            .min()
            .unwrap();
        net.now = net.now.max(next);
        for i in 0..3 {
            net.tick(i);
        }
        net.pump();
    }
    for (k, e) in names.iter().enumerate() {
        assert!(
            net.node(k % 3).lease_until(e).is_some_and(|t| t > net.now),
            "{e} lost"
        );
    }
    assert!(net.lost().is_empty(), "{:?}", net.lost());
}
