//! The shared simulated network (`election_peer::sim`) for the PaxosLease core: virtual
//! time, seeded drops, delays, partitions, crashes and restarts from persisted state, with
//! the PaxosLease invariants checked after every step (one leader per epoch; granted
//! epochs strictly rise; persisted floors never go back; no two leases overlap in true
//! time).
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use election_core::{ElectionName, NodeId};
use election_paxos::core::{HardState, Message, Node, NodeConfig, Open};
use election_peer::CoreEvent;
use election_peer::sim::{SimBackend, Timings};

pub use election_peer::sim::{Lease, election, id};

/// The simulated cluster of PaxosLease cores.
pub type Sim = election_peer::sim::Sim<Paxos>;

/// The timings the simulator runs with: the crate's defaults.
pub fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> NodeConfig {
    let d = election_paxos::PaxosConfig::default();
    NodeConfig {
        me: me.clone(),
        members: members.clone(),
        voters_only: BTreeSet::new(),
        lease: d.lease,
        renew: d.renew,
        round_timeout: d.round_timeout,
        backoff: d.backoff,
        clock_drift: d.clock_drift,
        kill_grace: d.kill_grace,
        seed,
        incarnation: 1,
        max_elections: d.max_elections,
        forget_after: d.forget_after,
    }
}

/// The PaxosLease core, for the simulator.
pub struct Paxos;

impl SimBackend for Paxos {
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
            promise: config.lease,
            clock_drift: config.clock_drift,
            kill_grace: config.kill_grace,
        }
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
            "{e} n{}: epoch {} ballot {} leader {:?} lease {:?} campaigning {}\n",
            i + 1,
            n.epoch(e),
            n.ballot(e),
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
                "n{} persisted floor {} for {e} after {}: persisted floors went back",
                n + 1,
                hs.epoch,
                old.epoch
            ));
        }
        if hs.epoch == old.epoch && old.leader.is_some() && hs.leader != old.leader {
            return Err(format!(
                "n{} accepted {:?} at epoch {} in {e} after {:?}: one epoch, two proposers",
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
            epoch,
            lease_until,
        } = ev
        {
            let epoch = *epoch;
            if lease_until.saturating_duration_since(sim.t0()) <= sim.now {
                // Reported by the simulator's lease tracking.
                return Ok(());
            }
            // One leadership per epoch, ever (a second grant to the same node after a
            // restart would hand the epoch out twice too).
            if let Some(&other) = sim.leaders.get(&(election.clone(), epoch)) {
                return Err(format!(
                    "{election} epoch {epoch} granted twice: n{} and n{}",
                    other + 1,
                    n + 1
                ));
            }
            sim.leaders.insert((election.clone(), epoch), n);
            // Every grant's epoch is above every earlier grant's, also after restarts.
            if let Some(prev) = sim
                .leases
                .get(election)
                .and_then(|ls| ls.iter().map(|l| l.term).max())
                && prev >= epoch
            {
                return Err(format!(
                    "n{} granted {election} at epoch {epoch} after a grant at epoch {prev}: \
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
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

fn open(o: &Open) -> String {
    match o {
        Open::None => "nothing open".into(),
        Open::Yours(us) => format!("yours open {}ms", us / 1000),
        Open::Other(us) => format!("other open {}ms", us / 1000),
    }
}

/// One line for a message in golden traces.
pub fn describe(m: &Message) -> Option<String> {
    Some(match m {
        Message::Prepare {
            election, ballot, ..
        } => format!("PREPARE {election} ballot {ballot}"),
        Message::PrepareAck {
            election,
            ballot,
            promised,
            seen,
            open: o,
            ..
        } => format!(
            "{} {election} ballot {ballot} (seen {seen}, {})",
            if *promised {
                "PROMISE"
            } else {
                "refuse prepare"
            },
            open(o)
        ),
        Message::Propose {
            election,
            ballot,
            epoch,
            ..
        } => format!("PROPOSE {election} ballot {ballot} epoch {epoch}"),
        Message::ProposeAck {
            election,
            ballot,
            accepted,
            seen,
            ..
        } => format!(
            "{} {election} ballot {ballot} (seen {seen})",
            if *accepted {
                "ACCEPT"
            } else {
                "refuse propose"
            }
        ),
        Message::Release {
            election, epoch, ..
        } => format!("RELEASE {election} epoch {epoch}"),
        Message::Handoff {
            election,
            epoch,
            ballot,
            ..
        } => format!("HANDOFF {election} epoch {epoch}, PROMISE ballot {ballot} (nothing open)"),
        Message::Extend { entries, .. } => format!(
            "EXTEND {}",
            entries
                .iter()
                .map(|(e, b, ep)| format!("{e} ballot {b} epoch {ep}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Message::ExtendAck { refused, count, .. } => format!(
            "EXTENDED {} of {count}{}",
            count - refused.len() as u32,
            if refused.is_empty() {
                String::new()
            } else {
                format!(
                    " (refused {})",
                    refused
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        Message::ExtendAll { leases, .. } => format!("EXTEND ALL {} leases", leases.count),
        Message::ExtendAllAck { matched, .. } => {
            if *matched {
                "EXTENDED ALL".to_string()
            } else {
                "EXTEND ALL mismatch".to_string()
            }
        }
    })
}
