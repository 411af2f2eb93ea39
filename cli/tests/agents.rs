//! Three `elector agent` processes forming a cluster of a peer backend (raft, bully, paxos) on
//! loopback, with `elector run` on each host going through its local agent. Every
//! scenario runs once per peer backend.
#![cfg(any(feature = "raft", feature = "bully", feature = "paxos"))]

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::cluster::{Host, agents_up, http_get, logs, supervise};
use common::stamps::Stamps;
use common::*;
use nix::sys::signal::Signal;

fn log_file(h: &Host, what: &str) -> std::fs::File {
    std::fs::File::create(h.config.with_extension(format!("{what}.log"))).unwrap()
}

/// SIGTERM to every runner and agent, then waits for each.
fn stop_all(runners: &mut Procs, agents: &mut Procs) {
    for c in runners.0.iter().chain(agents.0.iter()) {
        signal(c.id(), Signal::SIGTERM);
    }
    for c in runners.0.iter_mut().chain(agents.0.iter_mut()) {
        let _ = c.wait();
    }
}

/// The host whose agent answers 200 on the leader health check, when exactly one does.
fn sole_leader(hosts: &[Host]) -> Option<usize> {
    let up: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| http_get(h.api, "/v1/leader/job").is_some_and(|(c, _)| c == 200))
        .map(|(i, _)| i)
        .collect();
    (up.len() == 1).then(|| up[0])
}

/// Supervised runs on every host: exactly one host passes the leader health check and runs
/// the child; `elector resign` moves it to a higher epoch; killing the leading agent moves
/// it to another host with a higher epoch, the old child dead first; SIGTERM to the
/// leading agent stops its caller's command before the agent exits.
fn supervised_child_moves_when_the_leading_agent_is_killed(kind: &str) {
    let d = tempfile::tempdir().unwrap();
    let (hosts, mut agents) = agents_up(d.path(), kind);
    let stamps = Stamps::start();
    let script = stamps.script("exec sleep 1000");
    let mut runners = Procs(hosts.iter().map(|h| supervise(h, &script)).collect());
    wait_until("a first child", || !stamps.lives().is_empty());
    // The load-balancer check answers 200 on exactly one host: the one whose latest
    // child runs.
    let mut leader = 0;
    wait_until("one host to pass the leader health check", || {
        sole_leader(&hosts).is_some_and(|l| {
            leader = l;
            stamps
                .lives()
                .last()
                .is_some_and(|r| r.node == format!("n{}", l + 1) && !is_gone(r.pid))
        })
    });
    let current = stamps.lives().last().unwrap().clone();
    let (_, status) = http_get(hosts[leader].api, "/v1/status").unwrap();
    assert!(status.contains("\"is_leader\":true"), "{status}");
    let mut c = elector();
    c.arg("--config").arg(&hosts[leader].config).arg("status");
    let o = output(c);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("job: led by this node"),
        "{}",
        text(&o)
    );
    let (_, metrics) = http_get(hosts[leader].api, "/metrics").unwrap();
    assert!(
        metrics.contains("elector_is_leader{election=\"job\"} 1"),
        "{metrics}"
    );

    // `elector resign` on the leading host: its child is stopped and the election moves
    // on to a higher epoch.
    let mut c = elector();
    c.arg("--config")
        .arg(&hosts[leader].config)
        .args(["resign", "job"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    wait_until("the resigned leader's child to stop", || {
        is_gone(current.pid)
    });
    wait_until("a child at a higher epoch", || {
        stamps
            .lives()
            .last()
            .is_some_and(|r| r.epoch > current.epoch)
    });
    wait_until("one host to pass the leader health check again", || {
        sole_leader(&hosts).is_some_and(|l| {
            leader = l;
            stamps
                .lives()
                .last()
                .is_some_and(|r| r.node == format!("n{}", l + 1) && !is_gone(r.pid))
        })
    });
    let current = stamps.lives().last().unwrap().clone();

    // Kill the leading host's agent: its `elector run` loses leadership by its own
    // deadline and kills the child; another host takes over with a higher epoch.
    agents.0[leader].kill().unwrap();
    agents.0[leader].wait().unwrap();
    wait_until("the old child to be killed", || is_gone(current.pid));
    wait_until("a child on another host", || {
        stamps
            .lives()
            .iter()
            .any(|l| l.epoch > current.epoch && l.node != current.node)
    });
    // One child at a time, each gone before the next started, epochs rising.
    stamps.assert_one_at_a_time();
    // SIGTERM to the leading agent: it revokes its hold, its caller stops the command,
    // then the agent exits 0.
    let newest = stamps.lives().last().unwrap().clone();
    let host: usize = newest.node[1..].parse::<usize>().unwrap() - 1;
    signal(agents.0[host].id(), Signal::SIGTERM);
    let status = agents.0[host].wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        is_gone(newest.pid),
        "the agent exited while its caller's command {newest:?} still ran\n{}",
        logs(d.path())
    );

    stop_all(&mut runners, &mut agents);
}

