//! `elector run`: configuration, backend and command glued to the supervisor.

use anyhow::anyhow;
use election_core::{Candidate, ElectionName};

use crate::cli::RunArgs;
use crate::config::Loaded;
use crate::exit::{self, Failure};
use crate::process::{Job, Launcher};
use crate::supervisor::{self, Mode, Outcome, Plan, Stop};

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
    loaded.check()?;
    job.preflight()
        .map_err(|(code, msg)| Failure::new(code, anyhow!(msg)))?;
    let settings = &loaded.settings;
    let node = loaded.node_id()?;
    let kind = loaded.backend_kind()?;
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
    let plan = Plan {
        job,
        launcher: Launcher::guarded(),
        node: node.clone(),
        backend: kind.to_owned(),
        kill_grace: loaded.kill_grace()?,
        mode,
    };
    let backend = crate::backends::connect_client(loaded, kind).await?;
    let elector = backend.election(&election, Candidate::new(node))?;
    let outcome = supervisor::run(elector, &plan, stop).await?;
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
