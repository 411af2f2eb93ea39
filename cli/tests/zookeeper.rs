//! `elector run` processes against a real ZooKeeper server.
#![cfg(feature = "zookeeper")]

mod common;

use common::scenarios;
use election_tests::launch::ZooKeeperServer;

fn backend(server: &ZooKeeperServer) -> Vec<String> {
    vec![
        "--backend".into(),
        "zookeeper".into(),
        "--set".into(),
        format!(
            "backend.zookeeper.connect_string=\"{}\"",
            server.connect_string()
        ),
    ]
}

#[test]
fn three_at_once_run_exactly_once() {
    let s = ZooKeeperServer::start().expect("zookeeper");
    scenarios::three_at_once_run_exactly_once(&backend(&s));
}

#[test]
fn supervise_survives_kill_9_of_the_leader() {
    let s = ZooKeeperServer::start().expect("zookeeper");
    scenarios::supervise_survives_kill_9_of_the_leader(&backend(&s));
}

/// The same backend through a fault proxy, and the proxy, on a runtime kept alive by the
/// caller.
fn proxied(
    server: &ZooKeeperServer,
    rt: &tokio::runtime::Runtime,
) -> (Vec<String>, election_tests::proxy::FaultProxy) {
    let proxy = rt
        .block_on(election_tests::proxy::FaultProxy::start(server.addr()))
        .expect("proxy");
    let args = vec![
        "--backend".into(),
        "zookeeper".into(),
        "--set".into(),
        format!("backend.zookeeper.connect_string=\"{}\"", proxy.addr()),
    ];
    (args, proxy)
}

#[test]
fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts() {
    use election_tests::proxy::{Direction, Fault};
    let s = ZooKeeperServer::start().expect("zookeeper");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (through_proxy, proxy) = proxied(&s, &rt);
    scenarios::a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts(
        &through_proxy,
        &backend(&s),
        || proxy.set(Direction::Both, Fault::Blackhole),
    );
}

#[test]
fn a_stopped_supervisor_leaves_no_child_past_its_deadline() {
    let s = ZooKeeperServer::start().expect("zookeeper");
    scenarios::a_stopped_supervisor_leaves_no_child_past_its_deadline(&backend(&s));
}

#[test]
fn sigterm_hands_over_without_a_ttl_wait() {
    let s = ZooKeeperServer::start().expect("zookeeper");
    scenarios::sigterm_hands_over_without_a_ttl_wait(&backend(&s));
}
