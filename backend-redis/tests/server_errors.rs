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

#[tokio::test]
async fn a_server_asleep_past_the_deadline_expires_the_leadership_before_it_wakes() {
    let server =
        RedisServer::start_with(&["--enable-debug-command", "local"]).expect("redis-server");
    let backend = connect(&server.url(), timing()).await;
    let a = elector(&backend, "job", "a");
    let held = a.campaign().await.unwrap();
    // The whole server stops answering for 3 s: three times the 1 s TTL, which runs on
    // the server's wall clock meanwhile.
    let url = server.url();
    let asleep = tokio::spawn(async move {
        // A connection of its own that waits for the reply as long as the server sleeps.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut conn)
            .await
            .unwrap();
    });
    tokio::pin!(asleep);
    let reason = tokio::select! {
        reason = held.lost() => reason,
        woke = &mut asleep => {
            woke.unwrap();
            panic!("the server woke with the key expired while the holder still led");
        }
    };
    assert_eq!(
        reason,
        LossReason::Expired,
        "a server that does not answer is unavailable, not a revocation"
    );
    asleep.await.unwrap();
    // Awake again: the lease is taken anew, at a higher epoch.
    let again = tokio::time::timeout(GENEROUS, a.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(again.epoch() > held.epoch());
}

/// Log lines captured from a `tracing` subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Connects to `url` and returns what the backend logged at `warn` and above meanwhile.
async fn warnings_at_connect(url: &str) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime: the connect runs on this thread, under this default.
    let _default = tracing::subscriber::set_default(subscriber);
    drop(connect(url, timing()).await);
    captured.text()
}

#[tokio::test]
async fn a_server_that_may_evict_the_lease_key_is_warned_about_at_connect() {
    let server = RedisServer::start().expect("redis-server");
    let mut raw = raw(&server.url()).await;
    // The default: no memory limit, nothing is ever evicted.
    let quiet = warnings_at_connect(&server.url()).await;
    assert!(!quiet.contains("evict"), "warned with maxmemory 0: {quiet}");
    // A limit and a policy that picks among keys with a TTL, which the lease key has.
    set(&mut raw, "maxmemory", "100mb").await;
    set(&mut raw, "maxmemory-policy", "volatile-lru").await;
    let warned = warnings_at_connect(&server.url()).await;
    assert!(
        warned.contains("may evict the lease key") && warned.contains("volatile-lru"),
        "no warning for volatile-lru: {warned:?}"
    );
    // noeviction refuses writes instead (OOM, unavailable), which is safe.
    set(&mut raw, "maxmemory-policy", "noeviction").await;
    let safe = warnings_at_connect(&server.url()).await;
    assert!(
        !safe.contains("evict the lease key"),
        "warned for noeviction: {safe}"
    );
}
