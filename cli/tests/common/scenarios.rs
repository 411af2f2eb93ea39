//! Multi-process scenarios every lease backend must pass, run with the real binary.

use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::stamps::Stamps;
use super::*;

fn start(backend: &[String], node: &str, extra: &[&str], run: &[&str], script: &str) -> Child {
    let mut c = elector();
    c.args(backend)
        .args(extra)
        .args(["--node-id", node, "run", "-e", "job"])
        .args(run)
        .args(["--", "bash", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().expect("start elector")
}

/// Three `elector run` at once on one election: exactly one runs the command; the others
/// print the skipped line and exit 0.
pub fn three_at_once_run_exactly_once(backend: &[String]) {
    let (_d, file) = scratch("runs");
    let script = record(&file, "sleep 0.2");
    let children: Vec<Child> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| start(backend, n, FAST, &["--min-hold", "5s"], &script))
        .collect();
    let outputs: Vec<_> = children.into_iter().map(wait_output).collect();
    let all: String = outputs.iter().map(text).collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{all}");
    }
    assert_eq!(runs(&file).len(), 1, "exactly one run expected\n{all}");
    let skipped = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).starts_with("skipped: job is led by "))
        .count();
    assert_eq!(skipped, 2, "{all}");
}

/// Hosts whose cron fires a little apart, within `--min-hold`: one run.
pub fn staggered_starts_within_min_hold_run_once(backend: &[String]) {
    let (_d, file) = scratch("runs");
    let script = record(&file, "true");
    let first = start(backend, "n1", FAST, &["--min-hold", "4s"], &script);
    wait_until("the first run", || runs(&file).len() == 1);
    // The command is done; the late hosts come while the first still holds.
    let late: Vec<Child> = ["n2", "n3"]
        .iter()
        .map(|n| start(backend, n, FAST, &["--min-hold", "4s"], &script))
        .collect();
    let mut all = String::new();
    for c in late {
        let o = wait_output(c);
        all += &text(&o);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("skipped: job is led by n1"),
            "{all}"
        );
    }
    let o = wait_output(first);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs(&file).len(), 1, "{all}");
}

/// Three supervisors; kill -9 the leading elector: its child and the child's grandchild
/// die, and a new child starts on another node with a higher epoch, only once they are
/// gone (judged on the test's own clock, [`Stamps`]).
pub fn supervise_survives_kill_9_of_the_leader(backend: &[String]) {
    let stamps = Stamps::start();
    // A grandchild too: it must not outlive its leader either (it holds the stamp
    // connection as well, so the old life ends only when both are gone).
    let script = stamps.script("sleep 1000 & wait");
    let nodes = ["n1", "n2", "n3"];
    let mut children = Procs(
        nodes
            .iter()
            .map(|n| start(backend, n, FAST, &["--supervise"], &script))
            .collect(),
    );
    wait_until("a first child", || !stamps.lives().is_empty());
    let first = stamps.lives()[0].clone();
    let leader = nodes.iter().position(|n| *n == first.node).unwrap();
    children.0[leader].kill().unwrap();
    children.0[leader].wait().unwrap();
    wait_until("a child on another node", || stamps.lives().len() >= 2);
    stamps.assert_one_at_a_time();
    let lives = stamps.lives();
    assert_eq!(lives.len(), 2, "{lives:?}");
    assert_ne!(lives[1].node, first.node);
    // Clean shutdown of the rest.
    for (i, c) in children.0.iter_mut().enumerate() {
        if i != leader {
            signal(c.id(), Signal::SIGTERM);
            let _ = c.wait();
        }
    }
    wait_until("the second child to stop", || {
        stamps.lives()[1].end.is_some()
    });
}

/// The leading `elector run --supervise` itself SIGSTOPped (its child runs on, ignores
/// SIGTERM, and has a grandchild that does too): the guard alone kills the child and the
/// grandchild at the lease deadline plus the kill grace, before another node's child starts,
/// while the supervisor is still stopped. Judged on the test's own clock ([`Stamps`]).
pub fn a_stopped_supervisor_leaves_no_child_past_its_deadline(backend: &[String]) {
    let stamps = Stamps::start();
    let script = stamps.script("trap '' TERM; sleep 1000 & wait");
    let a = start(backend, "n1", FAST, &["--supervise"], &script);
    let mut procs = Procs(vec![a]);
    wait_until("n1's child", || stamps.lives().len() == 1);
    procs
        .0
        .push(start(backend, "n2", FAST, &["--supervise"], &script));
    std::thread::sleep(Duration::from_millis(300));
    let a_pid = procs.0[0].id();
    signal(a_pid, Signal::SIGSTOP);
    // Stopped for much longer than the TTL (2 s): only the guard can end the child.
    let resume_at = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < resume_at && stamps.lives().len() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let resumed = std::time::Instant::now();
    signal(a_pid, Signal::SIGCONT);
    let old = stamps.lives()[0].clone();
    let died = old.end.unwrap_or_else(|| {
        panic!("the stopped supervisor's child {old:?} (or its grandchild) outlived its 2 s lease by more than 6 s")
    });
    assert!(
        died < resumed,
        "{old:?} ended only after its supervisor resumed"
    );
    wait_until("n2's child", || stamps.lives().len() >= 2);
    stamps.assert_one_at_a_time();
    assert_eq!(stamps.lives()[1].node, "n2");
    for c in &procs.0 {
        signal(c.id(), Signal::SIGTERM);
    }
    for c in procs.0.iter_mut() {
        let _ = c.wait();
    }
}

