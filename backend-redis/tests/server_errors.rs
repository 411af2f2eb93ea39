//! A busy, full or degraded redis-server answers errors such as `NOREPLICAS`, `BUSY` or
//! `OOM`: those are "unavailable, retry", never a protocol violation that ends a
//! leadership as revoked or makes a supervisor give up (issue 16, item 2). Real server.

mod common;

use std::time::Duration;

use common::*;
use election_core::{ErrorKind, LossReason};
use election_tests::launch::RedisServer;

const GENEROUS: Duration = Duration::from_secs(10);

async fn set(raw: &mut redis::aio::MultiplexedConnection, key: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query_async(raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn noreplicas_expires_the_leadership_and_campaigns_are_retryable_until_it_clears() {
    let server = RedisServer::start().expect("redis-server");
    let mut raw = raw(&server.url()).await;
    let backend = connect(&server.url(), timing()).await;
    let a = elector(&backend, "job", "a");
    let held = a.campaign().await.unwrap();
    // Writes are refused from now on: the renewal cannot go through.
    set(&mut raw, "min-replicas-to-write", "1").await;
    let reason = tokio::time::timeout(GENEROUS, held.lost()).await.unwrap();
    assert_eq!(
        reason,
        LossReason::Expired,
        "a server that refuses writes is unavailable, not a revocation"
    );
    // Once the old key's TTL ran out too, a campaign must write, and is refused.
    let until = tokio::time::Instant::now() + GENEROUS;
    let e = loop {
        assert!(tokio::time::Instant::now() < until, "never refused");
        match a.try_campaign().await {
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(Some(_)) => panic!("elected while the server refuses writes"),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("NOREPLICAS"), "{e}");
    // The server recovers: campaigning works again, at a higher epoch.
    set(&mut raw, "min-replicas-to-write", "0").await;
    let again = tokio::time::timeout(GENEROUS, a.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(again.epoch() > held.epoch());
}

#[tokio::test]
async fn a_busy_script_and_oom_are_unavailable_too() {
    let server = RedisServer::start().expect("redis-server");
    let mut raw = raw(&server.url()).await;
    let backend = connect(&server.url(), timing()).await;
    let a = elector(&backend, "job", "a");
    // Full: every write that needs memory is refused with OOM.
    set(&mut raw, "maxmemory", "1").await;
    set(&mut raw, "maxmemory-policy", "noeviction").await;
    let e = a.try_campaign().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("OOM"), "{e}");
    set(&mut raw, "maxmemory", "0").await;
    // Busy: a script that runs past busy-reply-threshold makes others get BUSY.
    set(&mut raw, "busy-reply-threshold", "50").await;
    let url = server.url();
    let busy = tokio::spawn(async move {
        let mut conn = common::raw(&url).await;
        let _: redis::RedisResult<()> = redis::cmd("EVAL")
            .arg("local t = redis.call('TIME'); while true do local n = redis.call('TIME'); if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 1500000 then break end end")
            .arg(0)
            .query_async(&mut conn)
            .await;
    });
    // While the script runs (1.5 s of server time, however late it starts).
    let until = tokio::time::Instant::now() + GENEROUS;
    let mut saw_busy = false;
    while !busy.is_finished() && tokio::time::Instant::now() < until {
        match a.try_campaign().await {
            Err(e) if e.to_string().contains("BUSY") => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                saw_busy = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    busy.await.unwrap();
    assert!(saw_busy, "the server never answered BUSY");
}

#[tokio::test]
async fn a_redis_cluster_node_is_refused_at_connect_with_a_clear_message() {
    let server = RedisServer::start_with(&["--cluster-enabled", "yes"]).expect("redis-server");
    let e = election_redis::RedisBackend::connect(config(&server.url()), timing())
        .await
        .expect_err("a cluster node was accepted");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("Redis Cluster"), "{e}");
}
