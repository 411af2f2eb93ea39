//! `zookeeper-ensemble`: starts a ZooKeeper ensemble on loopback for trying elector by
//! hand, the same one the ensemble tests use (`election_tests::launch::ZooKeeperEnsemble`,
//! decision 110): N `QuorumPeerMain` JVMs with data in `/dev/shm`, a fault proxy on every
//! quorum link. Prints the connect string once every member serves, then runs until
//! interrupted (Ctrl-C or SIGTERM) and removes everything it started.
//! `scripts/zookeeper-ensemble.sh` is the short way to call it.

use std::process::ExitCode;

use election_tests::launch::ZooKeeperEnsemble;

const HELP: &str = "\
zookeeper-ensemble: a ZooKeeper ensemble on loopback, for trying elector by hand.

USAGE:
    zookeeper-ensemble [MEMBERS]

MEMBERS is how many servers to start (default 3; 3 or 5 survive a failure). Needs Debian's
zookeeperd (scripts/install-deps.sh). Prints `connect: HOST:PORT,...` (the value for
zookeeper.connect) and each member's mode once all serve, then runs until Ctrl-C or
SIGTERM, and stops and removes every member.";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let n = match arg.as_deref() {
        None => 3,
        Some("-h" | "--help") => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=9).contains(&n) => n,
            _ => {
                eprintln!("zookeeper-ensemble: MEMBERS must be a number from 1 to 9, not {s:?}");
                return ExitCode::from(2);
            }
        },
    };
    let ensemble = match ZooKeeperEnsemble::start(n) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("zookeeper-ensemble: {e}");
            return ExitCode::from(1);
        }
    };
    println!("connect: {}", ensemble.connect_string());
    for m in ensemble.members() {
        println!(
            "member {}: {} ({})",
            m.id(),
            m.connect_string(),
            m.mode()
                .map_or("not serving".to_string(), |mode| format!("{mode:?}"))
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zookeeper-ensemble: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    drop(ensemble);
    println!("stopped");
    ExitCode::SUCCESS
}
