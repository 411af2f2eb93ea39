//! The election recipe against a real etcd: queueing, handoff, loss, observation, epochs.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use election_core::{Epoch, ErrorKind, LossReason};
use election_tests::launch::Data;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_candidate_leads_with_its_key_create_revision_as_epoch() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let a = elector(&backend, "e1", "node-a");
    let leadership = within(SOON, "campaign", a.campaign()).await.unwrap();
    assert!(leadership.is_held());
    assert_eq!(leadership.info().node.as_str(), "node-a");

    let raw = raw(&server.endpoint()).await;
    let keys = keys_under(&raw, "elector/e1/").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (key, value, create_rev, lease) = &keys[0];
    assert_eq!(key, &format!("elector/e1/{lease:x}"), "etcd's key layout");
    assert_eq!(value, "node-a", "the value is the bare node id");
    assert_eq!(leadership.epoch(), Epoch(*create_rev as u64));

    let seen = a.leader().await.unwrap().expect("a leader");
    assert_eq!(
        &seen,
        leadership.info(),
        "leader() on the holder's elector matches"
    );
    leadership.resign().await.unwrap();
    assert!(
        keys_under(&raw, "elector/e1/").await.is_empty(),
        "resign deleted the key"
    );
    assert_eq!(a.leader().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_elects_the_waiting_candidate_at_once_with_a_higher_epoch() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let a = elector(&backend, "e2", "node-a");
    let b = elector(&backend, "e2", "node-b");
    let first = a.campaign().await.unwrap();
    let resigned = Arc::new(AtomicBool::new(false));
    let waiter = {
        let resigned = resigned.clone();
        tokio::spawn(async move {
            let l = b.campaign().await.unwrap();
            (resigned.load(Ordering::SeqCst), l)
        })
    };
    // B is queued (its key exists) but not elected while A holds.
    let raw = raw(&server.endpoint()).await;
    eventually(SOON, "B's key is queued", || async {
        keys_under(&raw, "elector/e2/").await.len() == 2
    })
    .await;
    assert!(!waiter.is_finished(), "B must wait while A leads");
    let epoch_a = first.epoch();
    resigned.store(true, Ordering::SeqCst);
    first.resign().await.unwrap();
    // Well under the 10 s TTL: the handoff is watch-driven, not lease expiry.
    let (after_resign, second) = within(Duration::from_secs(5), "B's election", waiter)
        .await
        .unwrap();
    assert!(after_resign, "B was elected only after A resigned");
    assert!(second.epoch() > epoch_a);
    assert_eq!(second.info().node.as_str(), "node-b");
    second.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_queue_order_and_each_watches_its_predecessor() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e3", "node-a");
    let leader = a.campaign().await.unwrap();
    let mut waiters = Vec::new();
    for (i, n) in ["node-b", "node-c", "node-d"].iter().enumerate() {
        let e = elector(&backend, "e3", n);
        waiters.push(tokio::spawn(async move { e.campaign().await.unwrap() }));
        // Queue them in a known order.
        eventually(SOON, "the candidate is queued", || async {
            keys_under(&raw, "elector/e3/").await.len() == i + 2
        })
        .await;
    }
    // C leaves the queue (its campaign is dropped): D now waits on B.
    waiters.remove(1).abort();
    eventually(SOON, "C's key is withdrawn", || async {
        keys_under(&raw, "elector/e3/").await.len() == 3
    })
    .await;
    let mut epochs = vec![leader.epoch()];
    leader.resign().await.unwrap();
    for (w, expected) in waiters.into_iter().zip(["node-b", "node-d"]) {
        let l = within(SOON, "the next election", w).await.unwrap();
        assert_eq!(l.info().node.as_str(), expected);
        epochs.push(l.epoch());
        l.resign().await.unwrap();
    }
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_campaign_takes_a_free_election_and_leaves_a_held_one_untouched() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e4", "node-a");
    let b = elector(&backend, "e4", "node-b");
    let held = a.try_campaign().await.unwrap().expect("free election");
    assert!(b.try_campaign().await.unwrap().is_none());
    assert_eq!(
        keys_under(&raw, "elector/e4/").await.len(),
        1,
        "a failed try_campaign writes no key"
    );
    held.resign().await.unwrap();
    let next = b.try_campaign().await.unwrap().expect("free again");
    assert!(next.epoch() > Epoch::ZERO);
    next.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_leadership_releases_the_election() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e5", "node-a");
    drop(a.campaign().await.unwrap());
    eventually(SOON, "the dropped leadership's key is gone", || async {
        keys_under(&raw, "elector/e5/").await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_leader_key_ends_leadership_as_revoked() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let mut raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e6", "node-a");
    let leadership = a.campaign().await.unwrap();
    let (key, ..) = keys_under(&raw, "elector/e6/").await.remove(0);
    raw.delete(key, None).await.unwrap();
    let reason = within(Duration::from_secs(5), "lost()", leadership.lost()).await;
    assert_eq!(reason, LossReason::Revoked);
    assert!(!leadership.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_leader_lease_ends_leadership_as_revoked() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let mut raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e7", "node-a");
    let leadership = a.campaign().await.unwrap();
    let (.., lease) = keys_under(&raw, "elector/e7/").await.remove(0);
    raw.lease_revoke(lease).await.unwrap();
    let reason = within(Duration::from_secs(5), "lost()", leadership.lost()).await;
    assert_eq!(reason, LossReason::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_the_leader_and_no_leader_in_order() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let a = elector(&backend, "e8", "node-a");
    let watcher = elector(&backend, "e8", "watcher");
    let mut stream = watcher.observe();
    let first = within(SOON, "first observation", stream.next()).await;
    assert_eq!(
        first.unwrap().unwrap(),
        None,
        "starts with the current state: none"
    );
    let leadership = a.campaign().await.unwrap();
    let seen = within(SOON, "the new leader", stream.next()).await;
    let seen = seen.unwrap().unwrap().expect("a leader");
    assert_eq!(seen.node.as_str(), "node-a");
    assert_eq!(seen.epoch, leadership.epoch());
    leadership.resign().await.unwrap();
    let gone = within(SOON, "no leader", stream.next()).await;
    assert_eq!(gone.unwrap().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_keep_rising_across_an_etcd_restart_with_its_data() {
    let server = etcd();
    let mut epochs = Vec::new();
    for round in 0..2 {
        let backend = connect(vec![server.endpoint()], long_timing()).await;
        let a = elector(&backend, "e9", "node-a");
        for _ in 0..3 {
            let l = a.campaign().await.unwrap();
            epochs.push(l.epoch());
            l.resign().await.unwrap();
        }
        if round == 0 {
            let s = &server;
            tokio::task::block_in_place(|| s.restart(Data::Keep)).unwrap();
        }
    }
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs must rise across the restart: {epochs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_connect_naming_it_within_the_connect_timeout() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = election_etcd::EtcdConfig {
        connect_timeout: Duration::from_millis(500),
        ..election_etcd::EtcdConfig::with_endpoints([endpoint.clone()])
    };
    let err = within(
        SOON,
        "connect to fail",
        election_etcd::EtcdBackend::connect(config, timing()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let msg = err.to_string();
    eprintln!("unreachable: {msg}");
    assert!(msg.contains(&endpoint), "{msg}");
    assert!(msg.contains("etcd"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_future_dropped_while_waiting_withdraws_its_key() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], long_timing()).await;
    let raw = raw(&server.endpoint()).await;
    let a = elector(&backend, "e10", "node-a");
    let b = elector(&backend, "e10", "node-b");
    let leader = a.campaign().await.unwrap();
    let attempt = tokio::time::timeout(Duration::from_millis(300), b.campaign()).await;
    assert!(attempt.is_err(), "B cannot be elected while A leads");
    eventually(SOON, "B's withdrawn key is gone", || async {
        keys_under(&raw, "elector/e10/").await.len() == 1
    })
    .await;
    assert!(leader.is_held());
    leader.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_among_several_is_skipped() {
    let server = etcd();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let backend = connect(vec![dead, server.endpoint()], long_timing()).await;
    let a = elector(&backend, "e11", "node-a");
    for _ in 0..20 {
        let l = within(SOON, "campaign", a.campaign()).await.unwrap();
        assert_eq!(a.leader().await.unwrap().unwrap().epoch, l.epoch());
        l.resign().await.unwrap();
    }
}
