//! Faults against a real PostgreSQL: the server stopped (SIGSTOP of every process) past
//! the TTL, the holder's connection blackholed, and the LISTEN connection lost. Each
//! checks orderings on the monotonic clock, not absolute times: the holder's `lost()`
//! resolves by its deadline, and the next leader is granted only after that deadline plus
//! the kill grace.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use election_core::{LeaderElector, Leadership, LeaseTiming};
use election_tests::conformance::SLACK;
use election_tests::proxy::{Direction, Fault, FaultProxy};
use tokio::time::Instant;

/// `b` campaigns in the background; the grant's instant and its leadership.
fn campaign_in_background(
    b: Arc<dyn LeaderElector>,
) -> tokio::task::JoinHandle<(Instant, Leadership)> {
    tokio::spawn(async move {
        loop {
            match b.campaign().await {
                Ok(l) => return (Instant::now(), l),
                // The server is away for a while: keep trying, as `elector run --supervise` does.
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("campaign: {e}"),
            }
        }
    })
}

/// Waits for the holder's loss; returns when it resolved, checking it came by the deadline.
async fn lost_by_deadline(l: &Leadership) -> Instant {
    let deadline = l.deadline();
    let reason = tokio::time::timeout(Duration::from_secs(30), l.lost())
        .await
        .expect("lost() resolved");
    let at = Instant::now();
    assert!(
        at <= deadline + SLACK,
        "lost() ({reason:?}) {:?} after the deadline",
        at - deadline
    );
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_past_the_ttl_ends_the_leadership_by_its_deadline_without_overlap() {
    let server = server();
    let t = timing();
    let a_backend = connect(&server.url(), t).await;
    let b_backend = connect(&server.url(), t).await;
    let a = elector(&a_backend, "job", "a");
    let la = a.campaign().await.unwrap();
    let b = elector(&b_backend, "job", "b");
    let waiting = campaign_in_background(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| server.pause()).unwrap();
    let stopped_at = Instant::now();
    let lost_at = lost_by_deadline(&la).await;
    let last_deadline = la.deadline();
    // Stopped for two TTLs, then woken: the lease ran out meanwhile by the server's clock.
    tokio::time::sleep_until(stopped_at + 2 * t.ttl).await;
    tokio::task::block_in_place(|| server.resume()).unwrap();
    let (granted_at, lb) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("b elected after the server woke")
        .unwrap();
    assert!(lost_at < granted_at);
    assert!(
        granted_at >= last_deadline + t.kill_grace,
        "b granted {:?} before a's deadline + kill grace",
        (last_deadline + t.kill_grace) - granted_at
    );
    assert!(lb.epoch() > la.epoch());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_holder_is_lost_by_its_deadline_before_the_next_is_granted() {
    let server = server();
    let t = timing();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a_backend = connect(&server.url_for(proxy.addr()), t).await;
    let b_backend = connect(&server.url(), t).await;
    let la = elector(&a_backend, "job", "a").campaign().await.unwrap();
    let waiting = campaign_in_background(elector(&b_backend, "job", "b"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set(Direction::Both, Fault::Blackhole);
    let lost_at = lost_by_deadline(&la).await;
    let last_deadline = la.deadline();
    let (granted_at, lb) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("b elected")
        .unwrap();
    assert!(lost_at < granted_at);
    assert!(granted_at >= last_deadline + t.kill_grace);
    assert!(lb.epoch() > la.epoch());
    // a's connection heals: its old leadership stays lost, and it cannot renew b's lease.
    proxy.set(Direction::Both, Fault::Pass);
    tokio::time::sleep(t.renew_interval * 3).await;
    assert!(!la.is_held());
    assert!(lb.is_held(), "b still leads after a's connection healed");
}

/// Timings whose polling is slow, so a handoff by push is told apart from one by polling.
fn slow_poll() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(60),
        renew_interval: Duration::from_secs(10),
        retry_interval: Duration::from_secs(4),
        clock_drift: Duration::from_millis(200),
        kill_grace: Duration::from_millis(100),
    }
}

async fn listen_connections(db: &election_postgres::tokio_postgres::Client, user: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name LIKE '% listen'",
        &[&user],
    )
    .await
    .unwrap()
    .get(0)
}

/// Resigns `holder` and measures how long `waiting` took to be granted after it.
async fn handoff(
    holder: Leadership,
    waiting: tokio::task::JoinHandle<(Instant, Leadership)>,
) -> (Duration, Leadership) {
    let resigned = Instant::now();
    holder.resign().await.unwrap();
    let (granted, l) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("granted after the resign")
        .unwrap();
    (granted - resigned, l)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_falls_back_to_polling_then_recovers() {
    let server = server();
    let t = slow_poll();
    let db = raw(&server.url()).await;
    db.batch_execute(
        "CREATE ROLE waiter LOGIN PASSWORD 'waiterpw';
         CREATE TABLE elector_leases (election text PRIMARY KEY, token text, node text NOT NULL,
             epoch bigint NOT NULL, since timestamptz NOT NULL, expires timestamptz NOT NULL);
         GRANT SELECT, INSERT, UPDATE ON elector_leases TO waiter",
    )
    .await
    .unwrap();
    let a_backend = connect(&server.url(), t).await;
    let waiter_url = format!(
        "postgres://waiter:waiterpw@{}/postgres?sslmode=disable",
        server.addr()
    );
    let b_backend = connect(&waiter_url, t).await;
    let a = elector(&a_backend, "job", "a");
    let b = elector(&b_backend, "job", "b");

    // With LISTEN: the handoff comes by push, well before the next poll.
    let la = a.campaign().await.unwrap();
    let waiting = campaign_in_background(b.clone());
    let start = Instant::now();
    while listen_connections(&db, "waiter").await != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the waiter listens"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (pushed, lb) = handoff(la, waiting).await;
    assert!(pushed < t.retry_interval, "handoff by push took {pushed:?}");

    // The LISTEN connection is killed and cannot come back (one connection for the role:
    // the command connection's).
    db.batch_execute("ALTER ROLE waiter CONNECTION LIMIT 1")
        .await
        .unwrap();
    db.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE usename = 'waiter' AND application_name LIKE '% listen'",
    )
    .await
    .unwrap();
    lb.resign().await.unwrap();
    let la = a.campaign().await.unwrap();
    let waiting = campaign_in_background(b.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(listen_connections(&db, "waiter").await, 0);
    // The waiter falls back to polling: elected after a poll, long before the TTL.
    let (polled, lb) = handoff(la, waiting).await;
    assert!(polled < t.ttl / 4, "handoff by polling took {polled:?}");
    println!("handoff: by push {pushed:?}, by polling with LISTEN down {polled:?}");

    // The limit lifted, the LISTEN connection comes back and pushes work again.
    db.batch_execute("ALTER ROLE waiter CONNECTION LIMIT -1")
        .await
        .unwrap();
    lb.resign().await.unwrap();
    let la = a.campaign().await.unwrap();
    let waiting = campaign_in_background(b.clone());
    let start = Instant::now();
    while listen_connections(&db, "waiter").await != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the LISTEN connection recovers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the first attempt after reconnecting (woken by it) settle into its wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (again, _lb) = handoff(la, waiting).await;
    assert!(
        again < t.retry_interval,
        "handoff by push after recovery took {again:?}"
    );
}
