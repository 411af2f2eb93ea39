//! Real TCP on loopback, 3 and 5 nodes in one process (each its own `PaxosNode`, data dir
//! and authenticated connections, through fault proxies): crash failover with a higher
//! epoch after the old lease ran out, a forged proposal, a minority that never grants,
//! resign handing over at once, restart of every node from its data dir, voters that never
//! propose, many elections over one connection per peer.

mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use cluster::{Cluster, relaxed};
use election_core::{ElectionName, Epoch, ErrorKind};
use election_paxos::core::Message;
use election_peer::test_support::{minority_leader_loses_before_the_majority_elects, next_grant};
use election_transport::{Auth, Secret, Transport, TransportConfig};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

/// Crash (kill -9) the leader of 3: another node leads after the crash, with a higher
/// epoch, and only once the old lease's deadline had passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_the_leader_of_three_elects_another_with_a_higher_epoch() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, relaxed).await;
    let e = name("failover");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    c.crash(old);
    let (new, ln, _) = next_grant(&mut grants, Duration::from_secs(10), "after the crash").await;
    assert_ne!(new, old);
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

/// A node that does not know the shared secret forges a PROPOSE under another member's id:
/// the transport refuses the connection, the forgery never reaches the core, and the
/// leader stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_proposal_is_rejected_and_changes_no_leader() {
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
        Message::Release {
            election: e.clone(),
            epoch: l.epoch().0,
            incarnation: 1,
        },
        Message::Propose {
            election: e.clone(),
            ballot: 1_000_002,
            epoch: 1_000_002,
            incarnation: 1,
        },
    ];
    let payload: Bytes = election_paxos::encode(&forged, 1 << 16).remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
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
    assert!(leader.epoch < Epoch(1_000_002));
    assert!(l.is_held(), "the forged proposal deposed the leader");
    forger.shutdown().await;
}

/// Partition 5 nodes 2 | 3 with the leader in the minority: its `lost()` fires within its
/// lease, before the majority elects anyone; the minority never grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_leader_of_five_loses_in_time_and_before_the_majority_elects() {
    election_tests::init_tracing();
    let c = Cluster::start(5, relaxed).await;
    minority_leader_loses_before_the_majority_elects(
        &c,
        &name("partition"),
        |cfg| cfg.lease_budget(),
        |cfg| cfg.lease * 4,
    )
    .await;
}

/// 3 nodes, the leader cut off from both others: its `lost()` fires within its lease
/// budget, before the other two elect one of them at a higher epoch; the cut-off node,
/// still campaigning, is granted nothing while alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_of_three_cut_off_loses_by_its_deadline_and_alone_never_grants() {
    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let e = name("partition-3");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let cfg = c.config(old);
    let budget = cfg.lease_budget();
    let cut_at = Instant::now();
    c.isolate(old);
    let reason = timeout(budget + Duration::from_secs(1), lo.lost())
        .await
        .expect("the cut-off leader's lost() did not fire within its lease (+1 s slack)");
    let lost_at = Instant::now();
    assert!(
        matches!(
            reason,
            election_core::LossReason::QuorumLost | election_core::LossReason::Expired
        ),
        "{reason:?}"
    );
    assert!(lost_at - cut_at <= budget + Duration::from_millis(500));
    // Its campaign goes on (the cluster's campaign tasks campaign again after a loss).
    let mut alone = c.campaign_all(&e, &[old]);
    let (new, ln, granted_at) =
        next_grant(&mut grants, Duration::from_secs(10), "after the cut").await;
    assert_ne!(new, old, "the cut-off node was elected");
    assert!(lost_at <= granted_at);
    assert!(ln.epoch() > lo.epoch());
    if let Ok(Some((i, l, _))) = timeout(cfg.lease * 3, alone.recv()).await {
        panic!("node {i} was elected alone at epoch {}", l.epoch());
    }
    assert!(ln.is_held());
    c.heal();
}

/// [`relaxed`] with a lease four times longer (2.4 s), for the test that tells a RELEASE
/// handover from an expiry by time: no acceptor lets the old lease go sooner than one lease
/// time after it accepted it, so a handover well inside that came from the RELEASE, with a
/// margin that a loaded machine delaying one round trip cannot eat.
fn long_lease(c: &mut election_paxos::PaxosConfig) {
    relaxed(c);
    c.lease = Duration::from_millis(2400);
    c.clock_drift = Duration::from_millis(120);
}

/// Resign sends RELEASE: a waiting candidate is elected before any acceptor could have let
/// the lease run out by itself, and the resigning node does not win it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_hands_over_to_a_waiting_candidate_at_once() {
    election_tests::init_tracing();
    let c = Cluster::start(3, long_lease).await;
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
    let lease = c.config(0).lease;
    let (new, ln, at) = next_grant(&mut grants, lease * 4, "after resign").await;
    assert_ne!(new, 0);
    assert!(ln.epoch() > epoch);
    let took = at - t0;
    assert!(
        took < lease,
        "handoff took {took:?}: it waited for the lease ({lease:?}) to run out"
    );
}

/// Epochs are durable: after every node restarts from its data dir at once (every
/// acceptor forgot its promises), the next leadership's epoch is above every earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_every_node_from_the_data_dir_keeps_epochs_rising() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, relaxed).await;
    let e = name("restart");
    let mut last = Epoch(0);
    for round in 0..2 {
        let mut grants = c.campaign_all(&e, &[0, 1, 2]);
        let (_, l, _) = next_grant(&mut grants, Duration::from_secs(10), "an election").await;
        assert!(
            l.epoch() > last,
            "round {round}: epoch {} is not above {last}",
            l.epoch()
        );
        last = l.epoch();
        drop(l);
        drop(grants);
        for i in 0..3 {
            c.crash(i);
        }
        for i in 0..3 {
            c.restart(i).await;
        }
    }
}

/// A voters-only member refuses to campaign with a configuration error, and still
/// accepts: with one of three down, the remaining candidate is elected with its help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_only_accept_but_never_propose() {
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
