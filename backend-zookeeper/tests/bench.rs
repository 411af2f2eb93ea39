//! Latency figures against a real standalone ZooKeeper on loopback, printed, never asserted
//! (performance belongs here, not in timed unit tests). Run in release:
//!
//! ```text
//! cargo test -p election-zookeeper --release --test bench -- --ignored --nocapture
//! ```

mod support;

use std::time::Duration;

use election_core::Backend;
use election_tests::proxy::{Direction, Fault};
use support::*;
use tokio::time::Instant;
use zookeeper_client::EventType;

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
async fn bench_handoff_acquire_and_session_expiry_failover() {
    let server = zookeeper();
    let t = timing();
    let raw = raw(&server.connect_string()).await;

    // Graceful handoff: A resigns while B waits (two sessions, as on two hosts); from the
    // call to resign until B's campaign returns.
    let host_a = connect(&server.connect_string(), t).await;
    let host_b = connect(&server.connect_string(), t).await;
    let election = name("bench-handoff");
    let dir = host_a.election_path(&election);
    let a = elector(&host_a, &election, "node-a");
    let b = elector(&host_b, &election, "node-b");
    let mut handoff = Vec::new();
    for _ in 0..200 {
        let leader = a.campaign().await.unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        eventually(SOON, "B queued", || async {
            candidates(&raw, &dir).await.len() == 2
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
    let mut campaign = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let l = a.campaign().await.unwrap();
        campaign.push(start.elapsed());
        l.resign().await.unwrap();
    }
    report("acquire (campaign on a free election)", campaign);

    // Failover after a crash: the leader's connection is blackholed (nothing reaches
    // ZooKeeper, so its session expires). From ZooKeeper deleting the expired session's
    // znode (seen by a third session's watch) to the waiter's grant; and from the crash to
    // the grant.
    let session_timeout = host_a.session_timeout().await.unwrap();
    let mut from_expiry = Vec::new();
    let mut from_crash = Vec::new();
    for round in 0..8 {
        let crashing = ProxiedNode::start(server.addr(), "node-a", t).await;
        let election = name(&format!("bench-crash-{round}"));
        let dir = host_a.election_path(&election);
        let leader = crashing.elector(&election).campaign().await.unwrap();
        let b2 = host_b
            .election(&election, election_core::Candidate::new(node_id("node-b")))
            .unwrap();
        let waiter = tokio::spawn(async move {
            let l = b2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        eventually(SOON, "B queued", || async {
            candidates(&raw, &dir).await.len() == 2
        })
        .await;
        let first = format!("{dir}/{}", candidates(&raw, &dir).await[0].0);
        let (_, deleted) = raw.check_and_watch_stat(&first).await.unwrap();
        let crashed_at = Instant::now();
        crashing.proxy.set(Direction::Both, Fault::Blackhole);
        let event = deleted.changed().await;
        assert_eq!(event.event_type, EventType::NodeDeleted);
        let expired_at = Instant::now();
        let (elected_at, next) = waiter.await.unwrap();
        from_expiry.push(elected_at.saturating_duration_since(expired_at));
        from_crash.push(elected_at - crashed_at);
        next.resign().await.unwrap();
        drop(leader);
    }
    report(
        "session-expiry failover (ZooKeeper deletes the znode -> waiter elected)",
        from_expiry,
    );
    report(
        &format!(
            "crash failover (crash -> waiter elected; session timeout {session_timeout:?}, \
             tick 500 ms)"
        ),
        from_crash,
    );
}
