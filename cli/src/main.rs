//! `elector`: run a job only on the node that leads an election.
//!
//! # Model
//!
//! Every host runs the same command, `elector run --election NAME -- CMD ARGS...`. elector
//! campaigns in election NAME on the configured backend (the peer backends raft, bully and paxos
//! through the local `elector agent`, which hosts this host's member; the lease backends
//! redis, etcd, zookeeper and postgres directly), and only the
//! leader runs CMD, with `ELECTOR_EPOCH`, `ELECTOR_ELECTION`, `ELECTOR_NODE_ID` and
//! `ELECTOR_BACKEND` in its environment. In cron mode (the default) the others print
//! `skipped: NAME is led by NODE (epoch N)` and exit 0; with `--supervise` the others wait
//! and take over when the leader goes. The supervisor works on any
//! `Arc<dyn LeaderElector>`, so every backend behaves the same.
//!
//! # Guarantees
//!
//! - CMD runs in its own process group, led by a tiny guard process forked from elector. When
//!   leadership is lost, the whole group gets SIGTERM, then SIGKILL after the kill grace,
//!   and elector reports the loss only once the group is gone. The kill grace may not
//!   exceed the backend's (`timing.kill_grace`, or `backend.raft.kill_grace`,
//!   `backend.bully.kill_grace` or `backend.paxos.kill_grace`), which the
//!   leadership deadline already subtracts, so without process pauses CMD is dead before
//!   another node can be elected.
//! - If elector itself dies, even by SIGKILL, the guard learns it through the parent-death
//!   signal and kills the whole group at once. If elector is stopped or stuck, the guard
//!   ends the group by itself at the leadership's deadline (SIGTERM, SIGKILL one kill grace
//!   later): elector passes it every new deadline.
//! - A loss elector did not choose is never handed over early: elector resigns only once
//!   the group is gone, and no backend releases a lapsed lease by itself.
//! - SIGTERM, SIGINT or SIGHUP to elector: forwarded to the group, SIGKILL after the grace,
//!   then leadership is resigned so the next node takes over without a TTL wait.
//! - Through the agent (over its private Unix socket), the caller keeps the deadlines the
//!   agent names on the host's boot clock, so a dead or stuck agent still stops CMD in time; the agent never
//!   resigns under a caller's running command (`elector resign` and agent shutdown revoke
//!   the hold and wait for the caller).
//! - The epoch comes from the backend (raft: the term; bully: the winner's persisted
//!   highest epoch seen plus one; etcd: the leader key's create revision; zookeeper: the
//!   leader znode's czxid; redis: a counter kept monotonic across restarts; postgres: the
//!   lease row's counter, never below the server's clock in µs): strictly
//!   increasing across
//!   leaderships. Give it to every guarded write and let the resource refuse stale ones
//!   (`election_core::Fence`).
//!
//! # Not guaranteed
//!
//! A process paused (SIGSTOP, VM stall, an overloaded machine) past its deadline may act
//! late: that is what the epoch is for. A descendant that leaves the process group
//! (`setsid`) escapes the kill unless elector could give the command a cgroup of its own
//! (as root, or under systemd's `Delegate=yes`; it logs which it does when it starts the
//! first command). Raft's defaults (50 ms kill grace, 200 ms election timeout), bully's
//! (50 ms kill grace, 150 ms failure timeout) and paxos's (50 ms kill grace, 150 ms lease)
//! suit a quiet LAN; raise them on loaded hosts. There is no in-process ("memory") backend: it would coordinate
//! nothing between hosts, so every host would run the job.
//!
//! # Configuration (defaults < file < `ELECTOR_*` environment < flags)
//!
//! - `node_id`: default the hostname.
//! - `[backend] kind`: `raft`, `bully`, `paxos` (peer backends, hosted by `elector agent`),
//!   `redis`, `etcd`, `zookeeper` or `postgres` (lease backends, used directly); no default. Each is a
//!   cargo feature of the same name, all on by default. `[backend.KIND]`: that backend's
//!   own settings (`RaftConfig`, `BullyConfig`, `RedisConfig`, `EtcdConfig`,
//!   `ZooKeeperConfig`, `PostgresConfig`, `PaxosConfig`, each documented with its defaults in its crate); the peer
//!   backends' `node_id` defaults to the top-level one, and their `kill_grace` (default
//!   50 ms) bounds `run.kill_grace`.
//! - `[timing]`: `ttl` 10s, `renew_interval` 2s, `retry_interval` 500ms, `clock_drift`
//!   200ms, `kill_grace` 2s (`election_core::LeaseTiming`; lease backends, and the pace of
//!   renewals through the agent).
//! - `[run]`: `election` (default CMD's file name), `wait` (none: one attempt), `min_hold`
//!   30s, `kill_grace` (default and maximum: the backend's kill grace), `restart`
//!   on-failure, `restart_delay` 1s, `restart_delay_max` 30s, `skipped_exit_code` 0.
//! - `[agent]`: `listen` 127.0.0.1:7207 (read-only API), `socket` (the whole API; default
//!   `/run/elector/agent.sock` for root), `socket_group`, `token_file`, `elections` [],
//!   `max_elections` 20000, `forget_after` 10m.
//!
//! Environment: `ELECTOR_` + the key in capitals with `__` for each dot, such as
//! `ELECTOR_TIMING__TTL=5s` or `ELECTOR_BACKEND__KIND=redis`. Flags: `--node-id`,
//! `--backend`, the `run` options and `--set KEY=VALUE`. Exit codes: see `exit`.

