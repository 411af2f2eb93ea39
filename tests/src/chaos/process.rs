//! One `elector` process of a host (`run` or `agent`): spawned with its output appended
//! to a log file and `PR_SET_PDEATHSIG = SIGKILL` (so it dies with the runner, even a
//! SIGKILLed one), signals, kill-and-reap, respawn; and how to find the guard groups an
//! `elector run` leads.
//!
//! Spawn only from the thread that drives the run: the parent-death signal follows the
//! spawning *thread*, and that thread lives as long as the run.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getppid};

/// How to start one process.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// For messages and log headers: `n2 elector run`.
    pub(crate) what: String,
    /// The program.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// Extra environment (on top of the runner's, minus every `ELECTOR_` variable).
    pub(crate) env: Vec<(String, String)>,
    /// The log its stdout and stderr are appended to.
    pub(crate) log: PathBuf,
}

/// A process of a host, running or not.
#[derive(Debug)]
pub(crate) struct Proc {
    spec: Spec,
    child: Option<Child>,
}

impl Proc {
    /// Spawns it.
    pub(crate) fn spawn(spec: Spec, header: &str) -> io::Result<Proc> {
        let mut p = Proc { spec, child: None };
        p.respawn(header)?;
        Ok(p)
    }

    /// What it is, for messages.
    pub(crate) fn what(&self) -> &str {
        &self.spec.what
    }

    /// Starts it again (after a kill); `header` goes to its log first.
    pub(crate) fn respawn(&mut self, header: &str) -> io::Result<()> {
        self.kill();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)?;
        writeln!(log, "=== chaos: {header}")?;
        let mut c = Command::new(&self.spec.program);
        c.args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ELECTOR_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        c.envs(self.spec.env.iter().map(|(k, v)| (k, v)));
        let parent = std::process::id();
        // SAFETY: between fork and exec only prctl(2) and getppid(2), plain system calls;
        // the error is built from a raw OS code without allocating.
        unsafe {
            c.pre_exec(move || {
                set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                if u32::try_from(getppid().as_raw()).ok() != Some(parent) {
                    return Err(io::Error::from_raw_os_error(
                        nix::errno::Errno::ESRCH as i32,
                    ));
                }
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: cannot start {}: {e}",
                    self.spec.what,
                    self.spec.program.display()
                ),
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Its pid, while it runs (or until it is reaped).
    pub(crate) fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .map(Pid::from_raw)
    }

    /// Sends `signal`; an error if it is not running.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        let pid = self.pid().ok_or_else(|| {
            io::Error::other(format!(
                "{}: not running, cannot send {signal}",
                self.what()
            ))
        })?;
        kill(pid, signal)
            .map_err(|e| io::Error::other(format!("{}: {signal} failed: {e}", self.what())))
    }

    /// SIGSTOP, returning once every thread is stopped (a thread running when the signal
    /// is queued may act a moment longer). Gives up after `within`.
    pub(crate) fn stop(&self, within: Duration) -> io::Result<()> {
        self.signal(Signal::SIGSTOP)?;
        let pid = self.pid().map_or(0, Pid::as_raw);
        let start = Instant::now();
        while !all_threads_stopped(pid) {
            if start.elapsed() > within {
                return Err(io::Error::other(format!(
                    "{}: not stopped {within:?} after SIGSTOP",
                    self.what()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGKILL and reap; nothing if it is not running.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How it ended, if it exited on its own (then it is reaped and no longer running).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Waits up to `grace` for it to exit (after the caller's SIGTERM), then SIGKILL;
    /// reaped either way.
    pub(crate) fn wait_or_kill(&mut self, grace: Duration) {
        let start = Instant::now();
        while start.elapsed() < grace {
            if self.child.is_none() || self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The children of `pid` (from `/proc/PID/task/*/children`).
pub(crate) fn children(pid: Pid) -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<Pid> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .map(Pid::from_raw)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// SIGSTOP or SIGCONT to each child of a (stopped) `elector run` and to the process group
/// it leads, if any: the guard leads its group (pgid = its pid), and the child program is
/// in it. A child caught before it left the runner's group is stopped by pid.
pub(crate) fn signal_guards(guards: &[Pid], signal: Signal) {
    for &g in guards {
        let _ = killpg(g, signal);
        let _ = kill(g, signal);
    }
}

/// Whether every thread of `pid` is stopped (`T`), per `/proc`. A process that is gone
/// counts as stopped: it will not act either.
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T" || state == "Z" || state == "X")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_logged_stopped_found_and_killed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let spec = Spec {
            what: "sleeper".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo up; sleep 600 & wait".into()],
            env: vec![],
            log: log.clone(),
        };
        let mut p = Proc::spawn(spec, "first start").unwrap();
        let pid = p.pid().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while children(pid).is_empty() {
            assert!(Instant::now() < deadline, "the shell never forked");
            std::thread::sleep(Duration::from_millis(5));
        }
        p.stop(Duration::from_secs(5)).unwrap();
        p.signal(Signal::SIGCONT).unwrap();
        assert!(p.exited().is_none());
        for c in children(pid) {
            let _ = kill(c, Signal::SIGKILL);
        }
        p.kill();
        assert!(p.pid().is_none());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("=== chaos: first start\n"), "{text}");
    }
}
