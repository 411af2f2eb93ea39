//! The child program: what `elector run --supervise` guards in a chaos run.
//!
//! It behaves like a real service that writes to a fenced store: first thing it reads
//! `CLOCK_MONOTONIC` (its start), connects to the runner's fence server and says
//! `hello NODE EPOCH PID START_NS` (from `ELECTOR_NODE_ID` and `ELECTOR_EPOCH`), then writes
//! every `write_every` and waits for each answer. On SIGTERM it uses its kill grace as a
//! service would: it says `term`, keeps writing for `term_work`, says `bye` and exits 0.
//! A SIGKILLed child says nothing; the runner sees its connection close.
//!
//! Its parameters come from the environment (`CHAOS_FENCE`, `CHAOS_WRITE_EVERY_MS`,
//! `CHAOS_TERM_WORK_MS`), which `elector run` passes on to it, so the same entry point
//! serves the chaos binary's hidden `child` mode and an ignored test in a libtest binary.
//! The names avoid the `ELECTOR_` prefix, which elector reads as its own configuration.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, MissedTickBehavior};

use super::clock::now_ns;
use super::error::{Error, Result};

const FENCE: &str = "CHAOS_FENCE";
const WRITE_EVERY: &str = "CHAOS_WRITE_EVERY_MS";
const TERM_WORK: &str = "CHAOS_TERM_WORK_MS";

/// The child's parameters, passed in its environment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChildParams {
    /// The fence server.
    pub fence: SocketAddr,
    /// How often to write.
    pub write_every: Duration,
    /// How long to keep writing after SIGTERM.
    pub term_work: Duration,
}

impl ChildParams {
    /// The environment variables that carry these parameters.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (FENCE, self.fence.to_string()),
            (WRITE_EVERY, self.write_every.as_millis().to_string()),
            (TERM_WORK, self.term_work.as_millis().to_string()),
        ]
    }

    /// Reads the parameters from this process's environment.
    pub fn from_env() -> Result<ChildParams> {
        let fence = var(FENCE)?
            .parse()
            .map_err(|e| Error::Child(format!("{FENCE}: {e}")))?;
        let millis = |name: &str| -> Result<Duration> {
            let v = var(name)?;
            v.parse()
                .map(Duration::from_millis)
                .map_err(|e| Error::Child(format!("{name}={v:?}: {e}")))
        };
        Ok(ChildParams {
            fence,
            write_every: millis(WRITE_EVERY)?,
            term_work: millis(TERM_WORK)?,
        })
    }
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        Error::Child(format!(
            "{name} is not set: this is the child program of a chaos run, started by \
             `elector run` inside one (see docs/chaos.md)"
        ))
    })
}

/// Whether this process was started as the child of a chaos run (its parameters are in
/// the environment). An ignored test that hosts [`child_main`] can return early without
/// them, so that running every ignored test does not fail on it.
pub fn started_as_child() -> bool {
    std::env::var_os(FENCE).is_some()
}

/// The child program: runs until SIGTERM plus `term_work`, then exits the process with 0;
/// exits with 1 on any error (printed to stderr). Never returns.
pub fn child_main() -> ! {
    let start_ns = now_ns();
    let code = match child(start_ns) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    };
    std::process::exit(code)
}

fn child(start_ns: u64) -> Result<()> {
    let params = ChildParams::from_env()?;
    let node = var(election_core::env::NODE_ID)?;
    let epoch: u64 = var(election_core::env::EPOCH)?
        .parse()
        .map_err(|e| Error::Child(format!("ELECTOR_EPOCH: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("chaos child: starting a runtime"))?;
    runtime
        .block_on(work(params, &node, epoch, start_ns))
        .map_err(Error::io(format!(
            "chaos child {node} at epoch {epoch}: talking to the fence server {}",
            params.fence
        )))
}

async fn work(params: ChildParams, node: &str, epoch: u64, start_ns: u64) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let stream = TcpStream::connect(params.fence).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    let pid = std::process::id();
    write
        .write_all(format!("hello {node} {epoch} {pid} {start_ns}\n").as_bytes())
        .await?;
    let mut tick = tokio::time::interval(params.write_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stop_at: Option<Instant> = None;
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                seq += 1;
                write.write_all(format!("w {seq}\n").as_bytes()).await?;
                match replies.next_line().await?.as_deref() {
                    Some("ok" | "stale") => {}
                    other => {
                        return Err(std::io::Error::other(format!(
                            "unexpected answer {other:?} to write {seq}"
                        )));
                    }
                }
            }
            _ = term.recv(), if stop_at.is_none() => {
                write.write_all(format!("term {}\n", now_ns()).as_bytes()).await?;
                stop_at = Some(Instant::now() + params.term_work);
            }
        }
    }
    write
        .write_all(format!("bye {}\n", now_ns()).as_bytes())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_through_the_environment_names() {
        let p = ChildParams {
            fence: "127.0.0.1:4000".parse().unwrap(),
            write_every: Duration::from_millis(20),
            term_work: Duration::from_millis(250),
        };
        let env = p.env();
        assert!(env.iter().all(|(k, _)| !k.starts_with("ELECTOR_")));
        assert_eq!(env[0], ("CHAOS_FENCE", "127.0.0.1:4000".to_owned()));
    }
}
