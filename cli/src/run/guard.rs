//! The guard: the tiny process that leads the command's process group, kills the group at
//! the leadership's deadline on its own, and kills it if elector dies.
//!
//! elector forks it (decision records 063, 092 and 101): the guard is the forked child of
//! elector's spawn and never execs, so a one-shot run pays for one fork instead of a
//! second exec of this binary. In the forked child it blocks the signals below, asks for
//! `PR_SET_PDEATHSIG = SIGUSR1` and re-checks its parent, becomes a child subreaper (so the
//! command's orphans are its children and it can tell when the group is empty), closes the
//! descriptors that exec would have closed (those marked close-on-exec) except the read end
//! of its deadline pipe, takes the blocked signals through a `signalfd`, forks CMD (which
//! inherits the group; its signal mask is cleared before `execve`), then waits in `ppoll`
//! on the signals, the deadline pipe and its own timer:
//!
//! - **The deadline** (decision 101). The guard holds the leadership's current deadline,
//!   on `CLOCK_BOOTTIME` (which keeps counting while the machine is suspended, as the
//!   server's TTL does). elector writes each new deadline to the pipe as one 8-byte
//!   message (little-endian nanoseconds; written atomically, never allocated for here);
//!   the latest message wins, earlier or later. When the deadline passes, the guard sends
//!   SIGTERM to the group, and SIGKILL to the group (itself included) one kill grace later
//!   unless the group is empty by then; from that moment it takes no new deadline. So a
//!   stopped, blocked or deadlocked elector cannot leave the command running past its
//!   lease. elector does the same first when it is healthy, by sending [`KILL_NOW`]
//!   (one SIGTERM, from the guard).
//! - **The deadline page** (decision 126). Through the agent, the leadership's deadlines
//!   are also stored by the agent into a page of shared memory that elector mapped before
//!   the fork. When its deadline passes, the guard first loads the page: a later deadline
//!   there becomes its deadline (one load, no message, nobody woken per extension); only
//!   a page that has not moved past now ends the command. [`KILL_NOW`] stops it from
//!   consulting the page.
//! - SIGCHLD → reap every exited child; once CMD has exited, exit with its code (128 + N
//!   when killed by signal N), at once if the deadline has not fired, else once no other
//!   member of the group is left.
//! - SIGUSR1 (elector died) → SIGKILL to the whole group, itself included.
//! - SIGTERM, SIGINT, SIGHUP, SIGQUIT → ignored here, because they were sent to the whole
//!   group and CMD decides what to do with them.
//!
//! Not guaranteed: members that CMD left behind when it exited on its own, before any
//! deadline fired, are left to elector to end (elector's `clean_up`), as are descendants
//! that leave the group (`setsid`) when the command has no cgroup of its own. With one
//! ([`super::cgroup`]), CMD moves itself into it before `execve`, and every SIGKILL the guard
//! sends (at the deadline plus the grace, or when elector dies) is also a `cgroup.kill`.
//!
//! Everything the forked child does is an async-signal-safe system call on memory
//! prepared by the parent ([`Prepared`]): no allocation, no locks.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use nix::sys::signal::Signal;

use super::cgroup::{self, Cgroup, Fds};

/// The pipe message that ends the command now, whatever the deadline page says.
pub(crate) const KILL_NOW: i64 = i64::MIN;

const SIGNALS: [Signal; 6] = [
    Signal::SIGCHLD,
    Signal::SIGUSR1,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Sets the signal mask to exactly `signals` (async-signal-safe).
pub(crate) fn set_mask_raw(signals: &[Signal]) {
    // SAFETY: sigemptyset/sigaddset/sigprocmask are async-signal-safe; `set` is local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s as libc::c_int);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The command's `execve` arguments and the guard's deadline settings, built in the parent
/// before the fork.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The read end of the deadline pipe (close-on-exec, non-blocking).
    deadlines: libc::c_int,
    /// The first deadline, nanoseconds on `CLOCK_BOOTTIME`.
    deadline: i64,
    /// The deadline page's word (null without one); mapped shared, so the forked guard
    /// reads what the agent stores.
    page: *const AtomicI64,
    /// SIGTERM-to-SIGKILL grace, nanoseconds.
    grace: i64,
    /// The command's cgroup, if it has one ([`super::cgroup`]).
    cgroup: Fds,
    /// Its directory, removed by the guard once empty.
    cgroup_dir: Option<CString>,
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    not_found: Vec<u8>,
    not_executable: Vec<u8>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same struct, which are
// never changed after construction.
unsafe impl Send for Prepared {}
// SAFETY: as above; nothing mutates through the pointers.
unsafe impl Sync for Prepared {}

fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an argument or environment value holds a NUL byte",
        )
    })
}

