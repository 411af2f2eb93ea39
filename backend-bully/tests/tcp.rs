//! Real TCP on loopback, 3 and 5 nodes in one process (each its own `BullyNode`, data dir
//! and authenticated connections, through fault proxies): crash failover to the next
//! highest node, a forged VICTORY, partitions, resign, restart from the data dir, voters
//! that never campaign, many elections over one connection per peer.

mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use cluster::{Cluster, relaxed};
use election_bully::core::Message;
use election_core::{ElectionName, Epoch, ErrorKind};
use election_peer::test_support::{minority_leader_loses_before_the_majority_elects, next_grant};
use election_transport::{Auth, Secret, Transport, TransportConfig};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

/// Crash (kill -9) the leader of 3: the highest candidate led first; the next highest
/// leads after the crash, with a higher epoch, after the old lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_the_leader_of_three_elects_the_next_highest_with_a_higher_epoch() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, relaxed).await;
    let e = name("failover");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    assert_eq!(old, 2, "the highest candidate wins the first election");
    c.crash(old);
    let (new, ln, _) = next_grant(&mut grants, Duration::from_secs(10), "after the crash").await;
    assert_eq!(new, 1, "the next highest candidate wins after the crash");
    assert!(
        ln.epoch() > lo.epoch(),
        "new epoch {} must exceed the crashed leader's {}",
        ln.epoch(),
        lo.epoch()
    );
    assert!(
        lo.deadline() <= Instant::now(),
        "the crashed leader's lease deadline was still ahead when node {new} was elected"
    );
}

