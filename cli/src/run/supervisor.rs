//! `elector run` as a function of an [`LeaderElector`]: cron mode (one attempt, hold
//! until the command exits and `min_hold` has passed) and supervise mode (run while
//! leading, restart per policy, campaign again after a loss). Backend-agnostic, so it is
//! tested on `election_core::MemoryBackend` with real processes and real signals.

use std::sync::Arc;
use std::time::Duration;

use election_core::{Epoch, LeaderElector, LeaderInfo, Leadership, LossReason, LossWatch, NodeId};
use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::process::{Child, DeadlineLink, Exit, Job, Launcher};
use crate::config::Restart;
use crate::exit::Failure;
use crate::signals::Stop;

/// A child that ran at least this long resets the restart delay to its initial value.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// What to run and how.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The command.
    pub(crate) job: Job,
    /// How to start it.
    pub(crate) launcher: Launcher,
    /// This node (for `ELECTOR_NODE_ID`).
    pub(crate) node: NodeId,
    /// The backend kind (for `ELECTOR_BACKEND`).
    pub(crate) backend: &'static str,
    /// SIGTERM-to-SIGKILL grace.
    pub(crate) kill_grace: Duration,
    /// Cron or supervise.
    pub(crate) mode: Mode,
}

/// The two ways of running.
#[derive(Clone, Debug)]
pub(crate) enum Mode {
    /// One attempt (or wait up to `wait`), run once, hold at least `min_hold`.
    Once {
        /// How long to wait to be elected; `None` is one attempt.
        wait: Option<Duration>,
        /// Minimum time leadership is kept after the command started.
        min_hold: Duration,
    },
    /// Run while leading; restart; campaign again after a loss.
    Supervise {
        /// Restart policy.
        restart: Restart,
        /// First restart delay (doubles up to `delay_max`).
        delay: Duration,
        /// Longest restart delay.
        delay_max: Duration,
        /// Pause between campaign attempts when the backend is unavailable.
        retry: Duration,
    },
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Another node leads (cron mode).
    Skipped {
        /// The leader, if the backend could tell.
        leader: Option<LeaderInfo>,
    },
    /// The command exited and was not restarted.
    Exited {
        /// How.
        exit: Exit,
        /// The epoch it ran under.
        epoch: Epoch,
    },
    /// Leadership was lost while the command ran; its group was killed (cron mode).
    Lost {
        /// Why.
        reason: LossReason,
        /// The epoch that was lost.
        epoch: Epoch,
    },
    /// elector was asked to stop; the command was signalled and leadership resigned.
    Stopped {
        /// The signal elector received.
        signal: Signal,
        /// How the command ended, if one ran.
        exit: Option<Exit>,
    },
}

async fn stopped(stop: &mut Stop) -> Signal {
    let signal = stop.wait_for(Option::is_some).await.map(|s| *s);
    match signal {
        Ok(s) => {
            let s = s.unwrap_or(Signal::SIGTERM);
            crate::notify::notifier().stopping(&format!("stopping on {s}"));
            s
        }
        // The sender is gone: no signal will ever come.
        Err(_) => std::future::pending().await,
    }
}

fn child_env(
    plan: &Plan,
    elector: &dyn LeaderElector,
    epoch: Epoch,
) -> Vec<(&'static str, String)> {
    use election_core::env;
    vec![
        (env::EPOCH, epoch.to_string()),
        (env::ELECTION, elector.name().to_string()),
        (env::NODE_ID, plan.node.to_string()),
        (env::BACKEND, plan.backend.to_owned()),
    ]
}

/// Starts the command under `leadership`: its guard kills it at the leadership's deadline
/// on its own (see [`keep_deadline`]).
fn spawn(
    plan: &Plan,
    elector: &dyn LeaderElector,
    leadership: &Leadership,
) -> Result<Child, Failure> {
    let watch = leadership.loss_watch();
    let page = watch.deadline_source().and_then(|s| s.shared_boot_ns());
    plan.launcher
        .spawn(
            &plan.job,
            &child_env(plan, elector, leadership.epoch()),
            leadership.deadline(),
            page,
            plan.kill_grace,
        )
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                crate::exit::NOT_FOUND
            } else {
                crate::exit::NOT_EXECUTABLE
            };
            Failure::new(
                code,
                anyhow::Error::new(e).context(format!("cannot run {}", plan.job.file_name())),
            )
        })
}

/// Passes every new deadline of a leadership to the guard of its child, so that the guard
/// ends the group at the deadline even if this process stops. Never returns.
async fn keep_deadline(link: DeadlineLink, mut watch: LossWatch) {
    loop {
        link.set(watch.changed().await);
    }
}