/// What the guard keeps besides the command: its deadlines and how it kills.
pub(crate) struct Guarding<'a> {
    /// The read end of the deadline pipe.
    pub(crate) deadlines: libc::c_int,
    /// The first deadline, nanoseconds on `CLOCK_BOOTTIME` (see [`crate::clock`]).
    pub(crate) deadline: i64,
    /// A word of shared memory holding later deadlines (see the module doc), read when the
    /// deadline passes; it must stay mapped until the fork.
    pub(crate) page: Option<&'a AtomicI64>,
    /// Between SIGTERM and SIGKILL.
    pub(crate) grace: std::time::Duration,
    /// The command's own cgroup, if it has one.
    pub(crate) cgroup: Option<&'a Cgroup>,
}

impl Prepared {
    /// `execve(path, [program, args...], this process's environment + env)`, guarded as
    /// `guarding` says: the first deadline, the later ones that arrive on the pipe, the
    /// grace between SIGTERM and SIGKILL, and the cgroup whose `cgroup.kill` goes with
    /// every SIGKILL.
    pub(crate) fn new(
        path: &Path,
        program: &OsString,
        args: &[OsString],
        env: &[(&str, String)],
        guarding: Guarding<'_>,
    ) -> std::io::Result<Prepared> {
        let Guarding {
            deadlines,
            deadline,
            page,
            grace,
            cgroup,
        } = guarding;
        let argv: Vec<CString> = std::iter::once(program)
            .chain(args)
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !env.iter().any(|(e, _)| k.as_bytes() == e.as_bytes()))
            .filter(|(k, _)| {
                !crate::notify::ENV
                    .iter()
                    .any(|e| k.as_bytes() == e.as_bytes())
            })
            .collect();
        vars.extend(
            env.iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let envp: Vec<CString> = vars
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv)
            })
            .collect::<Result<_, _>>()?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        let name = program.to_string_lossy();
        Ok(Prepared {
            deadlines,
            deadline,
            page: page.map_or(std::ptr::null(), std::ptr::from_ref),
            grace: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
            cgroup: cgroup.map_or(Fds::NONE, Cgroup::fds),
            cgroup_dir: cgroup.and_then(Cgroup::dir_c),
            path: cstring(path.as_os_str().as_bytes())?,
            argv_ptrs: ptrs(&argv),
            _argv: argv,
            envp_ptrs: ptrs(&envp),
            _envp: envp,
            not_found: format!("elector: cannot run {name}: not found\n").into_bytes(),
            not_executable: format!("elector: cannot run {name}: not executable\n").into_bytes(),
        })
    }
}

/// What the guard's loop is waiting for.
#[derive(Clone, Copy)]
enum Phase {
    /// CMD runs; SIGTERM to the group at this deadline (ns on `CLOCK_BOOTTIME`).
    Guarding(i64),
    /// The deadline fired: SIGKILL to the group at this instant unless it is empty.
    Killing(i64),
}

