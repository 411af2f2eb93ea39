//! The guarded child: its own process group, a parent-death guard, and group-wide
//! termination that waits until every member of the group is gone.
//!
//! # What is guaranteed
//!
//! - The command runs in a new process group whose id is the pid of the process elector
//!   spawned. Signals go to the whole group, so grandchildren (`sh -c 'sleep 1000 & wait'`)
//!   receive them too.
//! - [`Child::terminate`] sends SIGTERM to the group, waits up to the grace for every member
//!   to exit, then sends SIGKILL to the group, and returns only once the group is empty
//!   (elector is a child subreaper, so orphaned grandchildren are re-parented to it and
//!   reaped) or, if a member cannot be reaped, after a bounded wait.
//! - When elector itself dies (even by SIGKILL), the group is killed: with the guard (the
//!   default in the binary) a tiny guard process, forked from elector, leads the group,
//!   learns of elector's death through `PR_SET_PDEATHSIG` and sends SIGKILL to its whole
//!   group.
//!   Without the guard (unit tests) only the direct child gets SIGKILL from
//!   `PR_SET_PDEATHSIG`.
//! - With the guard, the leadership's deadline is enforced even if elector stops (SIGSTOP,
//!   a blocked stderr, a bug): the guard holds the current deadline ([`Child::deadline_link`]
//!   forwards each new one), SIGTERMs the group when it passes and SIGKILLs it one grace
//!   later, on its own (decision 101).
//!
//! - Where elector may create a cgroup v2 (root, or systemd's `Delegate=yes`), the command
//!   runs in one of its own ([`super::cgroup`]), and every SIGKILL of the group is also a
//!   `cgroup.kill`: a descendant that left the group (`setsid`, `setpgid`, a daemon's
//!   double fork) dies with it, and the command counts as gone only once the cgroup is
//!   empty.
//!
//! Not guaranteed without a cgroup: a descendant that leaves the group escapes both. With
//! one, such a descendant gets no SIGTERM (only the group does), only the SIGKILL one kill
//! grace later.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::time::Instant;

use super::cgroup::Cgroup;

/// How long to wait for SIGKILLed processes to be reaped before giving up on them.
const KILL_REAP_BOUND: Duration = Duration::from_secs(5);

/// The command to run.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    /// The program, looked up on `PATH` if it has no `/`.
    pub(crate) program: OsString,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
}

impl Job {
    /// Checks that the program exists and is executable, as the shell would, so that a
    /// typo fails before campaigning. Returns the exit code and message on failure.
    pub(crate) fn preflight(&self) -> Result<(), (u8, String)> {
        let name = Path::new(&self.program);
        match self.resolve() {
            None => Err((
                crate::exit::NOT_FOUND,
                format!("command not found: {}", name.display()),
            )),
            Some(p) if !p.is_file() || !is_executable(&p) => Err((
                crate::exit::NOT_EXECUTABLE,
                format!("command is not an executable file: {}", p.display()),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The program's path: as given if it holds a `/` (and exists), else the first
    /// executable file of that name on `PATH`, as the shell finds it.
    pub(crate) fn resolve(&self) -> Option<PathBuf> {
        let name = Path::new(&self.program);
        if self.program.as_bytes().contains(&b'/') {
            Some(name.to_path_buf()).filter(|p| p.exists())
        } else {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file() && is_executable(p))
            })
        }
    }

    /// A short name for logs and for the default election name.
    pub(crate) fn file_name(&self) -> String {
        Path::new(&self.program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.program.to_string_lossy().into_owned())
    }
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// How a process ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    fn from_status(s: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt as _;
        match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(crate::exit::SOFTWARE.into()),
        }
    }

    /// Whether it exited with code 0.
    pub(crate) fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The exit code elector passes on: the code itself, or 128 + the signal number.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Code(c) => (c & 0xff) as u8,
            Exit::Signal(s) => 128u8.wrapping_add(s as u8),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "signal {sig}"),
                Err(_) => write!(f, "signal {s}"),
            },
        }
    }
}

/// Starts guarded children.
#[derive(Clone, Debug)]
pub(crate) struct Launcher {
    guard: bool,
}

impl Launcher {
    /// Children led by a guard process (forked from elector, see [`super::guard`]), so
    /// that the whole group dies with elector.
    pub(crate) fn guarded() -> Self {
        Launcher { guard: true }
    }

