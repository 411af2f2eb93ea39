//! Faults between a node and ZooKeeper (a blackholing proxy) and of ZooKeeper itself (a
//! restart): the deadline rule, epochs across restarts. Fencing of a stale leader is the
//! conformance suite's `a_paused_leader_is_fenced_off`.

mod support;

use std::time::Duration;

use election_core::{ErrorKind, LossReason};
use election_tests::history::History;
use election_tests::launch::Data;
use election_tests::proxy::{Direction, Fault};
use support::*;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_leader_loses_by_its_deadline_before_the_waiter_is_elected() {
    let server = shared_zookeeper();
    let t = timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let session_timeout = a.backend.session_timeout().await.unwrap();
    let hold_budget = session_timeout - t.safety_margin();
    let election = unique("cut1");
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
    assert!(
        leadership.deadline() <= deadline_at_cut.max(cut_at + hold_budget),
        "a renewal went through the blackhole?"
    );
    let (granted_at, b_leadership) = within(SOON, "B's election", waiter).await.unwrap();
    assert!(
        lost_at <= granted_at,
        "overlap: B was elected {:?} before A's lost() resolved",
        lost_at - granted_at
    );
    // B can only be elected once ZooKeeper expired A's session, a session timeout after
    // the last packet it got from A, which was after A's last renewal started.
    let last_renewal_started = leadership.deadline() - hold_budget;
    assert!(
        granted_at >= last_renewal_started + session_timeout,
        "B was elected {:?} after A's last renewal started: before A's {session_timeout:?} \
         session could expire",
        granted_at - last_renewal_started
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
    let server = shared_zookeeper();
    let t = timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let election = unique("cut2");
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
    assert!(
        err.to_string().contains(&b.proxy.addr().to_string()),
        "names the address: {err}"
    );
    assert!(leadership.is_held(), "A was never disturbed");
    leadership.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_keep_rising_across_a_zookeeper_restart_with_its_data() {
    let server = zookeeper();
    let t = timing();
    let backend = connect(&server.connect_string(), t).await;
    let election = unique("restart");
    let ours = elector(&backend, &election, "node-a");
    let mut epochs = Vec::new();
    for _ in 0..2 {
        let l = ours.campaign().await.unwrap();
        epochs.push(l.epoch());
        l.resign().await.unwrap();
    }
    let s = &server;
    tokio::task::block_in_place(|| s.restart(Data::Keep)).unwrap();
    // The session may or may not survive the restart; either way the backend campaigns
    // again (with a new session if needed) and the new znode's czxid is above the old ones.
    let l = within(SOON, "an election after the restart", async {
        loop {
            match ours.campaign().await {
                Ok(l) => return l,
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("campaign after the restart: {e}"),
            }
        }
    })
    .await;
    let before = *epochs.last().unwrap();
    assert!(
        l.epoch() > before,
        "epoch {} after the restart is not above {before} from before it",
        l.epoch()
    );
    eprintln!(
        "epochs before the restart: {epochs:?}, after: {}",
        l.epoch()
    );
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_zookeeper_restarts_epochs_low_which_is_why_the_doc_warns() {
    let server = zookeeper();
    let t = timing();
    let backend = connect(&server.connect_string(), t).await;
    let election = unique("wipe");
    let ours = elector(&backend, &election, "node-a");
    // Some history first, so that epochs are clearly above a fresh server's.
    for _ in 0..5 {
        ours.campaign().await.unwrap().resign().await.unwrap();
    }
    let before = ours.campaign().await.unwrap();
    let before_epoch = before.epoch();
    before.resign().await.unwrap();
    let s = &server;
    tokio::task::block_in_place(|| s.restart(Data::Empty)).unwrap();
    let after = within(SOON, "an election after the wipe", async {
        loop {
            match ours.campaign().await {
                Ok(l) => return l,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("campaign after the wipe: {e}"),
            }
        }
    })
    .await;
    // Documented limitation: a wiped data directory resets zxids.
    assert!(
        after.epoch() < before_epoch,
        "{} vs {before_epoch}",
        after.epoch()
    );
    after.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_zookeeper_ends_leadership_by_the_deadline_and_a_new_session_leads_after() {
    let server = zookeeper();
    let t = timing();
    let backend = connect(&server.connect_string(), t).await;
    let session_timeout = backend.session_timeout().await.unwrap();
    let election = unique("sigstop");
    let ours = elector(&backend, &election, "node-a");
    let old = ours.campaign().await.unwrap();
    tokio::time::sleep(t.renew_interval * 2).await;
    let paused_at = Instant::now();
    server.pause().unwrap();
    let reason = within(SOON, "lost()", old.lost()).await;
    assert_eq!(reason, LossReason::Expired);
    // No renewal can have been answered after the pause began.
    assert!(old.deadline() <= paused_at + session_timeout - t.safety_margin());
    // Long enough for the client to give the session up (7/5 of its timeout).
    tokio::time::sleep(session_timeout * 2).await;
    server.resume().unwrap();
    let new = within(SOON, "an election with a new session", async {
        loop {
            match ours.campaign().await {
                Ok(l) => return l,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("campaign after the pause: {e}"),
            }
        }
    })
    .await;
    assert!(new.epoch() > old.epoch());
    drop(old);
    new.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_while_cut_off_returns_an_error_in_bounded_time_and_still_lets_go() {
    let server = shared_zookeeper();
    let t = timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let election = unique("cutresign");
    let old = a.elector(&election).campaign().await.unwrap();
    let old_epoch = old.epoch();
    a.proxy.set(Direction::Both, Fault::Blackhole);
    let err = within(SOON, "resign to return", old.resign())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("cutresign"), "{err}");
    a.proxy.set(Direction::Both, Fault::Pass);
    // Deleted in the background once ZooKeeper answers, or gone with the expired session.
    let new = within(SOON, "B's election", b.elector(&election).campaign())
        .await
        .unwrap();
    assert!(new.epoch() > old_epoch);
    new.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_leaves_no_orphan_leading_the_election() {
    let server = shared_zookeeper();
    let t = long_timing();
    let a = ProxiedNode::start(server.addr(), "node-a", t).await;
    let b = ProxiedNode::start(server.addr(), "node-b", t).await;
    let election = unique("orphan");
    let raw = raw(&server.connect_string()).await;
    let dir = a.backend.election_path(&election);
    // Make sure the election's znode exists, so the create below is the only write.
    b.elector(&election)
        .campaign()
        .await
        .unwrap()
        .resign()
        .await
        .unwrap();

    // A's requests reach ZooKeeper, its answers do not: the create is applied, A never
    // learns it, and its campaign fails.
    a.proxy.set(Direction::ToClient, Fault::Blackhole);
    let err = within(
        SOON,
        "A's campaign to fail",
        a.elector(&election).campaign(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let orphans = candidates(&raw, &dir).await;
    assert_eq!(orphans.len(), 1, "the create was applied: {orphans:?}");
    assert_eq!(orphans[0].1, "node-a");

    // Once A hears from ZooKeeper again, it removes the znode nobody holds, long before
    // its 10 s session could expire: B is elected at once.
    a.proxy.set(Direction::ToClient, Fault::Pass);
    let healed_at = Instant::now();
    let l = within(SOON, "B's election", b.elector(&election).campaign())
        .await
        .unwrap();
    assert!(
        healed_at.elapsed() < t.ttl / 2,
        "B waited {:?}: for the session to expire?",
        healed_at.elapsed()
    );
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_an_outage_once_and_carries_on_with_a_new_session() {
    let server = shared_zookeeper();
    let t = timing();
    let watcher = ProxiedNode::start(server.addr(), "watcher", t).await;
    let leader_host = connect(&server.connect_string(), long_timing()).await;
    let election = unique("observecut");
    let mut stream = watcher.elector(&election).observe();
    assert_eq!(
        within(SOON, "the first item", stream.next())
            .await
            .unwrap()
            .unwrap(),
        None
    );
    let first = elector(&leader_host, &election, "node-a")
        .campaign()
        .await
        .unwrap();
    let seen = within(SOON, "the leader", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.map(|i| i.epoch), Some(first.epoch()));

    // Cut the observer off long enough for its session to end, change the leader meanwhile.
    watcher.proxy.set(Direction::Both, Fault::Blackhole);
    let err = within(SOON, "an outage reported", stream.next())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let first_epoch = first.epoch();
    first.resign().await.unwrap();
    let second = elector(&leader_host, &election, "node-b")
        .campaign()
        .await
        .unwrap();
    watcher.proxy.set(Direction::Both, Fault::Pass);
    // After the outage: the current leader, with no second error in between.
    let seen = within(SOON, "the leader after the outage", stream.next())
        .await
        .unwrap()
        .unwrap();
    let seen = seen.expect("a leader");
    assert_eq!((seen.node.as_str(), seen.epoch), ("node-b", second.epoch()));
    assert!(seen.epoch > first_epoch);
    second.resign().await.unwrap();
    let seen = within(SOON, "no leader", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, None);
}