/// A node that does not know the shared secret forges a VICTORY (and heartbeat) with a
/// huge epoch under the highest node's id: the transport refuses the connection, the
/// forgery never reaches the core, and the leader stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_victory_is_rejected_and_changes_no_leader() {
    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let e = name("forged");
    let mut grants = c.campaign_all(&e, &[0]);
    let (_, l, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let before = c.node(0).stats().transport.auth_failures;

    let forger_id = c.ids[2].clone();
    let peers: BTreeMap<_, _> = [(c.ids[0].clone(), c.listen[0].to_string())].into();
    let auth = Auth::SharedSecret(Secret::new(b"not-the-cluster-secret".to_vec()).unwrap());
    let config = TransportConfig::new(forger_id, "127.0.0.1:0".parse().unwrap(), peers, auth);
    let (forger, _inbox) = Transport::bind(config).await.unwrap();
    let forged = [
        Message::Victory {
            election: e.clone(),
            epoch: 1_000_000,
        },
        Message::Heartbeat {
            round: 1,
            incarnation: 1,
            leads: vec![(e.clone(), 1_000_000)],
        },
    ];
    let payload: Bytes = election_bully::encode(&forged, 1 << 16).remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The handshake fails on whichever side checks a proof first; either way no frame of
    // the forger is ever delivered.
    while c.node(0).stats().transport.auth_failures == before && forger.stats().auth_failures == 0 {
        assert!(
            Instant::now() < deadline,
            "neither side noticed the failed authentication"
        );
        forger.send(&c.ids[0], payload.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    forger.send(&c.ids[0], payload.clone());
    assert_eq!(forger.stats().frames_sent, 0, "a forged frame went out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = c.elector(0, &e).leader().await.unwrap().unwrap();
    assert_eq!(leader.node, c.ids[0]);
    assert_eq!(leader.epoch, l.epoch());
    assert!(leader.epoch < Epoch(1_000_000));
    assert!(l.is_held(), "the forged VICTORY deposed the leader");
    forger.shutdown().await;
}

/// A raw connection speaks the transport's handshake under the highest node's id with a
/// made-up proof, then sends a sealed VICTORY with a made-up tag: the node refuses the
/// connection at the proof (counted as an authentication failure), the VICTORY never reaches
/// the core, and the leader stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_victory_after_a_forged_handshake_is_refused_by_the_receiving_node() {
    use bytes::BytesMut;
    use election_transport::{Frame, FrameDecoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let e = name("forged-raw");
    let mut grants = c.campaign_all(&e, &[0]);
    let (_, l, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let before = c.node(0).stats().transport.auth_failures;

    let mut tcp = tokio::net::TcpStream::connect(c.listen[0]).await.unwrap();
    let mut out = BytesMut::new();
    Frame::Hello {
        from: c.ids[2].clone(),
        to: c.ids[0].clone(),
        nonce: [7; 32],
    }
    .encode(&mut out);
    tcp.write_all(&out).await.unwrap();
    // Read the acceptor's Challenge.
    let decoder = FrameDecoder::new(1 << 16);
    let mut buf = BytesMut::new();
    let challenge = timeout(Duration::from_secs(5), async {
        loop {
            if let Some(f) = decoder.decode(&mut buf).unwrap() {
                break f;
            }
            let mut chunk = [0u8; 512];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the node closed the connection before its Challenge");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("no Challenge within 5 s");
    assert!(
        matches!(challenge, Frame::Challenge { .. }),
        "{challenge:?}"
    );
    let payload = election_bully::encode(
        &[Message::Victory {
            election: e.clone(),
            epoch: 1_000_000,
        }],
        1 << 16,
    )
    .remove(0);
    let mut out = BytesMut::new();
    Frame::Auth { proof: [0; 32] }.encode(&mut out);
    Frame::SealedData {
        payload,
        tag: [0; 32],
    }
    .encode(&mut out);
    let _ = tcp.write_all(&out).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.node(0).stats().transport.auth_failures == before {
        assert!(
            Instant::now() < deadline,
            "node-1 did not count the forged handshake as an authentication failure"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = c.elector(0, &e).leader().await.unwrap().unwrap();
    assert_eq!((leader.node, leader.epoch), (c.ids[0].clone(), l.epoch()));
    assert!(l.is_held(), "the forged VICTORY deposed the leader");
    assert_eq!(c.node(0).stats().decode_errors, 0);
}

/// Partition 5 nodes 2 | 3 with the leader in the minority: its `lost()` fires within its
/// lease, before the majority elects anyone; the minority never elects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_leader_loses_in_time_and_before_the_majority_elects() {
    election_tests::init_tracing();
    let c = Cluster::start(5, relaxed).await;
    minority_leader_loses_before_the_majority_elects(
        &c,
        &name("partition"),
        |cfg| cfg.lease_budget(),
        |cfg| cfg.failure_timeout * 4,
    )
    .await;
}

/// [`relaxed`] with failure detection four times slower (2.4 s), for the test that tells an
/// ABDICATE handover from a failure-detected election by time: no follower drops its
/// loyalty sooner than `failure_timeout` after it last heard the leader, so a handover well
/// inside that came from the ABDICATE, with a margin that a loaded machine delaying one
/// round trip cannot eat.
fn slow_failure_detection(c: &mut election_bully::BullyConfig) {
    relaxed(c);
    c.failure_timeout = Duration::from_millis(2400);
    c.clock_drift = Duration::from_millis(120);
}

/// Resign sends ABDICATE: the highest waiting candidate is elected before any follower
/// could have given up on the leader by itself (one failure timeout), and the resigning
/// node does not win it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_hands_over_to_the_highest_waiting_candidate_at_once() {
    election_tests::init_tracing();
    let c = Cluster::start(3, slow_failure_detection).await;
    let e = name("resign");
    let mut first = c.campaign_all(&e, &[0]);
    let (_, lo, _) = next_grant(&mut first, Duration::from_secs(10), "first election").await;
    let mut grants = c.campaign_all(&e, &[1, 2]);
    // A campaign is a local command to each node's driver, with nothing to observe from
    // here until an election: this only lets the two spawned campaign tasks run first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let epoch = lo.epoch();
    let t0 = Instant::now();
    lo.resign().await.unwrap();
    let ft = c.config(0).failure_timeout;
    let (new, ln, at) = next_grant(&mut grants, ft * 4, "after resign").await;
    assert_eq!(new, 2, "the highest waiting candidate wins");
    assert!(ln.epoch() > epoch);
    let took = at - t0;
    assert!(
        took < ft,
        "handoff took {took:?}: it waited for a failure timeout ({ft:?})"
    );
}

/// Epochs are durable: after every node restarts from its data dir, the next leadership's
/// epoch is above every earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_the_data_dir_keeps_epochs_rising() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, relaxed).await;
    let e = name("restart");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (_, l1, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let first = l1.epoch();
    drop(l1);
    drop(grants);
    for i in 0..3 {
        c.crash(i);
    }
    for i in 0..3 {
        c.restart(i).await;
    }
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (_, l2, _) = next_grant(&mut grants, Duration::from_secs(10), "after restart").await;
    assert!(
        l2.epoch() > first,
        "epoch {} after restart is not above {first}",
        l2.epoch()
    );
}

/// A voter-only member refuses to campaign with a configuration error, and still
/// acknowledges: with one of three down, the remaining candidate is elected with its help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_only_acknowledge_but_never_campaign() {
    election_tests::init_tracing();
    let mut c = Cluster::start_with(3, relaxed, &[2]).await;
    let e = name("voters");
    let err = c.elector(2, &e).campaign().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    c.crash(1);
    let mut grants = c.campaign_all(&e, &[0]);
    let (i, _, _) = next_grant(&mut grants, Duration::from_secs(10), "with a voter").await;
    assert_eq!(i, 0);
}

/// Many elections share the connections: 100 elections on 3 nodes all get one leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_elections_share_one_connection_per_peer() {
    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = 100;
    for k in 0..count {
        let e = name(&format!("part-{k}"));
        for i in 0..3 {
            let elector = c.elector(i, &e);
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(l) = elector.campaign().await {
                    let _ = tx.send((k, l));
                    std::future::pending::<()>().await;
                }
            });
        }
    }
    let mut led = std::collections::BTreeSet::new();
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while led.len() < count {
        let (k, l) = timeout(deadline - Instant::now(), rx.recv())
            .await
            .expect("not every election got a leader in 30 s")
            .unwrap();
        assert!(
            led.insert(k),
            "election {k} was granted twice at once (epoch {})",
            l.epoch()
        );
        held.push(l);
    }
    assert!(held.iter().all(|l| l.is_held()));
    assert_eq!(c.node(0).stats().decode_errors, 0);
}
