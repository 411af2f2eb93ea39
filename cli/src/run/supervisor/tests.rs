//! The supervisor on the in-process backend, with real processes and real signals.

use std::path::{Path, PathBuf};

use election_core::{Backend, Candidate, ElectionName, LeaseTiming, MemoryBackend, MemoryServer};
use nix::errno::Errno;
use nix::unistd::Pid;
use tokio::sync::watch;

use super::*;

const DEADLINE: Duration = Duration::from_secs(30);

fn elector(conn: &MemoryBackend, node: &str) -> Arc<dyn LeaderElector> {
    conn.election(
        &ElectionName::new("job").unwrap(),
        Candidate::new(NodeId::new(node).unwrap()),
    )
    .unwrap()
}

fn plan(script: &str, mode: Mode) -> Plan {
    Plan {
        job: Job {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
        },
        launcher: Launcher::direct(),
        node: NodeId::new("n1").unwrap(),
        backend: "memory",
        kill_grace: Duration::from_millis(100),
        mode,
    }
}

fn once(min_hold: Duration) -> Mode {
    Mode::Once {
        wait: None,
        min_hold,
    }
}

fn no_stop() -> (watch::Sender<Option<Signal>>, Stop) {
    watch::channel(None)
}

/// Waits until `path` holds a pid (one line), and returns it.
async fn read_pid(path: &Path) -> Pid {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return Pid::from_raw(pid);
            }
        }
        assert!(
            Instant::now() < until,
            "{} was never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_gone(pid: Pid) -> bool {
    matches!(nix::sys::signal::kill(pid, None), Err(Errno::ESRCH))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    (d, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loss_the_whole_group_is_dead_before_the_loss_is_reported() {
    let (_d, dir) = dir();
    let conn = MemoryBackend::new(LeaseTiming::fast_for_tests()).unwrap();
    // The grandchild ignores SIGTERM, so only the SIGKILL after the grace ends it.
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {d}/gc; echo $$ > {d}/c; wait",
        d = dir.display()
    );
    let plan = plan(&script, once(Duration::ZERO));
    let (_tx, stop) = no_stop();
    let run = tokio::spawn({
        let e = elector(&conn, "n1");
        async move { run(e, &plan, stop).await }
    });
    let child = read_pid(&dir.join("c")).await;
    let grandchild = read_pid(&dir.join("gc")).await;
    conn.cut_off();
    let outcome = run.await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Lost {
                reason: LossReason::Expired,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(is_gone(child), "the child outlived the reported loss");
    assert!(
        is_gone(grandchild),
        "the grandchild outlived the reported loss"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_a_finished_command_leaves_behind_are_killed() {
    let (_d, dir) = dir();
    let conn = MemoryBackend::new(LeaseTiming::fast_for_tests()).unwrap();
    let script = format!("sleep 1000 & echo $! > {}/gc", dir.display());
    let (_tx, stop) = no_stop();
    let outcome = run(
        elector(&conn, "n1"),
        &plan(&script, once(Duration::ZERO)),
        stop,
    )
    .await
    .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Exited {
                exit: Exit::Code(0),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(is_gone(read_pid(&dir.join("gc")).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_sees_its_epoch_election_node_and_backend() {
    let (_d, dir) = dir();
    let conn = MemoryBackend::new(LeaseTiming::fast_for_tests()).unwrap();
    let script = format!(
        "echo \"$ELECTOR_EPOCH $ELECTOR_ELECTION $ELECTOR_NODE_ID $ELECTOR_BACKEND\" > {}/env; exit 3",
        dir.display()
    );
    let (_tx, stop) = no_stop();
    let outcome = run(
        elector(&conn, "n1"),
        &plan(&script, once(Duration::ZERO)),
        stop,
    )
    .await
    .unwrap();
    let Outcome::Exited { exit, epoch } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(exit.code(), 3, "the command's own exit code is passed on");
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    assert_eq!(env.trim(), format!("{epoch} job n1 memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_leadership_skips_the_command() {
    let server = MemoryServer::new(LeaseTiming::fast_for_tests()).unwrap();
    let other = elector(&server.connect(), "n2").campaign().await.unwrap();
    let (_tx, stop) = no_stop();
    let outcome = run(
        elector(&server.connect(), "n1"),
        &plan("exit 9", once(Duration::ZERO)),
        stop,
    )
    .await
    .unwrap();
    let Outcome::Skipped {
        leader: Some(leader),
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(leader.node.as_str(), "n2");
    assert_eq!(leader.epoch, other.epoch());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_hold_keeps_leadership_after_a_quick_command_so_a_late_cron_skips() {
    let server = MemoryServer::new(LeaseTiming::fast_for_tests()).unwrap();
    let min_hold = Duration::from_millis(1500);
    let (_tx, stop) = no_stop();
    let begun = Instant::now();
    let first = tokio::spawn({
        let e = elector(&server.connect(), "n1");
        let plan = plan("true", once(min_hold));
        async move { run(e, &plan, stop).await }
    });
    let late = elector(&server.connect(), "n2");
    wait_for("n1 to lead", || {
        futures_util::FutureExt::now_or_never(late.leader())
            .and_then(|r| r.ok().flatten())
            .is_some()
    })
    .await;
    // The command is long done; the late host must still skip.
    let (_tx2, stop2) = no_stop();
    let outcome = run(late.clone(), &plan("exit 9", once(Duration::ZERO)), stop2)
        .await
        .unwrap();
    let first_done = first.is_finished();
    assert!(
        matches!(outcome, Outcome::Skipped { .. }) || first_done,
        "{outcome:?}"
    );
    let first = first.await.unwrap().unwrap();
    assert!(matches!(first, Outcome::Exited { .. }), "{first:?}");
    assert!(
        begun.elapsed() >= min_hold,
        "leadership released before min_hold"
    );
    // Released at once after min_hold: the next attempt wins without waiting for a TTL.
    let (_tx3, stop3) = no_stop();
    let after = run(late, &plan("exit 0", once(Duration::ZERO)), stop3)
        .await
        .unwrap();
    assert!(matches!(after, Outcome::Exited { .. }), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_command_then_hands_over_without_a_ttl_wait() {
    let (_d, dir) = dir();
    // A long TTL: a handoff that waited for it would time the test out.
    let timing = LeaseTiming {
        ttl: Duration::from_secs(120),
        renew_interval: Duration::from_secs(2),
        ..LeaseTiming::default()
    };
    let server = MemoryServer::new(timing).unwrap();
    let script = format!("echo $$ > {}/c; exec sleep 1000", dir.display());
    let (tx, stop) = no_stop();
    let mode = Mode::Supervise {
        restart: Restart::Always,
        delay: Duration::from_millis(50),
        delay_max: Duration::from_millis(200),
        retry: Duration::from_millis(50),
    };
    let leader = tokio::spawn({
        let e = elector(&server.connect(), "n1");
        let plan = plan(&script, mode);
        async move { run(e, &plan, stop).await }
    });
    let child = read_pid(&dir.join("c")).await;
    let next = elector(&server.connect(), "n2");
    assert!(
        next.try_campaign().await.unwrap().is_none(),
        "n1 should lead"
    );
    tx.send_replace(Some(Signal::SIGTERM));
    let outcome = leader.await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Stopped {
                signal: Signal::SIGTERM,
                exit: Some(Exit::Signal(15))
            }
        ),
        "{outcome:?}"
    );
    assert!(is_gone(child));
    let taken = tokio::time::timeout(Duration::from_secs(20), next.campaign())
        .await
        .expect("the next node was not elected before the 120 s TTL: no handoff")
        .unwrap();
    assert!(taken.epoch() > Epoch(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_kills_on_loss_and_runs_again_at_a_higher_epoch_after_reelection() {
    let (_d, dir) = dir();
    let conn = MemoryBackend::new(LeaseTiming::fast_for_tests()).unwrap();
    let script = format!(
        "echo $$ >> {d}/pids; echo $ELECTOR_EPOCH >> {d}/epochs; exec sleep 1000",
        d = dir.display()
    );
    let (tx, stop) = no_stop();
    let mode = Mode::Supervise {
        restart: Restart::OnFailure,
        delay: Duration::from_millis(50),
        delay_max: Duration::from_millis(200),
        retry: Duration::from_millis(50),
    };
    let task = tokio::spawn({
        let e = elector(&conn, "n1");
        let plan = plan(&script, mode);
        async move { run(e, &plan, stop).await }
    });
    let lines = |f: &str| -> Vec<u64> {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    wait_for("the first child", || lines("pids").len() == 1).await;
    let first = Pid::from_raw(lines("pids")[0] as i32);
    conn.cut_off();
    wait_for("the first child to be killed after the loss", || {
        is_gone(first)
    })
    .await;
    conn.heal();
    wait_for("a second child after re-election", || {
        lines("pids").len() == 2
    })
    .await;
    let epochs = lines("epochs");
    assert!(epochs[1] > epochs[0], "epochs {epochs:?} must rise");
    tx.send_replace(Some(Signal::SIGTERM));
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Stopped { .. }), "{outcome:?}");
    assert!(is_gone(Pid::from_raw(lines("pids")[1] as i32)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervise_restarts_a_failing_command_and_stops_when_it_succeeds() {
    let (_d, dir) = dir();
    let conn = MemoryBackend::new(LeaseTiming::fast_for_tests()).unwrap();
    // Fails twice, then succeeds.
    let script = format!(
        "echo x >> {d}/runs; [ $(wc -l < {d}/runs) -ge 3 ]",
        d = dir.display()
    );
    let mode = Mode::Supervise {
        restart: Restart::OnFailure,
        delay: Duration::from_millis(20),
        delay_max: Duration::from_millis(50),
        retry: Duration::from_millis(20),
    };
    let (_tx, stop) = no_stop();
    let outcome = run(elector(&conn, "n1"), &plan(&script, mode), stop)
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Exited {
                exit: Exit::Code(0),
                ..
            }
        ),
        "{outcome:?}"
    );
    let runs = std::fs::read_to_string(dir.join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_campaigns_until_the_other_leader_resigns_then_runs() {
    let (_d, dir) = dir();
    let server = MemoryServer::new(LeaseTiming::fast_for_tests()).unwrap();
    let other = elector(&server.connect(), "n2").campaign().await.unwrap();
    let script = format!("echo ran > {}/ran", dir.display());
    let mode = Mode::Once {
        wait: Some(DEADLINE),
        min_hold: Duration::ZERO,
    };
    let (_tx, stop) = no_stop();
    let task = tokio::spawn({
        let e = elector(&server.connect(), "n1");
        let plan = plan(&script, mode);
        async move { run(e, &plan, stop).await }
    });
    // Still waiting while n2 leads.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!dir.join("ran").exists(), "ran while another node led");
    let old = other.epoch();
    other.resign().await.unwrap();
    let outcome = task.await.unwrap().unwrap();
    let Outcome::Exited { exit, epoch } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(exit.success() && epoch > old);
    assert!(dir.join("ran").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_skips() {
    let server = MemoryServer::new(LeaseTiming::fast_for_tests()).unwrap();
    let _other = elector(&server.connect(), "n2").campaign().await.unwrap();
    let mode = Mode::Once {
        wait: Some(Duration::from_millis(300)),
        min_hold: Duration::ZERO,
    };
    let (_tx, stop) = no_stop();
    let outcome = run(
        elector(&server.connect(), "n1"),
        &plan("exit 9", mode),
        stop,
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Outcome::Skipped { leader: Some(_) }),
        "{outcome:?}"
    );
}
