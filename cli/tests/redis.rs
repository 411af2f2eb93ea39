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

/// A server that refuses writes for a while (`NOREPLICAS`) stops the child, as a lapsed
/// leadership must, but `--supervise` keeps going and leads again once the server takes
/// writes (issue 16, item 2: it used to exit 76 on a "protocol error").
#[test]
fn supervise_rides_out_a_server_that_refuses_writes() {
    use std::process::Stdio;
    let s = RedisServer::start().expect("redis-server");
    let (_dir, file) = common::scratch("runs");
    let mut c = common::elector();
    c.args(backend(&s))
        .args(common::FAST)
        .args(["--node-id", "n1", "run", "-e", "job", "--supervise", "--"])
        .args(["bash", "-c", &common::record(&file, "exec sleep 1000")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut run = c.spawn().unwrap();
    common::wait_until("the first child runs", || common::runs(&file).len() == 1);
    let first = common::runs(&file)[0].epoch;
    let config = |key: &str, value: &str| {
        let o = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &s.addr().port().to_string(),
                "CONFIG",
                "SET",
                key,
                value,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    };
    config("min-replicas-to-write", "1");
    let child = common::runs(&file)[0].pid;
    common::wait_until("the child is stopped: its leadership lapsed", || {
        common::is_gone(child)
    });
    assert!(
        run.try_wait().unwrap().is_none(),
        "elector run gave up on a server that only refused writes for a while"
    );
    config("min-replicas-to-write", "0");
    common::wait_until("a new child runs at a higher epoch", || {
        common::runs(&file).last().is_some_and(|r| r.epoch > first)
    });
    assert!(run.try_wait().unwrap().is_none());
    common::kill_all(std::slice::from_mut(&mut run));
}
