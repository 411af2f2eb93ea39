//! Faults between a node and etcd (a blackholing proxy) and inside an etcd cluster (a
//! killed member): the deadline rule, endpoint failover. Fencing of a stale leader is the
//! conformance suite's `a_paused_leader_is_fenced_off`.

mod support;

use std::time::Duration;

use election_core::{ErrorKind, LeaseTiming, LossReason};
use election_tests::history::History;
use election_tests::launch::EtcdCluster;
use election_tests::proxy::{Direction, Fault};
use support::*;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_leader_loses_by_its_deadline_before_the_waiter_is_elected() {
    let server = etcd();
    let t = timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let election = name("cut1");
    let history = History::new();
    let leadership = a.elector(&election).campaign().await.unwrap();
    history.granted(&a.id, leadership.epoch());
    // Record A's loss the moment lost() fires, from its own task.
    let recorder = {
        let (watch, history, id, epoch) = (
            leadership.loss_watch(),
            history.clone(),
            a.id.clone(),
            leadership.epoch(),
        );
        tokio::spawn(async move {
            watch.lost().await;
            history.lost(&id, epoch);
        })
    };
    let b_elector = b.elector(&election);
    let (b_history, b_id) = (history.clone(), b.id.clone());
    let waiter = tokio::spawn(async move {
        let l = b_elector.campaign().await.unwrap();
        b_history.granted(&b_id, l.epoch());
        (Instant::now(), l)
    });
    // Let a renewal or two happen, then cut A off in both directions.
    tokio::time::sleep(t.renew_interval * 2).await;
    let deadline_at_cut = leadership.deadline();
    let cut_at = Instant::now();
    a.proxy.set(Direction::Both, Fault::Blackhole);

    let reason = within(SOON, "A's lost()", leadership.lost()).await;
    let lost_at = Instant::now();
    assert_eq!(reason, LossReason::Expired);
    // No renewal got through the blackhole, so the deadline is the one set before the cut:
    // at most one hold budget (ttl - margin) after the cut.
    assert!(
        leadership.deadline() <= deadline_at_cut.max(cut_at + t.hold_budget()),
        "a renewal went through the blackhole?"
    );
    let (granted_at, b_leadership) = within(SOON, "B's election", waiter).await.unwrap();
    assert!(
        lost_at <= granted_at,
        "overlap: B was elected {:?} before A's lost() resolved",
        lost_at - granted_at
    );
    // B can only be elected once etcd expired A's lease, a TTL after etcd received A's
    // last renewal, which was after that renewal started: its deadline minus the budget.
    let last_renewal_started = leadership.deadline() - t.hold_budget();
    let lease_ttl = a.backend.lease_ttl();
    assert!(
        granted_at >= last_renewal_started + lease_ttl,
        "B was elected {:?} after A's last renewal started: before A's {lease_ttl:?} lease \
         could expire",
        granted_at - last_renewal_started
    );
    assert!(
        leadership.deadline() <= granted_at,
        "B was elected before A's deadline"
    );
    assert!(b_leadership.epoch() > leadership.epoch());
    within(SOON, "the loss recorder", recorder).await.unwrap();
    if let Err(violations) = history.check() {
        panic!("history violations: {violations:?}\n{history}");
    }
    a.proxy.set(Direction::Both, Fault::Pass);
    history.resigned(&b.id, b_leadership.epoch());
    b_leadership.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_candidate_cut_off_gets_an_error_instead_of_waiting_forever() {
    let server = etcd();
    let t = timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let election = name("cut2");
    let leadership = a.elector(&election).campaign().await.unwrap();
    let b_elector = b.elector(&election);
    let waiter = tokio::spawn(async move { b_elector.campaign().await });
    tokio::time::sleep(t.renew_interval * 2).await;
    b.proxy.set(Direction::Both, Fault::Blackhole);
    let err = within(SOON, "B's campaign to fail", waiter)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains("cut2"),
        "names the election: {err}"
    );
    assert!(leadership.is_held(), "A was never disturbed");
    leadership.resign().await.unwrap();
}

