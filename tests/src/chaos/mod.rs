//! The chaos instrument: real hosts of `elector run --supervise` under seeded random
//! faults, and a checker that judges what their children did.
//!
//! # The model
//!
//! A run has three hosts, `n1`..`n3`. Each runs `elector run --supervise -e chaos -- CHILD`
//! (for raft and bully through its own `elector agent`), against the backend's real server
//! (redis, etcd, ZooKeeper, PostgreSQL, from [`crate::launch`]) or among the agents, with a
//! [`FaultProxy`](crate::proxy::FaultProxy) on every link so one host can be cut off. The
//! child ([`child_main`]) is what elector guards: it stamps its start on
//! `CLOCK_MONOTONIC`, tells the runner's fence server `hello NODE EPOCH PID START_NS`,
//! writes through one shared [`Fence`](election_core::Fence) every 20 ms, and on SIGTERM
//! keeps writing for 250 ms (inside the 300 ms kill grace) before it exits, as a real
//! service would. Its death is the EOF on its connection.
//!
//! Once the first child runs, faults are drawn from `ChaCha8Rng::seed_from_u64(seed)` (see
//! [`Class`] for the nine classes) every 0.3–1.5 s, with durations around the ttl so that
//! stalls often end inside the window [deadline, deadline + kill grace]. Faults overlap on
//! different targets, never on one. Every fault and every child event is stamped on the
//! same clock.
//!
//! When the stop condition is reached (`seconds`, `faults`, whichever first) the last
//! faults end, the run waits for a leader to run again (liveness), stops every host with
//! SIGTERM, and the checker (see the `check` module's rules: no two children at once, no
//! epoch twice, no epoch going back, no stale write accepted, no refused write, unless a
//! whole-host pause explains it) makes the [`Report`].
//!
//! # Using it
//!
//! [`run`] blocks (it makes its own tokio runtime: do not call it from inside one). The
//! `chaos` binary of this package is a thin command line over it; `cli/tests/chaos.rs`
//! runs every backend briefly in the test suite. See `docs/chaos.md`.

mod check;
mod child;
mod clock;
mod cluster;
mod config;
mod error;
mod fence;
mod inject;
mod journal;
mod options;
mod process;
mod report;
mod schedule;
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use child::{ChildParams, child_main, started_as_child};
pub use error::{Error, Result};
pub use options::{Backend, ChildCommand, Options, Timings};
pub use report::Report;
pub use schedule::Class;

use self::check::Violation;
use self::clock::{now_ns, ns};
use self::cluster::{Cluster, HOSTS};
use self::fence::FenceServer;
use self::inject::{Injector, Stop};
use self::journal::Journal;
use self::schedule::Schedule;

