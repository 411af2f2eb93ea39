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