/// The guard, in the child forked by elector's spawn (between fork and exec: the call
/// never returns, so that exec never happens). `parent` is elector's pid.
///
/// # Safety
///
/// Call only in a freshly forked child; uses async-signal-safe system calls only.
pub(crate) unsafe fn run_in_child(command: &Prepared, parent: libc::pid_t) -> ! {
    set_mask_raw(&SIGNALS);
    // SAFETY (whole block): async-signal-safe system calls on memory prepared before the
    // fork; every buffer is a local.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGUSR1 as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            || libc::getppid() != parent
        {
            // elector is already gone (or we cannot learn of its death): run nothing.
            libc::_exit(crate::exit::SOFTWARE.into());
        }
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        let cg = command.cgroup;
        close_cloexec_descriptors(&[command.deadlines, cg.procs, cg.kill, cg.events]);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s as libc::c_int);
        }
        // Close-on-exec: CMD never sees it.
        let signals = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if signals < 0 {
            libc::_exit(crate::exit::SOFTWARE.into());
        }
        let pid = libc::fork();
        if pid == 0 {
            if cg.procs >= 0 {
                // Into the command's own cgroup before anything runs: every descendant
                // stays in it, whatever it does with sessions and groups.
                libc::write(cg.procs, c"0".as_ptr().cast(), 1);
            }
            set_mask_raw(&[]);
            libc::execve(
                command.path.as_ptr(),
                command.argv_ptrs.as_ptr(),
                command.envp_ptrs.as_ptr(),
            );
            let (msg, code) = if *libc::__errno_location() == libc::ENOENT {
                (&command.not_found, crate::exit::NOT_FOUND)
            } else {
                (&command.not_executable, crate::exit::NOT_EXECUTABLE)
            };
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(code.into());
        }
        if pid < 0 {
            libc::_exit(crate::exit::SOFTWARE.into());
        }
        let group = libc::getpid();
        let mut phase = Phase::Guarding(command.deadline);
        let mut deadlines = command.deadlines;
        let mut page = command.page;
        // Bytes of a deadline message not read whole yet.
        let mut partial = [0u8; 8];
        let mut have = 0usize;
        let mut exit_code: Option<libc::c_int> = None;
        loop {
            let now = crate::clock::boot_now_ns();
            if let Phase::Guarding(deadline) = phase
                && now >= deadline
            {
                // The page may hold a later deadline: one atomic load of shared memory.
                let stored = if page.is_null() {
                    i64::MIN
                } else {
                    (*page).load(Ordering::Acquire)
                };
                if stored > now {
                    phase = Phase::Guarding(stored);
                    continue;
                }
                libc::kill(0, libc::SIGTERM);
                phase = Phase::Killing(deadline.max(stored).saturating_add(command.grace));
            }
            if let Phase::Killing(at) = phase
                && now >= at
            {
                kill_everything(cg);
                libc::_exit(crate::exit::SOFTWARE.into());
            }
            let wake = match phase {
                Phase::Guarding(t) | Phase::Killing(t) => t,
            };
            let left = wake.saturating_sub(now).max(0);
            let timeout = libc::timespec {
                tv_sec: left / 1_000_000_000,
                tv_nsec: left % 1_000_000_000,
            };
            let mut fds = [
                libc::pollfd {
                    fd: signals,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    // A negative descriptor is ignored by ppoll.
                    fd: deadlines,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if libc::ppoll(fds.as_mut_ptr(), 2, &timeout, std::ptr::null()) <= 0 {
                continue;
            }
            if fds[1].revents != 0 {
                let mut buf = [0u8; 256];
                let n = libc::read(deadlines, buf.as_mut_ptr().cast(), buf.len());
                if n == 0 {
                    // elector closed its end: keep the last deadline.
                    libc::close(deadlines);
                    deadlines = -1;
                } else if n > 0 {
                    for &b in &buf[..n as usize] {
                        partial[have] = b;
                        have += 1;
                        if have == partial.len() {
                            have = 0;
                            if let Phase::Guarding(_) = phase {
                                let mut next = i64::from_le_bytes(partial);
                                if next == KILL_NOW {
                                    // Now, and no page can keep it.
                                    page = std::ptr::null();
                                    next = crate::clock::boot_now_ns();
                                }
                                phase = Phase::Guarding(next);
                            }
                        }
                    }
                }
            }
            if fds[0].revents == 0 {
                continue;
            }
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let mut child_exited = false;
            while libc::read(signals, (&raw mut info).cast(), size) == size as isize {
                match info.ssi_signo as libc::c_int {
                    libc::SIGCHLD => child_exited = true,
                    libc::SIGUSR1 if libc::getppid() != parent => {
                        // elector died: nothing may run on unguarded. Kills this process too.
                        kill_everything(cg);
                        libc::_exit(crate::exit::SOFTWARE.into());
                    }
                    _ => {}
                }
            }
            if !child_exited {
                continue;
            }
            loop {
                let mut status: libc::c_int = 0;
                let reaped = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if reaped <= 0 {
                    break;
                }
                if reaped == pid {
                    exit_code = if libc::WIFEXITED(status) {
                        Some(libc::WEXITSTATUS(status) & 0xff)
                    } else if libc::WIFSIGNALED(status) {
                        Some((128 + libc::WTERMSIG(status)) & 0xff)
                    } else {
                        exit_code
                    };
                }
            }
            if let Some(code) = exit_code {
                let group_empty = {
                    let mut status: libc::c_int = 0;
                    libc::waitpid(-group, &mut status, libc::WNOHANG) < 0
                        && (cg.events < 0 || !cgroup::populated(cg.events))
                };
                if group_empty && let Some(dir) = &command.cgroup_dir {
                    libc::rmdir(dir.as_ptr());
                }
                if matches!(phase, Phase::Guarding(_)) || group_empty {
                    libc::_exit(code);
                }
            }
        }
    }
}