/// A leader cut off from the backend (a blackholing proxy) whose child ignores SIGTERM: the
/// child and its grandchild get the kill grace, then SIGKILL, and are gone before the
/// waiting node's child starts. `proxied` is the backend configuration through the proxy.
pub fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts(
    proxied: &[String],
    direct: &[String],
    cut: impl FnOnce(),
) {
    let stamps = Stamps::start();
    let script = stamps.script("trap '' TERM; sleep 1000 & wait");
    let mut procs = Procs(vec![start(proxied, "n1", FAST, &["--supervise"], &script)]);
    wait_until("n1's child", || stamps.lives().len() == 1);
    procs
        .0
        .push(start(direct, "n2", FAST, &["--supervise"], &script));
    std::thread::sleep(Duration::from_millis(300));
    cut();
    wait_until("n2's child", || stamps.lives().len() >= 2);
    stamps.assert_one_at_a_time();
    let lives = stamps.lives();
    assert_eq!(lives[1].node, "n2", "{lives:?}");
    for c in &procs.0 {
        signal(c.id(), Signal::SIGTERM);
    }
    for c in procs.0.iter_mut() {
        let _ = c.wait();
    }
}

/// SIGTERM to the leading supervisor hands over at once, without waiting for the TTL.
pub fn sigterm_hands_over_without_a_ttl_wait(backend: &[String]) {
    let (_d, file) = scratch("runs");
    let script = record(&file, "exec sleep 1000");
    // A 60 s TTL: waiting for it would blow the bound below.
    let slow = &[
        "--set",
        "timing.ttl=\"60s\"",
        "--set",
        "timing.renew_interval=\"2s\"",
        "--set",
        "timing.kill_grace=\"1s\"",
    ];
    let a = start(backend, "n1", slow, &["--supervise"], &script);
    let a_pid = a.id();
    wait_until("n1's child", || runs(&file).len() == 1);
    // Whether n2 is already waiting when n1 resigns or campaigns a moment later, it is
    // elected without a TTL wait either way.
    let mut b = Procs(vec![start(backend, "n2", slow, &["--supervise"], &script)]);
    let t = std::time::Instant::now();
    signal(a_pid, Signal::SIGTERM);
    let o = wait_output(a);
    assert_eq!(
        o.status.code(),
        Some(143),
        "the child's SIGTERM status\n{}",
        text(&o)
    );
    wait_until("n2's child", || runs(&file).len() == 2);
    // The 60 s TTL is far away: n1's child gets SIGTERM and dies at once (it execs
    // sleep), n1 resigns, and n2 is woken by the release. Allow n1's kill grace (1 s), one
    // renew interval (2 s) for a waiter that missed the push, and 2 s of scheduling.
    let bound = Duration::from_secs(1 + 2 + 2);
    assert!(
        t.elapsed() < bound,
        "handoff took {:?} (more than {bound:?}): it waited for something like the TTL",
        t.elapsed()
    );
    let r = runs(&file);
    assert!(is_gone(r[0].pid));
    assert_eq!(r[1].node, "n2");
    assert!(r[1].epoch > r[0].epoch);
    signal(b.0[0].id(), Signal::SIGTERM);
    let _ = b.0[0].wait();
}

/// `elector watch` prints each leader change as it happens.
pub fn watch_streams_leader_changes(backend: &[String]) {
    use std::io::BufRead as _;
    let mut c = elector();
    c.args(backend)
        .args(["--node-id", "w", "watch", "job"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut watcher = Procs(vec![c.spawn().unwrap()]);
    let stdout = watcher.0[0].stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("watch printed no line with {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    };
    next("job: no leader");
    let mut c = elector();
    c.args(backend).args(FAST).args([
        "--node-id",
        "n1",
        "run",
        "-e",
        "job",
        "--min-hold",
        "1s",
        "--",
        "true",
    ]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let led = next("job: led by n1 at epoch");
    assert!(led.contains("since"), "{led}");
    next("job: no leader");
}
