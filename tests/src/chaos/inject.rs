//! The injector: plays the [`Schedule`] on the [`Cluster`], one fault after another, each
//! undone after its duration, several at once on different targets, never two on one.
//!
//! It runs on the thread that drives the run (every process is spawned from it, see
//! [`super::process`]), as a small event loop: end the faults that are due, restart any
//! host process that exited on its own (noted in the report), start the next fault once it
//! is due and its target is free, sleep a few milliseconds. Server restarts, which block
//! for as long as the server takes to come back, run on a thread of their own.
//!
//! Each fault is recorded in the [`Journal`] with a start stamp taken before its first
//! signal or proxy change and an end stamp taken after it was undone, so a recorded
//! interval always covers the real one.

use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::clock::now_ns;
use super::cluster::{Cluster, LinkFault};
use super::error::{Error, Result};
use super::journal::{FaultRecord, Journal, Target, node_of};
use super::process::{children, signal_guards};
use super::schedule::{Class, HostPick, Pick, Planned, Schedule};
use crate::launch::Data;

/// How long a SIGSTOP may take to stop every thread of a process.
const STOP_WITHIN: Duration = Duration::from_secs(2);
/// The event loop's tick.
const TICK: Duration = Duration::from_millis(5);
/// The least time between two restarts of a process that keeps exiting on its own.
const RESPAWN_EVERY: Duration = Duration::from_secs(1);

/// When to stop injecting.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Stop {
    /// No fault starts after this instant.
    pub(crate) until: Option<Instant>,
    /// No more than this many faults.
    pub(crate) faults: Option<u64>,
}

/// How a fault ends.
#[derive(Debug)]
enum Ends {
    /// At an instant, by undoing it.
    At(Instant, Undo),
    /// When the server restart on this thread returns.
    Restart(JoinHandle<io::Result<()>>),
}

/// What undoes a fault.
#[derive(Debug)]
enum Undo {
    /// Start the killed runner (or agent) again.
    Respawn { host: usize, agent: bool },
    /// SIGCONT to the guard groups, the runner and the agent.
    ResumeHost { host: usize, guards: Vec<Pid> },
    /// SIGCONT to the runner.
    ResumeRun(usize),
    /// SIGCONT to the agent.
    ResumeAgent(usize),
    /// SIGCONT to the server.
    ResumeServer,
    /// Lift the host's link fault.
    Link(usize, LinkFault),
    /// Heal the quorum links of the host's ensemble member.
    HealMember(usize),
}

#[derive(Debug)]
struct Active {
    record: usize,
    target: Target,
    ends: Ends,
}

/// A host process kept running: down on purpose (killed by a fault), or due for a restart
/// after it exited on its own.
#[derive(Copy, Clone, Debug, Default)]
struct Keep {
    killed: bool,
    respawn_at: Option<Instant>,
}

/// The injector's state.
pub(crate) struct Injector<'a> {
    cluster: &'a mut Cluster,
    journal: &'a Journal,
    active: Vec<Active>,
    /// When each target that had a fault may have the next one.
    free_at: Vec<(Target, Instant)>,
    /// How long a target recovers after a fault before the next one may hit it.
    recover: Duration,
    /// Per host: (runner, agent).
    keep: Vec<(Keep, Keep)>,
}

