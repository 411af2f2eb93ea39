//! Helpers for tests that run the real `elector` binary.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a subset")]

pub mod browser;
pub mod cluster;
pub mod scenarios;
pub mod stamps;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Timing flags for fast failover in tests: 2 s TTL, 300 ms kill grace.
pub const FAST: &[&str] = &[
    "--set",
    "timing.ttl=\"2s\"",
    "--set",
    "timing.renew_interval=\"300ms\"",
    "--set",
    "timing.retry_interval=\"100ms\"",
    "--set",
    "timing.clock_drift=\"100ms\"",
    "--set",
    "timing.kill_grace=\"300ms\"",
];

/// The binary, with no configuration inherited from the environment.
pub fn elector() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_elector"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ELECTOR_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c.stdin(Stdio::null());
    c
}

/// A fault proxy in front of `server`, running on `rt` (which the caller keeps alive).
pub fn proxy(
    rt: &tokio::runtime::Runtime,
    server: std::net::SocketAddr,
) -> election_tests::proxy::FaultProxy {
    rt.block_on(election_tests::proxy::FaultProxy::start(server))
        .expect("proxy")
}

/// Runs to completion with a bound, returning the output.
pub fn output(mut c: Command) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("start elector");
    wait_output(child)
}

/// Waits for a started child (with piped output) under [`DEADLINE`].
pub fn wait_output(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(o) => o.expect("wait for elector"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("elector (pid {pid}) did not finish within {DEADLINE:?}")
        }
    }
}

/// stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `cond` until it holds, panicking with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is gone: no such process, or a zombie waiting to be reaped.
pub fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// One line a guarded command appended: `NODE EPOCH PID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLine {
    pub node: String,
    pub epoch: u64,
    pub pid: i32,
}

/// A shell command that appends `NODE EPOCH PID` to `file`, then runs `then`.
pub fn record(file: &Path, then: &str) -> String {
    format!(
        "echo \"$ELECTOR_NODE_ID $ELECTOR_EPOCH $$\" >> {}; {then}",
        file.display()
    )
}

/// The lines appended so far.
pub fn runs(file: &Path) -> Vec<RunLine> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(RunLine {
                node: it.next()?.to_owned(),
                epoch: it.next()?.parse().ok()?,
                pid: it.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// A temporary directory and a file path in it.
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    (d, p)
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Kills and reaps every child in `children`.
pub fn kill_all(children: &mut [Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Children that are killed and reaped when the test ends, even by a panic.
#[derive(Default)]
pub struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        kill_all(&mut self.0);
    }
}

/// A free TCP port on 127.0.0.1, outside the ephemeral range (see
/// [`election_tests::launch::free_port`]).
pub fn free_port() -> u16 {
    election_tests::launch::free_port().expect("a free loopback port")
}

/// Writes `DIR/elector.toml` for a one-node raft agent (a quorum of one) with its API on a
/// free port and its socket at `DIR/run/agent.sock`; `extra` is appended to `[agent]`.
/// Returns the file and the API port.
pub fn one_node_raft_config(dir: &Path, extra: &str) -> (PathBuf, u16) {
    let config = dir.join("elector.toml");
    let api = free_port();
    std::fs::write(
        &config,
        format!(
            "node_id = \"n1\"\n[backend]\nkind = \"raft\"\n[backend.raft]\nlisten = \"127.0.0.1:{raft}\"\n\
             data_dir = \"{data}\"\nsecret = \"a-test-secret-of-32-bytes-length\"\n\
             [agent]\nlisten = \"127.0.0.1:{api}\"\nsocket = \"{socket}\"\nelections = [\"job\"]\n{extra}",
            raft = free_port(),
            data = dir.join("data").display(),
            socket = dir.join("run/agent.sock").display(),
        ),
    )
    .unwrap();
    (config, api)
}
