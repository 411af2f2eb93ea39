//! Shared helpers of the real-etcd tests: nodes behind fault proxies, a raw client to look
//! at (and tamper with) what etcd holds, and waiting on async conditions with deadlines.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, LeaseTiming, NodeId};
use election_etcd::{EtcdBackend, EtcdConfig};
use election_tests::launch::EtcdServer;
use election_tests::proxy::FaultProxy;
use etcd_client::{Client, GetOptions, SortOrder, SortTarget};
use tokio::time::Instant;

/// Generous bound for anything that should happen "soon" on a busy 2-core machine.
pub(crate) const SOON: Duration = Duration::from_secs(10);

/// The lease timing of most tests: a 1 s TTL, renewals every 150 ms, a 150 ms margin.
pub(crate) fn timing() -> LeaseTiming {
    LeaseTiming::fast_for_tests()
}

/// A long lease (the defaults: 10 s TTL, 7.8 s hold budget), for tests that prove
/// something happened *without* waiting for a lease to expire: the margin is then wide
/// enough for a busy machine.
pub(crate) fn long_timing() -> LeaseTiming {
    LeaseTiming::default()
}

/// Starts a single-member etcd (blocking this worker for about 0.1 s).
pub(crate) fn etcd() -> EtcdServer {
    election_tests::init_tracing();
    EtcdServer::start().expect("etcd should start (apt-get install etcd-server)")
}

pub(crate) fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

pub(crate) fn node_id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// A backend connected straight to `endpoints`.
pub(crate) async fn connect(endpoints: Vec<String>, timing: LeaseTiming) -> EtcdBackend {
    EtcdBackend::connect(EtcdConfig::with_endpoints(endpoints), timing)
        .await
        .expect("connect to etcd")
}

/// One node: its own client connection, through its own fault proxy.
pub(crate) struct ProxiedNode {
    pub(crate) id: NodeId,
    pub(crate) proxy: FaultProxy,
    pub(crate) backend: EtcdBackend,
}

impl ProxiedNode {
    pub(crate) async fn start(upstream: SocketAddr, id: &str, timing: LeaseTiming) -> ProxiedNode {
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let backend = connect(vec![format!("http://{}", proxy.addr())], timing).await;
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

pub(crate) fn elector(backend: &EtcdBackend, election: &str, node: &str) -> Arc<dyn LeaderElector> {
    backend
        .election(&name(election), Candidate::new(node_id(node)))
        .unwrap()
}

/// A plain etcd client, to look at and tamper with the keys.
pub(crate) async fn raw(endpoint: &str) -> Client {
    Client::connect([endpoint], None).await.expect("raw client")
}

/// The keys under `prefix` in create order: (key, value, create revision, lease).
pub(crate) async fn keys_under(client: &Client, prefix: &str) -> Vec<(String, String, i64, i64)> {
    let mut client = client.clone();
    let resp = client
        .get(
            prefix,
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend),
            ),
        )
        .await
        .expect("read keys");
    resp.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
                kv.create_revision(),
                kv.lease(),
            )
        })
        .collect()
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
