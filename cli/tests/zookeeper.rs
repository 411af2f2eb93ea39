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

/// The backend's arguments for a server (or a proxy) at `addr`.
fn backend_at(addr: std::net::SocketAddr) -> Vec<String> {
    vec![
        "--backend".into(),
        "zookeeper".into(),
        "--set".into(),
        format!("backend.zookeeper.connect_string=\"{addr}\""),
    ]
}

#[test]
fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts() {
    use election_tests::proxy::{Direction, Fault};
    let s = ZooKeeperServer::start().expect("zookeeper");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = common::proxy(&rt, s.addr());
    scenarios::a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts(
        &backend_at(proxy.addr()),
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