    /// Children started directly (only the child itself gets the parent-death signal).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn direct() -> Self {
        Launcher { guard: false }
    }

    /// Starts `job` in a new process group with `env` added to its environment. With the
    /// guard, the group is killed at `deadline` (SIGTERM, SIGKILL `grace` later) unless a
    /// later deadline arrives through [`Child::deadline_link`], or is found in `page` when
    /// the deadline comes (a word of shared memory the agent stores deadlines into; see
    /// `agent::deadline_page`).
    pub(crate) fn spawn(
        &self,
        job: &Job,
        env: &[(&str, String)],
        deadline: Instant,
        page: Option<&AtomicI64>,
        grace: Duration,
    ) -> io::Result<Child> {
        become_subreaper();
        let parent = std::process::id() as libc::pid_t;
        let mut link = DeadlineLink(None);
        let mut cgroup = None;
        let mut cmd = if self.guard {
            // Resolved now; if it vanished since the preflight, execve reports it (127).
            let path = job.resolve().unwrap_or_else(|| PathBuf::from(&job.program));
            let (read, write) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                    .map_err(io::Error::from)?;
            cgroup = Cgroup::create();
            let prepared = super::guard::Prepared::new(
                &path,
                &job.program,
                &job.args,
                env,
                super::guard::Guarding {
                    deadlines: read.as_raw_fd(),
                    deadline: crate::clock::to_boot_ns(deadline),
                    page,
                    grace,
                    cgroup: cgroup.as_ref(),
                },
            )?;
            link = DeadlineLink(Some(Arc::new(write)));
            // The program is never executed: the forked child becomes the guard. `read`
            // stays open in this process until the spawn returned (the fork took a copy).
            let mut c = tokio::process::Command::new(&path);
            // SAFETY: the guard uses only async-signal-safe system calls on `prepared`,
            // built before the fork.
            unsafe {
                c.pre_exec(move || {
                    let _keep_open = &read;
                    super::guard::run_in_child(&prepared, parent)
                });
            }
            c
        } else {
            let mut c = tokio::process::Command::new(&job.program);
            c.args(&job.args);
            // SAFETY: only async-signal-safe libc calls between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    super::guard::set_mask_raw(&[]);
                    set_parent_death_signal(libc::SIGKILL, parent)
                });
            }
            c.envs(env.iter().map(|(k, v)| (k, v)));
            for k in crate::notify::ENV {
                c.env_remove(k);
            }
            c
        };
        cmd.process_group(0).kill_on_drop(false);
        let child = cmd.spawn()?;
        // The parent's copy of the pipe's read end goes with `cmd`.
        drop(cmd);
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the child exited before its pid was read"))?;
        Ok(Child {
            child,
            pgid: Pid::from_raw(pid as i32),
            exit: None,
            link,
            cgroup,
        })
    }
}

/// elector's end of a guard's deadline pipe (none without a guard). Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct DeadlineLink(Option<Arc<OwnedFd>>);

impl DeadlineLink {
    /// Tells the guard the group may run until `deadline` (earlier or later than before;
    /// a guard whose deadline already fired ignores it). Never blocks.
    pub(crate) fn set(&self, deadline: Instant) {
        self.send(crate::clock::to_boot_ns(deadline));
    }

    /// Tells the guard to end the group now (SIGTERM now, SIGKILL one grace later),
    /// whatever its deadline page says. Never blocks.
    pub(crate) fn kill_now(&self) {
        self.send(super::guard::KILL_NOW);
    }

    fn send(&self, boot_ns: i64) {
        let Some(fd) = &self.0 else {
            return;
        };
        // One 8-byte write on a pipe is atomic: the guard never reads half a deadline.
        match nix::unistd::write(fd, &boot_ns.to_le_bytes()) {
            Ok(_) => {}
            // The guard has exited (the group is ending anyway).
            Err(Errno::EPIPE) => {}
            Err(e) => tracing::warn!(error = %e, "could not pass the deadline to the guard"),
        }
    }

    /// Whether a guard receives the deadlines.
    pub(crate) fn is_guarded(&self) -> bool {
        self.0.is_some()
    }
}