/// SIGKILL to the command's cgroup (every descendant, also those that left the group) and
/// to the process group, this guard included: the call does not return.
///
/// # Safety
///
/// Async-signal-safe; for the guard's forked child only.
unsafe fn kill_everything(cg: Fds) {
    // SAFETY: write and kill on plain values.
    unsafe {
        if cg.kill >= 0 {
            libc::write(cg.kill, c"1".as_ptr().cast(), 1);
        }
        libc::kill(0, libc::SIGKILL);
    }
}

/// Closes what `execve` would have closed: every descriptor above stderr marked
/// close-on-exec (among them the pipe on which the parent's spawn waits for the exec,
/// which therefore returns now), except those in `keep`. Descriptors without the flag stay
/// open for CMD, as before. Lists `/proc/self/fd` with raw `getdents64`; without `/proc`,
/// checks descriptors 3 to 4095.
unsafe fn close_cloexec_descriptors(keep: &[libc::c_int]) {
    // SAFETY: open/getdents64/fcntl/close on a stack buffer.
    unsafe {
        let dir = libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            for fd in 3..4096 {
                close_if_cloexec(fd, keep);
            }
            return;
        }
        // Collect first, close after: the listing must not change under us.
        let mut fds = [0 as libc::c_int; 1024];
        let mut n = 0;
        let mut buf = [0u8; 4096];
        loop {
            let got = libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len());
            if got <= 0 {
                break;
            }
            let mut off = 0usize;
            while off < got as usize {
                // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[] }
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                let mut fd: libc::c_int = 0;
                let mut digits = false;
                for &b in &buf[off + 19..off + reclen] {
                    match b {
                        b'0'..=b'9' => {
                            fd = fd
                                .saturating_mul(10)
                                .saturating_add((b - b'0') as libc::c_int);
                            digits = true;
                        }
                        _ => break,
                    }
                }
                if digits && fd > 2 && fd != dir && !keep.contains(&fd) && n < fds.len() {
                    fds[n] = fd;
                    n += 1;
                }
                off += reclen.max(1);
            }
        }
        libc::close(dir);
        for &fd in &fds[..n] {
            close_if_cloexec(fd, keep);
        }
        if n == fds.len() {
            // More than we could list: check the rest the slow way.
            for fd in 3..65536 {
                close_if_cloexec(fd, keep);
            }
        }
    }
}

unsafe fn close_if_cloexec(fd: libc::c_int, keep: &[libc::c_int]) {
    // SAFETY: fcntl and close on a descriptor number.
    unsafe {
        if !keep.contains(&fd) {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}
