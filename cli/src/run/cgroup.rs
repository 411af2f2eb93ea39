//! A cgroup v2 of its own for each command, where elector may create one (as root, or in
//! a systemd unit with `Delegate=yes`): every descendant of the command stays in it, also
//! one that calls `setsid` or double-forks out of the process group, and `cgroup.kill`
//! ends them all at once. Elsewhere the process group is all there is (decision 122).
//!
//! The cgroup is a child of elector's own (`/proc/self/cgroup`, on the `cgroup2` mount of
//! `/proc/self/mountinfo`), named `elector-PID-N`; no controller is enabled in it, so it
//! may sit beside elector's own process. The command moves itself into it before `execve`
//! (the guard's fork writes `0` to `cgroup.procs`); the guard and elector write `1` to
//! `cgroup.kill` when they SIGKILL the group. elector removes the directory once it is
//! empty.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// A command's cgroup: the directory and the files the guard writes to.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
    procs: OwnedFd,
    kill: OwnedFd,
    events: OwnedFd,
}

/// The descriptors the guard uses in its forked child, `-1` without a cgroup.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Fds {
    /// `cgroup.procs`, write-only: the command writes `0` to move itself in.
    pub(crate) procs: libc::c_int,
    /// `cgroup.kill`, write-only: `1` kills every member.
    pub(crate) kill: libc::c_int,
    /// `cgroup.events`, read-only: `populated 0` once every member is gone.
    pub(crate) events: libc::c_int,
}

impl Fds {
    pub(crate) const NONE: Fds = Fds {
        procs: -1,
        kill: -1,
        events: -1,
    };
}

impl Cgroup {
    /// A fresh cgroup for one command, or why there cannot be one here; the first answer
    /// is logged once per process (which mechanism ends the command's descendants).
    pub(crate) fn create() -> Option<Cgroup> {
        static SAID: OnceLock<()> = OnceLock::new();
        match Cgroup::try_create() {
            Ok(c) => {
                SAID.get_or_init(|| {
                    tracing::info!(parent = %c.dir.parent().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                        "commands run in a cgroup of their own: every descendant is killed with it");
                });
                Some(c)
            }
            Err(why) => {
                SAID.get_or_init(|| {
                    tracing::info!("commands run in a process group only ({why}): a descendant that leaves the group (setsid) is not killed with it");
                });
                None
            }
        }
    }

    fn try_create() -> Result<Cgroup, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let parent = own_cgroup_dir()?;
        sweep(&parent);
        let dir = parent.join(format!(
            "elector-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
        let file = |name: &str, flags: OFlag| {
            open(&dir.join(name), flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| match e {
                nix::errno::Errno::ENOENT if name == "cgroup.kill" => {
                    "the kernel has no cgroup.kill (Linux 5.14 or later)".to_owned()
                }
                e => format!("cannot open {}/{name}: {e}", dir.display()),
            })
        };
        let opened = (|| {
            Ok::<_, String>((
                file("cgroup.procs", OFlag::O_WRONLY)?,
                file("cgroup.kill", OFlag::O_WRONLY)?,
                file("cgroup.events", OFlag::O_RDONLY)?,
            ))
        })();
        match opened {
            Ok((procs, kill, events)) => Ok(Cgroup {
                dir,
                procs,
                kill,
                events,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The descriptors, for the guard.
    pub(crate) fn fds(&self) -> Fds {
        Fds {
            procs: self.procs.as_raw_fd(),
            kill: self.kill.as_raw_fd(),
            events: self.events.as_raw_fd(),
        }
    }

    /// SIGKILL to every member.
    pub(crate) fn kill(&self) {
        let _ = nix::unistd::write(&self.kill, b"1");
    }

    /// Whether any process is left in it.
    pub(crate) fn populated(&self) -> bool {
        // SAFETY: pread into a local buffer on a descriptor we own.
        unsafe { populated(self.events.as_raw_fd()) }
    }

    /// The directory's path, for the guard's `rmdir` (NUL-terminated).
    pub(crate) fn dir_c(&self) -> Option<CString> {
        CString::new(self.dir.as_os_str().as_bytes()).ok()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.populated() {
            self.kill();
        }
        // Fails while members are still dying; the guard removes it too when it can.
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "the command's cgroup is not removed yet");
        }
    }
}

/// Removes the empty cgroups that an elector killed outright left behind (`elector-PID-N`
/// of a PID that no longer runs: its guard killed the command and itself, and nobody was
/// left to remove the directory). A populated one is left alone (`rmdir` refuses it).
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("elector-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Whether `cgroup.events` (open at `events`) says `populated 1`; `false` if it cannot be
/// read. Async-signal-safe.
///
/// # Safety
///
/// `events` must be a readable descriptor.
pub(crate) unsafe fn populated(events: libc::c_int) -> bool {
    let mut buf = [0u8; 256];
    // SAFETY: pread into a local buffer.
    let n = unsafe { libc::pread(events, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return false;
    }
    let text = &buf[..n as usize];
    text.windows(11).any(|w| w == b"populated 1")
}

/// elector's own cgroup directory on the cgroup v2 mount.
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 hierarchy")?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = cgroup2_mount(&mounts).ok_or("cgroup2 is not mounted")?;
    Ok(Path::new(&mount).join(own.trim_start_matches('/')))
}

/// The mount point of the first `cgroup2` file system in a `/proc/self/mountinfo` text.
fn cgroup2_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split(' ').next()?;
        (fstype == "cgroup2").then(|| left.split(' ').nth(4).map(unescape))?
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo() {
        let hybrid = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
35 30 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(
            cgroup2_mount(hybrid).as_deref(),
            Some("/sys/fs/cgroup/unified")
        );
        let unified = "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount(unified).as_deref(), Some("/sys/fs/cgroup"));
        assert_eq!(cgroup2_mount("36 30 0:31 / /x rw - cgroup cgroup rw"), None);
        assert_eq!(
            cgroup2_mount("1 2 0:3 / /a\\040b rw - cgroup2 none rw").as_deref(),
            Some("/a b")
        );
    }
}
