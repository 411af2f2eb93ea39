//! Unauthenticated, replayed, oversized, wrong-version and unknown-sender frames are
//! refused: the connection is closed, the event counted, nothing delivered.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use election_transport::{Auth, Frame, Inbox, Transport};

/// A lone node "b" whose configured peer "a" is not running (a raw peer plays "a").
async fn lone_b(max_frame_len: Option<usize>) -> (Transport, Inbox) {
    let mut c = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")))
        .pop()
        .unwrap();
    if let Some(max) = max_frame_len {
        c.max_frame_len = max;
    }
    Transport::bind(c).await.unwrap()
}

async fn nothing_delivered(inbox: &mut Inbox) {
    let got = tokio::time::timeout(Duration::from_millis(300), inbox.recv()).await;
    assert!(got.is_err(), "unexpected delivery: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_secret_is_rejected_and_counted_on_both_sides() {
    let mut configs = configs(&["a", "b"], |n| {
        Auth::SharedSecret(secret(if n == "a" { "wrong" } else { "right" }))
    });
    let (b, mut b_inbox) = Transport::bind(configs.pop().unwrap()).await.unwrap();
    let (a, mut a_inbox) = Transport::bind(configs.pop().unwrap()).await.unwrap();
    for _ in 0..10 {
        a.send(&id("b"), Bytes::from_static(b"forged vote"));
        b.send(&id("a"), Bytes::from_static(b"forged vote"));
    }
    wait_stats(&b, "b counts a's failed handshakes", |s| {
        s.auth_failures >= 2
    })
    .await;
    wait_stats(&a, "a counts b's failed handshakes", |s| {
        s.auth_failures >= 2
    })
    .await;
    assert_eq!(b.stats().connections_accepted, 0);
    assert_eq!(a.stats().connections_established, 0);
    nothing_delivered(&mut b_inbox).await;
    nothing_delivered(&mut a_inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_frame_is_rejected_on_the_same_connection() {
    let (b, mut inbox) = lone_b(None).await;
    let mut raw = RawPeer::connect(b.local_addr()).await;
    let mut mac = raw.handshake(&id("a"), &id("b"), &secret("k")).await;
    let recorded = raw.send_sealed(&mut mac, b"vote 1").await;
    assert_eq!(
        recv(&mut inbox, "the genuine frame").await,
        (id("a"), Bytes::from_static(b"vote 1"))
    );
    raw.send_raw(&recorded).await.unwrap();
    assert!(
        raw.is_closed_by_peer().await,
        "the replay closes the connection"
    );
    assert_eq!(b.stats().auth_failures, 1);
    assert_eq!(b.stats().frames_received, 1);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_frame_is_rejected_on_a_new_connection() {
    let (b, mut inbox) = lone_b(None).await;
    let mut first = RawPeer::connect(b.local_addr()).await;
    let mut mac = first.handshake(&id("a"), &id("b"), &secret("k")).await;
    // Sequence number 0, the same number the new connection expects first.
    let recorded = first.send_sealed(&mut mac, b"vote 1").await;
    recv(&mut inbox, "the genuine frame").await;
    drop(first);

    let mut second = RawPeer::connect(b.local_addr()).await;
    let _ = second.handshake(&id("a"), &id("b"), &secret("k")).await;
    second.send_raw(&recorded).await.unwrap();
    assert!(second.is_closed_by_peer().await);
    wait_stats(&b, "the replay is counted", |s| s.auth_failures == 1).await;
    assert_eq!(b.stats().frames_received, 1);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_handshake_is_rejected() {
    // The attacker replays a genuine dialer's Hello and Auth; the acceptor's fresh nonce
    // makes the old proof worthless.
    let (b, mut inbox) = lone_b(None).await;
    let mut genuine = RawPeer::connect(b.local_addr()).await;
    let nonce = [42u8; 32];
    let hello = genuine
        .send_frame(&Frame::Hello {
            from: id("a"),
            to: id("b"),
            nonce,
        })
        .await;
    let Some(Frame::Challenge { nonce: theirs, .. }) = genuine.read_frame().await else {
        panic!("expected a Challenge");
    };
    let t = election_transport::Transcript::new(&id("a"), &id("b"), &nonce, &theirs);
    let auth = genuine
        .send_frame(&Frame::Auth {
            proof: t.dialer_proof(&secret("k")),
        })
        .await;
    drop(genuine);

    let mut replay = RawPeer::connect(b.local_addr()).await;
    replay.send_raw(&hello).await.unwrap();
    assert!(matches!(
        replay.read_frame().await,
        Some(Frame::Challenge { .. })
    ));
    replay.send_raw(&auth).await.unwrap();
    assert!(replay.is_closed_by_peer().await);
    wait_stats(&b, "the replayed handshake is counted", |s| {
        s.auth_failures == 1
    })
    .await;
    assert_eq!(b.stats().connections_accepted, 1);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_tag_is_rejected() {
    let (b, mut inbox) = lone_b(None).await;
    let mut raw = RawPeer::connect(b.local_addr()).await;
    let _mac = raw.handshake(&id("a"), &id("b"), &secret("k")).await;
    raw.send_frame(&Frame::SealedData {
        payload: Bytes::from_static(b"x"),
        tag: [0; 32],
    })
    .await;
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().auth_failures, 1);
    // Unsealed data on a shared-secret connection is no better.
    let mut raw = RawPeer::connect(b.local_addr()).await;
    let _mac = raw.handshake(&id("a"), &id("b"), &secret("k")).await;
    raw.send_frame(&Frame::Data {
        payload: Bytes::from_static(b"x"),
    })
    .await;
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().auth_failures, 2);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_the_connection_and_is_counted() {
    let (b, mut inbox) = lone_b(Some(4096)).await;
    let mut raw = RawPeer::connect(b.local_addr()).await;
    let _mac = raw.handshake(&id("a"), &id("b"), &secret("k")).await;
    // Only the length prefix: refused before any body is sent.
    let mut prefix = BytesMut::new();
    prefix.put_u32(4097);
    raw.send_raw(&prefix).await.unwrap();
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().oversized_frames, 1);
    // Before the handshake the limit is 1 KiB (handshake frames are small), whatever the
    // configured maximum.
    for len in [u32::MAX, 2000] {
        let mut raw = RawPeer::connect(b.local_addr()).await;
        raw.send_raw(&len.to_be_bytes()).await.unwrap();
        assert!(raw.is_closed_by_peer().await);
    }
    assert_eq!(b.stats().oversized_frames, 3);
    nothing_delivered(&mut inbox).await;
    // And sending a payload over the limit is refused locally.
    assert!(!b.send(&id("a"), Bytes::from(vec![0; 4096])));
    assert_eq!(b.stats().sends_refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_an_unknown_version_is_refused_and_counted() {
    let (b, mut inbox) = lone_b(None).await;
    let mut raw = RawPeer::connect(b.local_addr()).await;
    let mut hello = BytesMut::new();
    Frame::Hello {
        from: id("a"),
        to: id("b"),
        nonce: [0; 32],
    }
    .encode(&mut hello);
    hello[4] = 2;
    raw.send_raw(&hello).await.unwrap();
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().bad_version_frames, 1);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_from_a_node_outside_the_peer_set_is_refused_and_counted() {
    let (b, mut inbox) = lone_b(None).await;
    for claimed in ["mallory", "b"] {
        let mut raw = RawPeer::connect(b.local_addr()).await;
        raw.send_frame(&Frame::Hello {
            from: id(claimed),
            to: id("b"),
            nonce: [1; 32],
        })
        .await;
        assert!(raw.is_closed_by_peer().await, "{claimed} refused");
    }
    assert_eq!(b.stats().unknown_peer_frames, 2);
    // A known peer addressing another node is refused too.
    let mut raw = RawPeer::connect(b.local_addr()).await;
    raw.send_frame(&Frame::Hello {
        from: id("a"),
        to: id("c"),
        nonce: [1; 32],
    })
    .await;
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().unknown_peer_frames, 3);
    nothing_delivered(&mut inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_out_of_order_frames_are_refused_and_counted() {
    let (b, mut inbox) = lone_b(None).await;
    let mut raw = RawPeer::connect(b.local_addr()).await;
    raw.send_raw(&[0, 0, 0, 3, 1, 99, 0]).await.unwrap();
    assert!(raw.is_closed_by_peer().await);
    let mut raw = RawPeer::connect(b.local_addr()).await;
    raw.send_frame(&Frame::Data {
        payload: Bytes::from_static(b"no hello"),
    })
    .await;
    assert!(raw.is_closed_by_peer().await);
    assert_eq!(b.stats().malformed_frames, 2);
    nothing_delivered(&mut inbox).await;
}
