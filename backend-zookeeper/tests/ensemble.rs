//! A real 3-member ZooKeeper ensemble on loopback (`tickTime` 200 ms, `syncLimit` 10): a
//! holder whose follower is cut off from the quorum, and a holder whose server is killed.

mod support;

use std::time::Duration;

use election_core::LeaseTiming;

use election_tests::history::History;
use election_tests::launch::Mode;
use support::*;
use tokio::time::Instant;

/// The issue 16 scenario: A's session lives on a follower, B's on the leader. The follower
/// is cut off from its peers (its quorum links blackholed, its clients still served). The
/// leader stops hearing A's session and expires it, and B is granted: A must have let go
/// before, by its deadline, whatever the follower kept answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_on_a_follower_cut_off_from_the_quorum_loses_before_the_waiter_is_granted() {
    let ensemble = ensemble();
    let leader = ensemble_leader(&ensemble);
    let follower = (leader + 1) % ensemble.len();
    assert_eq!(
        tokio::task::block_in_place(|| ensemble.member(follower).mode()),
        Some(Mode::Follower)
    );
    let t = ensemble_timing();
    let a = connect_ensemble(&ensemble.member(follower).connect_string(), t).await;
    let b = connect_ensemble(&ensemble.member(leader).connect_string(), t).await;
    let election = unique("follower-cut");
    let history = History::new();
    let (a_id, b_id) = (node_id("node-a"), node_id("node-b"));

    let leadership = elector(&a, &election, "node-a").campaign().await.unwrap();
    history.granted(&a_id, leadership.epoch());
    // A's loss, recorded the moment lost() fires, from a task of its own.
    let recorder = {
        let (watch, history, id, epoch) = (
            leadership.loss_watch(),
            history.clone(),
            a_id.clone(),
            leadership.epoch(),
        );
        tokio::spawn(async move {
            let reason = watch.lost().await;
            let at = Instant::now();
            history.lost(&id, epoch);
            (at, reason, watch.deadline())
        })
    };
    let b_elector = elector(&b, &election, "node-b");
    let (b_history, b_node) = (history.clone(), b_id.clone());
    let waiter = tokio::spawn(async move {
        let l = b_elector.campaign().await.unwrap();
        let at = Instant::now();
        b_history.granted(&b_node, l.epoch());
        (at, l)
    });
    // B is queued behind A, and A has renewed a few times through the follower.
    let queued = b.election_path(&election);
    let raw = raw(&ensemble.member(leader).connect_string()).await;
    eventually(SOON, "B is queued", || async {
        candidates(&raw, &queued).await.len() == 2
    })
    .await;
    let first_deadline = leadership.deadline();
    eventually(SOON, "A renewed", || async {
        leadership.deadline() > first_deadline
    })
    .await;

    let cut_at = Instant::now();
    ensemble.isolate_quorum(follower);

    let (granted_at, b_leadership) = within(SOON * 2, "B's election", waiter).await.unwrap();
    let (lost_at, reason, a_deadline) = within(SOON, "A's lost()", recorder).await.unwrap();
    tracing::info!(
        lost_after_cut = ?lost_at - cut_at,
        granted_after_cut = ?granted_at - cut_at,
        "A lost, B granted"
    );
    assert!(
        lost_at <= granted_at,
        "two leaders: B was granted {:?} after the cut, {:?} before A's lost() resolved \
         ({reason}); A kept renewing through the cut-off follower",
        granted_at - cut_at,
        lost_at - granted_at
    );
    assert!(
        a_deadline <= granted_at,
        "A's deadline was still {:?} ahead when B was granted",
        a_deadline - granted_at
    );
    assert!(b_leadership.epoch() > leadership.epoch());
    if let Err(violations) = history.check() {
        panic!("history violations: {violations:?}\n{history}");
    }
    ensemble.heal_quorum(follower);
    history.resigned(&b_id, b_leadership.epoch());
    b_leadership.resign().await.unwrap();
}

