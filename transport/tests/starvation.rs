//! Issue 14, item 3: idle and slow connections cannot starve peers. 1,000 idle TCP
//! connections and a slow-loris (one byte a second), from the very address the real peer
//! dials from (127.0.0.1) and from other loopback addresses, against one node's port: the
//! node closes the slow-loris at the handshake deadline, displaces pending connections past
//! its caps, and the real peer still connects and delivers, also after a restart.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{DEADLINE, configs, id, secret, send_until_received, wait_stats};
use election_tests::flood::{Flood, raise_fd_limit};
use election_transport::{Auth, DEFAULT_HANDSHAKE_TIMEOUT, Transport};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_and_a_slow_loris_do_not_keep_a_peer_out() {
    // 1,000 client sockets here, plus the node's side of each while it holds it.
    assert!(
        raise_fd_limit(4096) >= 2200,
        "cannot raise the open-file limit"
    );
    let mut cs = configs(&["a", "b"], |_| Auth::SharedSecret(secret("k")));
    let b_config = cs.pop().unwrap();
    let a_config = cs.pop().unwrap();
    let (b, mut b_inbox) = Transport::bind(b_config.clone()).await.unwrap();
    let target = b.local_addr();
    let sources = [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    ];
    let flood = Flood::start(
        target,
        &sources,
        1000,
        2,
        Duration::from_secs(1),
        Duration::from_secs(120),
    );
    // The flood is in place: (nearly) all 1,000 were accepted and most displaced.
    let opened_by = Instant::now() + DEADLINE;
    while flood.stats.opened.load(Ordering::Relaxed) < 1000 {
        assert!(Instant::now() < opened_by, "{}", flood.stats.summary());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_stats(&b, "displaced pending handshakes", |s| {
        s.handshakes_displaced >= 900
    })
    .await;
    // Now the real peer dials, from 127.0.0.1 like a quarter of the flood.
    let started = Instant::now();
    let (a, _a_inbox) = Transport::bind(a_config.clone()).await.unwrap();
    let (from, _) = send_until_received(&a, &id("b"), &mut b_inbox, b"through the flood").await;
    assert_eq!(from, id("a"));
    let first = started.elapsed();
    // The slow-loris connections are closed (displaced by the churn, or at the deadline).
    let loris_by = Instant::now() + DEADLINE;
    while flood.stats.loris_closed.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < loris_by, "{}", flood.stats.summary());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A restarted peer gets in again while the flood goes on.
    a.shutdown().await;
    let accepted = b.stats().connections_accepted;
    let started = Instant::now();
    let (a, _a_inbox) = Transport::bind(a_config).await.unwrap();
    send_until_received(&a, &id("b"), &mut b_inbox, b"after a restart").await;
    let second = started.elapsed();
    assert!(b.stats().connections_accepted > accepted);
    let s = b.stats();
    println!(
        "flood: {}; node: {} pending displaced, {} handshake timeouts, {} accepted; the peer \
         delivered {first:?} and {second:?} after dialing",
        flood.stats.summary(),
        s.handshakes_displaced,
        s.handshake_timeouts,
        s.connections_accepted
    );
    flood.stop().await;
    // A slow-loris alone is cut at the handshake deadline, not kept alive by its trickle.
    let timeouts = b.stats().handshake_timeouts;
    let loris = Flood::start(
        target,
        &sources[1..2],
        0,
        1,
        Duration::from_secs(1),
        Duration::from_secs(60),
    );
    wait_stats(&b, "a handshake timeout", |s| {
        s.handshake_timeouts > timeouts
    })
    .await;
    let loris_by = Instant::now() + DEADLINE;
    while loris.stats.loris_closed.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < loris_by, "{}", loris.stats.summary());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let longest = Duration::from_millis(loris.stats.loris_longest_ms.load(Ordering::Relaxed));
    println!("slow-loris alone: {}", loris.stats.summary());
    assert!(
        longest >= DEFAULT_HANDSHAKE_TIMEOUT - Duration::from_millis(100)
            && longest < DEFAULT_HANDSHAKE_TIMEOUT + Duration::from_secs(2),
        "a slow-loris stayed open {longest:?}"
    );
    loris.stop().await;
    a.shutdown().await;
    b.shutdown().await;
}
