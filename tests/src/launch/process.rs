//! One server process: spawn with its output in a log file, signals, kill-and-reap, and
//! the readiness wait every launcher shares.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getppid};

/// How many lines of the server log an error message carries.
const LOG_TAIL_LINES: usize = 25;
/// How often the readiness probe is retried.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// A fresh directory for a server's data, in memory (`/dev/shm`) when the host has one:
/// a test server's fsyncs then cost nothing, so a busy disk (a build next door) cannot
/// stall its answers past a test's timeouts. Restarts keep the data all the same (the
/// directory outlives the process), and nothing here needs to survive a reboot.
pub fn server_dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix(prefix);
        b
    };
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return Ok(dir);
        }
    }
    builder.tempdir()
}

/// Where [`free_port`] picks from: below Linux's default ephemeral range (32768–60999).
const SERVER_PORTS: std::ops::Range<u16> = 12_000..32_768;

/// A port on 127.0.0.1 that was free a moment ago, for a server to bind.
///
/// Picked at random *outside* the kernel's ephemeral range (read from
/// `/proc/sys/net/ipv4/ip_local_port_range`), not by binding port 0: a port the kernel
/// hands out for port 0 is an ephemeral one, which the kernel may give to any outgoing
/// connection (a client, a proxy's upstream) in the window before the server binds it.
/// That is how a ZooKeeper member once lost its election port and exited (code 14).
/// Outside the range only another test's pick can clash, and the launchers' retry on a
/// port clash covers that.
pub fn free_port() -> io::Result<u16> {
    Ok(reserve_port()?.local_addr()?.port())
}

/// A listener on 127.0.0.1, on a port picked as [`free_port`] picks it: hold it until the
/// process that is to bind the port is about to, so that no other test picks it meanwhile.
pub fn reserve_port() -> io::Result<TcpListener> {
    use std::hash::{BuildHasher, RandomState};
    let (low, high) = ephemeral_range().unwrap_or((32_768, 60_999));
    // Randomly seeded per process and per call: concurrent test processes pick apart.
    let span = u64::from(SERVER_PORTS.end - SERVER_PORTS.start);
    for attempt in 0..200u64 {
        let random = RandomState::new().hash_one(attempt);
        let port = SERVER_PORTS.start + (random % span) as u16;
        if (low..=high).contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return Ok(listener);
        }
    }
    // The range is configured over ours, or it is full: let the kernel choose.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// The kernel's ephemeral port range, as `(low, high)` inclusive.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
}

/// The loopback address with `port`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Finds `binary` on `PATH`, or explains which Debian package provides it.
pub(crate) fn find_binary(binary: &str, package: &str) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| missing(binary, "on PATH", package))
}

/// Checks that a file a server needs (such as a jar) exists.
pub(crate) fn require_file(path: &Path, package: &str) -> io::Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(missing(&path.display().to_string(), "", package))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn missing(what: &str, where_: &str, package: &str) -> io::Error {
    let where_ = if where_.is_empty() {
        String::new()
    } else {
        format!(" {where_}")
    };
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{what} was not found{where_}: install the Debian package `{package}` \
             (`sudo apt-get install -y {package}`), or run `scripts/install-deps.sh`, which \
             installs every server the test suite needs. Tests that need this server fail \
             rather than skip (under CI=true as elsewhere)."
        ),
    )
}

/// The last lines of `log`, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        // Reading only the end keeps a chatty server's log from flooding the message.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    if tail.is_empty() {
        format!("(the log {} is empty)", log.display())
    } else {
        format!("last lines of {}:\n{tail}", log.display())
    }
}

/// How to start a server: the program, its arguments and the log file its stdout and
/// stderr are appended to.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) what: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) log: PathBuf,
}

impl Spec {
    fn spawn(&self) -> io::Result<Child> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        spawn_supervised(command).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: could not start {}: {e}",
                    self.what,
                    self.program.display()
                ),
            )
        })
    }
}

type SpawnRequest = (Command, mpsc::SyncSender<io::Result<Child>>);