/// A longer TTL than the other tests: a killed member may be the Raft leader, and the
/// cluster (election timeout 500 ms) needs a moment to elect another.
fn cluster_timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(3),
        renew_interval: Duration::from_millis(300),
        retry_interval: Duration::from_millis(50),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_keeps_leadership_when_an_etcd_member_it_talks_to_dies() {
    election_tests::init_tracing();
    let cluster = tokio::task::block_in_place(|| EtcdCluster::start(3)).expect("etcd cluster");
    let t = cluster_timing();
    let backend = connect(cluster.endpoints(), t).await;
    let ours = elector(&backend, "cluster1", "node-a");
    let leadership = ours.campaign().await.unwrap();

    // Kill the member that is the Raft leader: every write (keep-alives included) goes
    // through it, so the client certainly depended on it.
    let mut victim = None;
    for (i, endpoint) in cluster.endpoints().iter().enumerate() {
        let mut c = raw(endpoint).await;
        let status = c.status().await.unwrap();
        if status.leader() == status.header().unwrap().member_id() {
            victim = Some(i);
        }
    }
    let victim = victim.expect("the cluster has a leader");
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| cluster.member(victim).kill()).unwrap();

    // Two renewals started after the kill must succeed, through the other members, while
    // leadership holds throughout.
    let renewed_twice = killed_at + t.hold_budget() + t.renew_interval * 2;
    loop {
        assert!(
            leadership.is_held(),
            "leadership lapsed after member {victim} was killed: {:?}",
            leadership.lost().await
        );
        if leadership.deadline() >= renewed_twice {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "no renewal through the surviving members"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let survivor = cluster.endpoints()[(victim + 1) % cluster.len()].clone();
    let observer = connect(vec![survivor], t).await;
    let seen = elector(&observer, "cluster1", "observer")
        .leader()
        .await
        .unwrap()
        .expect("a leader");
    assert_eq!(&seen.node, &leadership.info().node);
    assert_eq!(seen.epoch, leadership.epoch());
    leadership.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_keeps_leadership_across_a_quick_etcd_restart_with_its_data() {
    let server = etcd();
    let t = long_timing();
    let backend = connect(vec![server.endpoint()], t).await;
    let ours = elector(&backend, "restart1", "node-a");
    let leadership = ours.campaign().await.unwrap();
    let s = &server;
    tokio::task::block_in_place(|| s.restart(election_tests::launch::Data::Keep)).unwrap();
    let restarted_at = Instant::now();
    // A renewal that started after the restart succeeds (the lease survived with etcd's
    // data), while leadership holds throughout.
    loop {
        assert!(
            leadership.is_held(),
            "leadership lapsed across the restart: {:?}",
            leadership.lost().await
        );
        if leadership.deadline() > restarted_at + t.hold_budget() {
            break;
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(20),
            "no renewal after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = ours.leader().await.unwrap().expect("still leading");
    assert_eq!(seen.epoch, leadership.epoch());
    leadership.resign().await.unwrap();
}

/// Issue 16, item 3: the connection resets after the enqueue transaction reached etcd but
/// before its answer came back. The client sends the txn again (it only creates our key if
/// absent), finds the key its first send created under our lease, and takes its place in
/// the queue from it: the campaign succeeds, it is never a protocol violation, and no key
/// outlives the resign. Ten rounds in a row, for `campaign` and for `try_campaign`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_the_campaign_txn_went_out_still_elects_and_leaks_no_key() {
    let server = etcd();
    let a = ProxiedNode::start(server.addr(), "node-a", long_timing()).await;
    let raw = raw(&server.endpoint()).await;
    for round in 0..10 {
        let trying = round % 2 == 1;
        let election = name(&format!("reset{round}"));
        let dir = format!("elector/reset{round}/");
        // Answers are late, so there is time to reset between the txn and its answer.
        a.proxy.set(
            Direction::ToClient,
            Fault::Delay(Duration::from_millis(300)),
        );
        let e = a.elector(&election);
        let first = tokio::spawn({
            let e = e.clone();
            async move {
                if trying {
                    e.try_campaign()
                        .await
                        .map(|held| held.expect("the election was empty"))
                } else {
                    e.campaign().await
                }
            }
        });
        eventually(SOON, "our candidate key reached etcd", || {
            let (raw, dir) = (raw.clone(), dir.clone());
            async move { !keys_under(&raw, &dir).await.is_empty() }
        })
        .await;
        // Lifted at once: the proxy resets the connections open now all the same.
        a.proxy.set(Direction::Both, Fault::Reset);
        a.proxy.set(Direction::Both, Fault::Pass);
        let held = within(SOON, "the campaign", first)
            .await
            .unwrap()
            .unwrap_or_else(|err| panic!("round {round} (try: {trying}): {err}"));
        assert_eq!(
            keys_under(&raw, &dir).await.len(),
            1,
            "round {round}: one key, ours, created once"
        );
        held.resign().await.unwrap();
        eventually(SOON, "no key left after resigning", || {
            let (raw, dir) = (raw.clone(), dir.clone());
            async move { keys_under(&raw, &dir).await.is_empty() }
        })
        .await;
    }
}
