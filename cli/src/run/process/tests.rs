//! The guard with real processes: it ends the group at the deadline it was given, on its
//! own, and takes later deadlines; `terminate` sends one SIGTERM, from the guard.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::{Exit, Job, Launcher};
use crate::agent::deadline_page::{PageReader, PageWriter};
use election_core::DeadlineSource as _;

/// Bound on how late an action may come on a loaded machine (assertions on orderings use
/// no slack).
const LATE: Duration = Duration::from_secs(5);

fn sh(script: &str) -> Job {
    Job {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_kills_a_group_that_ignores_sigterm_one_grace_after_the_deadline() {
    let deadline = Instant::now() + Duration::from_millis(300);
    let grace = Duration::from_millis(200);
    let mut child = Launcher::guarded()
        .spawn(
            &sh("trap '' TERM; exec sleep 100"),
            &[],
            deadline,
            None,
            grace,
        )
        .unwrap();
    let exit = tokio::time::timeout_at(deadline + grace + LATE, child.wait())
        .await
        .expect("the guard did not end the group after its deadline and grace");
    let ended = Instant::now();
    assert!(
        ended >= deadline + grace,
        "ended {:?} before deadline + grace",
        (deadline + grace) - ended
    );
    assert_eq!(exit, Exit::Signal(Signal::SIGKILL as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_sends_sigterm_at_the_deadline() {
    let deadline = Instant::now() + Duration::from_millis(300);
    let mut child = Launcher::guarded()
        .spawn(
            &sh("exec sleep 100"),
            &[],
            deadline,
            None,
            Duration::from_secs(30),
        )
        .unwrap();
    let exit = tokio::time::timeout_at(deadline + LATE, child.wait())
        .await
        .expect("the guard did not SIGTERM the group at its deadline");
    assert!(Instant::now() >= deadline, "ended before the deadline");
    assert_eq!(exit, Exit::Code(128 + Signal::SIGTERM as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_deadline_from_elector_keeps_the_command_running() {
    let first = Instant::now() + Duration::from_millis(300);
    let mut child = Launcher::guarded()
        .spawn(
            &sh("exec sleep 100"),
            &[],
            first,
            None,
            Duration::from_secs(30),
        )
        .unwrap();
    let later = first + Duration::from_millis(900);
    child.deadline_link().set(later);
    // Past the first deadline (and some), the command still runs.
    let early = tokio::time::timeout_at(first + Duration::from_millis(500), child.wait()).await;
    assert!(
        early.is_err(),
        "the command ended at the first deadline: {early:?}"
    );
    let exit = tokio::time::timeout_at(later + LATE, child.wait())
        .await
        .expect("the guard did not act at the later deadline");
    assert!(Instant::now() >= later, "ended before the later deadline");
    assert_eq!(exit, Exit::Code(128 + Signal::SIGTERM as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_sends_one_sigterm_and_the_command_gets_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let terms = dir.path().join("terms");
    // Counts SIGTERMs, and works on for about 0.6 s after the first (its grace is 5 s).
    let script = format!(
        "trap 'echo term >> {f}; n=12' TERM; n=0; while [ $n -lt 100 ]; do sleep 0.05; \
         n=$((n+1)); [ -s {f} ] && [ $n -ge 24 ] && exit 3; done",
        f = terms.display()
    );
    let mut child = Launcher::guarded()
        .spawn(
            &sh(&script),
            &[],
            Instant::now() + Duration::from_secs(60),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let exit = child
        .terminate(Signal::SIGTERM, Duration::from_secs(5))
        .await;
    assert_eq!(exit, Exit::Code(3), "the command did not finish its work");
    let text = std::fs::read_to_string(&terms).unwrap();
    assert_eq!(text.lines().count(), 1, "SIGTERMs received: {text:?}");
}

/// A deadline page as the agent makes one: the writer's side moves it, the guard reads it
/// through the mapping it inherited.
fn page(dir: &std::path::Path, deadline: Instant) -> (PageWriter, PageReader) {
    let writer = PageWriter::create(dir, "hold", None, deadline).unwrap();
    let reader = PageReader::open(writer.path()).unwrap();
    (writer, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_follows_the_deadline_page_and_ends_the_command_once_it_stops_moving() {
    let dir = tempfile::tempdir().unwrap();
    let step = Duration::from_millis(100);
    let first = Instant::now() + step;
    let (writer, reader) = page(dir.path(), first);
    let mut child = Launcher::guarded()
        .spawn(
            &sh("exec sleep 100"),
            &[],
            first,
            reader.shared_boot_ns(),
            Duration::from_secs(30),
        )
        .unwrap();
    // The agent moves the page on, ten times, and never tells the guard (a second ahead:
    // margin for a slow test runtime).
    let mut last = first;
    for _ in 0..10 {
        last = Instant::now() + Duration::from_secs(1);
        writer.store(last);
        let early = tokio::time::timeout(step, child.wait()).await;
        assert!(early.is_err(), "ended while the page moved on: {early:?}");
    }
    // Then it stops (a stopped agent, or a caller no longer alive): SIGTERM at the last one.
    let exit = tokio::time::timeout_at(last + LATE, child.wait())
        .await
        .expect("the guard did not act once the page stopped moving");
    assert!(Instant::now() >= last, "ended before the page's deadline");
    assert_eq!(exit, Exit::Code(128 + Signal::SIGTERM as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_the_command_whatever_the_deadline_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let far = Instant::now() + Duration::from_secs(60);
    let (_writer, reader) = page(dir.path(), far);
    let mut child = Launcher::guarded()
        .spawn(
            &sh("exec sleep 100"),
            &[],
            Instant::now() + Duration::from_millis(10),
            reader.shared_boot_ns(),
            Duration::from_secs(5),
        )
        .unwrap();
    let exit = tokio::time::timeout(
        LATE,
        child.terminate(Signal::SIGTERM, Duration::from_secs(5)),
    )
    .await
    .expect("terminate did not end the command");
    assert_eq!(exit, Exit::Code(128 + Signal::SIGTERM as i32));
}
