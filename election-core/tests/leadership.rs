//! The holder side of the deadline rule, on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use election_core::{
    Epoch, LeaderInfo, LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, NodeId, Result,
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
