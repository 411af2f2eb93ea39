//! Exhaustive checking of a sans-IO core: breadth-first over every interleaving of a
//! small cluster (three nodes, one election) up to a bounded depth, with the simulator's
//! invariants checked after every action.
//!
//! One action is one of: deliver a batch in flight (any one, in any order, however long
//! it has waited: late delivery is free), deliver a copy and keep it in flight (a
//! duplicate), fire a node's timer (time moves to it; a timer may fire late by up to the
//! simulator's [`timer_late`](super::Sim::timer_late), so others may go first), crash a
//! node, restart it (it campaigns again), or resign the leadership. A drop needs no action
//! of its own: a batch that is never delivered is dropped, and every state reachable with
//! a drop is reachable without it, the batch still in flight. The cores cannot be cloned,
//! so a state is its path of actions from the start and is rebuilt by replaying it (the
//! cores and the simulator are deterministic); states are deduplicated by
//! [`Sim::fingerprint`].
//!
//! What is checked in every state is what the random schedules check: the backend's rules
//! ([`SimBackend::on_event`], [`SimBackend::check_persist`]: one leader per epoch,
//! granted epochs strictly rise, persisted epochs never go back) and the simulator's
//! (no two leases overlap in true time, with the kill grace between them), plus: no live
//! node's epoch is ever below one it had before, across crashes and restarts.

use std::collections::HashSet;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use election_core::ElectionName;

use super::{Clock, Sim, SimBackend, election};
use crate::core::ElectionCore;

/// One step of an explored schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver batch `seq` (and remove it from flight).
    Deliver(u64),
    /// Deliver a copy of batch `seq`; it stays in flight.
    Duplicate(u64),
    /// Fire node `n`'s next timer.
    Timeout(usize),
    /// Crash node `n` (kill -9: its disk stays).
    Crash(usize),
    /// Restart node `n` from its disk; it campaigns again.
    Restart(usize),
    /// Node `n` resigns the leadership it holds.
    Resign(usize),
}

/// How far to explore.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Actions per schedule.
    pub depth: usize,
    /// Crashes per schedule.
    pub crashes: usize,
    /// Duplicated deliveries per schedule.
    pub duplicates: usize,
    /// Resigns per schedule.
    pub resigns: usize,
}

/// What an exploration covered.
#[derive(Clone, Copy, Debug)]
pub struct Explored {
    /// The depth reached (every schedule of up to this many actions).
    pub depth: usize,
    /// Distinct states (by fingerprint), the initial one included.
    pub states: usize,
    /// Actions tried (transitions), duplicates of known states included.
    pub transitions: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// A schedule that broke an invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The actions from the start.
    pub path: Vec<Action>,
    /// The invariant broken, in words.
    pub why: String,
    /// The simulator's log of the schedule.
    pub log: Vec<String>,
}

/// Breadth-first explorer of one backend's core: three nodes, all campaigning in one
/// election from the start, clocks at the extremes of the drift bound.
pub struct Explorer<B: SimBackend> {
    configs: Vec<B::Config>,
    t0: Instant,
    /// How far to explore.
    pub bounds: Bounds,
    /// Share of `clock_drift` used by the clock rates (node 1 slowest, node 3 fastest).
    pub rate_share: f64,
    /// Share of `clock_drift` by which a timer may fire late.
    pub late_share: f64,
    /// The actions every explored schedule starts with (see [`Explorer::from_a_leader`]).
    pub prefix: Vec<Action>,
}

