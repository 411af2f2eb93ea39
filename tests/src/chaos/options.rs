//! What a run is asked to do: the backend, the stop condition, the seed, the timings and
//! where the programs are.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::Error;
use super::schedule::Class;

/// The backend a run elects with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// A real `redis-server`, one per run.
    Redis,
    /// A real single-member `etcd`.
    Etcd,
    /// A real standalone ZooKeeper.
    ZooKeeper,
    /// A real 3-member ZooKeeper ensemble; host `i`'s session lives on member `i` (so one
    /// host talks to the ZooKeeper leader and two to followers), with the ensemble's
    /// `follower_lag`.
    ZooKeeperEnsemble,
    /// A real PostgreSQL cluster (`initdb` + `postgres`).
    Postgres,
    /// Three `elector agent`s running Raft among themselves.
    Raft,
    /// Three `elector agent`s running Bully among themselves.
    Bully,
    /// PaxosLease among three agents.
    Paxos,
}

impl Backend {
    /// Every backend, in the order runs and reports list them.
    pub const ALL: [Backend; 8] = [
        Backend::Redis,
        Backend::Etcd,
        Backend::ZooKeeper,
        Backend::ZooKeeperEnsemble,
        Backend::Postgres,
        Backend::Raft,
        Backend::Bully,
        Backend::Paxos,
    ];

    /// The name `--backend` uses: `redis`, `etcd`, `zookeeper`, `zookeeper-ensemble`, `postgres`,
    /// `raft`, `bully`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::ZooKeeperEnsemble => "zookeeper-ensemble",
            other => other.kind(),
        }
    }

    /// The backend kind `elector` is configured with (`backend.kind`): the name, except
    /// `zookeeper` for the ensemble.
    pub fn kind(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Etcd => "etcd",
            Backend::ZooKeeper | Backend::ZooKeeperEnsemble => "zookeeper",
            Backend::Postgres => "postgres",
            Backend::Raft => "raft",
            Backend::Bully => "bully",
            Backend::Paxos => "paxos",
        }
    }

    /// Whether the backend is a peer backend (hosted by `elector agent`, no server).
    pub fn is_peer(self) -> bool {
        matches!(self, Backend::Raft | Backend::Bully | Backend::Paxos)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Backend, Error> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown backend {s:?}: use one of redis, etcd, zookeeper, zookeeper-ensemble, postgres, \
                     raft, bully, paxos"
                ))
            })
    }
}

/// The timings of the hosts and of the child program. The defaults are the CLI tests'
/// fast timings (`cli/tests/common` `FAST`, `cli/tests/agents.rs`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timings {
    /// `timing.ttl`: the lease. Default 2 s. Fault durations are drawn around it.
    pub ttl: Duration,
    /// `timing.renew_interval`. Default 300 ms.
    pub renew: Duration,
    /// `timing.retry_interval`. Default 100 ms.
    pub retry: Duration,
    /// `timing.clock_drift` (and the peer backends' `clock_drift`). Default 100 ms.
    pub clock_drift: Duration,
    /// `timing.kill_grace` (and the peer backends' `kill_grace`). Default 300 ms.
    pub kill_grace: Duration,
    /// Peer backends: `heartbeat`. Default 100 ms.
    pub heartbeat: Duration,
    /// Peer backends: Raft's `election_timeout_min` (the max is twice it) and Bully's
    /// `failure_timeout`. Default 2 s.
    pub election_timeout: Duration,
    /// How often a child writes through the fence. Default 20 ms.
    pub write_every: Duration,
    /// How long a child keeps writing after SIGTERM, as a real service uses its kill
    /// grace. Default 250 ms (below the 300 ms grace).
    pub term_work: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            ttl: Duration::from_secs(2),
            renew: Duration::from_millis(300),
            retry: Duration::from_millis(100),
            clock_drift: Duration::from_millis(100),
            kill_grace: Duration::from_millis(300),
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_secs(2),
            write_every: Duration::from_millis(20),
            term_work: Duration::from_millis(250),
        }
    }
}