/// How long the first child may take to start after the hosts are up.
const FIRST_CHILD: Duration = Duration::from_secs(60);
/// How long a leader may take to run again once every fault has ended.
const HEAL_WITHIN: Duration = Duration::from_secs(30);
/// How long the children may take to be gone after every host was told to stop.
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Runs the chaos described by `opts` and judges it. Errors are about the run itself (a
/// missing binary, a server that would not start); what the run found is in the
/// [`Report`].
pub fn run(opts: &Options) -> Result<Report> {
    preflight(opts)?;
    let drawn = opts.drawn_classes();
    if drawn.is_empty() {
        return Err(Error::Usage(format!(
            "no fault class left to draw for {}: the asked classes do not apply to it",
            opts.backend
        )));
    }
    let (out, temporary) = out_dir(opts)?;
    eprintln!(
        "chaos: backend {}, seed {}, logs in {}",
        opts.backend,
        opts.seed,
        out.display()
    );
    let origin_ns = now_ns();
    let origin_wall = std::time::SystemTime::now();
    let journal = Arc::new(Journal::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::io("starting the runner's runtime"))?;
    let fence = rt
        .block_on(FenceServer::start(journal.clone()))
        .map_err(Error::io("starting the fence server"))?;
    let mut cluster = Cluster::start(opts, &out, fence.addr(), &rt)?;
    let (chaos, healed) = play(opts, &mut cluster, &journal, drawn.clone(), &out)?;
    cluster.shut_down();
    let gone = Instant::now();
    while journal.alive() > 0 && gone.elapsed() < GONE_WITHIN {
        std::thread::sleep(Duration::from_millis(10));
    }
    let end_ns = now_ns();
    if let Some(server) = &cluster.server {
        let _ = std::fs::copy(server.log_path(), out.join("server.log"));
    }
    drop(cluster);
    drop(fence);
    rt.shutdown_background();

    let record = journal.snapshot();
    let lease_ns = ns(opts.timings.lease(opts.backend));
    let mut findings = check::check(&record, lease_ns, end_ns);
    if let Err(from_ns) = healed {
        findings.violations.push(Violation::NoLeaderAfterHeal {
            from_ns,
            to_ns: from_ns + ns(HEAL_WITHIN),
        });
    }
    let mut report = Report {
        backend: opts.backend,
        seed: opts.seed,
        origin_ns,
        origin_wall,
        chaos,
        out: out.clone(),
        out_kept: true,
        drawn,
        findings,
        record,
        lease_ns,
    };
    let _ = std::fs::write(out.join("faults.log"), report.fault_lines());
    let _ = std::fs::write(out.join("children.log"), report.child_lines());
    if report.is_clean() && temporary {
        let _ = std::fs::remove_dir_all(&out);
        report.out_kept = false;
    } else {
        let _ = std::fs::write(out.join("report.txt"), report.to_string());
    }
    Ok(report)
}

/// Waits for the first child, plays the schedule, waits for a leader after the heal.
/// Returns how long the chaos lasted, and whether a leader ran again (else when the wait
/// began).
fn play(
    opts: &Options,
    cluster: &mut Cluster,
    journal: &Journal,
    drawn: Vec<Class>,
    out: &Path,
) -> Result<(Duration, Result<(), u64>)> {
    let mut injector = Injector::new(cluster, journal, opts.timings.ttl);
    if !injector.keep_until(|| journal.started() > 0, FIRST_CHILD) {
        return Err(Error::NoLeader {
            waited: FIRST_CHILD,
            out: out.to_owned(),
        });
    }
    let start = Instant::now();
    let stop = Stop {
        until: opts.seconds.map(|s| start + s),
        faults: opts.faults,
    };
    let mut schedule = Schedule::new(opts.seed, drawn, opts.backend, &opts.timings, HOSTS);
    injector.run(&mut schedule, stop)?;
    let chaos = start.elapsed();
    let heal_ns = now_ns();
    let healed = injector.keep_until(|| journal.leader_host().is_some(), HEAL_WITHIN);
    Ok((chaos, if healed { Ok(()) } else { Err(heal_ns) }))
}

fn preflight(opts: &Options) -> Result<()> {
    if opts.seconds.is_none() && opts.faults.is_none() {
        return Err(Error::Usage(
            "no stop condition: give seconds, faults, or both".into(),
        ));
    }
    if !is_executable(&opts.elector) {
        return Err(Error::ElectorMissing {
            path: opts.elector.clone(),
        });
    }
    if !is_executable(&opts.child.program) {
        return Err(Error::Usage(format!(
            "the child program {} is missing or not executable",
            opts.child.program.display()
        )));
    }
    Ok(())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The log directory and whether it is a temporary one: the asked one (created, and
/// required to be empty so that runs never mix), else a new temporary directory.
fn out_dir(opts: &Options) -> Result<(PathBuf, bool)> {
    match &opts.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(Error::io(format!("creating {}", dir.display())))?;
            let used = std::fs::read_dir(dir)
                .map_err(Error::io(format!("reading {}", dir.display())))?
                .next()
                .is_some();
            if used {
                return Err(Error::Usage(format!(
                    "the log directory {} is not empty: give a new or empty one",
                    dir.display()
                )));
            }
            Ok((dir.clone(), false))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix(&format!("elector-chaos-{}-", opts.backend))
                .tempdir()
                .map_err(Error::io("creating a temporary log directory"))?;
            Ok((dir.keep(), true))
        }
    }
}
