//! Latency figures against a real PostgreSQL on loopback, printed, never asserted
//! (performance belongs here, not in timed unit tests). Run in release:
//!
//! ```text
//! cargo test -p election-postgres --release --test bench -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use election_tests::proxy::{Direction, Fault, FaultProxy};
use tokio::time::Instant;

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} median={:?} p90={:?} min={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        samples[0],
        samples[samples.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture; prints figures"]
async fn bench_handoff_acquire_and_failover_after_expiry() {
    let server = tokio::task::block_in_place(server);
    let t = timing();
    let db = raw(&server.url()).await;

    // Graceful handoff: A resigns while B waits (two backends, as on two hosts); from the
    // call to resign until B's campaign returns.
    let host_a = connect(&server.url(), t).await;
    let host_b = connect(&server.url(), t).await;
    let a = elector(&host_a, "bench-handoff", "node-a");
    let b = elector(&host_b, "bench-handoff", "node-b");
    // B's LISTEN connection is up before the first round.
    let first = a.campaign().await.unwrap();
    let warm = b.clone();
    let warm = tokio::spawn(async move { warm.campaign().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.resign().await.unwrap();
    warm.await.unwrap().resign().await.unwrap();
    let mut handoff = Vec::new();
    let mut resign = Vec::new();
    for _ in 0..200 {
        let leader = a.campaign().await.unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        // B has tried once and waits for a notification.
        tokio::time::sleep(Duration::from_millis(15)).await;
        let start = Instant::now();
        leader.resign().await.unwrap();
        resign.push(start.elapsed());
        let (elected_at, next) = waiter.await.unwrap();
        handoff.push(elected_at - start);
        next.resign().await.unwrap();
    }
    report(
        "postgres graceful handoff (resign -> waiter elected)",
        handoff,
    );
    report("postgres resign (release statement) alone", resign);

    // One acquisition and release, uncontended.
    let mut acquire = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let l = a.try_campaign().await.unwrap().unwrap();
        l.resign().await.unwrap();
        acquire.push(start.elapsed());
    }
    report("postgres acquire + release", acquire);

    // Crash failover: the holder's connection is blackholed (a dead host); from the lease's
    // expiry on the server's clock until the waiter is elected (both on this machine's
    // wall clock).
    let mut failover = Vec::new();
    for i in 0..15 {
        let proxy = FaultProxy::start(server.addr()).await.unwrap();
        let dying = connect(&server.url_for(proxy.addr()), t).await;
        let election = format!("bench-failover-{i}");
        let holder = elector(&dying, &election, "node-a")
            .campaign()
            .await
            .unwrap();
        let b2 = elector(&host_b, &election, "node-b");
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (SystemTime::now(), l)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.set(Direction::Both, Fault::Blackhole);
        // Nothing of the holder's reaches the server now: its last `expires` is final.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let expires_ms: i64 = db
            .query_one(
                "SELECT (extract(epoch FROM expires) * 1000)::bigint FROM elector_leases \
                 WHERE election = $1",
                &[&election],
            )
            .await
            .unwrap()
            .get(0);
        let (elected_at, next) = waiter.await.unwrap();
        let elected_ms = elected_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        failover.push(Duration::from_millis(
            u64::try_from(elected_ms - expires_ms).unwrap_or(0),
        ));
        next.resign().await.unwrap();
        drop(holder);
    }
    report(
        "postgres failover (lease expiry on the server -> waiter elected, ms resolution)",
        failover,
    );
}