impl<B: SimBackend> Explorer<B>
where
    B::Node: Debug,
    B::Message: Debug,
    <B::Node as ElectionCore>::HardState: Debug,
{
    /// Runs the exploration and prints what it covered, or panics with the schedule that
    /// broke an invariant, its log, and `replay` (the command that runs it again); `what`
    /// names the exploration in both.
    pub fn assert_every_invariant_holds(&self, what: &str, replay: &str) {
        let kind = <B::Node as ElectionCore>::KIND;
        match self.run() {
            Ok(x) => eprintln!(
                "{kind} {what}: depth {}, {} states, {} transitions, {:.1?}: every invariant held",
                x.depth, x.states, x.transitions, x.elapsed
            ),
            Err(v) => {
                for l in &v.log {
                    eprintln!("{l}");
                }
                panic!(
                    "{kind} {what}: the schedule {:?} (after the prefix {:?}) breaks an \
                     invariant: {}\nreplay: {replay}",
                    v.path, self.prefix, v.why
                );
            }
        }
    }

    /// Three nodes with the configuration `adjust` makes of the defaults.
    pub fn new(bounds: Bounds, adjust: impl Fn(&mut B::Config)) -> Explorer<B> {
        let sim = Sim::<B>::new_configured(0, 3, &[], adjust);
        Explorer {
            t0: sim.t0(),
            configs: sim.configs,
            bounds,
            rate_share: 0.5,
            late_share: 0.4,
            prefix: Vec::new(),
        }
    }

    /// Explores from the state where the cluster first settled instead of from the boot:
    /// the prefix delivers every batch in order and fires the earliest timer when none is
    /// in flight, until a node holds the lease and nothing is in flight. So the explored
    /// depth is spent on what follows a grant (a crash, a resign, lost heartbeats, a new
    /// election).
    ///
    /// # Panics
    /// The prefix breaks an invariant, or no node leads within 1,000 actions.
    pub fn from_a_leader(mut self) -> Explorer<B> {
        let mut path = Vec::new();
        let e = Self::election();
        loop {
            let Ok(mut sim) = self.replay(&path, false) else {
                panic!("the settling prefix {path:?} breaks an invariant");
            };
            let flying = sim.in_flight();
            if flying.is_empty() && sim.lease_holder(&e).is_some() {
                break;
            }
            assert!(path.len() < 1000, "no leader within 1,000 actions");
            if let Some(&(s, _, _)) = flying.first() {
                path.push(Action::Deliver(s));
            } else {
                let next = (0..3)
                    .filter_map(|n| sim.timer(n).map(|t| (t, n)))
                    .min()
                    .expect("a timer runs");
                path.push(Action::Timeout(next.1));
            }
        }
        self.prefix = path;
        self
    }

    fn election() -> ElectionName {
        election(0)
    }

    /// The state after `path`, or the invariant it broke.
    ///
    /// # Errors
    /// The invariant broken, with the simulator.
    #[allow(clippy::result_large_err)]
    pub fn replay(&self, path: &[Action], keep_log: bool) -> Result<Sim<B>, (Sim<B>, String)> {
        let mut sim = Sim::<B>::with_configs_at(0, self.configs.clone(), self.t0);
        sim.manual = true;
        sim.recampaign = true;
        sim.keep_log = keep_log;
        let t = sim.timings();
        let half = (t.clock_drift.as_secs_f64() * self.rate_share / t.promise.as_secs_f64() / 2.0
            * 1e9) as i64;
        for (i, ppb) in [-half, 0, half].into_iter().enumerate() {
            sim.clocks[i] = Clock {
                offset: Duration::from_millis(100 * i as u64),
                ppb,
            };
        }
        sim.timer_late = t.clock_drift.mul_f64(self.late_share);
        let e = Self::election();
        let mut epochs = [0u64; 3];
        let mut run = |sim: &mut Sim<B>| -> Result<(), String> {
            for i in 0..3 {
                sim.campaign(i, &e)?;
            }
            for a in self.prefix.iter().chain(path) {
                match *a {
                    Action::Deliver(s) => sim.deliver(s, false)?,
                    Action::Duplicate(s) => sim.deliver(s, true)?,
                    Action::Timeout(n) => sim.fire(n)?,
                    Action::Crash(n) => sim.crash(n),
                    Action::Restart(n) => {
                        sim.restart(n);
                        sim.campaign(n, &e)?;
                    }
                    Action::Resign(n) => {
                        sim.resign(n, &e)?;
                    }
                }
                for (i, seen) in epochs.iter_mut().enumerate() {
                    if let Some(node) = sim.nodes[i].as_ref() {
                        let now = B::epoch(node, &e);
                        if now < *seen {
                            return Err(format!(
                                "n{}'s epoch in {e} went back from {seen} to {now}",
                                i + 1
                            ));
                        }
                        *seen = now;
                    }
                }
            }
            Ok(())
        };
        match run(&mut sim) {
            Ok(()) => Ok(sim),
            Err(why) => Err((sim, why)),
        }
    }

    /// The actions possible after `path` (whose state is `sim`).
    fn actions(&self, sim: &mut Sim<B>, path: &[Action]) -> Vec<Action> {
        let count = |f: fn(&Action) -> bool| path.iter().filter(|a| f(a)).count();
        let mut out = Vec::new();
        let dups = count(|a| matches!(a, Action::Duplicate(_))) < self.bounds.duplicates;
        for (s, _, _) in sim.in_flight() {
            out.push(Action::Deliver(s));
            if dups {
                out.push(Action::Duplicate(s));
            }
        }
        // A timer may fire only while no other is overdue by more than the lateness bound.
        let timers: Vec<(usize, Duration)> = (0..3)
            .filter_map(|n| sim.timer(n).map(|t| (n, t)))
            .collect();
        for &(n, t) in &timers {
            let at = sim.now.max(t);
            if timers
                .iter()
                .all(|&(m, u)| m == n || u + sim.timer_late >= at)
            {
                out.push(Action::Timeout(n));
            }
        }
        let crashes = count(|a| matches!(a, Action::Crash(_)));
        for n in 0..3 {
            match sim.nodes[n] {
                Some(_) if crashes < self.bounds.crashes => out.push(Action::Crash(n)),
                None => out.push(Action::Restart(n)),
                Some(_) => {}
            }
        }
        if count(|a| matches!(a, Action::Resign(_))) < self.bounds.resigns
            && let Some(h) = sim.lease_holder(&Self::election())
        {
            out.push(Action::Resign(h));
        }
        out
    }

    /// Explores every schedule of up to `bounds.depth` actions, breadth-first.
    ///
    /// # Errors
    /// The shortest schedule found that breaks an invariant.
    pub fn run(&self) -> Result<Explored, Box<Violation>> {
        let started = Instant::now();
        let mut seen = HashSet::new();
        let root = self
            .replay(&[], false)
            .map_err(|(sim, why)| self.violation(&[], why, sim))?;
        seen.insert(root.fingerprint());
        let mut frontier: Vec<Vec<Action>> = vec![Vec::new()];
        let mut transitions = 0;
        let mut depth = 0;
        while depth < self.bounds.depth && !frontier.is_empty() {
            let mut next = Vec::new();
            for path in &frontier {
                let Ok(mut sim) = self.replay(path, false) else {
                    unreachable!("a known state replays without a violation");
                };
                let actions = self.actions(&mut sim, path);
                drop(sim);
                for a in actions {
                    let mut p = path.clone();
                    p.push(a);
                    transitions += 1;
                    match self.replay(&p, false) {
                        Ok(sim) => {
                            if seen.insert(sim.fingerprint()) {
                                next.push(p);
                            }
                        }
                        Err((sim, why)) => return Err(self.violation(&p, why, sim)),
                    }
                }
            }
            frontier = next;
            depth += 1;
        }
        Ok(Explored {
            depth,
            states: seen.len(),
            transitions,
            elapsed: started.elapsed(),
        })
    }

    fn violation(&self, path: &[Action], why: String, _sim: Sim<B>) -> Box<Violation> {
        let log = match self.replay(path, true) {
            Ok(sim) | Err((sim, _)) => sim.log,
        };
        Box::new(Violation {
            path: path.to_vec(),
            why,
            log,
        })
    }
}
