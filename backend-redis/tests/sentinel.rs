//! Redis Sentinel: the master is found by name, and found again after the master crashes
//! and the sentinel promotes its replica.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use election_core::Epoch;
use election_redis::{RedisBackend, RedisConfig, SentinelConfig};
use election_tests::launch::RedisServer;
use tokio::time::Instant;

/// Long enough for the sentinel to notice the crash (1 s), and for a failover attempt that
/// fails to be retried: the sentinel waits twice `failover-timeout` (2 s here) before the
/// next attempt, and a loaded machine can make an attempt fail. Time the sentinel spends
/// in TILT mode does not count (see [`until_promoted`]).
const GENEROUS: Duration = Duration::from_secs(40);
/// The bound on a wait that excludes TILT time, TILT included: a sentinel stalled again
/// and again on a loaded machine fails the test rather than hanging it.
const WITH_TILTS: Duration = Duration::from_secs(160);

/// A sentinel process on a free loopback port, killed on drop.
struct Sentinel {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(master_port: u16) -> Sentinel {
        // In memory like every test server (decision 108): the sentinel fsyncs its
        // configuration at start, and a stall of 2 s there puts it in TILT mode for 30 s.
        let dir = election_tests::launch::server_dir("elector-sentinel-").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}/sentinel.log\n\
                 sentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 2000\n",
                dir.path().display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (sentinel mode) from the redis-server package");
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }

    /// The sentinel's log, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("sentinel.log")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a sentinel command, `None` while the sentinel is not up yet.
async fn ask(sentinel: &Sentinel, args: &[&str]) -> Option<redis::Value> {
    let client = redis::Client::open(sentinel.url()).ok()?;
    let mut c = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()?;
    redis::cmd("SENTINEL")
        .arg(args)
        .query_async(&mut c)
        .await
        .ok()
}

async fn master_port(sentinel: &Sentinel) -> Option<u16> {
    let v = ask(sentinel, &["get-master-addr-by-name", "mymaster"]).await?;
    let (_, port): (String, u16) = redis::from_redis_value(v).ok()?;
    Some(port)
}

/// Whether the sentinel is in TILT mode: after its timer stalled for more than 2 s (a
/// loaded machine, a slow fsync) it stops acting on what it sees, failovers included, for
/// 30 s. `None` while it does not answer.
async fn in_tilt(sentinel: &Sentinel) -> Option<bool> {
    let client = redis::Client::open(sentinel.url()).ok()?;
    let mut c = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .ok()?
    .ok()?;
    let info: String = redis::cmd("INFO")
        .arg("sentinel")
        .query_async(&mut c)
        .await
        .ok()?;
    Some(info.lines().any(|l| l.trim() == "sentinel_tilt:1"))
}

