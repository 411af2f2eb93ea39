//! `elector run` processes against a real etcd server.
#![cfg(feature = "etcd")]

mod common;

use common::scenarios;
use election_tests::launch::EtcdServer;

fn backend(server: &EtcdServer) -> Vec<String> {
    vec![
        "--backend".into(),
        "etcd".into(),
        "--set".into(),
        format!("backend.etcd.endpoints=[\"{}\"]", server.endpoint()),
    ]
}

#[test]
fn three_at_once_run_exactly_once() {
    let s = EtcdServer::start().expect("etcd");
    scenarios::three_at_once_run_exactly_once(&backend(&s));
}

#[test]
fn staggered_starts_within_min_hold_run_once() {
    let s = EtcdServer::start().expect("etcd");
    scenarios::staggered_starts_within_min_hold_run_once(&backend(&s));
}

#[test]
fn supervise_survives_kill_9_of_the_leader() {
    let s = EtcdServer::start().expect("etcd");
    scenarios::supervise_survives_kill_9_of_the_leader(&backend(&s));
}

/// The backend's arguments for a server (or a proxy) at `addr`.
fn backend_at(addr: std::net::SocketAddr) -> Vec<String> {
    vec![
        "--backend".into(),
        "etcd".into(),
        "--set".into(),
        format!("backend.etcd.endpoints=[\"http://{addr}\"]"),
    ]
}

#[test]
fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts() {
    use election_tests::proxy::{Direction, Fault};
    let s = EtcdServer::start().expect("etcd");
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
    let s = EtcdServer::start().expect("etcd");
    scenarios::a_stopped_supervisor_leaves_no_child_past_its_deadline(&backend(&s));
}

#[test]
fn sigterm_hands_over_without_a_ttl_wait() {
    let s = EtcdServer::start().expect("etcd");
    scenarios::sigterm_hands_over_without_a_ttl_wait(&backend(&s));
}

#[test]
fn watch_streams_leader_changes() {
    let s = EtcdServer::start().expect("server");
    scenarios::watch_streams_leader_changes(&backend(&s));
}
