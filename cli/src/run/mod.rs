//! `elector run`: configuration, backend and command glued to the supervisor
//! ([`supervisor`]), which starts the command through [`process`] under the guard
//! ([`guard`]) that keeps the leadership's deadline.

mod cgroup;
mod guard;
mod process;
mod supervisor;

use anyhow::anyhow;
use election_core::{Candidate, ElectionName};

use crate::agent::client::open_for_caller;
use crate::backend;
use crate::cli::RunArgs;
use crate::config::Loaded;
use crate::exit::{self, Failure};
use crate::signals::Stop;
pub(crate) use guard::set_mask_raw;
#[cfg(test)]
pub(crate) use process::Exit;
pub(crate) use process::{Job, Launcher};
pub(crate) use supervisor::{Mode, Outcome, Plan, run as supervise};

/// Runs `elector run` and returns the process exit code.
pub(crate) async fn run(loaded: &Loaded, args: &RunArgs, stop: Stop) -> Result<u8, Failure> {
    let (program, rest) = args
        .cmd
        .split_first()
        .ok_or_else(|| Failure::new(exit::USAGE, anyhow!("no command given after --")))?;
    let job = Job {
        program: program.clone(),
        args: rest.to_vec(),
    };
    let config = backend::checked(loaded)?;
    job.preflight()
        .map_err(|(code, msg)| Failure::new(code, anyhow!(msg)))?;
    let settings = &loaded.settings;
    let node = loaded.node_id()?;
    let election = match &settings.run.election {
        Some(name) => {
            ElectionName::new(name.clone()).map_err(|e| loaded.invalid("run.election", e))?
        }
        None => default_election(&job)?,
    };
    let mode = if args.supervise {
        Mode::Supervise {
            restart: settings.run.restart,
            delay: settings.run.restart_delay,
            delay_max: settings.run.restart_delay_max,
            retry: settings.timing.retry_interval,
        }
    } else {
        Mode::Once {
            wait: settings.run.wait,
            min_hold: settings.run.min_hold,
        }
    };
    let kill_grace = config.kill_grace(loaded)?;
    let backend = open_for_caller(config.kind(), loaded, Some(&config)).await?;
    let plan = Plan {
        job,
        launcher: Launcher::guarded(),
        node: node.clone(),
        backend: backend.kind(),
        kill_grace,
        mode,
    };
    let elector = backend.election(&election, Candidate::new(node))?;
    // Under systemd (`Type=notify`): ready once the backend is open, pinging the
    // watchdog from this runtime.
    let notifier = crate::notify::notifier();
    notifier.ready(&format!("campaigning in {election} on {}", backend.kind()));
    notifier.watchdog();
    let outcome = supervise(elector, &plan, stop).await?;
    Ok(match outcome {
        Outcome::Skipped { leader } => {
            match leader {
                Some(l) => println!(
                    "skipped: {election} is led by {} (epoch {})",
                    l.node, l.epoch
                ),
                None => println!("skipped: {election} is led by another node"),
            }
            settings.run.skipped_exit_code
        }
        Outcome::Exited { exit, .. } => exit.code(),
        Outcome::Lost { .. } => exit::LOST,
        Outcome::Stopped { signal, exit } => match exit {
            Some(e) => e.code(),
            None => 128u8.wrapping_add(signal as u8),
        },
    })
}

/// The default election name: CMD's file name, with characters names may not hold
/// replaced by `-`.
fn default_election(job: &Job) -> Result<ElectionName, Failure> {
    let raw = job.file_name();
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['.', '_', '-']).to_owned();
    ElectionName::new(cleaned).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("cannot derive an election name from the command {raw:?} ({e}); pass --election NAME"),
        )
    })
}
