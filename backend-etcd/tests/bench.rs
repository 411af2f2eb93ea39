//! Latency figures against a real single-member etcd on loopback, printed, never asserted
//! (performance belongs here, not in timed unit tests). Run in release:
//!
//! ```text
//! cargo test -p election-etcd --release --test bench -- --ignored --nocapture
//! ```

mod support;

use std::time::Duration;

use election_tests::proxy::{Direction, Fault};
use etcd_client::{EventType, WatchOptions};
use support::*;
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
async fn bench_handoff_acquire_and_crash_failover() {
    let server = etcd();
    let t = timing();
    let raw = raw(&server.endpoint()).await;

    // Graceful handoff: A resigns while B waits (two connections, as on two hosts); from
    // the call to resign until B's campaign returns.
    let host_a = connect(vec![server.endpoint()], t).await;
    let host_b = connect(vec![server.endpoint()], t).await;
    let a = elector(&host_a, "bench-handoff", "node-a");
    let b = elector(&host_b, "bench-handoff", "node-b");
    let mut handoff = Vec::new();
    for _ in 0..200 {
        let leader = a.campaign().await.unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        eventually(SOON, "B queued", || async {
            keys_under(&raw, "elector/bench-handoff/").await.len() == 2
        })
        .await;
        let start = Instant::now();
        leader.resign().await.unwrap();
        let (elected_at, next) = waiter.await.unwrap();
        handoff.push(elected_at - start);
        next.resign().await.unwrap();
    }
    report("graceful handoff (resign -> waiter elected)", handoff);

    // Acquire + release of a free election.
    let mut acquire = Vec::new();
    let mut release = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let l = a.try_campaign().await.unwrap().expect("free");
        let got = Instant::now();
        l.resign().await.unwrap();
        acquire.push(got - start);
        release.push(got.elapsed());
    }
    report("acquire (try_campaign on a free election)", acquire.clone());
    report("release (resign)", release.clone());
    report(
        "acquire + release",
        acquire.iter().zip(&release).map(|(a, r)| *a + *r).collect(),
    );

    // Crash failover: the leader's connection is blackholed (no resign, no revoke reaches
    // etcd). From etcd deleting the expired lease's key (seen by a third client's watch)
    // to the waiter's grant; and from the crash to the grant.
    let mut from_expiry = Vec::new();
    let mut from_crash = Vec::new();
    for round in 0..8 {
        let crashing = ProxiedNode::start(server.addr(), "node-a", t).await;
        let election = name(&format!("bench-crash-{round}"));
        let dir = format!("elector/{election}/");
        let leader = crashing.elector(&election).campaign().await.unwrap();
        let b2 = elector(&host_b, election.as_str(), "node-b");
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        eventually(SOON, "B queued", || async {
            keys_under(&raw, &dir).await.len() == 2
        })
        .await;
        let mut watcher = raw.clone();
        let mut deletes = watcher
            .watch(dir.as_str(), Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap();
        let crashed_at = Instant::now();
        crashing.proxy.set(Direction::Both, Fault::Blackhole);
        let expired_at = loop {
            let msg = deletes.message().await.unwrap().expect("watch open");
            if msg
                .events()
                .iter()
                .any(|e| e.event_type() == EventType::Delete)
            {
                break Instant::now();
            }
        };
        let (elected_at, next) = waiter.await.unwrap();
        from_expiry.push(elected_at.saturating_duration_since(expired_at));
        from_crash.push(elected_at - crashed_at);
        next.resign().await.unwrap();
        drop(leader);
    }
    report(
        "crash failover (etcd expires the lease -> waiter elected)",
        from_expiry,
    );
    report(
        &format!(
            "crash failover (crash -> waiter elected; lease TTL {:?}, etcd lessor tick 500 ms)",
            host_a.lease_ttl()
        ),
        from_crash,
    );
}