impl Timings {
    /// The default timings of a run of `backend`: [`Timings::default`], except for the
    /// ZooKeeper ensemble a 6 s ttl and 500 ms renewals (its deadlines are anchored one
    /// follower lag, 2.2 s, back, and each renewal is a round trip to the ZooKeeper
    /// leader; the crate's ensemble tests use the same).
    pub fn for_backend(backend: Backend) -> Timings {
        match backend {
            Backend::ZooKeeperEnsemble => Timings {
                ttl: Duration::from_secs(6),
                renew: Duration::from_millis(500),
                ..Timings::default()
            },
            _ => Timings::default(),
        }
    }

    /// How long a leader may go on believing it leads after its host wakes from a pause:
    /// the ttl for lease backends; for peer backends the longest of the ttl and Raft's
    /// longest election timeout (twice `election_timeout`). The pause explanation of the
    /// checker looks this far back from an overlap.
    pub fn lease(&self, backend: Backend) -> Duration {
        if backend.is_peer() {
            self.ttl.max(self.election_timeout * 2)
        } else {
            self.ttl
        }
    }
}

/// How to start the child program (what `elector run` guards). Its parameters travel in
/// the environment (see [`ChildParams`](super::ChildParams)), so any program that calls
/// [`child_main`](super::child_main) will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl ChildCommand {
    /// `PROGRAM child`: the chaos binary's hidden child mode.
    pub fn subcommand(program: impl Into<PathBuf>) -> ChildCommand {
        ChildCommand {
            program: program.into(),
            args: vec!["child".into()],
        }
    }

    /// A libtest binary that runs only its ignored test `test` (which calls
    /// [`child_main`](super::child_main)):
    /// `PROGRAM --ignored --exact TEST --nocapture --test-threads=1`.
    pub fn test_harness(program: impl Into<PathBuf>, test: &str) -> ChildCommand {
        ChildCommand {
            program: program.into(),
            args: [
                "--ignored",
                "--exact",
                test,
                "--nocapture",
                "--test-threads=1",
            ]
            .into_iter()
            .map(OsString::from)
            .collect(),
        }
    }
}

/// Everything a run needs. [`Options::new`] gives the defaults: seed 1, 20 s of chaos,
/// every fault class that applies, the default [`Timings`], logs in a temporary directory
/// kept only when the run found something.
#[derive(Clone, Debug)]
pub struct Options {
    /// The backend.
    pub backend: Backend,
    /// The seed of the fault schedule (`ChaCha8Rng::seed_from_u64`).
    pub seed: u64,
    /// Stop injecting after this long (counted from the first injection's due time).
    pub seconds: Option<Duration>,
    /// Stop injecting after this many faults.
    pub faults: Option<u64>,
    /// The fault classes to draw from; empty means every class that applies.
    pub classes: BTreeSet<Class>,
    /// The `elector` binary.
    pub elector: PathBuf,
    /// The child program.
    pub child: ChildCommand,
    /// Where logs go; `None` is a temporary directory, removed after a clean run.
    pub out: Option<PathBuf>,
    /// Host and child timings.
    pub timings: Timings,
}

impl Options {
    /// The defaults for `backend`, with the given programs.
    pub fn new(backend: Backend, elector: impl Into<PathBuf>, child: ChildCommand) -> Options {
        Options {
            backend,
            seed: 1,
            seconds: Some(Duration::from_secs(20)),
            faults: None,
            classes: BTreeSet::new(),
            elector: elector.into(),
            child,
            out: None,
            timings: Timings::for_backend(backend),
        }
    }

    /// The classes this run draws from: the asked ones (all if none), minus those that do
    /// not apply to the backend.
    pub(crate) fn drawn_classes(&self) -> Vec<Class> {
        Class::ALL
            .into_iter()
            .filter(|c| self.classes.is_empty() || self.classes.contains(c))
            .filter(|c| c.applies(self.backend).is_ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert!("memory".parse::<Backend>().is_err());
    }

    #[test]
    fn the_test_harness_child_runs_one_ignored_test() {
        let c = ChildCommand::test_harness("/x/chaos-123", "chaos_child");
        assert_eq!(
            c.args,
            [
                "--ignored",
                "--exact",
                "chaos_child",
                "--nocapture",
                "--test-threads=1"
            ]
        );
    }
}
