//! Real TCP on loopback, 3 and 5 nodes in one process (each its own `RaftNode`, data dir and
//! authenticated connections, through fault proxies): crash failover, partitions, resign,
//! restart from the data dir, voters that never campaign.

mod cluster;

use std::time::Duration;

use cluster::{Cluster, relaxed};
use election_core::{ElectionName, ErrorKind, LossReason};
use election_peer::test_support::{minority_leader_loses_before_the_majority_elects, next_grant};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

/// [`relaxed`] with election timers four times slower (2 s to 2.5 s), for the tests that
/// tell a transfer from an election by time: no follower's own timer fires sooner than
/// `election_timeout_min` after it last heard the leader, so a handover well inside that is
/// a transfer, with a margin that a loaded machine delaying one round trip cannot eat.
fn slow_timers(c: &mut election_raft::RaftConfig) {
    relaxed(c);
    c.election_timeout_min = Duration::from_millis(2000);
    c.election_timeout_max = Duration::from_millis(2500);
    c.clock_drift = Duration::from_millis(100);
}

/// Waits until the leader `old` of `e`, holding `lo`, knows the candidacies of `followers`:
/// each of them reports it as leader (a campaigning node that learns of a leader sends it a
/// Candidacy at once), and then `lo`'s lease is extended by a heartbeat round sent after
/// that (its acknowledgements repeat each follower's campaigning flag).
async fn until_the_leader_knows_the_candidates(
    c: &Cluster,
    e: &ElectionName,
    old: usize,
    lo: &election_core::Leadership,
    followers: &[usize],
) {
    let within = Duration::from_secs(10);
    let until = Instant::now() + within;
    for &f in followers {
        let elector = c.elector(f, e);
        loop {
            let leader = elector.leader().await.ok().flatten();
            if leader.is_some_and(|l| l.node == c.ids[old] && l.epoch == lo.epoch()) {
                break;
            }
            assert!(
                Instant::now() < until,
                "node {f} never learned of leader {old}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let known_at = Instant::now();
    let budget = c.config(old).lease_budget();
    while lo.deadline() <= known_at + budget {
        assert!(
            Instant::now() < until,
            "no heartbeat round was acknowledged after the followers knew the leader"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn crash_failover(n: usize) {
    election_tests::init_tracing();
    let mut c = Cluster::start(n, relaxed).await;
    let e = name("failover");
    let mut grants = c.campaign_all(&e, &(0..n).collect::<Vec<_>>());
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    c.crash(old);
    let crashed_at = Instant::now();
    let (new, ln, _) = next_grant(&mut grants, Duration::from_secs(10), "after the crash").await;
    assert_ne!(new, old, "the crashed node cannot be re-elected");
    assert!(
        ln.epoch() > lo.epoch(),
        "new epoch {} must exceed the crashed leader's {}",
        ln.epoch(),
        lo.epoch()
    );
    // Lease safety: the crashed leader's deadline had passed before the new grant.
    assert!(
        lo.deadline() <= Instant::now(),
        "the crashed leader's lease deadline was still ahead when node {new} was elected"
    );
    tracing::info!(n, took = ?crashed_at.elapsed(), "crash failover");
}

/// Crash (kill -9) the leader of 3: another node leads, with a higher epoch, after the
/// old lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_the_leader_of_three_elects_another_with_a_higher_epoch() {
    crash_failover(3).await;
}

/// The same with 5 members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_the_leader_of_five_elects_another_with_a_higher_epoch() {
    crash_failover(5).await;
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
        |cfg| cfg.election_timeout_max * 4,
    )
    .await;
}

/// §3.10: resign hands leadership to a campaigning follower at once (TimeoutNow), before
/// any follower's own election timer could fire, and the resigning node does not win it
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_transfers_leadership_within_a_round_trip() {
    // Once in a CI run (2 Dec) the handoff took 2.99 s, an election by timeout, and no
    // run since reproduced it (12 runs, six under a CPU hog): the core's debug log (who
    // stepped down, whether TimeoutNow went out, who campaigned with force) says which
    // step was missing next time.
    election_tests::init_tracing_or("warn,election_raft=debug");
    let c = Cluster::start(3, slow_timers).await;
    let e = name("resign");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    until_the_leader_knows_the_candidates(&c, &e, old, &lo, &followers).await;
    let epoch = lo.epoch();
    // A leadership that lapsed before the resign (a stalled runtime) is stepped down
    // quietly, with no TimeoutNow (the handover rule): then no transfer is owed.
    let held = lo.loss_watch().loss();
    let t0 = Instant::now();
    lo.resign().await.unwrap();
    let min = c.config(old).election_timeout_min;
    let (new, ln, at) = next_grant(&mut grants, min * 4, "after resign").await;
    let took = at - t0;
    assert_ne!(new, old);
    assert!(ln.epoch() > epoch);
    assert!(
        took < min,
        "handoff took {took:?}: not a transfer (the election timeout is at least {min:?}); \
         the leadership's loss before the resign: {held:?}"
    );
    tracing::info!(?took, "resign handoff");
}

/// Terms are durable: after every node restarts from its data dir, the next leadership's
/// epoch is above every earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_the_data_dir_keeps_terms() {
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

/// A voter-only member refuses to campaign with a configuration error, and still votes:
/// with one of three down, the remaining candidate is elected with its vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_only_vote_but_never_campaign() {
    election_tests::init_tracing();
    let mut c = Cluster::start_with(3, relaxed, &[2]).await;
    let e = name("voters");
    let err = c.elector(2, &e).campaign().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    c.crash(1);
    let mut grants = c.campaign_all(&e, &[0]);
    let (i, _, _) = next_grant(
        &mut grants,
        Duration::from_secs(10),
        "with a voter-only member",
    )
    .await;
    assert_eq!(i, 0);
}

/// Many elections share the connections: 200 elections on 3 nodes all get leaders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_elections_share_one_connection_per_peer() {
    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = 200;
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
    let stats = c.node(0).stats();
    assert_eq!(stats.decode_errors, 0);
}

/// `shutdown` is graceful: the leadership ends (lost() = Shutdown) and is handed over at
/// once to a campaigning peer, before any follower's own election timer could fire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_leadership_over() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, slow_timers).await;
    let e = name("shutdown");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    until_the_leader_knows_the_candidates(&c, &e, old, &lo, &followers).await;
    let min = c.config(old).election_timeout_min;
    let t0 = Instant::now();
    c.shutdown(old).await;
    assert_eq!(lo.lost().await, LossReason::Shutdown);
    let (new, ln, at) = next_grant(&mut grants, min * 4, "after shutdown").await;
    assert_ne!(new, old);
    assert!(ln.epoch() > lo.epoch());
    assert!(
        at - t0 < min,
        "handover took {:?}: not a transfer (election timeout at least {min:?})",
        at - t0
    );
}

