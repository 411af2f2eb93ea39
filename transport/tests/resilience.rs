//! Peers come and go: sends never block, queues stay bounded, restarts are survived.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use election_transport::{Auth, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_down_peer_never_blocks_and_drops_the_oldest() {
    let mut cs = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")));
    cs[0].send_queue_len = 100;
    let (a, _inbox) = Transport::bind(cs.remove(0)).await.unwrap();
    // b never starts. 10,000 sends return at once (no await point exists in send), and
    // the queue keeps only the newest 100.
    let start = Instant::now();
    for i in 0..10_000u32 {
        assert!(a.send(&id("b"), Bytes::from(i.to_be_bytes().to_vec())));
    }
    println!("10,000 sends to a down peer took {:?}", start.elapsed());
    assert_eq!(a.stats().queue_drops, 10_000 - 100);
    // Unknown destinations and ourselves are refused, not queued.
    assert!(!a.send(&id("zed"), Bytes::new()));
    assert!(!a.send(&id("a"), Bytes::new()));
    assert_eq!(a.stats().sends_refused, 2);
    wait_stats(&a, "a keeps trying to reach b", |s| s.connect_failures >= 2).await;

    // When b comes up, it gets the newest 100 messages, oldest of those first.
    let (b, mut inbox) = Transport::bind(cs.remove(0)).await.unwrap();
    for expected in 9_900..10_000u32 {
        let (from, payload) = recv(&mut inbox, "queued messages").await;
        assert_eq!(from, id("a"));
        assert_eq!(
            u32::from_be_bytes(payload[..].try_into().unwrap()),
            expected
        );
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_restart_is_survived_by_reconnecting() {
    let mut cs = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")));
    let b_config = cs.pop().unwrap();
    let (a, mut a_inbox) = Transport::bind(cs.pop().unwrap()).await.unwrap();
    let (b, mut b_inbox) = Transport::bind(b_config.clone()).await.unwrap();
    send_until_received(&a, &id("b"), &mut b_inbox, b"before").await;
    send_until_received(&b, &id("a"), &mut a_inbox, b"before").await;
    let established = a.stats().connections_established;

    b.shutdown().await;
    drop(b_inbox);
    // While b is down, sends still return at once.
    for _ in 0..10 {
        assert!(a.send(&id("b"), Bytes::from_static(b"while down")));
    }
    let (b, mut b_inbox) = loop {
        // The port may linger briefly; the restarted node binds the same address.
        match Transport::bind(b_config.clone()).await {
            Ok(t) => break t,
            Err(e) => {
                eprintln!("rebinding b: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (from, _) = send_until_received(&a, &id("b"), &mut b_inbox, b"after").await;
    assert_eq!(from, id("a"));
    let (from, _) = send_until_received(&b, &id("a"), &mut a_inbox, b"after").await;
    assert_eq!(from, id("b"));
    assert!(
        a.stats().connections_established > established,
        "a reconnected"
    );
    assert_eq!(a.stats().auth_failures, 0);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_transport_and_frees_its_port() {
    let mut cs = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")));
    let config = cs.remove(0);
    let (a, mut inbox) = Transport::bind(config.clone()).await.unwrap();
    let addr = a.local_addr();
    drop(a);
    tokio::time::timeout(DEADLINE, async { while inbox.recv().await.is_some() {} })
        .await
        .expect("the inbox ends when the transport is dropped");
    let start = Instant::now();
    while let Err(e) = Transport::bind(config.clone()).await {
        assert!(start.elapsed() < DEADLINE, "port {addr} not freed: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_from_a_peer_closes_its_older_one() {
    // A restarted or reconnecting peer may leave a half-open connection behind; the
    // acceptor keeps only the newest authenticated one per peer.
    let c = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")))
        .pop()
        .unwrap();
    let (b, mut inbox) = Transport::bind(c).await.unwrap();
    let mut old = RawPeer::connect(b.local_addr()).await;
    let mut old_mac = old.handshake(&id("a"), &id("b"), &secret("k")).await;
    old.send_sealed(&mut old_mac, b"old").await;
    recv(&mut inbox, "the old connection's message").await;
    let mut new = RawPeer::connect(b.local_addr()).await;
    let mut new_mac = new.handshake(&id("a"), &id("b"), &secret("k")).await;
    assert!(
        old.is_closed_by_peer().await,
        "the older connection is closed"
    );
    new.send_sealed(&mut new_mac, b"new").await;
    assert_eq!(
        recv(&mut inbox, "the new connection's message").await.1,
        &b"new"[..]
    );
    assert_eq!(b.stats().auth_failures, 0);
}

/// Reachability: two idle peers (nothing sent above the transport) stay reachable through
/// keepalives; a peer that goes away turns unreachable at once (its connection closed);
/// a restarted one is reachable again, and the last-heard time is short throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_peers_stay_reachable_through_keepalives_and_a_gone_one_does_not() {
    let mut cs = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")));
    let b_config = cs.pop().unwrap();
    let (a, _a_inbox) = Transport::bind(cs.pop().unwrap()).await.unwrap();
    let (b, b_inbox) = Transport::bind(b_config.clone()).await.unwrap();
    let b_from_a = |a: &Transport| a.peers().into_iter().find(|p| p.id == id("b")).unwrap();
    wait_until("b reachable from a", || b_from_a(&a).reachable).await;
    // Reachable as soon as one direction is up (b's dial may land first): wait for both.
    wait_until("both connections between a and b up", || {
        let link = b_from_a(&a);
        link.connected_in && link.connected_out
    })
    .await;
    let link = b_from_a(&a);
    assert_eq!(link.addr, b_config.listen.to_string());
    // Three keepalive intervals of silence above: still reachable, heard recently.
    wait_stats(&a, "keepalives from b", |s| s.keepalives_received >= 3).await;
    let link = b_from_a(&a);
    assert!(link.reachable, "{link:?}");
    assert!(
        link.last_heard
            .is_some_and(|d| d < election_transport::REACHABLE_WITHIN),
        "{link:?}"
    );
    assert_eq!(a.stats().frames_received, 0, "keepalives are not delivered");
    let received = a.stats().keepalives_received;
    assert!(b.stats().keepalives_sent >= received);
    assert!(
        !a.send(&id("b"), Bytes::new()),
        "an empty payload is refused"
    );

    b.shutdown().await;
    drop(b_inbox);
    wait_until("b unreachable from a", || !b_from_a(&a).reachable).await;
    assert!(!b_from_a(&a).connected_in);

    let (b, _b_inbox) = loop {
        match Transport::bind(b_config.clone()).await {
            Ok(t) => break t,
            Err(e) => {
                eprintln!("rebinding b: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_until("a restarted b reachable from a", || b_from_a(&a).reachable).await;
    b.shutdown().await;
    a.shutdown().await;
}