/// The leading host's `elector run` SIGSTOPped (its child, which ignores SIGTERM and has a
/// grandchild that does too, runs on): the caller's guard kills both at the caller-side
/// deadline plus the kill grace, and only then does the agent hand over, so another host's
/// child starts after they are gone, while the caller is still stopped.
fn a_stopped_caller_leaves_no_child_past_its_deadline(kind: &str) {
    let d = tempfile::tempdir().unwrap();
    let (hosts, mut agents) = agents_up(d.path(), kind);
    let stamps = Stamps::start();
    let script = stamps.script("trap '' TERM; sleep 1000 & wait");
    let mut runners = Procs(hosts.iter().map(|h| supervise(h, &script)).collect());
    wait_until("a first child", || stamps.lives().len() == 1);
    let first = stamps.lives()[0].clone();
    let leader: usize = first.node[1..].parse::<usize>().unwrap() - 1;
    let caller = runners.0[leader].id();
    signal(caller, Signal::SIGSTOP);
    // Far longer than the lease (1.6 s): only the guard can end the child meanwhile.
    let resume_at = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < resume_at && stamps.lives().len() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let resumed = std::time::Instant::now();
    signal(caller, Signal::SIGCONT);
    let all = logs(d.path());
    let old = stamps.lives()[0].clone();
    let died = old.end.unwrap_or_else(|| {
        panic!("the stopped caller's child {old:?} (or its grandchild) outlived its lease by more than 10 s\n{all}")
    });
    assert!(
        died < resumed,
        "{old:?} ended only after its caller resumed\n{all}"
    );
    wait_until("a child on another host", || stamps.lives().len() >= 2);
    stamps.assert_one_at_a_time();
    assert_ne!(stamps.lives()[1].node, first.node);
    stop_all(&mut runners, &mut agents);
}

/// The leading host's *agent* SIGSTOPped until its caller's deadline has passed and the
/// command got SIGTERM (the followers still keep their promise: the lease is 1.6 s, the
/// promise 2 s), then resumed at once, while the command uses its kill grace: whatever the
/// caller sent the stopped agent meanwhile must not let it hand over before the command
/// is gone.
fn a_stopped_agent_does_not_hand_over_inside_the_kill_grace(kind: &str) {
    let d = tempfile::tempdir().unwrap();
    let (hosts, mut agents) = agents_up(d.path(), kind);
    let stamps = Stamps::start();
    let termed = d.path().join("termed");
    // Works on for 250 ms after SIGTERM (the kill grace is 300 ms).
    let script = stamps.script(&format!(
        "trap 'touch {}; sleep 0.25; exit 0' TERM; sleep 1000 & wait",
        termed.display()
    ));
    let mut runners = Procs(hosts.iter().map(|h| supervise(h, &script)).collect());
    wait_until("a first child", || stamps.lives().len() == 1);
    let first = stamps.lives()[0].clone();
    let leader: usize = first.node[1..].parse::<usize>().unwrap() - 1;
    let agent_pid = agents.0[leader].id();
    signal(agent_pid, Signal::SIGSTOP);
    wait_until("the stopped agent's caller to SIGTERM its command", || {
        termed.exists()
    });
    signal(agent_pid, Signal::SIGCONT);
    wait_until("a second child", || stamps.lives().len() >= 2);
    let all = logs(d.path());
    let lives = stamps.lives();
    let (old, new) = (&lives[0], &lives[1]);
    assert!(
        old.end.is_some_and(|end| end < new.start),
        "{new:?} started before {old:?} was gone\n{all}"
    );
    stop_all(&mut runners, &mut agents);
}

