//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{FlagValues, Restart};

/// Run a job only on the node that leads an election: a cron wrapper, a singleton
/// supervisor and a local agent, over raft, bully, paxos, redis, etcd or zookeeper.
#[derive(Debug, Parser)]
#[command(name = "elector", version, after_long_help = crate::exit::HELP, after_help = crate::exit::HELP)]
pub(crate) struct Cli {
    /// Config file (TOML). Default: /etc/elector/elector.toml if it exists.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "ELECTOR_CONFIG",
        value_name = "FILE"
    )]
    pub(crate) config: Option<PathBuf>,

    /// This node's id (config `node_id`; default: the hostname).
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) node_id: Option<String>,

    /// Backend kind: raft, bully, paxos, redis, etcd, zookeeper or postgres (config `backend.kind`).
    #[arg(long, global = true, value_name = "KIND")]
    pub(crate) backend: Option<String>,

    /// Override any config key, e.g. `--set timing.ttl=5s` or
    /// `--set backend.redis.url=redis://127.0.0.1:6379`. Repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "ELECTOR_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run CMD only while this node leads ELECTION (cron mode, or --supervise).
    #[command(after_help = crate::exit::HELP, after_long_help = crate::exit::HELP)]
    Run(RunArgs),
    /// The long-running local peer (required for raft, bully and paxos): hosts the backend and serves
    /// status, leader health checks and metrics on HTTP.
    Agent(AgentArgs),
    /// Who leads each election.
    Status(StatusArgs),
    /// Stream leader changes.
    Watch(StatusArgs),
    /// Make this node's agent give up its leadership of ELECTION now.
    Resign {
        /// The election.
        election: String,
    },
    /// Print the effective configuration and where each value came from.
    Config {
        /// Validate only: exit 0 if the configuration is usable, 78 otherwise.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A self-contained demonstration: three raft nodes on loopback, a guarded job, a
    /// crash, a new leader with a higher epoch, and a stale write refused by a fence.
    Demo,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// `elector run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Election name (config `run.election`; default: CMD's file name).
    #[arg(long, short = 'e', value_name = "NAME")]
    pub(crate) election: Option<String>,

    /// Cron mode: wait up to DUR to be elected instead of one attempt (`run.wait`).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) wait: Option<Duration>,

    /// Cron mode: keep leadership until CMD exited and DUR passed since it started, so
    /// hosts whose cron fires a little apart do not run the same tick twice
    /// (`run.min_hold`, default 30s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) min_hold: Option<Duration>,

    /// Supervise: campaign, run CMD while leading, restart it per --restart, campaign
    /// again after a loss. Runs until stopped.
    #[arg(long)]
    pub(crate) supervise: bool,

    /// Supervise: when to restart CMD after it exits (`run.restart`, default on-failure).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub(crate) restart: Option<Restart>,

    /// Time CMD gets between SIGTERM and SIGKILL (`run.kill_grace`; default and maximum:
    /// `timing.kill_grace`).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub(crate) kill_grace: Option<Duration>,

    /// Exit code when another node leads (`run.skipped_exit_code`, default 0).
    #[arg(long, value_name = "CODE")]
    pub(crate) skipped_exit_code: Option<u8>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) cmd: Vec<OsString>,
}

/// `elector agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// HTTP listen address (`agent.listen`, default 127.0.0.1:7207).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
}

/// `elector status` and `elector watch`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Elections to show (default: `agent.elections`, or all the agent knows).
    pub(crate) elections: Vec<String>,
    /// Print JSON (one object per line for watch).
    #[arg(long)]
    pub(crate) json: bool,
    /// `status` only: redraw every second until interrupted, the same picture as the
    /// agent's status page (raft, bully: with the recent leader changes).
    #[arg(long, conflicts_with = "json")]
    pub(crate) watch: bool,
}

/// Parses `10s`, `250ms`, `1m30s`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (durations look like 10s, 250ms, 1m30s)"))
}

impl Cli {
    /// The flags that are configuration values, as a figment layer.
    pub(crate) fn flag_values(&self) -> anyhow::Result<FlagValues> {
        let mut f = FlagValues::default();
        for pair in &self.set {
            f.set_pair(pair)?;
        }
        if let Some(id) = &self.node_id {
            f.set("node_id", id.clone());
        }
        if let Some(kind) = &self.backend {
            f.set("backend.kind", kind.clone());
        }
        match &self.command {
            Command::Run(r) => {
                if let Some(e) = &r.election {
                    f.set("run.election", e.clone());
                }
                if let Some(d) = r.wait {
                    f.set_duration("run.wait", d);
                }
                if let Some(d) = r.min_hold {
                    f.set_duration("run.min_hold", d);
                }
                if let Some(d) = r.kill_grace {
                    f.set_duration("run.kill_grace", d);
                }
                if let Some(r) = r.restart {
                    let v = r.to_possible_value().map(|v| v.get_name().to_owned());
                    f.set("run.restart", v.unwrap_or_default());
                }
                if let Some(c) = r.skipped_exit_code {
                    f.set("run.skipped_exit_code", u64::from(c));
                }
            }
            Command::Agent(a) => {
                if let Some(l) = &a.listen {
                    f.set("agent.listen", l.clone());
                }
            }
            _ => {}
        }
        Ok(f)
    }
}
