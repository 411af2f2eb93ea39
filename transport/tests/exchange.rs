//! Transports exchange messages both ways over real TCP on loopback, with a shared secret
//! and with mutual TLS.

mod common;

use bytes::Bytes;
use common::*;
use election_transport::{Auth, Inbox, Transport};

/// Every node sends to every other node; each message arrives, attributed to its sender,
/// and messages over one connection arrive in the order sent.
async fn all_pairs_exchange_in_order(nodes: &mut [(Transport, Inbox)], names: &[&str]) {
    // First make sure every connection is up (early sends may be lost while dialing).
    for (i, from) in names.iter().enumerate() {
        for (j, to) in names.iter().enumerate() {
            if i == j {
                continue;
            }
            let sender = nodes[i].0.clone();
            let (got_from, _) =
                send_until_received(&sender, &id(to), &mut nodes[j].1, b"ping").await;
            assert_eq!(got_from, id(from));
            // Drain duplicates of the ping.
            while let Ok(Some(_)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), nodes[j].1.recv()).await
            {
            }
        }
    }
    const N: u32 = 500;
    for (i, _) in names.iter().enumerate() {
        for (j, to) in names.iter().enumerate() {
            if i != j {
                for k in 0..N {
                    assert!(
                        nodes[i]
                            .0
                            .send(&id(to), Bytes::from(k.to_be_bytes().to_vec()))
                    );
                }
            }
        }
    }
    for (j, to) in names.iter().enumerate() {
        let mut next = std::collections::BTreeMap::new();
        for _ in 0..N as usize * (names.len() - 1) {
            let (from, payload) = loop {
                let (from, payload) = recv(&mut nodes[j].1, &format!("messages at {to}")).await;
                // A late duplicate of the warm-up ping may still arrive on a loaded machine.
                if payload != b"ping"[..] {
                    break (from, payload);
                }
            };
            let k = u32::from_be_bytes(payload[..].try_into().unwrap());
            let expected = next.entry(from.clone()).or_insert(0u32);
            assert_eq!(k, *expected, "message from {from} to {to} out of order");
            *expected += 1;
        }
        assert!(next.values().all(|n| *n == N));
    }
    for (t, _) in nodes.iter() {
        assert_eq!(t.stats().auth_failures, 0);
        assert_eq!(t.stats().queue_drops, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_both_ways_with_a_shared_secret() {
    let names = ["a", "b"];
    let mut nodes = cluster(&names, |_| Auth::SharedSecret(secret("k"))).await;
    all_pairs_exchange_in_order(&mut nodes, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_messages_all_ways_with_a_shared_secret() {
    let names = ["n1", "n2", "n3"];
    let mut nodes = cluster(&names, |_| Auth::SharedSecret(secret("k"))).await;
    all_pairs_exchange_in_order(&mut nodes, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_both_ways_with_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let names = ["a.example", "b.example"];
    let mut nodes = cluster(&names, |n| Auth::MutualTls(ca.issue(dir.path(), n, n))).await;
    all_pairs_exchange_in_order(&mut nodes, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_messages_all_ways_with_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let names = ["n1", "n2", "n3"];
    let mut nodes = cluster(&names, |n| Auth::MutualTls(ca.issue(dir.path(), n, n))).await;
    all_pairs_exchange_in_order(&mut nodes, &names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_inbox_and_refuses_later_sends() {
    let names = ["a", "b"];
    let mut nodes = cluster(&names, |_| Auth::SharedSecret(secret("k"))).await;
    let (b, mut b_inbox) = nodes.pop().unwrap();
    let (a, _a_inbox) = nodes.pop().unwrap();
    send_until_received(&a, &id("b"), &mut b_inbox, b"hi").await;
    let b_clone = b.clone();
    b.shutdown().await;
    assert!(!b_clone.send(&id("a"), Bytes::from_static(b"late")));
    let end = tokio::time::timeout(DEADLINE, async { while b_inbox.recv().await.is_some() {} });
    end.await.expect("the inbox ends after shutdown");
    a.shutdown().await;
}
