//! The shared simulated network (`election_peer::sim`) for the Raft core: virtual time,
//! seeded drops, delays, partitions, crashes and restarts from persisted state, with the
//! Raft invariants checked after every step (one leader per term; persisted terms never go
//! back and votes never change within a term; leases do not overlap).
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use election_core::{ElectionName, NodeId};
use election_peer::CoreEvent;
use election_peer::sim::{SimBackend, Timings};
use election_raft::core::{HardState, Message, Node, NodeConfig};

pub use election_peer::sim::{Lease, election, id};

/// The simulated cluster of Raft cores.
pub type Sim = election_peer::sim::Sim<Raft>;

/// The timings the simulator runs with: the crate's defaults.
pub fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> NodeConfig {
    let d = election_raft::RaftConfig::default();
    NodeConfig {
        me: me.clone(),
        members: members.clone(),
        voters_only: BTreeSet::new(),
        heartbeat: d.heartbeat,
        election_timeout_min: d.election_timeout_min,
        election_timeout_max: d.election_timeout_max,
        clock_drift: d.clock_drift,
        kill_grace: d.kill_grace,
        seed,
        incarnation: 1,
        max_elections: d.max_elections,
        forget_after: d.forget_after,
        priority: d.priority,
        priority_stable: d.priority_stable(),
    }
}

/// The Raft core, for the simulator.
pub struct Raft;

impl SimBackend for Raft {
    type Node = Node;
    type Message = Message;
    type Config = NodeConfig;

    fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> NodeConfig {
        default_config(me, members, seed)
    }

    fn set_voters_only(config: &mut NodeConfig, voters_only: BTreeSet<NodeId>) {
        config.voters_only = voters_only;
    }

    fn restarted(config: &mut NodeConfig, incarnation: u64, seed_add: u64) {
        config.incarnation = incarnation;
        config.seed = config.seed.wrapping_add(seed_add);
    }

    fn new_node(
        config: NodeConfig,
        now: Instant,
        state: Vec<(ElectionName, HardState)>,
        floor: u64,
    ) -> Node {
        Node::restore(config, now, state, floor).unwrap()
    }

    fn timings(config: &NodeConfig) -> Timings {
        Timings {
            promise: config.election_timeout_min,
            clock_drift: config.clock_drift,
            kill_grace: config.kill_grace,
        }
    }

    fn lease_until(node: &Node, e: &ElectionName) -> Option<Instant> {
        node.lease_until(e)
    }

    fn epoch(node: &Node, e: &ElectionName) -> u64 {
        node.term(e)
    }

    fn leader(node: &Node, e: &ElectionName) -> Option<(NodeId, u64)> {
        node.leader(e)
    }

    fn dump_line(n: &Node, e: &ElectionName, i: usize, now: Instant) -> String {
        format!(
            "{e} n{}: term {} leader {:?} lease {:?} campaigning {}\n",
            i + 1,
            n.term(e),
            n.leader(e),
            n.lease_until(e).map(|t| t.saturating_duration_since(now)),
            n.is_campaigning(e)
        )
    }

    fn check_persist(
        n: usize,
        e: &ElectionName,
        old: &HardState,
        hs: &HardState,
    ) -> Result<(), String> {
        if hs.term < old.term {
            return Err(format!(
                "n{} persisted term {} for {e} after term {}: persisted terms went back",
                n + 1,
                hs.term,
                old.term
            ));
        }
        if hs.term == old.term && old.vote.is_some() && hs.vote != old.vote {
            return Err(format!(
                "n{} changed its vote in {e} term {} from {:?} to {:?}",
                n + 1,
                hs.term,
                old.vote,
                hs.vote
            ));
        }
        Ok(())
    }

    fn on_event(sim: &mut Sim, n: usize, ev: &CoreEvent) -> Result<(), String> {
        if sim.keep_log {
            let text = describe(sim.t0(), ev);
            sim.note(|| format!("n{} {text}", n + 1));
        }
        if let CoreEvent::LeaderChanged {
            election,
            leader: Some((l, term)),
        } = ev
            && *l == id(n)
        {
            let term = *term;
            // Election safety (§5.2): at most one leader per term. A node becomes leader
            // at most once per term too: a second time (after a restart) would be a term,
            // hence an epoch, handed out twice.
            if let Some(&other) = sim.leaders.get(&(election.clone(), term)) {
                return Err(if other == n {
                    format!(
                        "n{} became leader of {election} twice at term {term}: a term reused",
                        n + 1
                    )
                } else {
                    format!(
                        "two leaders in {election} term {term}: n{} and n{}",
                        other + 1,
                        n + 1
                    )
                });
            }
            sim.leaders.insert((election.clone(), term), n);
        }
        if let CoreEvent::Elected {
            election, epoch, ..
        } = ev
            // Epochs of successive leaderships strictly increase: every grant's term is
            // above every earlier grant's (the crate's first guarantee).
            && let Some(prev) = sim
                .leases
                .get(election)
                .and_then(|ls| ls.iter().map(|l| l.term).max())
            && prev >= *epoch
        {
            return Err(format!(
                "n{} granted {election} at term {epoch} after a grant at term {prev}: \
                 granted epochs went back",
                n + 1
            ));
        }
        Ok(())
    }
}

/// An event in words, with instants as simulated milliseconds (deterministic).
fn describe(t0: Instant, ev: &CoreEvent) -> String {
    let at = |t: &Instant| {
        format!(
            "{:.1}ms",
            t.saturating_duration_since(t0).as_secs_f64() * 1000.0
        )
    };
    match ev {
        CoreEvent::LeaderChanged { election, leader } => match leader {
            Some((l, t)) => format!("{election}: leader {l} at term {t}"),
            None => format!("{election}: no leader"),
        },
        CoreEvent::Elected {
            election,
            epoch: term,
            lease_until,
        } => format!(
            "{election}: elected at term {term}, lease until {}",
            at(lease_until)
        ),
        CoreEvent::AllLeasesExtended { until, .. } => format!("lease extended until {}", at(until)),
        CoreEvent::LeaseExtended {
            election,
            epoch,
            until,
        } => format!(
            "{election}: lease at term {epoch} extended until {}",
            at(until)
        ),
        CoreEvent::Lost {
            election,
            epoch: term,
            reason,
        } => format!("{election}: lost term {term} ({reason:?})"),
    }
}