/// How a command held under a leadership ended; the command is gone in each case.
enum Held {
    /// It exited by itself.
    Exited(Exit),
    /// The leadership was lost: the group got SIGTERM, then SIGKILL after the grace.
    Lost(LossReason, Exit),
    /// elector received `Signal`: the group got it, then SIGKILL after the grace.
    Stopped(Signal, Exit),
}

/// Starts the command and holds it while `leadership` lasts: the one place that runs a
/// child under a leadership, for both modes. Its guard keeps the leadership's deadline on
/// its own (see [`keep_deadline`]); the child's whole group is gone when this returns.
/// The leadership is the caller's to resign or drop, after that.
async fn hold_child(
    plan: &Plan,
    elector: &dyn LeaderElector,
    leadership: &Leadership,
    stop: &mut Stop,
) -> Result<Held, Failure> {
    let mut child = spawn(plan, elector, leadership)?;
    let link = child.deadline_link();
    let watch = leadership.loss_watch();
    // With a deadline page the guard ends the group at the deadline by itself, reading
    // the page (decision 126): this process need not wake at every deadline to learn of
    // an expiry, only now and then; explicit losses still arrive at once.
    let lazily = link.is_guarded() && watch.deadline_source().is_some();
    let lost = async {
        if lazily {
            watch
                .lost_checking_every(crate::clock::LAZY_LOSS_CHECK)
                .await
        } else {
            watch.lost().await
        }
    };
    Ok(tokio::select! {
        () = keep_deadline(link, leadership.loss_watch()) => unreachable!("keep_deadline never returns"),
        exit = child.wait() => match watch.loss() {
            // Ended at the deadline by the guard (or just then by itself): a loss.
            Some(reason) => Held::Lost(reason, child.terminate(Signal::SIGTERM, plan.kill_grace).await),
            None => {
                child.clean_up(plan.kill_grace).await;
                Held::Exited(exit)
            }
        },
        reason = lost => {
            Held::Lost(reason, child.terminate(Signal::SIGTERM, plan.kill_grace).await)
        }
        signal = stopped(stop) => Held::Stopped(signal, child.terminate(signal, plan.kill_grace).await),
    })
}

async fn resign(leadership: Leadership, name: &str) {
    let epoch = leadership.epoch();
    match leadership.resign().await {
        Ok(()) => tracing::info!(election = name, %epoch, "resigned"),
        Err(e) => {
            tracing::warn!(election = name, %epoch, error = %e, "resigning failed; the lease will expire")
        }
    }
}

/// Runs `plan` on `elector` until it ends; see [`Outcome`].
pub(crate) async fn run(
    elector: Arc<dyn LeaderElector>,
    plan: &Plan,
    mut stop: Stop,
) -> Result<Outcome, Failure> {
    match plan.mode.clone() {
        Mode::Once { wait, min_hold } => run_once(&*elector, plan, wait, min_hold, &mut stop).await,
        Mode::Supervise {
            restart,
            delay,
            delay_max,
            retry,
        } => {
            supervise(
                &*elector,
                plan,
                restart,
                (delay, delay_max),
                retry,
                &mut stop,
            )
            .await
        }
    }
}

async fn run_once(
    elector: &dyn LeaderElector,
    plan: &Plan,
    wait: Option<Duration>,
    min_hold: Duration,
    stop: &mut Stop,
) -> Result<Outcome, Failure> {
    let name = elector.name().to_string();
    let attempt = async {
        match wait {
            None => elector.try_campaign().await,
            Some(w) => match tokio::time::timeout(w, elector.campaign()).await {
                Ok(r) => r.map(Some),
                Err(_) => Ok(None),
            },
        }
    };
    let leadership = tokio::select! {
        r = attempt => r?,
        signal = stopped(stop) => return Ok(Outcome::Stopped { signal, exit: None }),
    };
    let Some(leadership) = leadership else {
        let leader = elector.leader().await.ok().flatten();
        return Ok(Outcome::Skipped { leader });
    };
    let epoch = leadership.epoch();
    if let Some(reason) = leadership.loss_watch().loss() {
        // Already over (a slow grant): never start the command without a leadership.
        return Ok(Outcome::Lost { reason, epoch });
    }
    tracing::info!(election = %name, %epoch, "elected; starting {}", plan.job.file_name());
    let started = Instant::now();
    let held = match hold_child(plan, elector, &leadership, stop).await {
        Ok(h) => h,
        Err(e) => {
            resign(leadership, &name).await;
            return Err(e);
        }
    };
    match held {
        Held::Exited(exit) => {
            tracing::info!(election = %name, %epoch, "command ended with {exit}");
            let hold_until = started + min_hold;
            if Instant::now() < hold_until {
                tracing::info!(election = %name, "holding leadership for the rest of min_hold ({})",
                    humantime::format_duration(Duration::from_millis((hold_until - Instant::now()).as_millis() as u64)));
            }
            tokio::select! {
                () = tokio::time::sleep_until(hold_until) => resign(leadership, &name).await,
                reason = leadership.lost() => {
                    tracing::warn!(election = %name, %epoch, "leadership lost during min_hold: {reason}");
                }
                _ = stopped(stop) => resign(leadership, &name).await,
            }
            Ok(Outcome::Exited { exit, epoch })
        }
        Held::Lost(reason, exit) => {
            tracing::warn!(election = %name, %epoch, "leadership lost ({reason}); command stopped ({exit})");
            drop(leadership);
            Ok(Outcome::Lost { reason, epoch })
        }
        Held::Stopped(signal, exit) => {
            tracing::info!(election = %name, %epoch, "received {signal}; command ended with {exit}; handing over");
            resign(leadership, &name).await;
            Ok(Outcome::Stopped {
                signal,
                exit: Some(exit),
            })
        }
    }
}