// Dependencies point down only: main -> {run, agent, ops, demo} -> backend -> config -> exit
// (run and ops reach peer backends through `agent::client`).
mod agent;
mod backend;
mod cli;
mod clock;
mod config;
mod demo;
mod exit;
mod logging;
mod notify;
mod ops;
mod run;
mod signals;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Command, LogFormat};
use crate::exit::Failure;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // A mask inherited from whoever started us could disable the SIGTERM handoff (and be
    // passed on to the command): start from an empty one.
    run::set_mask_raw(&[]);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let code = match e.kind() {
                K::DisplayHelp | K::DisplayVersion => 0,
                _ => exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The demo narrates on stdout; keep its logs to warnings unless RUST_LOG says otherwise.
    let quiet = matches!(cli.command, Command::Demo);
    logging::init(cli.log_format, quiet);
    let format = cli.log_format;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(format, Failure::new(exit::SOFTWARE, e.into())),
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => report(format, f),
    }
}

/// Prints the error as one line with its cause chain and returns its exit code.
fn report(format: LogFormat, f: Failure) -> ExitCode {
    match format {
        LogFormat::Human => eprintln!("elector: error: {:#}", f.error),
        LogFormat::Json => tracing::error!(exit_code = f.code, "{:#}", f.error),
    }
    ExitCode::from(f.code)
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let flags = cli
        .flag_values()
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let load = || config::load(cli.config.as_deref(), &flags);
    match &cli.command {
        Command::Run(args) => {
            let loaded = load()?;
            let stop = signals::forward()?;
            run::run(&loaded, args, stop).await
        }
        Command::Agent(_) => {
            let loaded = load()?;
            let stop = signals::forward()?;
            agent::serve(&loaded, stop).await
        }
        Command::Status(args) => ops::status(&load()?, args).await,
        Command::Watch(args) => ops::watch(&load()?, args).await,
        Command::Resign { election } => ops::resign(&load()?, election).await,
        Command::Config { check, json } => ops::config(&load()?, *check, *json),
        Command::Demo => demo::run().await,
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "elector",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
            Ok(0)
        }
    }
}

#[cfg(all(test, any(feature = "redis", feature = "raft")))]
mod tests;
