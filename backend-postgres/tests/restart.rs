//! Epochs keep rising across restarts of the server: a clean restart, a crash (SIGKILL of
//! every process, then crash recovery), and the promotion of an asynchronous hot standby
//! that missed the last commits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use election_core::{Epoch, LeaderElector, Leadership};
use election_tests::launch::{Data, PostgresServer};

/// Campaigns until elected, retrying while the server is away, within `limit`.
async fn elected(e: &dyn LeaderElector, limit: Duration) -> Leadership {
    let start = Instant::now();
    loop {
        match e.campaign().await {
            Ok(l) => return l,
            Err(err) if err.is_retryable() && start.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("not elected within {limit:?}: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_rise_across_a_clean_restart_and_a_crash() {
    let server = server();
    let backend = connect(&server.url(), timing()).await;
    let e = elector(&backend, "job", "a");
    let mut last = Epoch(0);
    for restart in ["clean", "crash", "clean"] {
        let l = elected(&*e, Duration::from_secs(20)).await;
        assert!(l.epoch() > last, "after {restart}: {} > {last}", l.epoch());
        last = l.epoch();
        l.resign().await.unwrap();
        let l = elected(&*e, Duration::from_secs(20)).await;
        assert!(l.epoch() > last);
        last = l.epoch();
        // Held across the restart: the row survives it, so a renewal that reaches the
        // restarted server in time keeps the leadership; one that does not lets it lapse.
        tokio::task::block_in_place(|| match restart {
            "crash" => server.kill().and_then(|()| server.restart(Data::Keep)),
            _ => server.restart(Data::Keep),
        })
        .unwrap();
        tokio::time::sleep(timing().ttl).await;
        println!(
            "{restart} restart: the leadership held across it is {}",
            if l.is_held() {
                "still held (renewed on the restarted server)"
            } else {
                "lost"
            }
        );
        let _ = l.resign().await;
    }
    let l = elected(&*e, Duration::from_secs(20)).await;
    assert!(l.epoch() > last);
}

/// The standby stops replicating while the primary grants two more leaderships, so it never
/// receives them; the primary is then killed and the standby promoted. The client lists
/// both hosts with `target_session_attrs=read-write` and follows the promotion. The next
/// epoch is above every epoch the old primary handed out, although the promoted server's
/// row holds an older one: `max(stored + 1, server µs)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_rise_after_promoting_a_standby_that_missed_commits() {
    let primary = server();
    let standby = tokio::task::block_in_place(|| PostgresServer::start_standby(&primary))
        .unwrap_or_else(|e| panic!("standby: {e}"));
    let url = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres password={} dbname=postgres \
         sslmode=disable target_session_attrs=read-write",
        primary.addr().port(),
        standby.addr().port(),
        election_tests::launch::POSTGRES_PASSWORD
    );
    let backend = connect(&url, timing()).await;
    let e = elector(&backend, "job", "a");
    let l = e.campaign().await.unwrap();
    let replicated = l.epoch();
    l.resign().await.unwrap();
    // Wait until the standby has replayed the release.
    let start = Instant::now();
    let query = "SELECT epoch FROM elector_leases WHERE election = 'job' AND token IS NULL";
    while tokio::task::block_in_place(|| standby.psql(&["-c", query]))
        .map(|out| out.trim() != replicated.0.to_string())
        .unwrap_or(true)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "standby caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The standby misses what follows: its WAL receiver is stopped.
    tokio::task::block_in_place(|| standby.stop_replication()).unwrap();
    let l = e.campaign().await.unwrap();
    l.resign().await.unwrap();
    let held = e.campaign().await.unwrap();
    let highest = held.epoch();
    assert!(highest > replicated);
    tokio::task::block_in_place(|| {
        primary.kill()?;
        standby.promote()
    })
    .unwrap_or_else(|e| panic!("failover: {e}\n{}", standby.log_tail()));
    let stored: i64 = raw(&standby.url())
        .await
        .query_one(
            "SELECT epoch FROM elector_leases WHERE election = 'job'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        u64::try_from(stored).unwrap(),
        replicated.0,
        "the promoted standby really missed the last commits"
    );
    // The leadership granted on the lost primary ends (no renewal reaches anyone that
    // knows its token) by its deadline.
    let reason = tokio::time::timeout(Duration::from_secs(10), held.lost())
        .await
        .expect("lost by the deadline");
    println!("the leadership on the killed primary ended as {reason:?}");
    let next = elected(&*e, Duration::from_secs(20)).await;
    assert!(
        next.epoch() > highest,
        "after promotion: {} > {highest} (the standby's row held {stored})",
        next.epoch()
    );
}