/// Waits until the sentinel names `port` as the master. The bound counts only the time the
/// sentinel is out of TILT mode, when it acts: the test is about our backend finding the
/// new master, not about how soon a stalled sentinel recovers.
async fn until_promoted(sentinel: &Sentinel, port: u16) {
    let began = Instant::now();
    let mut last = began;
    let mut acting = Duration::ZERO;
    while master_port(sentinel).await != Some(port) {
        let now = Instant::now();
        if in_tilt(sentinel).await != Some(true) {
            acting += now - last;
        }
        last = now;
        assert!(
            acting < GENEROUS && began.elapsed() < WITH_TILTS,
            "timed out waiting until the sentinel promoted the replica ({acting:?} out of \
             TILT, {:?} in all); its log:\n{}",
            began.elapsed(),
            sentinel.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < GENEROUS, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A master, its replica in sync, and a sentinel that knows both.
async fn setup() -> (RedisServer, RedisServer, Sentinel) {
    let master = RedisServer::start().unwrap();
    let replica = RedisServer::start().unwrap();
    let mut r = raw(&replica.url()).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.addr().port())
        .query_async(&mut r)
        .await
        .unwrap();
    eventually("the replica is in sync", async || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut r)
            .await
            .ok()?;
        info.contains("master_link_status:up").then_some(())
    })
    .await;
    let sentinel = Sentinel::start(master.addr().port());
    eventually("the sentinel knows the replica", async || {
        let v = ask(&sentinel, &["replicas", "mymaster"]).await?;
        let replicas: Vec<std::collections::HashMap<String, String>> =
            redis::from_redis_value(v).ok()?;
        replicas
            .iter()
            .any(|r| r.get("flags").is_some_and(|f| f == "slave"))
            .then_some(())
    })
    .await;
    // A sentinel that stalled at start sits in TILT for 30 s and would not fail over.
    let began = Instant::now();
    while in_tilt(&sentinel).await != Some(false) {
        assert!(
            began.elapsed() < WITH_TILTS,
            "the sentinel stayed in TILT mode; its log:\n{}",
            sentinel.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    (master, replica, sentinel)
}

fn sentinel_config(sentinel: &Sentinel) -> RedisConfig {
    RedisConfig {
        sentinel: Some(SentinelConfig {
            master_name: "mymaster".into(),
            addresses: vec![format!("127.0.0.1:{}", sentinel.port)],
        }),
        ..config("redis://ignored-host:1")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_is_found_through_sentinel_and_again_after_it_crashes() {
    election_tests::init_tracing();
    let (master, replica, sentinel) = setup().await;
    let backend = RedisBackend::connect(sentinel_config(&sentinel), long_ttl())
        .await
        .unwrap();
    assert!(
        backend
            .address()
            .contains(&format!(":{}", master.addr().port())),
        "{}",
        backend.address()
    );
    let e = elector(&backend, "job", "a");
    let first = e.campaign().await.unwrap();
    let first_epoch = first.epoch();
    first.resign().await.unwrap();

    // The master crashes; the sentinel notices (down-after 1 s) and promotes the replica.
    master.kill().unwrap();
    let new_master = replica.addr().port();
    until_promoted(&sentinel, new_master).await;

    // The backend's commands fail (connection refused), so it asks the sentinel again
    // and elects on the new master.
    let second: election_core::Leadership = eventually("elected on the new master", async || {
        e.campaign().await.ok()
    })
    .await;
    assert!(second.epoch() > first_epoch);
    assert!(
        backend
            .address()
            .contains(&format!("(now redis://127.0.0.1:{new_master}")),
        "messages name the master in use: {}",
        backend.address()
    );
    let mut on_new = raw(&replica.url()).await;
    let epoch: u64 = redis::cmd("HGET")
        .arg("{elector:job}:leader")
        .arg("epoch")
        .query_async(&mut on_new)
        .await
        .unwrap();
    assert_eq!(
        Epoch(epoch),
        second.epoch(),
        "the lease lives on the new master"
    );
    second.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_announced_by_the_sentinel_switches_the_backend_at_once() {
    election_tests::init_tracing();
    let (master, replica, sentinel) = setup().await;
    // Without pushes, waiters would poll only every 5 s (and the lease lasts 60 s).
    let slow_polls = election_core::LeaseTiming {
        retry_interval: Duration::from_secs(5),
        ..long_ttl()
    };
    let backend = RedisBackend::connect(sentinel_config(&sentinel), slow_polls)
        .await
        .unwrap();
    let e = elector(&backend, "job", "a");
    let first = e.campaign().await.unwrap();
    let first_epoch = first.epoch();
    first.resign().await.unwrap();

    // The old master stays up and keeps accepting writes until the sentinel reconfigures
    // it, which can take seconds; the backend must not wait for that.
    let _ = ask(&sentinel, &["failover", "mymaster"]).await;
    let new_master = replica.addr().port();
    let switched = format!("(now redis://127.0.0.1:{new_master}");
    eventually("the backend follows +switch-master", async || {
        backend.address().contains(&switched).then_some(())
    })
    .await;
    let second = e.campaign().await.unwrap();
    assert!(second.epoch() > first_epoch);
    let mut on_new = raw(&replica.url()).await;
    let node_there: String = redis::cmd("HGET")
        .arg("{elector:job}:leader")
        .arg("node")
        .query_async(&mut on_new)
        .await
        .unwrap();
    assert_eq!(node_there, "a", "the lease lives on the new master");

    // Pushes follow the switch too: a waiter is handed the lease by the release's publish
    // on the new master.
    eventually("pub/sub is live on the new master", async || {
        backend.notifications_live().then_some(())
    })
    .await;
    let b = elector(&backend, "job", "b");
    let waiter = tokio::spawn(async move { b.campaign().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    second.resign().await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(4), waiter)
        .await
        .expect("woken by a push, not a 5 s poll or the 60 s TTL")
        .unwrap()
        .unwrap();
    assert_eq!(third.info().node, node("b"));
    drop(master);
}
