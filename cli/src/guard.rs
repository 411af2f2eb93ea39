//! The guard: the tiny process that leads the command's process group and kills the whole
//! group if elector dies.
//!
//! elector forks it (decision records 063 and 092): the guard is the forked child of
//! elector's spawn and never execs, so a one-shot run pays for one fork instead of a
//! second exec of this binary. In the forked child it blocks the signals below, asks for
//! `PR_SET_PDEATHSIG = SIGUSR1` and re-checks its parent, closes the descriptors that
//! exec would have closed (those marked close-on-exec), forks CMD (which inherits the
//! group; its signal mask is cleared before `execve`), then waits on signals
//! synchronously: SIGCHLD → if CMD exited, exit with its code (128 + N when killed by
//! signal N); SIGUSR1 (elector died) → SIGKILL to the whole group, itself included;
//! SIGTERM, SIGINT, SIGHUP, SIGQUIT → ignored here, because they were sent to the whole
//! group and CMD decides what to do with them.
//!
//! Everything the forked child does is an async-signal-safe system call on memory
//! prepared by the parent ([`Prepared`]): no allocation, no locks.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use nix::sys::signal::Signal;

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

/// The command's `execve` arguments, built in the parent before the fork.
#[derive(Debug)]
pub(crate) struct Prepared {
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

impl Prepared {
    /// `execve(path, [program, args...], this process's environment + env)`.
    pub(crate) fn new(
        path: &Path,
        program: &OsString,
        args: &[OsString],
        env: &[(&str, String)],
    ) -> std::io::Result<Prepared> {
        let argv: Vec<CString> = std::iter::once(program)
            .chain(args)
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !env.iter().any(|(e, _)| k.as_bytes() == e.as_bytes()))
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

/// The guard, in the child forked by elector's spawn (between fork and exec: the call
/// never returns, so that exec never happens). `parent` is elector's pid.
///
/// # Safety
///
/// Call only in a freshly forked child; uses async-signal-safe system calls only.
pub(crate) unsafe fn run_in_child(command: &Prepared, parent: libc::pid_t) -> ! {
    set_mask_raw(&SIGNALS);
    // SAFETY (whole block): async-signal-safe system calls on memory prepared before the
    // fork; `status`, `signal` and `set` are locals.
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
        close_cloexec_descriptors();
        let pid = libc::fork();
        if pid == 0 {
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
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s as libc::c_int);
        }
        loop {
            let mut signal: libc::c_int = 0;
            if libc::sigwait(&set, &mut signal) != 0 {
                continue;
            }
            if signal == libc::SIGCHLD {
                let mut status: libc::c_int = 0;
                if libc::waitpid(pid, &mut status, libc::WNOHANG) == pid {
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status) & 0xff
                    } else if libc::WIFSIGNALED(status) {
                        (128 + libc::WTERMSIG(status)) & 0xff
                    } else {
                        continue;
                    };
                    libc::_exit(code);
                }
            } else if signal == libc::SIGUSR1 && libc::getppid() != parent {
                // elector died: nothing may run on unguarded. Kills this process too.
                libc::kill(0, libc::SIGKILL);
                libc::_exit(crate::exit::SOFTWARE.into());
            }
        }
    }
}

/// Closes what `execve` would have closed: every descriptor above stderr marked
/// close-on-exec (among them the pipe on which the parent's spawn waits for the exec,
/// which therefore returns now). Descriptors without the flag stay open for CMD, as
/// before. Lists `/proc/self/fd` with raw `getdents64`; without `/proc`, checks
/// descriptors 3 to 4095.
unsafe fn close_cloexec_descriptors() {
    // SAFETY: open/getdents64/fcntl/close on a stack buffer.
    unsafe {
        let dir = libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            for fd in 3..4096 {
                close_if_cloexec(fd, -1);
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
                if digits && fd > 2 && fd != dir && n < fds.len() {
                    fds[n] = fd;
                    n += 1;
                }
                off += reclen.max(1);
            }
        }
        libc::close(dir);
        for &fd in &fds[..n] {
            close_if_cloexec(fd, dir);
        }
        if n == fds.len() {
            // More than we could list: check the rest the slow way.
            for fd in 3..65536 {
                close_if_cloexec(fd, -1);
            }
        }
    }
}

unsafe fn close_if_cloexec(fd: libc::c_int, skip: libc::c_int) {
    // SAFETY: fcntl and close on a descriptor number.
    unsafe {
        if fd != skip {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}
