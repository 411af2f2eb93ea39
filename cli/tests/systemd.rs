//! Running under systemd: the units in `dist/systemd` pass `systemd-analyze verify`, and
//! the notify protocol reaches a real datagram socket, as systemd's `$NOTIFY_SOCKET`,
//! from a real `elector agent` and `elector run --supervise`: `READY=1` first, `STATUS=`
//! lines as leadership changes, `WATCHDOG=1` only while the process runs, `STOPPING=1`
//! last.

#![cfg(feature = "raft")]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// systemd's end of the notify protocol: a datagram socket in `dir`, read at once by a
/// thread as systemd does (a datagram socket queues only ten messages by default: one that
/// is not read drops what comes next).
struct NotifySocket {
    path: PathBuf,
    messages: std::sync::mpsc::Receiver<String>,
    /// Where the processes' logs are, for failure messages.
    logs: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path, logs: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        NotifySocket {
            path,
            messages,
            logs: logs.to_owned(),
        }
    }

    /// The next message, if one arrives within `within`.
    fn next(&self, within: Duration) -> Option<String> {
        self.messages.recv_timeout(within).ok()
    }

    /// Messages until one satisfies `done` (returned last), failing after [`DEADLINE`].
    fn until(&self, what: &str, done: impl Fn(&str) -> bool) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < DEADLINE {
            if let Some(m) = self.next(Duration::from_millis(500)) {
                let last = done(&m);
                seen.push(m);
                if last {
                    return seen;
                }
            }
        }
        panic!(
            "no message {what} within {DEADLINE:?}; got {seen:?}\n{}",
            logs(&self.logs)
        );
    }
}

fn under_systemd(c: &mut std::process::Command, notify: &NotifySocket, watchdog: Duration) {
    c.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", watchdog.as_micros().to_string());
}

fn log(dir: &Path, what: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{what}.log"))).unwrap()
}

fn logs(dir: &Path) -> String {
    ["agent", "run"]
        .iter()
        .map(|w| {
            let text = std::fs::read_to_string(dir.join(format!("{w}.log"))).unwrap_or_default();
            format!("--- {w}\n{text}")
        })
        .collect()
}

/// The watchdog asks for a ping every 100 ms (half of 200 ms).
const WATCHDOG: Duration = Duration::from_millis(200);

#[test]
fn the_agent_tells_systemd_it_is_ready_who_leads_that_it_lives_and_that_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _api) = one_node_raft_config(dir.path(), "");
    let notify = NotifySocket::bind(dir.path(), dir.path());
    let mut c = elector();
    c.arg("--config")
        .arg(&config)
        .arg("agent")
        .stdout(Stdio::null())
        .stderr(log(dir.path(), "agent"));
    under_systemd(&mut c, &notify, WATCHDOG);
    let mut agent = ChildGuard(c.spawn().unwrap());

    let first = notify.next(DEADLINE).expect("a first message");
    assert!(first.starts_with("READY=1\nSTATUS="), "{first:?}");
    notify.until("WATCHDOG=1", |m| m == "WATCHDOG=1");

    // A supervised run through the agent (also under "systemd", to see its own lines).
    let run_notify = NotifySocket::bind(&mkdir(dir.path().join("run-dir")), dir.path());
    let env_file = dir.path().join("child-env");
    let mut r = elector();
    r.arg("--config")
        .arg(&config)
        .args(["run", "-e", "job", "--supervise", "--", "sh", "-c"])
        .arg(format!("env > {}; exec sleep 1000", env_file.display()))
        .stdout(Stdio::null())
        .stderr(log(dir.path(), "run"));
    under_systemd(&mut r, &run_notify, WATCHDOG);
    let mut run = ChildGuard(r.spawn().unwrap());
    let run_first = run_notify.next(DEADLINE).expect("the run's first message");
    assert!(
        run_first.starts_with("READY=1\nSTATUS=campaigning in job"),
        "{run_first:?}"
    );
    run_notify.until("that the run leads", |m| {
        m.starts_with("STATUS=leading job at epoch")
    });
    notify.until("that the agent leads job", |m| {
        m.starts_with("STATUS=leading job at epoch")
    });
    wait_until("the child wrote its environment", || {
        std::fs::read_to_string(&env_file).is_ok_and(|e| e.contains("ELECTOR_EPOCH="))
    });
    let child_env = std::fs::read_to_string(&env_file).unwrap();
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(
            !child_env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "the command inherited {var}, so it could notify in elector's name"
        );
    }

    // A stopped agent sends no pings; resumed, it pings again.
    signal(agent.0.id(), Signal::SIGSTOP);
    std::thread::sleep(WATCHDOG); // let pings already in flight land
    while notify.next(Duration::from_millis(1)).is_some() {}
    let silent = notify.next(WATCHDOG * 5);
    signal(agent.0.id(), Signal::SIGCONT);
    assert_eq!(silent, None, "a stopped agent pinged the watchdog");
    notify.until("WATCHDOG=1 after the resume", |m| m == "WATCHDOG=1");

    assert!(
        run.0.try_wait().unwrap().is_none(),
        "the supervised run exited while its agent was stopped\n{}",
        logs(dir.path())
    );
    // Stopping: the run says so first (it was told by SIGTERM), then the agent.
    signal(run.0.id(), Signal::SIGTERM);
    run_notify.until("STOPPING=1 from the run", |m| m.starts_with("STOPPING=1"));
    let _ = run.0.wait();
    signal(agent.0.id(), Signal::SIGTERM);
    let last = notify.until("STOPPING=1 from the agent", |m| m.starts_with("STOPPING=1"));
    let status = agent.0.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", logs(dir.path()));
    assert!(
        !last.iter().any(|m| m.starts_with("READY=1")),
        "READY=1 came again: {last:?}"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let (config, api) = one_node_raft_config(dir.path(), "");
    let mut c = elector();
    c.arg("--config")
        .arg(&config)
        .arg("agent")
        .env("NOTIFY_SOCKET", "relative/not-a-socket")
        .stdout(Stdio::null())
        .stderr(log(dir.path(), "agent"));
    let mut agent = ChildGuard(c.spawn().unwrap());
    wait_until("the agent answers /health", || {
        std::net::TcpStream::connect(("127.0.0.1", api)).is_ok()
    });
    signal(agent.0.id(), Signal::SIGTERM);
    assert!(agent.0.wait().unwrap().success(), "{}", logs(dir.path()));
    let text = logs(dir.path());
    assert!(text.contains("NOTIFY_SOCKET is set but unusable"), "{text}");
}

/// Kills a child left running by a failed assertion.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mkdir(p: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Every unit in `dist/systemd`, with `/usr/bin/elector` pointed at this build, passes
/// `systemd-analyze verify` without a single complaint (it only warns, exit 0, on an
/// unknown value, so its output must be empty too).
#[test]
fn the_units_pass_systemd_analyze_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        panic!("systemd-analyze not found: apt-get install systemd (scripts/install-deps.sh)");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(dist().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/elector", env!("CARGO_BIN_EXE_elector"));
        std::fs::write(dir.path().join(&name), text).unwrap();
        // A template is verified through an instance of it.
        units.push(dir.path().join(name.replace("@.", "@example.")));
    }
    assert!(units.len() >= 4, "{units:?}");
    let out = std::process::Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_example_configuration_is_valid() {
    let mut c = elector();
    c.arg("--config")
        .arg(dist().join("elector.toml"))
        .args(["config", "--check"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