/// Three cron runs at once, one per host: exactly one runs the command.
fn three_cron_runs_at_once_run_once(kind: &str) {
    let d = tempfile::tempdir().unwrap();
    let (hosts, mut agents) = agents_up(d.path(), kind);
    let file = d.path().join("runs");
    let runs_at_once: Vec<Child> = hosts
        .iter()
        .map(|h| {
            let mut c = elector();
            c.arg("--config")
                .arg(&h.config)
                .args(["run", "-e", "nightly", "--min-hold", "5s"])
                .args(["--", "sh", "-c"])
                .arg(record(&file, "true"))
                .stdout(Stdio::piped())
                .stderr(log_file(h, "cron"));
            c.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<_> = runs_at_once.into_iter().map(wait_output).collect();
    let all: String = outputs.iter().map(text).collect::<String>() + &logs(d.path());
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{all}");
    }
    assert_eq!(runs(&file).len(), 1, "exactly one run expected\n{all}");
    let skipped = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).starts_with("skipped: nightly is led by "))
        .count();
    assert_eq!(skipped, 2, "{all}");
    for c in agents.0.iter_mut() {
        signal(c.id(), Signal::SIGTERM);
        let _ = c.wait();
    }
}

/// The page one agent serves at `/` as a real browser shows it: the leader and epoch of
/// `job`, or `None` before the page has drawn it.
fn page_shows(b: &mut common::browser::Browser) -> Option<(String, u64)> {
    let v = b.eval(
        "(() => { const r = document.querySelector('#elections tr[data-election=\"job\"]'); \
         return r ? [r.querySelector('.leader').textContent, r.querySelector('.epoch').textContent] : null })()",
    );
    let node = v.get(0)?.as_str()?.to_owned();
    let epoch = v.get(1)?.as_str()?.parse().ok()?;
    Some((node, epoch))
}

/// The leader and epoch of `job` as agent `h` reports it.
fn leader_of(h: &Host) -> Option<(String, u64)> {
    let (code, body) = http_get(h.api, "/v1/elections/job")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    (code == 200).then_some(())?;
    let l = &v["leader"];
    Some((l["node"].as_str()?.to_owned(), l["epoch"].as_u64()?))
}

