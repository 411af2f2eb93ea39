//! Leaderships that share one deadline (a `LeaseGroup`): covered only by extensions after
//! they joined, never revived by a late one, and woken by the group's one task only when
//! the deadline passes, on paused time unless a test says otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use election_core::{
    Epoch, LeaderInfo, Leadership, LeadershipControl, LeaseGroup, LeaseKeeper, LossReason, NodeId,
    Result,
};
use tokio::time::Instant;

struct NoControl;

#[async_trait]
impl LeadershipControl for NoControl {
    async fn resign(&self) -> Result<()> {
        Ok(())
    }
}

fn grant(deadline: Instant) -> (LeaseKeeper, Leadership) {
    let info = LeaderInfo {
        node: NodeId::new("n1").unwrap(),
        epoch: Epoch(1),
        since: SystemTime::now(),
    };
    LeaseKeeper::grant(info, deadline, Arc::new(NoControl))
}

/// Grants until `until`, extends the group to it and joins, as the peer driver does.
fn grant_joined(group: &LeaseGroup, until: Instant) -> (LeaseKeeper, Leadership) {
    let (keeper, leadership) = grant(until);
    assert!(group.extend_to(until) || group.deadline() == Some(until));
    assert!(keeper.extend_to(until));
    assert!(group.join(&keeper));
    (keeper, leadership)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_grouped_leadership_holds_while_the_group_is_extended_and_ends_at_its_deadline() {
    let group = LeaseGroup::new();
    let t0 = Instant::now();
    let (_keeper, leadership) = grant_joined(&group, t0 + ms(100));
    let mut last = t0 + ms(100);
    for _ in 0..20 {
        tokio::time::sleep(ms(50)).await;
        last = Instant::now() + ms(100);
        assert!(group.extend_to(last));
        assert!(leadership.is_held());
        assert_eq!(leadership.deadline(), last);
    }
    assert_eq!(leadership.lost().await, LossReason::Expired);
    assert_eq!(Instant::now(), last);
}

#[tokio::test(start_paused = true)]
async fn the_groups_task_times_the_first_deadline_even_when_it_started_before_it() {
    let group = LeaseGroup::new();
    // The group's task runs and waits, with no deadline yet, before the first extension.
    tokio::time::sleep(ms(10)).await;
    let (_keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    let until = Instant::now() + ms(100);
    assert!(group.extend_to(until));
    let reason = tokio::time::timeout(Duration::from_secs(60), leadership.lost())
        .await
        .expect("lost() resolves at the group's deadline");
    assert_eq!(reason, LossReason::Expired);
    assert_eq!(Instant::now(), until);
}

#[tokio::test(start_paused = true)]
async fn an_extension_made_before_a_keeper_joined_does_not_cover_it() {
    let group = LeaseGroup::new();
    let t0 = Instant::now();
    let (keeper, leadership) = grant(t0 + ms(50));
    // A round that did not renew this leadership: joining after it is refused.
    assert!(group.extend_to(t0 + ms(500)));
    assert!(!group.join(&keeper));
    assert_eq!(leadership.deadline(), t0 + ms(50));
    assert_eq!(leadership.lost().await, LossReason::Expired);
    assert_eq!(Instant::now(), t0 + ms(50));
    // The next extension comes too late for it: it stays lost.
    assert!(group.extend_to(t0 + ms(600)));
    assert!(!leadership.is_held());
}

#[tokio::test(start_paused = true)]
async fn a_late_extension_revives_no_leadership_and_covers_only_later_joiners() {
    let group = LeaseGroup::new();
    let t0 = Instant::now();
    let (old_keeper, old) = grant_joined(&group, t0 + ms(100));
    assert_eq!(old.lost().await, LossReason::Expired);
    // The round's answers arrive after the deadline had passed.
    tokio::time::sleep(ms(20)).await;
    let until = Instant::now() + ms(100);
    assert!(!group.extend_to(until), "the group's deadline had passed");
    assert!(!old.is_held());
    assert!(!old_keeper.is_held());
    assert!(!old_keeper.extend_to(until));
    // A leadership granted and joined now is covered by the group's next extensions.
    let (_keeper, new) = grant_joined(&group, until);
    let later = until + ms(100);
    assert!(group.extend_to(later));
    assert_eq!(new.deadline(), later);
    assert!(!old.is_held());
}

#[tokio::test(start_paused = true)]
async fn a_member_kept_by_its_own_later_deadline_joins_the_groups_new_era() {
    let group = LeaseGroup::new();
    let t0 = Instant::now();
    let (keeper, leadership) = grant_joined(&group, t0 + ms(100));
    // Renewed on its own beyond the group's deadline, which then passes unextended.
    assert!(keeper.extend_to(t0 + ms(300)));
    tokio::time::sleep(ms(150)).await;
    assert!(leadership.is_held());
    let until = Instant::now() + ms(100);
    assert!(!group.extend_to(until), "the group's deadline had passed");
    assert_eq!(
        leadership.deadline(),
        t0 + ms(300),
        "the late extension covers no one"
    );
    // Joining again after it: covered by the next one.
    assert!(group.join(&keeper));
    let later = t0 + ms(500);
    assert!(group.extend_to(later));
    assert_eq!(leadership.deadline(), later);
    assert_eq!(leadership.lost().await, LossReason::Expired);
    assert_eq!(Instant::now(), later);
}

#[tokio::test(start_paused = true)]
async fn a_keeper_of_another_group_is_refused() {
    let (a, b) = (LeaseGroup::new(), LeaseGroup::new());
    let (keeper, leadership) = grant_joined(&a, Instant::now() + ms(100));
    assert!(!b.join(&keeper));
    assert!(b.extend_to(Instant::now() + ms(900)));
    assert!(b.extend_to(Instant::now() + ms(900)));
    assert_eq!(leadership.deadline(), Instant::now() + ms(100));
}

#[tokio::test(start_paused = true)]
async fn a_keeper_that_left_keeps_the_groups_deadline_so_far_and_no_later_one() {
    let group = LeaseGroup::new();
    let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    let covered = Instant::now() + ms(150);
    assert!(group.extend_to(covered));
    assert_eq!(leadership.deadline(), covered);
    assert!(group.leave(&keeper));
    assert!(!group.leave(&keeper), "a second leave changes nothing");
    assert_eq!(leadership.deadline(), covered);
    assert!(group.extend_to(Instant::now() + ms(900)));
    assert_eq!(
        leadership.deadline(),
        covered,
        "an extension after it left does not cover it"
    );
    // Extended on its own meanwhile, then covered again once it joins.
    let own = Instant::now() + ms(950);
    assert!(keeper.extend_to(own));
    assert!(group.join(&keeper));
    assert_eq!(leadership.deadline(), own);
    let later = Instant::now() + ms(2_000);
    assert!(group.extend_to(later));
    assert_eq!(leadership.deadline(), later);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_whose_keeper_left_the_group_ends_at_its_own_deadline() {
    let group = LeaseGroup::new();
    let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    let covered = Instant::now() + ms(100);
    assert!(group.extend_to(covered));
    // The waiter relies on the group's timer when the keeper leaves.
    let waiter = tokio::spawn(async move { leadership.lost().await });
    tokio::task::yield_now().await;
    assert!(group.leave(&keeper));
    // The group runs on far past the keeper's deadline: it must not keep the waiter.
    let group_runs = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(ms(10)).await;
            assert!(group.extend_to(Instant::now() + ms(100)));
        }
    });
    let reason = tokio::time::timeout(ms(500), waiter)
        .await
        .expect("lost() resolves at the deadline the keeper kept")
        .unwrap();
    assert_eq!(reason, LossReason::Expired);
    assert_eq!(Instant::now(), covered);
    group_runs.abort();
}