/// The status line of a supervisor waiting to lead: who leads, as far as the backend
/// answers at once.
async fn following(elector: &dyn LeaderElector, name: &str) -> String {
    match tokio::time::timeout(Duration::from_secs(1), elector.leader()).await {
        Ok(Ok(Some(l))) => format!("following {} in {name} (epoch {})", l.node, l.epoch),
        Ok(Ok(None)) => format!("waiting to lead {name} (no leader now)"),
        _ => format!("waiting to lead {name}"),
    }
}

async fn supervise(
    elector: &dyn LeaderElector,
    plan: &Plan,
    restart: Restart,
    (first_delay, delay_max): (Duration, Duration),
    retry: Duration,
    stop: &mut Stop,
) -> Result<Outcome, Failure> {
    let name = elector.name().to_string();
    let mut retry_delay = retry;
    loop {
        if crate::notify::notifier().is_active() {
            crate::notify::notifier().status(&following(elector, &name).await);
        }
        let leadership = tokio::select! {
            r = elector.campaign() => match r {
                Ok(l) => l,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(election = %name, error = %e, "campaign failed; retrying in {}",
                        humantime::format_duration(retry_delay));
                    tokio::select! {
                        () = tokio::time::sleep(retry_delay) => {}
                        signal = stopped(stop) => return Ok(Outcome::Stopped { signal, exit: None }),
                    }
                    retry_delay = (retry_delay * 2).min(delay_max.max(retry));
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            signal = stopped(stop) => return Ok(Outcome::Stopped { signal, exit: None }),
        };
        retry_delay = retry;
        let epoch = leadership.epoch();
        tracing::info!(election = %name, %epoch, "elected; starting {}", plan.job.file_name());
        crate::notify::notifier().status(&format!(
            "leading {name} at epoch {epoch}, running {}",
            plan.job.file_name()
        ));
        let mut delay = first_delay;
        loop {
            // A suspend of the host since the grant counts as a loss too (election-core
            // compares the boot clock with the monotonic one), so a restart after a
            // suspend never runs the command under a leadership that is long over.
            if let Some(reason) = leadership.loss_watch().loss() {
                tracing::warn!(election = %name, %epoch, "leadership lost ({reason}) before the command started; campaigning again");
                break;
            }
            let started = Instant::now();
            let held = match hold_child(plan, elector, &leadership, stop).await {
                Ok(h) => h,
                Err(e) => {
                    resign(leadership, &name).await;
                    return Err(e);
                }
            };
            match held {
                Held::Exited(exit) => {
                    let again = match restart {
                        Restart::Never => false,
                        Restart::OnFailure => !exit.success(),
                        Restart::Always => true,
                    };
                    if !again {
                        tracing::info!(election = %name, %epoch, "command ended with {exit}; not restarting");
                        resign(leadership, &name).await;
                        return Ok(Outcome::Exited { exit, epoch });
                    }
                    if started.elapsed() >= HEALTHY_RUN {
                        delay = first_delay;
                    }
                    tracing::warn!(election = %name, %epoch, "command ended with {exit}; restarting in {}",
                        humantime::format_duration(delay));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        reason = leadership.lost() => {
                            tracing::warn!(election = %name, %epoch, "leadership lost ({reason}); campaigning again");
                            break;
                        }
                        signal = stopped(stop) => {
                            resign(leadership, &name).await;
                            return Ok(Outcome::Stopped { signal, exit: Some(exit) });
                        }
                    }
                    delay = (delay * 2).min(delay_max);
                }
                Held::Lost(reason, exit) => {
                    tracing::warn!(election = %name, %epoch, "leadership lost ({reason}); command stopped ({exit}); campaigning again");
                    break;
                }
                Held::Stopped(signal, exit) => {
                    tracing::info!(election = %name, %epoch, "received {signal}; command ended with {exit}; handing over");
                    resign(leadership, &name).await;
                    return Ok(Outcome::Stopped {
                        signal,
                        exit: Some(exit),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
