//! A suspend of the host (simulated with `inject_suspend`: a container cannot suspend)
//! ends a leadership on a real server as `Expired` at once, long before its deadline on
//! the monotonic clock, which stood still meanwhile while the server's TTL ran on; a
//! leadership granted after the resume holds (issue 16, item 5; decision 119). One test
//! per binary: the injected suspend is process-wide.

mod common;

use std::time::Duration;

use common::*;
use election_core::{LeaseTiming, LossReason, inject_suspend};
use election_tests::launch::RedisServer;
use tokio::time::{Instant, timeout};

/// A TTL far longer than any wait here, renewed often: the deadline is always ~29 s away.
fn long_lease() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(30),
        renew_interval: Duration::from_millis(200),
        retry_interval: Duration::from_millis(100),
        clock_drift: Duration::from_millis(200),
        kill_grace: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn a_suspend_ends_the_leadership_at_resume_long_before_its_deadline() {
    // Waiters listen for injected suspends from the first call on.
    inject_suspend(Duration::ZERO);
    let server = RedisServer::start().expect("redis-server");
    let backend = connect(&server.url(), long_lease()).await;
    let a = elector(&backend, "job", "a");
    let held = a.campaign().await.unwrap();
    let watch = held.loss_watch();
    let waiter = tokio::spawn(async move { watch.lost().await });
    let deadline = held.deadline();
    assert!(deadline > Instant::now() + Duration::from_secs(20));
    inject_suspend(Duration::from_secs(2));
    assert!(!held.is_held(), "held across a suspend");
    let reason = timeout(Duration::from_secs(10), waiter)
        .await
        .expect("lost() did not wake at the resume")
        .unwrap();
    assert_eq!(reason, LossReason::Expired);
    assert!(Instant::now() < deadline, "woke only at the deadline");
    assert!(!held.is_held());
    assert_eq!(held.loss_watch().loss(), Some(LossReason::Expired));
    // Resigned, the lease goes to the next holder, whose leadership holds.
    let epoch = held.epoch();
    drop(held);
    let b = elector(&backend, "job", "b");
    let next = timeout(Duration::from_secs(10), b.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(next.epoch() > epoch);
    assert!(next.is_held(), "a leadership granted after the resume");
}