#[tokio::test(start_paused = true)]
async fn leaving_a_group_one_never_joined_is_refused() {
    let (a, b) = (LeaseGroup::new(), LeaseGroup::new());
    let (outsider, _l1) = grant(Instant::now() + ms(100));
    assert!(!a.leave(&outsider));
    let (member, _l2) = grant_joined(&a, Instant::now() + ms(100));
    assert!(!b.leave(&member));
    assert!(a.leave(&member));
}

/// Counts how often the wrapped future is polled.
struct Polls<F> {
    inner: Pin<Box<F>>,
    count: Arc<AtomicUsize>,
}

impl<F: Future> Future for Polls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn extending_the_group_wakes_no_waiter_until_its_deadline_passes() {
    let group = LeaseGroup::new();
    let (_keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    // Covered from the next extension on.
    assert!(group.extend_to(Instant::now() + ms(100)));
    let polls = Arc::new(AtomicUsize::new(0));
    let waiter = tokio::spawn(Polls {
        inner: Box::pin(async move { leadership.lost().await }),
        count: polls.clone(),
    });
    tokio::task::yield_now().await;
    let before = polls.load(Ordering::SeqCst);
    let mut last = Instant::now();
    for _ in 0..1_000 {
        tokio::time::sleep(ms(10)).await;
        last = Instant::now() + ms(100);
        assert!(group.extend_to(last));
    }
    assert_eq!(
        polls.load(Ordering::SeqCst),
        before,
        "1,000 extensions over 10 s woke the waiter"
    );
    assert_eq!(waiter.await.unwrap(), LossReason::Expired);
    assert_eq!(Instant::now(), last);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[tokio::test(start_paused = true)]
async fn grouped_waiters_open_no_timer_of_their_own() {
    let group = LeaseGroup::new();
    let mut held = Vec::new();
    let mut waiters = Vec::new();
    for _ in 0..200 {
        let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
        held.push(keeper);
        waiters.push(leadership);
    }
    assert!(group.extend_to(Instant::now() + ms(100)));
    tokio::task::yield_now().await;
    let before = open_fds();
    let tasks: Vec<_> = waiters
        .into_iter()
        .map(|l| tokio::spawn(async move { l.lost().await }))
        .collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    let opened = open_fds().saturating_sub(before);
    assert!(
        opened < 20,
        "200 grouped waiters opened {opened} file descriptors (a boot-clock timer each?)"
    );
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_end_of_a_grouped_leadership_resolves_lost_at_once() {
    let group = LeaseGroup::new();
    let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    assert!(group.extend_to(Instant::now() + ms(100)));
    let t0 = Instant::now();
    let waiter = tokio::spawn(async move { leadership.lost().await });
    tokio::task::yield_now().await;
    assert!(keeper.end(LossReason::Revoked));
    assert_eq!(waiter.await.unwrap(), LossReason::Revoked);
    assert_eq!(Instant::now(), t0);
}

#[tokio::test(start_paused = true)]
async fn once_the_group_is_dropped_waiters_end_at_the_last_deadline_by_their_own_timers() {
    let group = LeaseGroup::new();
    let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    let until = Instant::now() + ms(300);
    assert!(group.extend_to(until));
    let waiter = tokio::spawn(async move { leadership.lost().await });
    tokio::task::yield_now().await;
    drop(group);
    drop(keeper);
    assert_eq!(waiter.await.unwrap(), LossReason::Expired);
    assert_eq!(Instant::now(), until);
}

#[tokio::test(start_paused = true)]
async fn changed_reports_each_extension_of_the_group() {
    let group = LeaseGroup::new();
    let (_keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
    let mut watch = leadership.loss_watch();
    let _ = watch.changed().await;
    for k in 1..=5 {
        let until = Instant::now() + ms(100 + k);
        assert!(group.extend_to(until));
        assert_eq!(watch.changed().await, until);
    }
}

/// Real time: the group's task dies with its runtime; a waiter on another runtime still
/// ends at the deadline, by its own timers.
#[test]
fn a_waiter_on_another_runtime_outlives_the_groups_runtime() {
    let rt = |_| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let (a, b) = (rt(()), rt(()));
    let (keeper, leadership, group, until) = a.block_on(async {
        let group = LeaseGroup::new();
        let (keeper, leadership) = grant_joined(&group, Instant::now() + ms(100));
        let until = Instant::now() + ms(300);
        assert!(group.extend_to(until));
        (keeper, leadership, group, until)
    });
    drop(a);
    let reason = b.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), leadership.lost())
            .await
            .expect("lost() resolved")
    });
    assert_eq!(reason, LossReason::Expired);
    assert!(Instant::now() >= until);
    drop((keeper, group));
}

/// A holder ends its leadership (the keeper's lock, then the group's to read it) while
/// the driver joins that member again (the group's lock): the two must never wait on
/// each other. Many rounds of the race, released together by a barrier; a watchdog turns a
/// deadlock into a failure.
#[test]
fn joining_while_holders_end_their_leaderships_never_deadlocks() {
    const ROUNDS: usize = 20_000;
    let group = LeaseGroup::new();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (keepers_tx, keepers_rx) = std::sync::mpsc::channel::<LeaseKeeper>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let ender = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            for keeper in keepers_rx {
                barrier.wait();
                keeper.end(LossReason::Resigned);
            }
        })
    };
    std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let until = Instant::now() + Duration::from_secs(60);
            let (keeper, _leadership) = grant(until);
            assert!(group.extend_to(until));
            // A member already, as the driver's lapse walk finds it: joining again reads
            // the keeper, and ending reads the group.
            assert!(group.join(&keeper));
            keepers_tx.send(keeper.clone()).unwrap();
            barrier.wait();
            group.join(&keeper);
        }
        drop(keepers_tx);
        ender.join().unwrap();
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("joining and ending the same keepers deadlocked");
}
