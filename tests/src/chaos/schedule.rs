//! The fault classes and the seeded schedule that draws them.
//!
//! The schedule is a pure function of the seed and the list of classes: each draw gives
//! the gap before the fault, its class, its target and its duration, from
//! `ChaCha8Rng::seed_from_u64(seed)` and nothing else. Classes are dealt like cards: each
//! round is a shuffled deck of every class, so that even a short run injects every class
//! (about once per round) while the order stays random. The same seed therefore gives the
//! same sequence of faults; only when each one starts can shift (a fault waits while its
//! target is still busy with the previous one, and "the leader's host" is resolved when
//! the fault starts).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::Error;
use super::options::{Backend, Timings};

/// A kind of fault the instrument injects.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// 1. `kill -9` of a host's `elector run`, restarted after a short delay.
    KillRun,
    /// 2. `kill -9` of a host's `elector agent` (peer backends), restarted after a delay.
    KillAgent,
    /// 3. SIGSTOP of a whole host: `elector run`, its agent and the child's process group.
    PauseHost,
    /// 4. SIGSTOP of the server (lease backends).
    PauseServer,
    /// 5. SIGSTOP of `elector run` alone; its child keeps running.
    PauseRun,
    /// 6. SIGSTOP of a host's agent alone (peer backends).
    PauseAgent,
    /// 7. Proxy blackhole between a host and its server (peers: all its peer links, both
    ///    ways), then pass.
    Blackhole,
    /// 8. Proxy reset of the same links, then pass.
    Reset,
    /// 9. Restart of the server (redis: data kept or emptied; etcd, ZooKeeper, PostgreSQL:
    ///    kept).
    RestartServer,
    /// 10. Proxy blackhole of every quorum link of the ensemble member a host talks to
    ///     (ZooKeeper ensemble only): the member keeps its clients but loses its peers,
    ///     the partial partition of issue 16 item 1; then pass.
    IsolateMember,
}

impl Class {
    /// Every class, in the order of the list.
    pub const ALL: [Class; 10] = [
        Class::KillRun,
        Class::KillAgent,
        Class::PauseHost,
        Class::PauseServer,
        Class::PauseRun,
        Class::PauseAgent,
        Class::Blackhole,
        Class::Reset,
        Class::RestartServer,
        Class::IsolateMember,
    ];

