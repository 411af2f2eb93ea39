//! Issue 14, item 3, with real Raft nodes: a 3-node cluster on loopback keeps its leader
//! while 1,000 idle TCP connections and a slow-loris (one byte a second) flood the leader's
//! port and a follower's port, from the address the peers dial from and from others; then
//! the leader crashes, the others elect a new one, and the crashed node restarts and
//! reconnects through the floods (it learns the new leader over connections accepted by
//! a flooded port).

mod cluster;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::{Cluster, relaxed};
use election_core::ElectionName;
use election_peer::test_support::next_grant;
use election_tests::flood::{Flood, raise_fd_limit};
use tokio::time::Instant;

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_keeps_its_leader_and_recovers_while_two_ports_are_flooded() {
    // 2 x 1,000 client sockets here, the nodes' side of those they hold, and the cluster.
    assert!(
        raise_fd_limit(8192) >= 4500,
        "cannot raise the open-file limit"
    );
    let mut c = Cluster::start(3, relaxed).await;
    let e = ElectionName::new("flooded").unwrap();
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (leader, lease, _) = next_grant(&mut grants, WITHIN, "before the flood").await;
    let follower = (leader + 1) % 3;
    let sources = [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    ];
    let flood = |i: usize| {
        Flood::start(
            c.listen[i],
            &sources,
            1000,
            1,
            Duration::from_secs(1),
            Duration::from_secs(180),
        )
    };
    let floods = [flood(leader), flood(follower)];
    let by = Instant::now() + WITHIN;
    for f in &floods {
        while f.stats.opened.load(Ordering::Relaxed) < 1000 {
            assert!(
                Instant::now() < by,
                "flood not in place: {}",
                f.stats.summary()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The leader keeps leading through the flood: its lease is extended by a quorum the
    // whole time (no loss), and every node still names it.
    let watch = Duration::from_secs(3);
    tokio::select! {
        reason = lease.lost() => panic!("the leader lost its lease under the flood: {reason:?}"),
        () = tokio::time::sleep(watch) => {}
    }
    for i in 0..3 {
        let l = c.elector(i, &e).leader().await.unwrap().expect("a leader");
        assert_eq!(
            (l.node.clone(), l.epoch),
            (c.ids[leader].clone(), lease.epoch())
        );
    }
    let displaced_before: Vec<u64> = [leader, follower]
        .iter()
        .map(|&i| c.node(i).stats().transport.handshakes_displaced)
        .collect();
    // The leader crashes: the two others elect a new one.
    let old_epoch = lease.epoch();
    drop(lease);
    c.crash(leader);
    let crashed_at = Instant::now();
    let (next, lease2, at) = next_grant(&mut grants, WITHIN, "after the leader crashed").await;
    assert_ne!(next, leader);
    assert!(lease2.epoch() > old_epoch);
    let failover = at - crashed_at;
    // It restarts: it dials the two others (one of them flooded) and they dial it (its
    // own port flooded). It learns the new leader only through connections the flooded
    // ports accepted.
    let accepted = c.node(follower).stats().transport.connections_accepted;
    c.restart(leader).await;
    let restarted_at = Instant::now();
    let by = restarted_at + WITHIN;
    loop {
        let l = c.elector(leader, &e).leader().await.unwrap();
        if l.is_some_and(|l| l.node == c.ids[next] && l.epoch == lease2.epoch()) {
            break;
        }
        assert!(
            Instant::now() < by,
            "the restarted node never learnt the new leader"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rejoined = restarted_at.elapsed();
    assert!(
        c.node(follower).stats().transport.connections_accepted > accepted,
        "the flooded follower accepted no new peer connection"
    );
    assert!(lease2.is_held(), "the new leader lost its lease");
    let t = |i: usize| c.node(i).stats().transport;
    println!(
        "leader {leader} kept its lease for {watch:?} under the floods; failover to {next} in \
         {failover:?}; the restarted node learnt the new leader {rejoined:?} after starting\n\
         flood on the leader's port: {}\nflood on the follower's port: {}\nfollower: {} \
         displaced ({} before the crash), {} handshake timeouts, {} accepted",
        floods[0].stats.summary(),
        floods[1].stats.summary(),
        t(follower).handshakes_displaced,
        displaced_before[1],
        t(follower).handshake_timeouts,
        t(follower).connections_accepted,
    );
    for f in floods {
        f.stop().await;
    }
}
