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

/// The ensemble launcher: three members, one leader; a member whose quorum links are
/// blackholed stops serving (it gives up on the leader after `syncLimit` ticks) while the
/// other two go on, and serves again as a follower once healed; a killed member restarts
/// into the quorum with its data; dropping the ensemble leaves no process behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_ensemble_elects_isolates_heals_restarts_and_stops_without_a_zombie() {
    use election_tests::launch::{Mode, ZooKeeperEnsemble};
    use election_tests::wait_until;

    let ensemble = tokio::task::block_in_place(|| ZooKeeperEnsemble::start(3))
        .expect("a zookeeper ensemble starts");
    assert_eq!(ensemble.len(), 3);
    let leader = tokio::task::block_in_place(|| ensemble.leader(Duration::from_secs(30)))
        .expect("one leader");
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    assert_eq!(ensemble.member(follower).mode(), Some(Mode::Follower));
    let pids: Vec<u32> = ensemble.members().iter().map(|m| m.pid()).collect();

    // A write through the leader, read through a follower.
    let c = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&ensemble.member(leader).connect_string())
        .await
        .expect("connect to the leader");
    c.create(
        PATH,
        b"v1",
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .expect("create");
    let f = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&ensemble.member(other).connect_string())
        .await
        .expect("connect to a follower");
    f.sync(PATH).await.expect("sync");
    assert!(f.check_stat(PATH).await.expect("check_stat").is_some());

    ensemble.isolate_quorum(follower);
    wait_until(
        Duration::from_secs(30),
        "the isolated member stops serving",
        || ensemble.member(follower).mode().is_none(),
    )
    .await;
    assert_eq!(ensemble.member(leader).mode(), Some(Mode::Leader));
    ensemble.heal_quorum(follower);
    wait_until(
        Duration::from_secs(60),
        "the healed member follows again",
        || ensemble.member(follower).mode() == Some(Mode::Follower),
    )
    .await;

    tokio::task::block_in_place(|| ensemble.member(other).kill()).unwrap();
    assert!(!ensemble.member(other).is_running());
    tokio::task::block_in_place(|| ensemble.member(other).restart(Data::Keep))
        .expect("the killed member restarts");
    assert!(ensemble.member(other).mode().is_some());
    assert!(
        ensemble.member(other).restart(Data::Empty).is_err(),
        "an ensemble member does not restart empty"
    );
    let pids_now: Vec<u32> = ensemble.members().iter().map(|m| m.pid()).collect();
    drop(c);
    drop(f);
    drop(ensemble);
    for pid in pids.into_iter().chain(pids_now) {
        assert!(!process_exists(pid), "member {pid} is gone after the drop");
    }
}
