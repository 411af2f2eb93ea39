//! Faults between a leader and Redis: a blackholed connection, a frozen leader whose late
//! write Redis's own fenced-write script refuses, and two candidates racing under a tight
//! renew loop. A paused leader fenced off by a shared `Fence` is the conformance suite's
//! `a_paused_leader_is_fenced_off`.

mod common;

use std::time::Duration;

use common::*;
use election_core::{LeaseTiming, LossReason};
use election_tests::history::History;
use election_tests::launch::RedisServer;
use election_tests::proxy::{Direction, Fault, FaultProxy};
use tokio::time::Instant;

const GENEROUS: Duration = Duration::from_secs(10);

/// Fails with the violations and the whole history if `history` has any.
fn check(history: &History) {
    if let Err(violations) = history.check() {
        panic!("history violations: {violations:?}\n{history}");
    }
}

/// A 2 s TTL with a wide 600 ms safety margin, so orderings hold on a busy machine.
fn wide_margin() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(2),
        renew_interval: Duration::from_millis(200),
        retry_interval: Duration::from_millis(50),
        clock_drift: Duration::from_millis(100),
        kill_grace: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_leader_stops_before_its_ttl_ends_and_no_one_leads_before_then() {
    election_tests::init_tracing();
    let timing = wide_margin();
    let server = RedisServer::start().unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let a = connect(&format!("redis://{}", proxy.addr()), timing).await;
    let b = connect(&server.url(), timing).await;
    let history = History::new();
    let la = elector(&a, "job", "a").campaign().await.unwrap();
    history.granted(&node("a"), la.epoch());
    let (watch, h, epoch) = (la.loss_watch(), history.clone(), la.epoch());
    let noter = tokio::spawn(async move {
        watch.lost().await;
        h.lost(&node("a"), epoch);
    });
    let eb = elector(&b, "job", "b");
    let h = history.clone();
    let waiter = tokio::spawn(async move {
        let l = eb.campaign().await.unwrap();
        h.granted(&node("b"), l.epoch());
        (Instant::now(), l)
    });

    proxy.set(Direction::Both, Fault::Blackhole);
    let reason = tokio::time::timeout(GENEROUS, la.lost()).await.unwrap();
    assert_eq!(reason, LossReason::Expired);
    assert!(!la.is_held());
    // `lost()` resolves at this deadline at the latest (the keeper's own timer).
    let a_deadline = la.deadline();

    let (b_elected_at, lb) = tokio::time::timeout(GENEROUS, waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        a_deadline < b_elected_at,
        "the old leader's deadline passed before the new grant"
    );
    // The server's TTL runs from the execution of a's last renewal, which started no
    // earlier than `deadline - hold_budget`: so it ends at least `safety_margin` after
    // a's deadline, and b cannot have been elected before that.
    assert!(
        b_elected_at >= a_deadline + timing.safety_margin(),
        "b elected {:?} after a's deadline, before a's TTL could end",
        b_elected_at - a_deadline
    );
    assert!(lb.epoch() > la.epoch());
    noter.await.unwrap();
    check(&history);

    // Healing delivers a's held renewals and release: none of them touches b's lease.
    proxy.set(Direction::Both, Fault::Pass);
    let e = elector(&b, "job", "observer");
    for _ in 0..5 {
        assert_eq!(e.leader().await.unwrap().unwrap().node, node("b"));
        tokio::time::sleep(timing.renew_interval).await;
    }
    assert!(lb.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_racing_under_a_tight_renew_loop_never_lead_at_once() {
    election_tests::init_tracing();
    let timing = LeaseTiming {
        // Renewals every 40 ms; the TTL is generous so that a busy machine's scheduling
        // delays cannot make a holder lose its lease (which the test treats as a bug).
        ttl: Duration::from_millis(1500),
        renew_interval: Duration::from_millis(40),
        retry_interval: Duration::from_millis(20),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
    };
    let server = RedisServer::start().unwrap();
    let history = History::new();
    let until = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for who in ["a", "b"] {
        let backend = connect(&server.url(), timing).await;
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            let e = elector(&backend, "race", who);
            let mut terms: usize = 0;
            while Instant::now() < until {
                let l = e.campaign().await.unwrap();
                history.granted(&node(who), l.epoch());
                // Hold across several renewals, checking we still hold.
                let hold = Duration::from_millis(60 + 17 * (terms as u64 % 5));
                tokio::select! {
                    reason = l.lost() => panic!("{who} lost its lease without a fault: {reason}"),
                    () = tokio::time::sleep(hold) => {}
                }
                // Recorded before the release can let the other node in.
                history.resigned(&node(who), l.epoch());
                l.resign().await.unwrap();
                terms += 1;
            }
            terms
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(history.grants(), total);
    assert!(total >= 6, "only {total} leaderships in 3 s");
    // No two holders at once, no epoch twice, epochs rising in grant order.
    check(&history);
}

/// The fenced write recipe from `election_core::Fence`'s documentation, on Redis itself.
const FENCED_WRITE: &str = r#"
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) < seen then return redis.error_reply('STALE epoch') end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 'OK'
"#;

async fn fenced_write(
    conn: &mut redis::aio::MultiplexedConnection,
    epoch: election_core::Epoch,
    value: &str,
) -> bool {
    redis::Script::new(FENCED_WRITE)
        .key("job:data")
        .key("job:fence")
        .arg(epoch.get())
        .arg(value)
        .invoke_async::<()>(conn)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_runtime_wakes_up_to_a_refused_fenced_write() {
    election_tests::init_tracing();
    let timing = wide_margin();
    let server = RedisServer::start().unwrap();
    let url = server.url();
    let history = History::new();

    // Leader a lives in its own single-threaded runtime on its own thread: blocking that
    // thread freezes all of a's tasks (renewals, timers) at once, like SIGSTOP.
    let (to_a, frozen_until) = std::sync::mpsc::channel::<()>();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let (h, a_url) = (history.clone(), url.clone());
    let a_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let backend = connect(&a_url, timing).await;
            let mut data = raw(&a_url).await;
            let l = elector(&backend, "job", "a").campaign().await.unwrap();
            h.granted(&node("a"), l.epoch());
            let ok = fenced_write(&mut data, l.epoch(), "from a").await;
            h.fenced_write(&node("a"), l.epoch(), ok);
            a_tx.send(("elected", ok)).unwrap();
            // Frozen: the whole runtime stops here until the test lets it go.
            h.pause_injected();
            frozen_until.recv().unwrap();
            // Woken mid-work: the write it was about to do goes out with its old epoch.
            let ok = fenced_write(&mut data, l.epoch(), "late from a").await;
            h.fenced_write(&node("a"), l.epoch(), ok);
            a_tx.send(("late write", ok)).unwrap();
            a_tx.send(("still held", l.is_held())).unwrap();
        });
    });
    assert_eq!(a_rx.recv().await.unwrap(), ("elected", true));

    let b = connect(&url, timing).await;
    let lb = tokio::time::timeout(GENEROUS, elector(&b, "job", "b").campaign())
        .await
        .expect("b elected once a's lease expired")
        .unwrap();
    history.granted(&node("b"), lb.epoch());
    let mut data = raw(&url).await;
    let ok = fenced_write(&mut data, lb.epoch(), "from b").await;
    history.fenced_write(&node("b"), lb.epoch(), ok);
    assert!(ok, "the new leader's write is admitted");

    to_a.send(()).unwrap();
    assert_eq!(a_rx.recv().await.unwrap(), ("late write", false));
    assert_eq!(a_rx.recv().await.unwrap(), ("still held", false));
    a_thread.join().unwrap();
    let value: String = redis::cmd("GET")
        .arg("job:data")
        .query_async(&mut data)
        .await
        .unwrap();
    assert_eq!(value, "from b", "the stale write changed nothing");
    check(&history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquisition_whose_reply_is_lost_is_released_in_the_background() {
    election_tests::init_tracing();
    let server = RedisServer::start().unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    // A 60 s TTL: b can only be elected within the wait if a's orphaned lease is released.
    let a = connect(&format!("redis://{}", proxy.addr()), long_ttl()).await;
    let b = connect(&server.url(), long_ttl()).await;
    let ea = elector(&a, "job", "a");
    // Once, so that the server has the scripts (a first EVALSHA would only get NOSCRIPT).
    ea.try_campaign()
        .await
        .unwrap()
        .unwrap()
        .resign()
        .await
        .unwrap();
    // Requests reach Redis, replies do not come back.
    proxy.set(Direction::ToClient, Fault::Blackhole);
    let err = ea.try_campaign().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let lb = tokio::time::timeout(GENEROUS, elector(&b, "job", "b").campaign())
        .await
        .expect("the lease a took without knowing is released, not left for its 60 s TTL")
        .unwrap();
    assert_eq!(lb.info().node, node("b"));
}