/// A one-way partition: the leader's outgoing links are blackholed while it still hears
/// its followers. Its heartbeats stop arriving, so its lease lapses (lost() fires) before
/// the followers, whose lease promise ran out, elect one of themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_send_loses_before_the_others_elect() {
    election_tests::init_tracing();
    let c = Cluster::start(3, relaxed).await;
    let e = name("one-way");
    let mut grants = c.campaign_all(&e, &[0, 1, 2]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    for (&(i, _), p) in &c.proxies {
        if i == old {
            p.set(
                election_tests::proxy::Direction::Both,
                election_tests::proxy::Fault::Blackhole,
            );
        }
    }
    let cut_at = Instant::now();
    let budget = c.config(old).lease_budget();
    let reason = timeout(budget + election_tests::conformance::SLACK, lo.lost())
        .await
        .expect("the leader that cannot send kept its lease");
    // Its last acknowledged round was sent before the cut: the lease ends by then, one
    // late timer of slack aside.
    assert!(
        cut_at.elapsed() <= budget + election_tests::conformance::SCHEDULING_SLACK,
        "lost() came {:?} after the cut, beyond the lease budget {budget:?}",
        cut_at.elapsed()
    );
    let lost_at = Instant::now();
    assert!(
        matches!(reason, LossReason::QuorumLost | LossReason::Expired),
        "{reason:?}"
    );
    let (new, ln, granted_at) = next_grant(
        &mut grants,
        Duration::from_secs(10),
        "after the one-way cut",
    )
    .await;
    assert_ne!(new, old);
    assert!(
        lost_at <= granted_at,
        "node {new} was elected before the old leader's lost()"
    );
    assert!(ln.epoch() > lo.epoch());
    c.heal();
}