/// With a follower lag, a round proves only what the leader counted a lag before it: a
/// session idle for longer than the lag (here on a follower, nothing queued) has nothing
/// recent enough, so its first lead is confirmed by a second round one follower lag after
/// the first, and is granted with more than a renewal interval to lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_on_an_idle_session_is_confirmed_one_follower_lag_later() {
    let ensemble = ensemble();
    let leader = ensemble_leader(&ensemble);
    let follower = (leader + 1) % ensemble.len();
    let t = ensemble_timing();
    let lag = ensemble_follower_lag();
    let a = connect_ensemble(&ensemble.member(follower).connect_string(), t).await;
    // Idle for longer than the hold budget less a renewal: the session's establishment no
    // longer anchors a useful deadline. (Waiting for the idleness itself, not for luck.)
    let session_timeout = a.session_timeout().await.unwrap();
    tokio::time::sleep(session_timeout - t.safety_margin()).await;
    let started = Instant::now();
    let leadership = within(
        SOON,
        "A's campaign",
        elector(&a, &unique("idle"), "node-a").campaign(),
    )
    .await
    .unwrap();
    let granted = Instant::now();
    assert!(
        granted - started >= lag,
        "granted {:?} after campaigning: the first round alone anchored it",
        granted - started
    );
    assert!(
        leadership.deadline() > granted + t.renew_interval,
        "granted with only {:?} to lead",
        leadership.deadline() - granted
    );
    // And it renews from then on.
    let first = leadership.deadline();
    eventually(SOON, "A renewed", || async {
        leadership.deadline() > first
    })
    .await;
    assert!(leadership.is_held());
    leadership.resign().await.unwrap();
}

/// Killing the server a holder's session lives on does not end the session: the client
/// moves to another member within the session timeout and the leadership holds, renewed
/// through the new server, and its epoch stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_holders_server_keeps_the_leadership_while_the_session_survives() {
    let ensemble = ensemble();
    // A long session (20 s; a steady leader's deadline lies about 13.6 s ahead) so that
    // the move to another member fits with room on a busy machine, also when the killed
    // member was the ZooKeeper leader and the other two elect a new one first.
    let t = LeaseTiming {
        ttl: Duration::from_secs(20),
        ..long_timing()
    };
    // A's connect string lists every member; it talks to one of them.
    let a = connect_ensemble(&ensemble.connect_string(), t).await;
    let election = unique("kill-server");
    let leadership = elector(&a, &election, "node-a").campaign().await.unwrap();
    let epoch = leadership.epoch();
    let session_timeout = a.session_timeout().await.unwrap();
    let served_by = tokio::task::block_in_place(|| serving_member(&ensemble));
    tracing::info!(
        member = served_by,
        "A's session lives on this member; killing it"
    );
    // Renewals through the member to be killed have anchored the deadline by now.
    let before = leadership.deadline();
    eventually(SOON, "A renewed before the kill", || async {
        leadership.deadline() > before
    })
    .await;
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| ensemble.member(served_by).kill()).unwrap();
    // A renewal through another member moves the deadline past where the rounds answered
    // before the kill could take it (the last of them, anchored once a follower lag old).
    let deadline_at_kill = leadership.deadline();
    eventually(
        SOON + session_timeout,
        "A renewed through another member",
        || async {
            leadership.deadline() > deadline_at_kill + t.renew_interval + ensemble_follower_lag()
        },
    )
    .await;
    tracing::info!(after = ?killed_at.elapsed(), "A renewed through another member");
    let now_served_by = tokio::task::block_in_place(|| serving_member(&ensemble));
    assert_ne!(
        now_served_by, served_by,
        "A's session moved to another member"
    );
    assert!(
        leadership.is_held(),
        "the leadership ended {:?} after its server was killed",
        killed_at.elapsed()
    );
    assert_eq!(leadership.loss_watch().loss(), None);
    assert_eq!(leadership.epoch(), epoch);
    // Still the leader as the rest of the ensemble sees it.
    let b = connect_ensemble(&ensemble.connect_string(), t).await;
    let seen = elector(&b, &election, "node-b").leader().await.unwrap();
    assert_eq!(seen.map(|i| i.epoch), Some(epoch));
    leadership.resign().await.unwrap();
}

/// The member A's session lives on: the only one serving a client connection (A is the
/// only client), once every running member answers `srvr` (a busy member may not, for a
/// moment).
fn serving_member(ensemble: &election_tests::launch::ZooKeeperEnsemble) -> usize {
    let start = std::time::Instant::now();
    loop {
        // None for a member that is not running (killed): it serves nobody.
        let counts: Vec<Option<Option<u32>>> = ensemble
            .members()
            .iter()
            .map(|m| m.is_running().then(|| m.client_connections()))
            .collect();
        let serving: Vec<usize> = (0..counts.len())
            .filter(|&i| counts[i] == Some(Some(1)))
            .collect();
        let others_idle = counts
            .iter()
            .all(|c| matches!(c, None | Some(Some(0)) | Some(Some(1))));
        if let [i] = serving[..] {
            if others_idle {
                return i;
            }
        }
        assert!(
            start.elapsed() < SOON,
            "expected exactly one member serving A's connection: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