/// Issue 12: headless Chromium opens the status page of a follower in a three-agent raft
/// cluster, reads the leader and epoch from the DOM, sees them change to the new leader
/// and a higher epoch after the leading agent is killed, without a reload, and takes a
/// screenshot that is not blank.
#[cfg(feature = "raft")]
#[test]
fn the_status_page_follows_a_failover_in_a_real_browser() {
    let d = tempfile::tempdir().unwrap();
    let (hosts, mut agents) = agents_up(d.path(), "raft");
    let mut runners = Procs(hosts.iter().map(|h| supervise(h, "sleep 1000")).collect());
    wait_until("one leader", || sole_leader(&hosts).is_some());
    let leader = sole_leader(&hosts).unwrap();
    let watcher = &hosts[(leader + 1) % 3];
    let first = leader_of(watcher).expect("the follower knows the leader");
    assert_eq!(first.0, format!("n{}", leader + 1));

    let mut b = common::browser::Browser::start();
    b.open(&format!("http://127.0.0.1:{}/", watcher.api));
    wait_until("the page shows the leader and its epoch", || {
        page_shows(&mut b).as_ref() == Some(&first)
    });
    // A reload would forget this.
    b.eval("window.__no_reload = true");

    signal(agents.0[leader].id(), Signal::SIGKILL);
    signal(runners.0[leader].id(), Signal::SIGKILL);
    wait_until("the page shows a new leader at a higher epoch", || {
        page_shows(&mut b).is_some_and(|(node, epoch)| node != first.0 && epoch > first.1)
    });
    assert_eq!(
        b.eval("window.__no_reload === true"),
        serde_json::json!(true)
    );
    let shown = page_shows(&mut b).unwrap();
    assert_eq!(
        Some(shown.clone()),
        leader_of(watcher),
        "the page agrees with the agent"
    );
    wait_until("the timeline draws both leaderships", || {
        b.eval("document.querySelectorAll('#timeline rect').length")
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    let changes = b.eval("document.querySelectorAll('#changes li').length");
    assert!(changes.as_u64().is_some_and(|n| n >= 2), "{changes}");

    let shot = d.path().join("status-page.png");
    let size = b.screenshot(&shot);
    // A blank 1280x800 page compresses to a few KB; text, a table and a chart do not.
    assert!(size > 15_000, "the screenshot looks blank ({size} bytes)");
    println!(
        "screenshot: {} ({size} bytes), page shows {shown:?}",
        shot.display()
    );
    // To look at it: ELECTOR_KEEP_SCREENSHOT=/tmp/page.png cargo nextest run ... status_page
    if let Some(keep) = std::env::var_os("ELECTOR_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    stop_all(&mut runners, &mut agents);
}

#[cfg(feature = "raft")]
mod raft {
    #[test]
    fn three_cron_runs_at_once_run_once() {
        super::three_cron_runs_at_once_run_once("raft");
    }

    #[test]
    fn supervised_child_moves_when_the_leading_agent_is_killed() {
        super::supervised_child_moves_when_the_leading_agent_is_killed("raft");
    }

    #[test]
    fn a_stopped_caller_leaves_no_child_past_its_deadline() {
        super::a_stopped_caller_leaves_no_child_past_its_deadline("raft");
    }

    #[test]
    fn a_stopped_agent_does_not_hand_over_inside_the_kill_grace() {
        super::a_stopped_agent_does_not_hand_over_inside_the_kill_grace("raft");
    }
}

#[cfg(feature = "bully")]
mod bully {
    #[test]
    fn three_cron_runs_at_once_run_once() {
        super::three_cron_runs_at_once_run_once("bully");
    }

    #[test]
    fn supervised_child_moves_when_the_leading_agent_is_killed() {
        super::supervised_child_moves_when_the_leading_agent_is_killed("bully");
    }

    #[test]
    fn a_stopped_caller_leaves_no_child_past_its_deadline() {
        super::a_stopped_caller_leaves_no_child_past_its_deadline("bully");
    }

    #[test]
    fn a_stopped_agent_does_not_hand_over_inside_the_kill_grace() {
        super::a_stopped_agent_does_not_hand_over_inside_the_kill_grace("bully");
    }
}

#[cfg(feature = "paxos")]
mod paxos {
    #[test]
    fn three_cron_runs_at_once_run_once() {
        super::three_cron_runs_at_once_run_once("paxos");
    }

    #[test]
    fn supervised_child_moves_when_the_leading_agent_is_killed() {
        super::supervised_child_moves_when_the_leading_agent_is_killed("paxos");
    }

    #[test]
    fn a_stopped_caller_leaves_no_child_past_its_deadline() {
        super::a_stopped_caller_leaves_no_child_past_its_deadline("paxos");
    }

    #[test]
    fn a_stopped_agent_does_not_hand_over_inside_the_kill_grace() {
        super::a_stopped_agent_does_not_hand_over_inside_the_kill_grace("paxos");
    }
}
