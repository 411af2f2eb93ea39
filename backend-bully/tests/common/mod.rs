//! The shared simulated network (`election_peer::sim`) for the Bully core: virtual time,
//! seeded drops, delays, partitions, crashes and restarts from persisted state, with the
//! Bully invariants checked after every step (one leader per epoch; persisted epochs never
//! go back; with the quorum rule, granted epochs only rise and leases do not overlap).
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use election_bully::core::{HardState, Message, Node, NodeConfig};
use election_core::{ElectionName, NodeId};
use election_peer::CoreEvent;
use election_peer::sim::{SimBackend, Timings};

pub use election_peer::sim::{Lease, election, id};

/// The simulated cluster of Bully cores.
pub type Sim = election_peer::sim::Sim<Bully>;

/// The timings the simulator runs with: the crate's defaults.
pub fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> NodeConfig {
    let d = election_bully::BullyConfig::default();
    NodeConfig {
        me: me.clone(),
        members: members.clone(),
        voters_only: BTreeSet::new(),
        heartbeat: d.heartbeat,
        failure_timeout: d.failure_timeout,
        answer_timeout: d.answer_timeout,
        quorum: d.quorum,
        clock_drift: d.clock_drift,
        kill_grace: d.kill_grace,
        seed,
        incarnation: 1,
        max_elections: d.max_elections,
        forget_after: d.forget_after,
        priorities: d.priorities,
    }
}

/// `Sim::new_with`: with or without the quorum rule.
pub trait NewWith {
    /// `n` nodes with the default timings, with or without the quorum rule.
    fn new_with(seed: u64, n: usize, voters_only: &[usize], quorum: bool) -> Sim;
}

impl NewWith for Sim {
    fn new_with(seed: u64, n: usize, voters_only: &[usize], quorum: bool) -> Sim {
        Sim::new_configured(seed, n, voters_only, |c| c.quorum = quorum)
    }
}

/// The Bully core, for the simulator.
pub struct Bully;

impl SimBackend for Bully {
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
            promise: config.failure_timeout,
            clock_drift: config.clock_drift,
            kill_grace: config.kill_grace,
        }
    }

    fn leases_exclusive(config: &NodeConfig) -> bool {
        // Classic Bully makes no such promise (split brain).
        config.quorum
    }

    fn lease_until(node: &Node, e: &ElectionName) -> Option<Instant> {
        node.lease_until(e)
    }

    fn epoch(node: &Node, e: &ElectionName) -> u64 {
        node.epoch(e)
    }

    fn leader(node: &Node, e: &ElectionName) -> Option<(NodeId, u64)> {
        node.leader(e)
    }

    fn dump_line(n: &Node, e: &ElectionName, i: usize, now: Instant) -> String {
        format!(
            "{e} n{}: epoch {} leader {:?} lease {:?} campaigning {}\n",
            i + 1,
            n.epoch(e),
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
        if hs.epoch < old.epoch {
            return Err(format!(
                "n{} persisted epoch {} for {e} after epoch {}: persisted epochs went back",
                n + 1,
                hs.epoch,
                old.epoch
            ));
        }
        if hs.epoch == old.epoch && old.leader.is_some() && hs.leader != old.leader {
            return Err(format!(
                "n{} accepted {:?} at epoch {} in {e} after {:?}: two leaders accepted at one epoch",
                n + 1,
                hs.leader,
                hs.epoch,
                old.leader
            ));
        }
        Ok(())
    }

    fn trace_message(m: &Message) -> Option<String> {
        describe(m)
    }

    fn on_event(sim: &mut Sim, n: usize, ev: &CoreEvent) -> Result<(), String> {
        if sim.keep_log {
            let text = match ev {
                CoreEvent::LeaderChanged { election, leader } => Some(format!(
                    "leader of {election}: {}",
                    leader
                        .as_ref()
                        .map_or("none".to_string(), |(l, e)| format!("{l} at epoch {e}"))
                )),
                CoreEvent::Elected {
                    election, epoch, ..
                } => Some(format!("ELECTED {election} at epoch {epoch}")),
                CoreEvent::Lost {
                    election,
                    epoch,
                    reason,
                } => Some(format!("LOST {election} epoch {epoch}: {reason:?}")),
                CoreEvent::LeaseExtended { .. } | CoreEvent::AllLeasesExtended { .. } => None,
            };
            if let Some(text) = text {
                let line = format!("{:>6}ms n{}: {text}", sim.now.as_millis(), n + 1);
                sim.trace.push(line);
            }
        }
        let ev_text = format!("{ev:?}");
        sim.note(|| format!("n{} {}", n + 1, shorten(&ev_text, 400)));
        if let CoreEvent::Elected {
            election,
            epoch: term,
            lease_until,
        } = ev
        {
            let term = *term;
            if lease_until.saturating_duration_since(sim.t0()) <= sim.now {
                // Reported by the simulator's lease tracking.
                return Ok(());
            }
            // At most one granted leadership per epoch (with and without the quorum rule),
            // and at most one per node: a second grant of one epoch to the same node (after
            // a restart) would hand the epoch out twice.
            if let Some(&other) = sim.leaders.get(&(election.clone(), term)) {
                return Err(if other == n {
                    format!(
                        "n{} granted {election} twice at epoch {term}: an epoch reused",
                        n + 1
                    )
                } else {
                    format!(
                        "two leaders in {election} epoch {term}: n{} and n{}",
                        other + 1,
                        n + 1
                    )
                });
            }
            sim.leaders.insert((election.clone(), term), n);
            // With the quorum rule, every grant's epoch is above every earlier grant's.
            if sim.configs[0].quorum
                && let Some(prev) = sim
                    .leases
                    .get(election)
                    .and_then(|ls| ls.iter().map(|l| l.term).max())
                && prev >= term
            {
                return Err(format!(
                    "n{} granted {election} at epoch {term} after a grant at epoch {prev}: \
                     epochs went back",
                    n + 1
                ));
            }
        }
        Ok(())
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_string()
    } else {
        format!("{}…", &s[..max])
    }
}

/// One line for a message in golden traces; `None` for heartbeats and their acks.
fn describe(m: &Message) -> Option<String> {
    Some(match m {
        Message::Election { election, epoch } => format!("ELECTION {election} (seen {epoch})"),
        Message::Alive { election } => format!("ALIVE {election}"),
        Message::ElectionAck {
            election,
            epoch,
            granted,
        } => format!("ack ELECTION {election} (seen {epoch}, granted {granted})"),
        Message::Victory { election, epoch } => format!("VICTORY {election} epoch {epoch}"),
        Message::Abdicate { election, epoch } => format!("ABDICATE {election} epoch {epoch}"),
        Message::Heartbeat { .. } | Message::Ack { .. } => return None,
    })
}
