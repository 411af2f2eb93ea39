//! The holder side of the deadline rule, on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use election_core::{
    DeadlineSource, Epoch, LeaderInfo, Leadership, LeadershipControl, LeaseKeeper, LeaseTiming,
    LossReason, NodeId, Result,
};
use tokio::time::Instant;

#[derive(Default)]
struct CountingControl {
    resigns: AtomicUsize,
}

#[async_trait]
impl LeadershipControl for CountingControl {
    async fn resign(&self) -> Result<()> {
        self.resigns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn info() -> LeaderInfo {
    LeaderInfo {
        node: NodeId::new("n1").unwrap(),
        epoch: Epoch(1),
        since: SystemTime::now(),
    }
}

#[tokio::test(start_paused = true)]
async fn lost_resolves_at_the_deadline_when_the_backend_never_answers() {
    let timing = LeaseTiming::default();
    let started = Instant::now();
    let (_keeper, leadership) = LeaseKeeper::grant(
        info(),
        timing.deadline_after(started),
        Arc::new(CountingControl::default()),
    );
    assert!(leadership.is_held());
    let reason = leadership.lost().await;
    assert_eq!(reason, LossReason::Expired);
    assert_eq!(Instant::now() - started, timing.hold_budget());
    assert!(!leadership.is_held());
}

#[tokio::test(start_paused = true)]
async fn a_renewal_moves_the_deadline_and_lost_waits_for_the_new_one() {
    let timing = LeaseTiming::default();
    let t0 = Instant::now();
    let (keeper, leadership) = LeaseKeeper::grant(
        info(),
        timing.deadline_after(t0),
        Arc::new(CountingControl::default()),
    );
    tokio::time::sleep(timing.renew_interval).await;
    let renewal_started = Instant::now();
    assert!(keeper.extend_to(timing.deadline_after(renewal_started)));
    leadership.lost().await;
    assert_eq!(Instant::now(), timing.deadline_after(renewal_started));
}

#[tokio::test(start_paused = true)]
async fn a_lapsed_leadership_is_never_revived() {
    let timing = LeaseTiming::default();
    let (keeper, leadership) = LeaseKeeper::grant(
        info(),
        timing.deadline_after(Instant::now()),
        Arc::new(CountingControl::default()),
    );
    tokio::time::sleep(timing.hold_budget()).await;
    assert!(!leadership.is_held());
    // A renewal that completes late must not bring it back.
    assert!(!keeper.extend_to(Instant::now() + timing.ttl));
    assert!(!leadership.is_held());
    assert_eq!(leadership.lost().await, LossReason::Expired);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_loss_resolves_lost_at_once_with_its_reason() {
    let timing = LeaseTiming::default();
    let (keeper, leadership) = LeaseKeeper::grant(
        info(),
        timing.deadline_after(Instant::now()),
        Arc::new(CountingControl::default()),
    );
    let watch = leadership.loss_watch();
    let waiter = tokio::spawn(async move { watch.lost().await });
    tokio::task::yield_now().await;
    assert!(keeper.end(LossReason::Revoked));
    assert!(!keeper.end(LossReason::Shutdown), "a loss is reported once");
    assert_eq!(waiter.await.unwrap(), LossReason::Revoked);
    assert!(!leadership.is_held());
}

#[tokio::test(start_paused = true)]
async fn resign_marks_the_leadership_lost_before_asking_the_backend() {
    let control = Arc::new(CountingControl::default());
    let (keeper, leadership) = LeaseKeeper::grant(
        info(),
        Instant::now() + Duration::from_secs(5),
        control.clone(),
    );
    let watch = leadership.loss_watch();
    leadership.resign().await.unwrap();
    assert_eq!(watch.loss(), Some(LossReason::Resigned));
    assert!(!keeper.is_held());
    assert_eq!(control.resigns.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_leadership_resigns_it() {
    let control = Arc::new(CountingControl::default());
    let (keeper, leadership) = LeaseKeeper::grant(
        info(),
        Instant::now() + Duration::from_secs(5),
        control.clone(),
    );
    drop(leadership);
    assert!(!keeper.is_held());
    // The resign runs on a spawned task.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(control.resigns.load(Ordering::SeqCst), 1);
}

// ---- A deadline kept elsewhere (DeadlineSource, decision 126), on real time ----

/// A deadline kept elsewhere, moved by the test.
#[derive(Debug, Default)]
struct Source(std::sync::Mutex<Option<Instant>>);

impl Source {
    fn set(&self, at: Instant) {
        *self.0.lock().unwrap() = Some(at);
    }
}

impl DeadlineSource for Source {
    fn deadline(&self) -> Option<Instant> {
        *self.0.lock().unwrap()
    }
}

fn with_source(deadline: Instant) -> (Arc<Source>, LeaseKeeper, Leadership) {
    let source = Arc::new(Source::default());
    let (keeper, leadership) = LeaseKeeper::grant_with_source(
        info(),
        deadline,
        Arc::new(CountingControl::default()),
        source.clone(),
    );
    (source, keeper, leadership)
}

#[tokio::test]
async fn a_source_keeps_a_leadership_past_the_keepers_own_deadline() {
    let start = Instant::now();
    let (source, keeper, leadership) = with_source(start);
    source.set(start + Duration::from_secs(60));
    assert!(leadership.is_held());
    assert!(keeper.is_held());
    assert_eq!(leadership.deadline(), start + Duration::from_secs(60));
    assert!(leadership.loss_watch().deadline_source().is_some());
    // The keeper's own extensions still count, and never move the deadline back.
    assert!(keeper.extend_to(start + Duration::from_secs(1)));
    assert_eq!(leadership.deadline(), start + Duration::from_secs(60));
}

#[tokio::test]
async fn once_seen_lapsed_a_source_cannot_revive_the_leadership() {
    let start = Instant::now();
    let (source, keeper, leadership) = with_source(start);
    source.set(start);
    assert_eq!(leadership.loss_watch().loss(), Some(LossReason::Expired));
    // The source moves on (a store that arrived late): the leadership stays lost.
    source.set(Instant::now() + Duration::from_secs(60));
    assert!(!leadership.is_held());
    assert!(!keeper.extend_to(Instant::now() + Duration::from_secs(60)));
    assert!(leadership.loss_watch().deadline_source().is_none());
    assert_eq!(leadership.lost().await, LossReason::Expired);
}

#[tokio::test]
async fn an_explicit_loss_ends_a_leadership_whatever_the_source_says() {
    let start = Instant::now();
    let (source, keeper, leadership) = with_source(start + Duration::from_secs(60));
    source.set(start + Duration::from_secs(120));
    keeper.end(LossReason::Revoked);
    assert_eq!(leadership.lost().await, LossReason::Revoked);
}

#[tokio::test]
async fn lost_resolves_once_the_source_stops_moving_and_not_before() {
    let start = Instant::now();
    let step = Duration::from_millis(20);
    let (source, _keeper, leadership) = with_source(start + step);
    source.set(start + 2 * step);
    // Another "process" moves the source on, ten times, then stops.
    let mover = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut last = start + 2 * step;
            for _ in 0..10 {
                tokio::time::sleep(step).await;
                last = Instant::now() + 2 * step;
                source.set(last);
            }
            last
        })
    };
    let reason = leadership.lost().await;
    let lost_at = Instant::now();
    let last = mover.await.unwrap();
    assert_eq!(reason, LossReason::Expired);
    assert!(
        lost_at >= last,
        "lost {:?} before the source's last deadline",
        last - lost_at
    );
}

#[tokio::test]
async fn checking_every_period_notices_an_explicit_end_at_once_and_an_expiry_after_it() {
    let period = Duration::from_secs(30);
    let start = Instant::now();
    let (_source, keeper, leadership) = with_source(start + Duration::from_secs(60));
    let watch = leadership.loss_watch();
    let waiting = tokio::spawn(async move { watch.lost_checking_every(period).await });
    tokio::task::yield_now().await;
    keeper.end(LossReason::Revoked);
    let reason = tokio::time::timeout(period / 2, waiting)
        .await
        .expect("an explicit end waited for the next check")
        .unwrap();
    assert_eq!(reason, LossReason::Revoked);
    // An expiry: noticed at a check, never before the deadline.
    let deadline = Instant::now() + Duration::from_millis(50);
    let (_source, _keeper, leadership) = with_source(deadline);
    let reason = leadership
        .loss_watch()
        .lost_checking_every(Duration::from_millis(20))
        .await;
    assert_eq!(reason, LossReason::Expired);
    assert!(
        Instant::now() >= deadline,
        "noticed an expiry before the deadline"
    );
}