/// Runs in the forked child before exec: ask for `signal` when the parent dies, and close
/// the race where the parent died before the request.
fn set_parent_death_signal(signal: libc::c_int, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(io::Error::other(
                "elector exited while starting the command",
            ));
        }
    }
    Ok(())
}

/// Makes orphaned descendants re-parent to this process, so they can be reaped and their
/// death observed. Idempotent.
fn become_subreaper() {
    // SAFETY: a plain prctl on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// A running guarded child and its process group.
#[derive(Debug)]
pub(crate) struct Child {
    child: tokio::process::Child,
    pgid: Pid,
    exit: Option<Exit>,
    link: DeadlineLink,
    /// The command's own cgroup, where elector may create one: it holds every
    /// descendant, also those that left the process group.
    cgroup: Option<Cgroup>,
}

impl Child {
    /// Waits for the group leader to exit. Cancel-safe.
    pub(crate) async fn wait(&mut self) -> Exit {
        if let Some(e) = self.exit {
            return e;
        }
        let exit = match self.child.wait().await {
            Ok(s) => Exit::from_status(s),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the command failed");
                Exit::Code(crate::exit::SOFTWARE.into())
            }
        };
        self.exit = Some(exit);
        exit
    }

    /// A handle that forwards deadlines to this child's guard, for another task.
    pub(crate) fn deadline_link(&self) -> DeadlineLink {
        self.link.clone()
    }

    /// Whether any process of the command is left: in its group, or in its cgroup.
    fn alive(&self) -> bool {
        group_alive(self.pgid) || self.cgroup.as_ref().is_some_and(Cgroup::populated)
    }

    /// Sends `signal` to the whole group (SIGKILL: to the whole cgroup too).
    pub(crate) fn signal_group(&self, signal: Signal) {
        if signal == Signal::SIGKILL
            && let Some(c) = &self.cgroup
        {
            c.kill();
        }
        match killpg(self.pgid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = self.pgid.as_raw(), error = %e, "signalling the command's group failed")
            }
        }
    }

    /// Ends the whole group: `first` (SIGTERM, or the signal elector received) to the
    /// group, SIGKILL after `grace`, and returns once the group is gone (or a member
    /// cannot be reaped within a bounded time). Returns how the group leader ended.
    pub(crate) async fn terminate(&mut self, first: Signal, grace: Duration) -> Exit {
        let now = Instant::now();
        let deadline = now + grace;
        if self.exit.is_none() && first == Signal::SIGTERM && self.link.is_guarded() {
            // The guard's deadline, moved to now: one SIGTERM (from the guard), and the
            // guard's own SIGKILL after the grace even if this process stops meanwhile.
            self.link.kill_now();
        } else if self.exit.is_none() || self.alive() {
            self.signal_group(first);
        }
        let exit = match tokio::time::timeout_at(deadline, self.wait()).await {
            Ok(e) => e,
            Err(_) => {
                self.signal_group(Signal::SIGKILL);
                self.wait().await
            }
        };
        self.drain(deadline).await;
        exit
    }

    /// After the leader was reaped: waits until no member of the group is left, sending
    /// SIGKILL at `deadline`.
    async fn drain(&mut self, deadline: Instant) {
        let mut killed_at = None;
        loop {
            reap_group(self.pgid);
            if !self.alive() {
                return;
            }
            let now = Instant::now();
            match killed_at {
                None if now >= deadline => {
                    self.signal_group(Signal::SIGKILL);
                    killed_at = Some(now);
                }
                Some(t) if now.duration_since(t) > KILL_REAP_BOUND => {
                    tracing::warn!(
                        pgid = self.pgid.as_raw(),
                        "members of the command's process group were killed but not reaped"
                    );
                    return;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// After the leader exited on its own: ends whatever it left behind in its group
    /// (SIGTERM, SIGKILL after `grace`).
    pub(crate) async fn clean_up(&mut self, grace: Duration) {
        reap_group(self.pgid);
        if self.alive() {
            tracing::info!(
                pgid = self.pgid.as_raw(),
                "the command left processes in its group or cgroup; terminating them"
            );
            self.terminate(Signal::SIGTERM, grace).await;
        }
    }
}

/// Whether any process (a zombie included) is left in group `pgid`.
fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// Reaps exited members of group `pgid` that were re-parented to us.
fn reap_group(pgid: Pid) {
    loop {
        match waitpid(Pid::from_raw(-pgid.as_raw()), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
