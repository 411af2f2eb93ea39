//! `chaos`: the chaos instrument's command line (see `docs/chaos.md`). A thin shell over
//! `election_tests::chaos`: parse the flags, run, print the report, exit 0 (clean), 1
//! (violations) or 2 (the run could not be made). `chaos child` is the hidden child mode
//! that `elector run` guards during a run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use election_tests::chaos::{self, Backend, ChildCommand, Class, Error, Options, Timings};

const HELP: &str = "\
chaos: three real hosts of `elector run --supervise` under seeded random faults, and a
checker of what their children did (docs/chaos.md).

USAGE:
    chaos --backend NAME [--seconds N] [--faults N] [--seed S] [--classes LIST]
          [--elector PATH] [--out DIR]

OPTIONS:
    --backend NAME    redis, etcd, zookeeper, zookeeper-ensemble, postgres, raft, bully or
                      paxos (required)
    --seconds N       inject faults for N seconds (default 60, unless --faults is given)
    --faults N        stop after N faults injected (with --seconds: whichever comes first)
    --seed S          seed of the fault schedule (default: from the clock; printed)
    --classes LIST    comma-separated fault classes to draw from (default: all that
                      apply): kill-run, kill-agent, pause-host, pause-server, pause-run,
                      pause-agent, blackhole, reset, restart-server, isolate-member
    --timing KEY=MS   override a timing, in milliseconds (repeatable): ttl, renew, retry,
                      clock_drift, kill_grace, heartbeat, election_timeout, write_every,
                      term_work (defaults: 2000, 300, 100, 100, 300, 100, 2000, 20, 250)
    --elector PATH    the elector binary (default: `elector` next to this executable, so
                      run `cargo build --release -p elector` first)
    --out DIR         put every log there (a new or empty directory; default: a temporary
                      directory, kept only when the run found violations)
    -h, --help        this text

EXIT STATUS: 0 no violations, 1 violations found, 2 the run could not be made.
The servers (redis-server, etcd, zookeeperd, postgresql) come from scripts/install-deps.sh.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        chaos::child_main();
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chaos: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match chaos::run(&opts) {
        Ok(report) => {
            println!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<Options, Error> {
    let usage = |m: String| Error::Usage(m);
    let mut backend = None;
    let mut seconds = None;
    let mut faults = None;
    let mut seed = None;
    let mut classes = BTreeSet::new();
    let mut elector = None;
    let mut out = None;
    let mut timings = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--backend" => backend = Some(value()?.parse::<Backend>()?),
            "--seconds" => seconds = Some(number(flag, &value()?)?),
            "--faults" => faults = Some(number(flag, &value()?)?),
            "--seed" => seed = Some(number(flag, &value()?)?),
            "--classes" => {
                for c in value()?.split(',').filter(|c| !c.is_empty()) {
                    classes.insert(c.parse::<Class>()?);
                }
            }
            "--elector" => elector = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--timing" => timings.push(value()?),
            other => return Err(usage(format!("unknown argument {other:?}"))),
        }
    }
    let backend = backend.ok_or_else(|| usage("--backend NAME is required".into()))?;
    let me = std::env::current_exe()
        .map_err(|e| usage(format!("cannot locate this executable: {e}")))?;
    let elector = elector.unwrap_or_else(|| me.with_file_name("elector"));
    let mut opts = Options::new(backend, elector, ChildCommand::subcommand(&me));
    opts.seed = seed.unwrap_or_else(clock_seed);
    opts.faults = faults;
    opts.seconds = match (seconds, faults) {
        (Some(s), _) => Some(Duration::from_secs(s)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(60)),
    };
    opts.classes = classes;
    opts.out = out;
    for t in timings {
        set_timing(&mut opts.timings, &t)?;
    }
    Ok(opts)
}

fn set_timing(t: &mut Timings, pair: &str) -> Result<(), Error> {
    let (key, ms) = pair
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--timing takes KEY=MS, not {pair:?}")))?;
    let d = Duration::from_millis(number("--timing", ms)?);
    let field = match key {
        "ttl" => &mut t.ttl,
        "renew" => &mut t.renew,
        "retry" => &mut t.retry,
        "clock_drift" => &mut t.clock_drift,
        "kill_grace" => &mut t.kill_grace,
        "heartbeat" => &mut t.heartbeat,
        "election_timeout" => &mut t.election_timeout,
        "write_every" => &mut t.write_every,
        "term_work" => &mut t.term_work,
        other => return Err(Error::Usage(format!("--timing: unknown timing {other:?}"))),
    };
    *field = d;
    Ok(())
}

fn number(flag: &str, v: &str) -> Result<u64, Error> {
    v.parse()
        .map_err(|_| Error::Usage(format!("{flag} takes a whole number, not {v:?}")))
}

/// A seed for a run that asked for none (printed in the report, to replay it).
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}
