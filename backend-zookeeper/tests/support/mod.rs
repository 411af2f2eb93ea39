//! Shared helpers of the real-ZooKeeper tests: one server shared by the tests of a binary,
//! nodes behind fault proxies, a raw client to look at (and tamper with) what ZooKeeper
//! holds, and waiting on async conditions with deadlines.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, LeaseTiming, NodeId};
use election_tests::launch::ZooKeeperServer;
use election_tests::proxy::FaultProxy;
use election_zookeeper::{ZooKeeperBackend, ZooKeeperConfig};
use tokio::time::Instant;
use zookeeper_client::Client;

/// Generous bound for anything that should happen "soon" on a busy 2-core machine.
pub(crate) const SOON: Duration = Duration::from_secs(15);

/// The test server's tick: sessions expire on tick boundaries, so up to one tick after
/// their timeout.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// The lease timing of most tests: a 2 s session (the test server allows 1 s to 30 s),
/// renewals every 300 ms, a 150 ms margin. Twice the 1 s of `fast_for_tests`, so that a
/// busy machine does not starve the client's own pings into a spurious expiry.
pub(crate) fn timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(2),
        renew_interval: Duration::from_millis(300),
        retry_interval: Duration::from_millis(100),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
    }
}

/// A long lease (the defaults: 10 s session, 7.8 s hold budget), for tests that prove
/// something happened *without* waiting for a session to expire.
pub(crate) fn long_timing() -> LeaseTiming {
    LeaseTiming::default()
}

/// Starts a ZooKeeper server of this test's own (blocking this worker for about 1 s).
pub(crate) fn zookeeper() -> ZooKeeperServer {
    election_tests::init_tracing();
    tokio::task::block_in_place(ZooKeeperServer::start)
        .expect("zookeeper should start (apt-get install zookeeperd)")
}

/// The server shared by the tests of this binary that do not restart it: started by the
/// first test that needs it, stopped when the last test holding it ends.
pub(crate) fn shared_zookeeper() -> Arc<ZooKeeperServer> {
    static SHARED: Mutex<Weak<ZooKeeperServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(zookeeper());
    *shared = Arc::downgrade(&server);
    server
}

pub(crate) fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

/// A fresh election name, so tests sharing a server never meet.
pub(crate) fn unique(tag: &str) -> ElectionName {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    name(&format!(
        "{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

pub(crate) fn node_id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// A backend connected straight to `connect_string`.
pub(crate) async fn connect(connect_string: &str, timing: LeaseTiming) -> ZooKeeperBackend {
    ZooKeeperBackend::connect(ZooKeeperConfig::with_connect_string(connect_string), timing)
        .await
        .expect("connect to zookeeper")
}

/// One node: its own session, through its own fault proxy.
pub(crate) struct ProxiedNode {
    pub(crate) id: NodeId,
    pub(crate) proxy: FaultProxy,
    pub(crate) backend: ZooKeeperBackend,
}

impl ProxiedNode {
    pub(crate) async fn start(upstream: SocketAddr, id: &str, timing: LeaseTiming) -> ProxiedNode {
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let backend = connect(&proxy.addr().to_string(), timing).await;
        ProxiedNode {
            id: node_id(id),
            proxy,
            backend,
        }
    }

    /// A node whose proxy leads to one member of the test ensemble (with its follower lag).
    pub(crate) async fn start_in_ensemble(
        member: SocketAddr,
        id: &str,
        timing: LeaseTiming,
    ) -> ProxiedNode {
        let proxy = FaultProxy::start(member).await.expect("start proxy");
        let backend = connect_ensemble(&proxy.addr().to_string(), timing).await;
        ProxiedNode {
            id: node_id(id),
            proxy,
            backend,
        }
    }

    pub(crate) fn elector(&self, election: &ElectionName) -> Arc<dyn LeaderElector> {
        self.backend
            .election(election, Candidate::new(self.id.clone()))
            .unwrap()
    }
}

pub(crate) fn elector(
    backend: &ZooKeeperBackend,
    election: &ElectionName,
    node: &str,
) -> Arc<dyn LeaderElector> {
    backend
        .election(election, Candidate::new(node_id(node)))
        .unwrap()
}

/// A plain ZooKeeper client, to look at and tamper with the znodes.
pub(crate) async fn raw(connect_string: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(connect_string)
        .await
        .expect("raw client")
}

/// The candidate znodes of an election in queue order (by the sequence ZooKeeper appended,
/// the last ten characters of the name): (name, data).
pub(crate) async fn candidates(client: &Client, dir: &str) -> Vec<(String, String)> {
    let mut names = match client.list_children(dir).await {
        Ok(names) => names,
        Err(zookeeper_client::Error::NoNode) => return Vec::new(),
        Err(e) => panic!("listing {dir}: {e}"),
    };
    names.sort_by_key(|n| n[n.len().saturating_sub(10)..].to_owned());
    let mut out = Vec::new();
    for n in names {
        if let Ok((data, _)) = client.get_data(&format!("{dir}/{n}")).await {
            out.push((n, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    out
}

/// Waits until the async `cond` holds, re-checking every 10 ms; panics naming `what`
/// after `deadline`.
pub(crate) async fn eventually<F, Fut>(deadline: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `fut` for at most `deadline`, panicking naming `what`.
pub(crate) async fn within<T>(deadline: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// The lease timing of the ensemble tests: a 6 s session (the ensemble allows 400 ms to
/// 30 s), renewals every 500 ms, a 150 ms margin. A renewal round (`sync` through the
/// follower to the ZooKeeper leader, then a read) must fit in one renewal interval, and a
/// steady leader's deadline lies only `6 s - 150 ms - 2.2 s of follower lag - 500 ms` =
/// 3.15 s ahead: room for a few failed rounds on a busy 2-core machine.
pub(crate) fn ensemble_timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(6),
        renew_interval: Duration::from_millis(500),
        ..timing()
    }
}

/// Starts a 3-member ZooKeeper ensemble of this test's own (blocking this worker for a few
/// seconds: three JVMs and a leader election).
pub(crate) fn ensemble() -> election_tests::launch::ZooKeeperEnsemble {
    election_tests::init_tracing();
    tokio::task::block_in_place(|| election_tests::launch::ZooKeeperEnsemble::start(3))
        .expect("a zookeeper ensemble should start (apt-get install zookeeperd)")
}

/// The index of the ensemble's leader, once it has exactly one.
pub(crate) fn ensemble_leader(ensemble: &election_tests::launch::ZooKeeperEnsemble) -> usize {
    tokio::task::block_in_place(|| ensemble.leader(SOON)).expect("the ensemble has a leader")
}

/// `zookeeper.follower_lag` for the test ensemble: `(syncLimit + 1) × tickTime` (2.2 s).
pub(crate) fn ensemble_follower_lag() -> Duration {
    election_tests::launch::ENSEMBLE_TICK * (election_tests::launch::ENSEMBLE_SYNC_LIMIT + 1)
}

/// A backend connected to `connect_string` (one member of the test ensemble, or several),
/// with the ensemble's follower lag.
pub(crate) async fn connect_ensemble(
    connect_string: &str,
    timing: LeaseTiming,
) -> ZooKeeperBackend {
    let config = ZooKeeperConfig {
        follower_lag: Some(ensemble_follower_lag()),
        ..ZooKeeperConfig::with_connect_string(connect_string)
    };
    ZooKeeperBackend::connect(config, timing)
        .await
        .expect("connect to the zookeeper ensemble")
}
