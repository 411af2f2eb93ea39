//! `elector run` processes against a real redis-server.
#![cfg(feature = "redis")]

mod common;

use common::scenarios;
use election_tests::launch::RedisServer;

fn backend(server: &RedisServer) -> Vec<String> {
    vec![
        "--backend".into(),
        "redis".into(),
        "--set".into(),
        format!("backend.redis.url=\"{}\"", server.url()),
    ]
}

#[test]
fn three_at_once_run_exactly_once() {
    let s = RedisServer::start().expect("redis-server");
    scenarios::three_at_once_run_exactly_once(&backend(&s));
}

#[test]
fn staggered_starts_within_min_hold_run_once() {
    let s = RedisServer::start().expect("redis-server");
    scenarios::staggered_starts_within_min_hold_run_once(&backend(&s));
}

#[test]
fn supervise_survives_kill_9_of_the_leader() {
    let s = RedisServer::start().expect("redis-server");
    scenarios::supervise_survives_kill_9_of_the_leader(&backend(&s));
}

/// The backend's arguments for a server (or a proxy) at `addr`.
fn backend_at(addr: std::net::SocketAddr) -> Vec<String> {
    vec![
        "--backend".into(),
        "redis".into(),
        "--set".into(),
        format!("backend.redis.url=\"redis://{addr}\""),
    ]
}

#[test]
fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts() {
    use election_tests::proxy::{Direction, Fault};
    let s = RedisServer::start().expect("redis-server");
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
    let s = RedisServer::start().expect("redis-server");
    scenarios::a_stopped_supervisor_leaves_no_child_past_its_deadline(&backend(&s));
}

#[test]
fn sigterm_hands_over_without_a_ttl_wait() {
    let s = RedisServer::start().expect("redis-server");
    scenarios::sigterm_hands_over_without_a_ttl_wait(&backend(&s));
}

#[test]
fn watch_streams_leader_changes() {
    let s = RedisServer::start().expect("server");
    scenarios::watch_streams_leader_changes(&backend(&s));
}
