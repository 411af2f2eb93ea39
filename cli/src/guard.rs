//! `elector __guard PARENT_PID -- CMD ARGS...`: the tiny process that leads the command's
//! process group and kills the whole group if elector dies.
//!
//! elector starts it with the signals below blocked and `PR_SET_PDEATHSIG = SIGUSR1`. It
//! starts CMD (which inherits the group; the guard clears its signal mask before exec),
//! then waits on signals synchronously: SIGCHLD → if CMD exited, exit with its code (128 +
//! N when killed by signal N); SIGUSR1 (elector died) → SIGKILL to the whole group, itself
//! included; SIGTERM, SIGINT, SIGHUP, SIGQUIT → ignored here, because they were sent to the
//! whole group and CMD decides what to do with them.

use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::{Pid, getpgrp, getppid};

/// The hidden subcommand's name.
pub(crate) const ARG: &str = "__guard";

const SIGNALS: [Signal; 6] = [
    Signal::SIGCHLD,
    Signal::SIGUSR1,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in SIGNALS {
        set.add(s);
    }
    set
}

/// Sets the signal mask to exactly the guard's signals, with raw libc calls: safe between
/// fork and exec.
pub(crate) fn block_signals_raw() {
    set_mask_raw(&SIGNALS);
}

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

/// Runs the guard; `args` are the arguments after `__guard`.
pub(crate) fn main(args: &[std::ffi::OsString]) -> ExitCode {
    let set = signal_set();
    if set.thread_block().is_err() {
        return ExitCode::from(crate::exit::SOFTWARE);
    }
    let (Some(parent), Some(sep), Some(program)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("elector {ARG}: internal command; usage: {ARG} PARENT_PID -- CMD ARGS...");
        return ExitCode::from(crate::exit::USAGE);
    };
    let parent: i32 = parent.to_str().and_then(|p| p.parse().ok()).unwrap_or(-1);
    if sep != "--" || getppid().as_raw() != parent {
        // Started by hand, or elector is already gone: run nothing.
        return ExitCode::from(crate::exit::SOFTWARE);
    }
    let mut command = std::process::Command::new(program);
    command.args(&args[3..]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            // The mask is inherited across exec: the command starts with none blocked.
            set_mask_raw(&[]);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                crate::exit::NOT_FOUND
            } else {
                crate::exit::NOT_EXECUTABLE
            };
            eprintln!("elector: cannot run {}: {e}", program.to_string_lossy());
            return ExitCode::from(code);
        }
    };
    loop {
        let Ok(signal) = set.wait() else { continue };
        match signal {
            Signal::SIGCHLD => {
                if let Ok(Some(status)) = child.try_wait() {
                    use std::os::unix::process::ExitStatusExt as _;
                    let code = match (status.code(), status.signal()) {
                        (Some(c), _) => (c & 0xff) as u8,
                        (None, Some(s)) => 128u8.wrapping_add(s as u8),
                        _ => crate::exit::SOFTWARE,
                    };
                    return ExitCode::from(code);
                }
            }
            Signal::SIGUSR1 if getppid().as_raw() != parent => {
                // elector died: nothing may run on unguarded. Kills this process too.
                let _ = killpg(getpgrp(), Signal::SIGKILL);
                let _ = nix::sys::signal::kill(Pid::this(), Signal::SIGKILL);
            }
            _ => {}
        }
    }
}