impl<'a> Injector<'a> {
    /// An injector over `cluster`, recording into `journal`; a target gets `recover`
    /// after a fault ends before the next fault may hit it (so that a target is not
    /// kept down by back-to-back faults, which would test nothing but patience).
    pub(crate) fn new(
        cluster: &'a mut Cluster,
        journal: &'a Journal,
        recover: Duration,
    ) -> Injector<'a> {
        let hosts = cluster.hosts.len();
        Injector {
            cluster,
            journal,
            active: Vec::new(),
            free_at: Vec::new(),
            recover,
            keep: vec![(Keep::default(), Keep::default()); hosts],
        }
    }

    /// Plays `schedule` until `stop`, then lets every active fault end; returns how many
    /// faults were injected.
    pub(crate) fn run(&mut self, schedule: &mut Schedule, stop: Stop) -> Result<u64> {
        let mut injected = 0;
        let mut planned = schedule.next_fault();
        let mut due = Instant::now() + planned.gap;
        loop {
            self.end_due()?;
            self.keep_running();
            let now = Instant::now();
            let stopping =
                stop.until.is_some_and(|u| now >= u) || stop.faults.is_some_and(|n| injected >= n);
            if !stopping && now >= due {
                let target = self.resolve(planned.pick);
                if !self.busy(target) {
                    self.start(&planned, target);
                    injected += 1;
                    planned = schedule.next_fault();
                    due = now + planned.gap;
                }
            }
            if stopping && self.active.is_empty() {
                return Ok(injected);
            }
            std::thread::sleep(TICK);
        }
    }

    /// Keeps host processes running until `until` (the heal and the liveness wait).
    pub(crate) fn keep_until(&mut self, until: impl Fn() -> bool, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            self.keep_running();
            if until() {
                return true;
            }
            std::thread::sleep(TICK);
        }
        false
    }

    fn resolve(&self, pick: Pick) -> Target {
        match pick {
            Pick::Server => Target::Server,
            Pick::Host(HostPick::Host(h)) => Target::Host(h),
            Pick::Host(HostPick::Leader { fallback }) => {
                Target::Host(self.journal.leader_host().unwrap_or(fallback))
            }
        }
    }

    /// Whether a fault is on `target`, or one ended less than `recover` ago.
    fn busy(&self, target: Target) -> bool {
        let now = Instant::now();
        self.active.iter().any(|a| a.target == target)
            || self.free_at.iter().any(|&(t, at)| t == target && now < at)
    }

    /// Whether a fault is on `target` now.
    fn under_fault(&self, target: Target) -> bool {
        self.active.iter().any(|a| a.target == target)
    }

    fn record(
        &self,
        class: Class,
        target: Target,
        what: String,
        start_ns: u64,
        lost_data: bool,
    ) -> usize {
        tracing::info!("chaos: fault {class}: {what}");
        let mut r = self.journal.lock();
        r.faults.push(FaultRecord {
            class,
            target,
            what,
            start_ns,
            end_ns: None,
            lost_data,
        });
        r.faults.len() - 1
    }

    /// Starts `p` on `target`.
    fn start(&mut self, p: &Planned, target: Target) {
        let start_ns = now_ns();
        let until = Instant::now() + p.duration;
        let secs = p.duration.as_secs_f64();
        let (what, ends) = match (p.class, target) {
            (Class::RestartServer, _) | (Class::PauseServer, _) | (_, Target::Server) => {
                let Some(server) = self.cluster.server.clone() else {
                    return;
                };
                if p.class == Class::PauseServer {
                    self.check(server.pause(), "SIGSTOP of the server");
                    (
                        format!("SIGSTOP of the server for {secs:.2} s"),
                        Ends::At(until, Undo::ResumeServer),
                    )
                } else {
                    let data = if p.empty { Data::Empty } else { Data::Keep };
                    let handle = std::thread::spawn(move || server.restart(data));
                    (
                        format!("restart of the server, data {data:?}"),
                        Ends::Restart(handle),
                    )
                }
            }
            (class, Target::Host(h)) => {
                let node = node_of(h);
                let undo = self.start_on_host(class, h);
                let what = match class {
                    Class::KillRun => format!("kill -9 of {node}'s elector run, down {secs:.2} s"),
                    Class::KillAgent => format!("kill -9 of {node}'s agent, down {secs:.2} s"),
                    Class::PauseHost => {
                        let groups = match &undo {
                            Undo::ResumeHost { guards, .. } => guards.len(),
                            _ => 0,
                        };
                        let agent = if self.cluster.hosts[h].agent.is_some() {
                            "agent, "
                        } else {
                            ""
                        };
                        format!(
                            "SIGSTOP of all of {node} (run, {agent}{groups} guard group(s)) for {secs:.2} s"
                        )
                    }
                    Class::PauseRun => format!("SIGSTOP of {node}'s elector run for {secs:.2} s"),
                    Class::PauseAgent => format!("SIGSTOP of {node}'s agent for {secs:.2} s"),
                    Class::Blackhole => format!("blackhole of {node}'s links for {secs:.2} s"),
                    Class::Reset => format!("reset of {node}'s links for {secs:.2} s"),
                    Class::IsolateMember => format!(
                        "blackhole of the quorum links of {node}'s ensemble member for {secs:.2} s"
                    ),
                    Class::PauseServer | Class::RestartServer => unreachable!("server faults"),
                };
                (what, Ends::At(until, undo))
            }
        };
        let lost_data = p.class == Class::RestartServer && p.empty;
        let record = self.record(p.class, target, what, start_ns, lost_data);
        self.active.push(Active {
            record,
            target,
            ends,
        });
    }

    /// Applies a host fault; returns what undoes it.
    fn start_on_host(&mut self, class: Class, h: usize) -> Undo {
        match class {
            Class::KillRun => {
                self.keep[h].0.killed = true;
                self.cluster.hosts[h].runner.kill();
                Undo::Respawn {
                    host: h,
                    agent: false,
                }
            }
            Class::KillAgent => {
                self.keep[h].1.killed = true;
                if let Some(a) = self.cluster.hosts[h].agent.as_mut() {
                    a.kill();
                }
                Undo::Respawn {
                    host: h,
                    agent: true,
                }
            }
            Class::PauseHost => {
                // The runner first, so that it cannot start a guard we would miss; then
                // every guard group it leads (the child is in it); then the agent.
                let host = &self.cluster.hosts[h];
                let stopped = host.runner.stop(STOP_WITHIN);
                let guards = host.runner.pid().map(children).unwrap_or_default();
                signal_guards(&guards, Signal::SIGSTOP);
                let agent = host.agent.as_ref().map(|a| a.stop(STOP_WITHIN));
                self.check(stopped, "SIGSTOP of a host's runner");
                if let Some(agent) = agent {
                    self.check(agent, "SIGSTOP of a host's agent");
                }
                Undo::ResumeHost { host: h, guards }
            }
            Class::PauseRun => {
                let r = self.cluster.hosts[h].runner.stop(STOP_WITHIN);
                self.check(r, "SIGSTOP of a runner");
                Undo::ResumeRun(h)
            }
            Class::PauseAgent => {
                if let Some(a) = self.cluster.hosts[h].agent.as_ref() {
                    let r = a.stop(STOP_WITHIN);
                    self.check(r, "SIGSTOP of an agent");
                }
                Undo::ResumeAgent(h)
            }
            Class::Blackhole => {
                self.cluster.link_fault(h, LinkFault::Blackhole, true);
                Undo::Link(h, LinkFault::Blackhole)
            }
            Class::IsolateMember => {
                if let Some(s) = self.cluster.server.as_ref() {
                    s.isolate_member(h, true);
                }
                Undo::HealMember(h)
            }
            Class::Reset => {
                self.cluster.link_fault(h, LinkFault::Reset, true);
                Undo::Link(h, LinkFault::Reset)
            }
            Class::PauseServer | Class::RestartServer => unreachable!("server faults"),
        }
    }

    /// Ends every fault that is due.
    fn end_due(&mut self) -> Result<()> {
        let now = Instant::now();
        let mut i = 0;
        while i < self.active.len() {
            let due = match &self.active[i].ends {
                Ends::At(at, _) => *at <= now,
                Ends::Restart(handle) => handle.is_finished(),
            };
            if !due {
                i += 1;
                continue;
            }
            let a = self.active.swap_remove(i);
            match a.ends {
                Ends::At(_, undo) => self.undo(undo),
                Ends::Restart(handle) => {
                    let result = handle
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("the restart thread panicked")));
                    result.map_err(Error::io("restarting the server"))?;
                }
            }
            let end = now_ns();
            self.journal.lock().faults[a.record].end_ns = Some(end);
            let free = Instant::now() + self.recover;
            match self.free_at.iter_mut().find(|(t, _)| *t == a.target) {
                Some((_, at)) => *at = free,
                None => self.free_at.push((a.target, free)),
            }
        }
        Ok(())
    }

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Respawn { host, agent } => {
                let keep = &mut self.keep[host];
                let (k, proc) = if agent {
                    (&mut keep.1, self.cluster.hosts[host].agent.as_mut())
                } else {
                    (&mut keep.0, Some(&mut self.cluster.hosts[host].runner))
                };
                k.killed = false;
                k.respawn_at = None;
                if let Some(p) = proc {
                    let r = p.respawn("restart after kill -9");
                    self.check(r, "restarting a killed process");
                }
            }
            Undo::ResumeHost { host, guards } => {
                signal_guards(&guards, Signal::SIGCONT);
                let h = &self.cluster.hosts[host];
                let _ = h.runner.signal(Signal::SIGCONT);
                if let Some(a) = h.agent.as_ref() {
                    let _ = a.signal(Signal::SIGCONT);
                }
            }
            Undo::ResumeRun(host) => {
                let _ = self.cluster.hosts[host].runner.signal(Signal::SIGCONT);
            }
            Undo::ResumeAgent(host) => {
                if let Some(a) = self.cluster.hosts[host].agent.as_ref() {
                    let _ = a.signal(Signal::SIGCONT);
                }
            }
            Undo::ResumeServer => {
                if let Some(s) = self.cluster.server.as_ref() {
                    let r = s.resume();
                    self.check(r, "SIGCONT of the server");
                }
            }
            Undo::Link(host, fault) => self.cluster.link_fault(host, fault, false),
            Undo::HealMember(host) => {
                if let Some(s) = self.cluster.server.as_ref() {
                    s.isolate_member(host, false);
                }
            }
        }
    }

    /// Restarts any runner or agent that exited on its own (not one a fault killed),
    /// at most once a second each, and notes it. A host under a fault is left alone until
    /// the fault ends (a paused host must not gain a running process).
    fn keep_running(&mut self) {
        let now = Instant::now();
        for h in 0..self.cluster.hosts.len() {
            if self.under_fault(Target::Host(h)) {
                continue;
            }
            for agent in [false, true] {
                let host = &mut self.cluster.hosts[h];
                let keep = if agent {
                    &mut self.keep[h].1
                } else {
                    &mut self.keep[h].0
                };
                let Some(p) = (if agent {
                    host.agent.as_mut()
                } else {
                    Some(&mut host.runner)
                }) else {
                    continue;
                };
                if keep.killed {
                    continue;
                }
                if let Some(status) = p.exited() {
                    let text = format!("{} exited on its own ({status}); restarting it", p.what());
                    self.journal.note(now_ns(), text);
                    keep.respawn_at = Some(now + RESPAWN_EVERY);
                }
                if keep.respawn_at.is_some_and(|at| now >= at) {
                    keep.respawn_at = None;
                    if let Err(e) = p.respawn("restart after it exited on its own") {
                        self.journal.note(now_ns(), e.to_string());
                        keep.respawn_at = Some(now + RESPAWN_EVERY);
                    }
                }
            }
        }
    }

    fn check(&self, r: io::Result<()>, what: &str) {
        if let Err(e) = r {
            self.journal.note(now_ns(), format!("{what} failed: {e}"));
        }
    }
}