    /// The short name `--classes` takes: `kill-run`, `pause-server`, ...
    pub fn name(self) -> &'static str {
        match self {
            Class::KillRun => "kill-run",
            Class::KillAgent => "kill-agent",
            Class::PauseHost => "pause-host",
            Class::PauseServer => "pause-server",
            Class::PauseRun => "pause-run",
            Class::PauseAgent => "pause-agent",
            Class::Blackhole => "blackhole",
            Class::Reset => "reset",
            Class::RestartServer => "restart-server",
            Class::IsolateMember => "isolate-member",
        }
    }

    /// What the fault is, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Class::KillRun => "kill -9 of a host's elector run, restarted",
            Class::KillAgent => "kill -9 of a host's elector agent, restarted",
            Class::PauseHost => "SIGSTOP of a whole host (run, agent, child group)",
            Class::PauseServer => "SIGSTOP of the server",
            Class::PauseRun => "SIGSTOP of elector run alone (child keeps running)",
            Class::PauseAgent => "SIGSTOP of an elector agent alone",
            Class::Blackhole => "proxy blackhole of a host's links",
            Class::Reset => "proxy reset of a host's links",
            Class::RestartServer => "restart of the server",
            Class::IsolateMember => "blackhole of a host's member's quorum links",
        }
    }

    /// `Ok` if the class applies to `backend`, else why not.
    pub fn applies(self, backend: Backend) -> Result<(), &'static str> {
        match self {
            Class::KillAgent | Class::PauseAgent if !backend.is_peer() => {
                Err("lease backends have no agent: elector run talks to the server directly")
            }
            Class::PauseServer | Class::RestartServer if backend.is_peer() => Err(
                "peer backends have no server: the agents are the members (a kill -9 and \
                 restart of an agent counts under kill-agent)",
            ),
            Class::IsolateMember if backend != Backend::ZooKeeperEnsemble => {
                Err("only a ZooKeeper ensemble has members to isolate from each other")
            }
            _ => Ok(()),
        }
    }

    /// Whether the fault stops processes, so that two children may overlap and only the
    /// fence can help: only [`Class::PauseHost`] (a stopped child cannot be killed in
    /// time by anyone), the documented limit of DESIGN.md "Safety timing".
    pub fn excuses_overlap(self) -> bool {
        self == Class::PauseHost
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Class {
    type Err = Error;

    fn from_str(s: &str) -> Result<Class, Error> {
        Class::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
                Error::Usage(format!(
                    "unknown fault class {s:?}: use one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// Which host a host fault hits: the one whose child leads when the fault starts (or, if
/// none leads, `fallback`), or a fixed one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPick {
    /// The current leader's host, else host `fallback`.
    Leader {
        /// The host used when no child leads.
        fallback: usize,
    },
    /// Host `i` (0-based).
    Host(usize),
}

/// What a fault hits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// A host.
    Host(HostPick),
    /// The server (lease backends).
    Server,
}

/// One drawn fault.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Planned {
    /// How long after the previous fault started this one is due.
    pub(crate) gap: Duration,
    /// Its class.
    pub(crate) class: Class,
    /// Its target.
    pub(crate) pick: Pick,
    /// How long it lasts (a kill: how long the process stays dead; a restart: ignored,
    /// it lasts as long as the restart takes).
    pub(crate) duration: Duration,
    /// A server restart with the data emptied (redis only).
    pub(crate) empty: bool,
}

/// The seeded source of [`Planned`] faults.
#[derive(Debug)]
pub(crate) struct Schedule {
    rng: ChaCha8Rng,
    classes: Vec<Class>,
    /// What is left of the current round, dealt from the end.
    deck: Vec<Class>,
    backend: Backend,
    ttl: Duration,
    hosts: usize,
}

/// Shortest and longest gap between the starts of two faults.
const GAP: (f64, f64) = (0.3, 1.5);
/// How often a host fault hits the leader's host rather than a drawn one.
const LEADER_SHARE: f64 = 2.0 / 3.0;

impl Schedule {
    /// A schedule over `classes` (none: an error of the caller, checked by the run).
    pub(crate) fn new(
        seed: u64,
        classes: Vec<Class>,
        backend: Backend,
        timings: &Timings,
        hosts: usize,
    ) -> Schedule {
        Schedule {
            rng: ChaCha8Rng::seed_from_u64(seed),
            classes,
            deck: Vec::new(),
            backend,
            ttl: timings.ttl,
            hosts,
        }
    }

    /// The next fault.
    pub(crate) fn next_fault(&mut self) -> Planned {
        let gap = Duration::from_secs_f64(self.rng.random_range(GAP.0..GAP.1));
        let class = self.deal();
        let host = self.rng.random_range(0..self.hosts);
        let pick = match class {
            Class::PauseServer | Class::RestartServer => Pick::Server,
            _ if self.rng.random_bool(LEADER_SHARE) => {
                Pick::Host(HostPick::Leader { fallback: host })
            }
            _ => Pick::Host(HostPick::Host(host)),
        };
        let duration = self.duration(class);
        let empty = class == Class::RestartServer
            && self.backend == Backend::Redis
            && self.rng.random_bool(0.5);
        Planned {
            gap,
            class,
            pick,
            duration,
            empty,
        }
    }

    /// The next class of the round; a new shuffled round when this one is dealt.
    fn deal(&mut self) -> Class {
        if self.deck.is_empty() {
            self.deck = self.classes.clone();
            for i in (1..self.deck.len()).rev() {
                let j = self.rng.random_range(0..=i);
                self.deck.swap(i, j);
            }
        }
        self.deck.pop().unwrap_or(Class::KillRun)
    }

    /// Durations are drawn around the ttl, so that stalls often end inside the window
    /// between the holder's deadline and deadline + kill grace.
    fn duration(&mut self, class: Class) -> Duration {
        let (lo, hi) = match class {
            // Restart after a short delay; a reset is a short outage.
            Class::KillRun | Class::KillAgent | Class::Reset => (0.05, 0.5),
            // elector run alone: as often longer than the ttl (its child runs on).
            Class::PauseRun if self.rng.random_bool(0.5) => (1.2, 2.0),
            Class::PauseHost
            | Class::PauseServer
            | Class::PauseRun
            | Class::PauseAgent
            | Class::Blackhole
            | Class::IsolateMember => (0.3, 2.0),
            Class::RestartServer => (0.0, 0.0),
        };
        if hi == 0.0 {
            return Duration::ZERO;
        }
        self.ttl.mul_f64(self.rng.random_range(lo..hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64) -> Vec<Planned> {
        let mut s = Schedule::new(
            seed,
            Class::ALL.to_vec(),
            Backend::Redis,
            &Timings::default(),
            3,
        );
        (0..50).map(|_| s.next_fault()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn every_round_deals_every_class_once() {
        let rounds: Vec<Class> = draws(5).into_iter().map(|p| p.class).collect();
        for round in rounds
            .chunks(Class::ALL.len())
            .filter(|r| r.len() == Class::ALL.len())
        {
            let mut r = round.to_vec();
            r.sort();
            assert_eq!(r, Class::ALL);
        }
    }

    #[test]
    fn durations_stay_around_the_ttl() {
        for p in draws(3) {
            assert!(p.gap >= Duration::from_millis(300) && p.gap < Duration::from_millis(1500));
            assert!(p.duration <= Duration::from_secs(4), "{p:?}");
            if p.class == Class::PauseServer {
                assert!(p.duration >= Duration::from_millis(600), "{p:?}");
                assert_eq!(p.pick, Pick::Server);
            }
        }
    }

    #[test]
    fn classes_that_cannot_apply_say_why() {
        assert!(Class::KillAgent.applies(Backend::Redis).is_err());
        assert!(Class::PauseServer.applies(Backend::Raft).is_err());
        assert!(Class::KillAgent.applies(Backend::Bully).is_ok());
        for c in Class::ALL {
            assert_eq!(c.name().parse::<Class>().unwrap(), c);
        }
    }
}
