//! The recipe against a real ZooKeeper: FIFO queue order, watch-driven handoff, the znode
//! layout, expiry of a crashed candidate's session, revocation, and refusing what is not
//! ours.

mod support;

use std::time::Duration;

use election_core::{LeaderElector, LossReason};
use election_zookeeper::{ZooKeeperBackend, ZooKeeperConfig};
use support::*;
use tokio::time::Instant;
use zookeeper_client::{Acls, CreateMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_are_elected_in_the_order_they_queued() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("fifo");
    let raw = raw(&server.connect_string()).await;
    let dir = backend.election_path(&election);

    let first = elector(&backend, &election, "n1").campaign().await.unwrap();
    let mut waiters = Vec::new();
    for i in 2..=4 {
        let e = elector(&backend, &election, &format!("n{i}"));
        waiters.push(tokio::spawn(async move { e.campaign().await.unwrap() }));
        // Wait until this candidate has queued, so the queue order is known.
        eventually(SOON, &format!("n{i} queued"), || async {
            candidates(&raw, &dir).await.len() == i
        })
        .await;
    }
    let queued: Vec<String> = candidates(&raw, &dir)
        .await
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        queued,
        ["n1", "n2", "n3", "n4"],
        "znode data is the node id, in queue order"
    );

    let mut epoch = first.epoch();
    first.resign().await.unwrap();
    for (i, waiter) in waiters.into_iter().enumerate() {
        let l = within(SOON, "the next candidate's election", waiter)
            .await
            .unwrap();
        assert_eq!(l.info().node.as_str(), format!("n{}", i + 2));
        assert!(l.epoch() > epoch, "epochs rise along the queue");
        epoch = l.epoch();
        l.resign().await.unwrap();
    }
    eventually(SOON, "every znode deleted", || async {
        candidates(&raw, &dir).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resignation_elects_the_waiter_by_its_watch_long_before_the_session_could_expire() {
    let server = shared_zookeeper();
    let t = long_timing();
    let a = connect(&server.connect_string(), t).await;
    let b = connect(&server.connect_string(), t).await;
    let election = unique("handoff");
    let la = elector(&a, &election, "node-a").campaign().await.unwrap();
    let eb = elector(&b, &election, "node-b");
    let waiter = tokio::spawn(async move { (eb.campaign().await.unwrap(), Instant::now()) });
    let raw = raw(&server.connect_string()).await;
    let dir = a.election_path(&election);
    eventually(SOON, "B queued", || async {
        candidates(&raw, &dir).await.len() == 2
    })
    .await;

    let resigned_at = Instant::now();
    let old = la.epoch();
    la.resign().await.unwrap();
    let (lb, granted_at) = within(SOON, "B's election", waiter).await.unwrap();
    assert!(lb.epoch() > old);
    // A 10 s session would expire 10 s after A's last packet; the watch fires at once.
    assert!(
        granted_at - resigned_at < t.ttl / 2,
        "B was elected {:?} after A resigned: it waited for the session",
        granted_at - resigned_at
    );
    let seen = elector(&a, &election, "observer")
        .leader()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.node.as_str(), seen.epoch), ("node-b", lb.epoch()));
    lb.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_candidates_session_expires_and_the_waiter_is_elected_after_its_timeout() {
    let server = shared_zookeeper();
    let t = timing();
    let backend = connect(&server.connect_string(), t).await;
    let election = unique("crash");
    let dir = backend.election_path(&election);
    let session_timeout = Duration::from_secs(2);

    // A "crashed" leader: a detached session that created the first candidate znode and
    // then vanished without closing its session.
    let started = Instant::now();
    {
        let crashed = zookeeper_client::Client::connector()
            .with_session_timeout(session_timeout)
            .with_detached()
            .connect(&server.connect_string())
            .await
            .unwrap();
        assert_eq!(crashed.session_timeout(), session_timeout);
        crashed
            .mkdir(&dir, &CreateMode::Persistent.with_acls(Acls::anyone_all()))
            .await
            .unwrap();
        crashed
            .create(
                &format!("{dir}/n_"),
                b"crashed",
                &CreateMode::EphemeralSequential.with_acls(Acls::anyone_all()),
            )
            .await
            .unwrap();
    }
    let ours = elector(&backend, &election, "survivor");
    let seen = ours
        .leader()
        .await
        .unwrap()
        .expect("the crashed node leads");
    assert_eq!(seen.node.as_str(), "crashed");

    let l = within(SOON, "the waiter's election", ours.campaign())
        .await
        .unwrap();
    let granted_at = Instant::now();
    // ZooKeeper expired the session no earlier than its timeout after the last packet it
    // got, which was sent after `started`.
    assert!(
        granted_at >= started + session_timeout,
        "elected {:?} after the crashed session began: before it could expire",
        granted_at - started
    );
    assert!(l.epoch() > seen.epoch);
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_leaders_znode_revokes_at_once() {
    let server = shared_zookeeper();
    let t = long_timing();
    let backend = connect(&server.connect_string(), t).await;
    let election = unique("revoke");
    let l = elector(&backend, &election, "node-a")
        .campaign()
        .await
        .unwrap();
    let raw = raw(&server.connect_string()).await;
    let dir = backend.election_path(&election);
    let (name, _) = candidates(&raw, &dir).await.remove(0);
    let deleted_at = Instant::now();
    raw.delete(&format!("{dir}/{name}"), None).await.unwrap();
    let reason = within(SOON, "lost()", l.lost()).await;
    assert_eq!(reason, LossReason::Revoked);
    assert!(
        deleted_at.elapsed() < t.hold_budget() / 2,
        "noticed by the watch, not by the deadline"
    );
    assert!(!l.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_campaign_takes_a_free_election_and_leaves_a_held_one_alone() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("try");
    let a = elector(&backend, &election, "node-a");
    let b = elector(&backend, &election, "node-b");
    let la = a.try_campaign().await.unwrap().expect("a free election");
    assert!(b.try_campaign().await.unwrap().is_none());
    let raw = raw(&server.connect_string()).await;
    let dir = backend.election_path(&election);
    assert_eq!(
        candidates(&raw, &dir).await.len(),
        1,
        "B left no znode behind"
    );
    let old = la.epoch();
    la.resign().await.unwrap();
    let lb = b.try_campaign().await.unwrap().expect("free again");
    assert!(lb.epoch() > old);
    lb.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_is_no_candidate_is_not_in_the_queue() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("foreign");
    let dir = backend.election_path(&election);
    let raw = raw(&server.connect_string()).await;
    raw.mkdir(
        &format!("{dir}/lock"),
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .unwrap();
    // As kazoo's Lock recipe ignores it, so do we: no leader, and a campaign wins.
    let e = elector(&backend, &election, "node-a");
    assert_eq!(e.leader().await.unwrap(), None);
    let l = within(SOON, "the campaign", e.campaign()).await.unwrap();
    assert_eq!(e.leader().await.unwrap().unwrap().epoch, l.epoch());
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_starts_with_no_leader_before_the_election_znode_exists() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("observe");
    let watcher: std::sync::Arc<dyn LeaderElector> = elector(&backend, &election, "watcher");
    let mut stream = watcher.observe();
    let first = within(SOON, "the first item", stream.next()).await;
    assert_eq!(first.unwrap().unwrap(), None);
    let l = elector(&backend, &election, "node-a")
        .campaign()
        .await
        .unwrap();
    let next = within(SOON, "the leader", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.map(|i| i.epoch), Some(l.epoch()));
    l.resign().await.unwrap();
    let next = within(SOON, "no leader", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_in_the_connect_string_is_skipped() {
    let server = shared_zookeeper();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let connect_string = format!("{dead},{}", server.connect_string());
    // Two servers named, so the follower lag must be set: 0, both would be standalone.
    let config = ZooKeeperConfig {
        follower_lag: Some(Duration::ZERO),
        ..ZooKeeperConfig::with_connect_string(connect_string)
    };
    let backend = ZooKeeperBackend::connect(config, long_timing())
        .await
        .expect("connect to zookeeper");
    let l = elector(&backend, &unique("hosts"), "node-a")
        .campaign()
        .await
        .unwrap();
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_in_the_connect_string_holds_the_prefix() {
    let server = shared_zookeeper();
    let chroot = format!("/chroot-{}", std::process::id());
    let raw = raw(&server.connect_string()).await;
    raw.mkdir(
        &chroot,
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .unwrap();
    let backend = connect(
        &format!("{}{chroot}", server.connect_string()),
        long_timing(),
    )
    .await;
    let election = unique("chroot");
    let l = elector(&backend, &election, "node-a")
        .campaign()
        .await
        .unwrap();
    let seen = candidates(&raw, &format!("{chroot}/elector/{election}")).await;
    assert_eq!(seen.len(), 1, "the candidate lives under the chroot");
    assert_eq!(seen[0].1, "node-a");
    l.resign().await.unwrap();
}
