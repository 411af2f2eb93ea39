//! The ZooKeeper launcher.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::process_exists;
use election_tests::launch::{Data, ZooKeeperServer};
use zookeeper_client::{Acls, Client, CreateMode};

const PATH: &str = "/elector-kept";

async fn client(server: &ZooKeeperServer) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.connect_string())
        .await
        .expect("connect to zookeeper")
}

async fn has_node(server: &ZooKeeperServer) -> bool {
    client(server)
        .await
        .check_stat(PATH)
        .await
        .expect("check_stat")
        .is_some()
}

fn four_letter(server: &ZooKeeperServer, cmd: &[u8], timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&server.addr(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(cmd)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_server_serves_pauses_resumes_restarts_and_stops_without_a_zombie() {
    let server = ZooKeeperServer::start().expect("zookeeper starts");
    let c = client(&server).await;
    c.create(
        PATH,
        b"v1",
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .expect("create");
    drop(c);
    assert!(has_node(&server).await);

    server.pause().unwrap();
    let err = four_letter(&server, b"srvr", Duration::from_millis(300))
        .expect_err("a paused server must not answer");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "expected a timeout, got {err}"
    );
    server.resume().unwrap();
    assert!(
        four_letter(&server, b"srvr", Duration::from_secs(10))
            .unwrap()
            .contains("Mode: standalone")
    );

    let old_pid = server.pid();
    server.restart(Data::Keep).unwrap();
    assert!(!process_exists(old_pid));
    assert!(
        has_node(&server).await,
        "the znode survives a restart with kept data"
    );

    server.restart(Data::Empty).unwrap();
    assert!(
        !has_node(&server).await,
        "the znode is gone after an empty restart"
    );

    let pid = server.pid();
    drop(server);
    assert!(
        !process_exists(pid),
        "the JVM is gone and reaped (no zombie)"
    );
}