/// Spawns `command` so that it dies with the test process, even one killed outright (a
/// test runner's timeout): the child asks the kernel for SIGKILL when its parent goes
/// (`PR_SET_PDEATHSIG`). The kernel sends that signal when the parent *thread* exits, so
/// every server is spawned from one thread that lives as long as the process.
fn spawn_supervised(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<SpawnRequest>>>> = OnceLock::new();
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl(2) and getppid(2) are plain system calls,
    // and the errors are built from raw OS codes, without allocating.
    unsafe {
        command.pre_exec(move || {
            set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died before the prctl: then nobody would kill us.
            if u32::try_from(getppid().as_raw()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("elector-test-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let Some(spawner) = spawner else {
        // No spawner thread could be started: spawn from this thread instead.
        return command.spawn();
    };
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the server spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the server spawner thread is gone"))?
}

/// `ESRCH`, "no such process": the parent is gone.
const fn libc_esrch() -> i32 {
    nix::errno::Errno::ESRCH as i32
}

/// A running (or killed) server process; owned by a launcher, which keeps it behind a
/// mutex so that every control method takes `&self`.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    spec: Spec,
    child: Option<Child>,
    pid: u32,
}

impl ServerProcess {
    /// Spawns the server; does not wait for readiness.
    pub(crate) fn spawn(spec: Spec) -> io::Result<Mutex<ServerProcess>> {
        let child = spec.spawn()?;
        Ok(Mutex::new(ServerProcess {
            pid: child.id(),
            spec,
            child: Some(child),
        }))
    }

    /// Locks a shared process, surviving a poisoned lock (a panicking test).
    pub(crate) fn lock(m: &Mutex<ServerProcess>) -> MutexGuard<'_, ServerProcess> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pid of the current (or last) process.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// What this server is, for messages (`redis-server on 127.0.0.1:6379`).
    pub(crate) fn what(&self) -> &str {
        &self.spec.what
    }

    /// The log file.
    pub(crate) fn log(&self) -> &Path {
        &self.spec.log
    }

    /// Starts the process again with the same spec (after [`kill`](Self::kill) or
    /// [`stop`](Self::stop)).
    pub(crate) fn respawn(&mut self) -> io::Result<()> {
        self.kill()?;
        let child = self.spec.spawn()?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.child.is_none() {
            return Err(io::Error::other(format!(
                "{}: cannot send {signal}: the process is not running",
                self.spec.what
            )));
        }
        let pid = i32::try_from(self.pid).map_err(io::Error::other)?;
        kill(Pid::from_raw(pid), signal).map_err(|e| {
            io::Error::other(format!("{}: sending {signal} failed: {e}", self.spec.what))
        })
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing. Returns once every
    /// thread of the process is stopped: `kill` only queues the signal, and a thread that
    /// is running when it arrives may still answer a request or two before it stops.
    pub(crate) fn pause(&self) -> io::Result<()> {
        self.signal(Signal::SIGSTOP)?;
        let start = Instant::now();
        while !all_threads_stopped(self.pid) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{}: not stopped 10 s after SIGSTOP", self.spec.what),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) -> io::Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// SIGKILL and reap. Does nothing if the process is not running.
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            // Fails only if the process already exited, which `wait` then reaps.
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM (after SIGCONT, in case it is paused), waiting up to `grace` for a clean
    /// exit, then SIGKILL. Always reaps.
    pub(crate) fn stop(&mut self, grace: Duration) -> io::Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        let _ = self.signal(Signal::SIGCONT);
        let _ = self.signal(Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait()?.is_some() {
                    self.child = None;
                    return Ok(());
                }
            }
            std::thread::sleep(PROBE_EVERY);
        }
        self.kill()
    }

    /// Whether the process is running (started and not yet exited).
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until `probe` succeeds, the process exits, or `deadline` passes; the error
    /// says which, with the log's tail.
    pub(crate) fn wait_ready(
        &mut self,
        deadline: Duration,
        check: &str,
        mut probe: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "{} exited with {status} before it was ready; {}",
                        self.spec.what,
                        log_tail(&self.spec.log)
                    )));
                }
            }
            if probe() {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} was not ready after {deadline:?} ({check} did not succeed); {}",
                        self.spec.what,
                        log_tail(&self.spec.log)
                    ),
                ));
            }
            std::thread::sleep(PROBE_EVERY);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Whether a failed start was a port another process took between our probe and the
/// server's bind (worth retrying on fresh ports).
pub(crate) fn is_port_clash(err: &io::Error) -> bool {
    let msg = err.to_string().to_ascii_lowercase();
    msg.contains("address already in use")
        || msg.contains("bindexception")
        // ZooKeeper's last words when its election port stayed taken: the
        // BindException itself may have scrolled out of the log tail by then.
        || msg.contains("electionportbindretry")
}

/// Whether every thread of `pid` is in the stopped state (`T`) per `/proc`.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name, which may hold spaces.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_debian_package_and_the_install_script() {
        let err = find_binary("elector-no-such-server", "elector-pkg").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.contains("elector-no-such-server"), "{msg}");
        assert!(msg.contains("apt-get install -y elector-pkg"), "{msg}");
        assert!(msg.contains("scripts/install-deps.sh"), "{msg}");
    }

    #[test]
    fn a_server_outlives_the_thread_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            what: "long server".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "exec sleep 600".into()],
            log: dir.path().join("server.log"),
        };
        // The parent-death signal follows the spawning thread: a short-lived thread must
        // not take the server with it.
        let process = std::thread::spawn(move || ServerProcess::spawn(spec).unwrap())
            .join()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            ServerProcess::lock(&process).is_running(),
            "the server survived its thread"
        );
    }

    #[test]
    fn a_missing_jar_names_the_debian_package() {
        let err = require_file(Path::new("/nonexistent/zookeeper.jar"), "zookeeperd").unwrap_err();
        assert!(err.to_string().contains("zookeeperd"), "{err}");
    }

    #[test]
    fn a_server_that_exits_before_ready_reports_its_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            what: "fake server".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo boom: cannot bind >&2; exit 3".into()],
            log: dir.path().join("server.log"),
        };
        let process = ServerProcess::spawn(spec).unwrap();
        let err = ServerProcess::lock(&process)
            .wait_ready(Duration::from_secs(30), "never", || false)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("fake server exited"), "{msg}");
        assert!(msg.contains("boom: cannot bind"), "{msg}");
    }

    #[test]
    fn a_readiness_timeout_reports_the_check_and_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            what: "slow server".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo starting up; exec sleep 600".into()],
            log: dir.path().join("server.log"),
        };
        let process = ServerProcess::spawn(spec).unwrap();
        let pid = ServerProcess::lock(&process).pid();
        // The log line is written by the child; wait for it before timing out.
        let log = dir.path().join("server.log");
        let mut tries = 0;
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("starting")
        {
            tries += 1;
            assert!(tries < 3000, "the child never wrote its log");
            std::thread::sleep(Duration::from_millis(10));
        }
        let err = ServerProcess::lock(&process)
            .wait_ready(Duration::from_millis(50), "PING answered", || false)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let msg = err.to_string();
        assert!(msg.contains("PING answered"), "{msg}");
        assert!(msg.contains("starting up"), "{msg}");
        drop(process);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dropping the process kills and reaps it"
        );
    }
}
