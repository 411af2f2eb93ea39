//! The etcd launchers: a single member and a cluster.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{REQUEST_TIMEOUT, http_post, process_exists};
use election_tests::launch::{Data, EtcdCluster, EtcdServer};

// base64("elector-key") and base64("v1").
const KEY: &str = "ZWxlY3Rvci1rZXk=";
const VALUE: &str = "djE=";

fn put(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    http_post(
        addr,
        "/v3/kv/put",
        &format!(r#"{{"key":"{KEY}","value":"{VALUE}"}}"#),
        timeout,
    )
}

/// `put`, retried while the cluster settles (see `has_key`).
fn put_retrying(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = put(addr, REQUEST_TIMEOUT) {
        assert!(
            std::time::Instant::now() < deadline,
            "put on {addr} kept failing for 30 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the key is there, asking until etcd answers: right after a member was killed or
/// restarted, requests fail with "leader changed" until the cluster has a leader again.
fn has_key(addr: SocketAddr) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = format!(r#"{{"key":"{KEY}"}}"#);
        match http_post(addr, "/v3/kv/range", &body, REQUEST_TIMEOUT) {
            Ok(body) => return body.contains(VALUE),
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("range on {addr} failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("range on {addr} kept failing for 30 s: {e}"),
        }
    }
}

#[test]
fn etcd_server_serves_pauses_resumes_restarts_and_stops_without_a_zombie() {
    let server = EtcdServer::start().expect("etcd starts");
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    put_retrying(server.addr());
    assert!(has_key(server.addr()));

    server.pause().unwrap();
    let err =
        put(server.addr(), Duration::from_millis(300)).expect_err("paused etcd must not answer");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "expected a timeout, got {err}"
    );
    server.resume().unwrap();
    assert!(has_key(server.addr()));

    let old_pid = server.pid();
    server.restart(Data::Keep).unwrap();
    assert!(!process_exists(old_pid));
    assert!(has_key(server.addr()), "data kept across restart");

    server.restart(Data::Empty).unwrap();
    assert!(!has_key(server.addr()), "data gone after an empty restart");

    let pid = server.pid();
    drop(server);
    assert!(
        !process_exists(pid),
        "the server process is gone and reaped (no zombie)"
    );
}

#[test]
fn etcd_cluster_of_three_keeps_serving_with_one_member_down_and_takes_it_back() {
    let cluster = EtcdCluster::start(3).expect("a 3-member cluster starts");
    assert_eq!(cluster.endpoints().len(), 3);
    put_retrying(cluster.member(0).addr());

    cluster.member(0).kill().unwrap();
    assert!(has_key(cluster.member(1).addr()), "a majority still serves");

    cluster.member(0).restart(Data::Keep).unwrap();
    assert!(
        has_key(cluster.member(0).addr()),
        "the restarted member caught up"
    );

    let err = cluster
        .member(1)
        .restart(Data::Empty)
        .expect_err("refused for a member");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);

    let pids: Vec<u32> = (0..3).map(|i| cluster.member(i).pid()).collect();
    drop(cluster);
    for pid in pids {
        assert!(!process_exists(pid));
    }
}
