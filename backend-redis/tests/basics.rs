//! Behaviour against a real redis-server: handoff, epochs across empty restarts, revocation,
//! observe, and the error for each kind of bad input.

mod common;

use std::time::Duration;

use common::*;
use election_core::{Epoch, ErrorKind, LossReason};
use election_redis::{RedisBackend, RedisConfig};
use election_tests::launch::{Data, RedisServer};

const GENEROUS: Duration = Duration::from_secs(10);

/// How many Lua scripts (`EVAL`, `EVALSHA`) the server has run so far.
async fn scripts_run(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Waits until the server has run more scripts than `before`: a spawned waiter's acquire
/// attempt, which found the lease held. The waiter takes its change receiver before that
/// attempt, so from then on a release's push wakes it: it is registered as a waiter. Call
/// it only while nothing else runs scripts (no renewal is due).
async fn until_the_waiter_tried(raw: &mut redis::aio::MultiplexedConnection, before: u64) {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    while scripts_run(raw).await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiter's acquire attempt never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_hands_over_to_a_waiter_without_waiting_for_the_ttl() {
    election_tests::init_tracing();
    let server = RedisServer::start().unwrap();
    // A 60 s TTL: the waiter can only be elected within the 10 s wait by a push.
    let a = connect(&server.url(), long_ttl()).await;
    let b = connect(&server.url(), long_ttl()).await;
    // Once pushes are live, b polls only at the TTL.
    election_tests::wait_until(GENEROUS, "b's pub/sub is live", || b.notifications_live()).await;
    let first = elector(&a, "job", "a").campaign().await.unwrap();
    let b_elector = elector(&b, "job", "b");
    let mut raw = raw(&server.url()).await;
    let before = scripts_run(&mut raw).await;
    let waiter = tokio::spawn(async move { b_elector.campaign().await });
    // b found the lease held and waits (a renews only every 5 s, so the script the server
    // ran is b's attempt).
    until_the_waiter_tried(&mut raw, before).await;
    let first_epoch = first.epoch();
    first.resign().await.unwrap();
    let second = tokio::time::timeout(GENEROUS, waiter)
        .await
        .expect("waiter elected by the release push, not the 60 s TTL")
        .unwrap()
        .unwrap();
    assert_eq!(second.info().node, node("b"));
    assert!(second.epoch() > first_epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_campaign_returns_none_while_another_node_leads() {
    let server = RedisServer::start().unwrap();
    let a = connect(&server.url(), timing()).await;
    let held = elector(&a, "job", "a")
        .try_campaign()
        .await
        .unwrap()
        .unwrap();
    assert!(
        elector(&a, "job", "b")
            .try_campaign()
            .await
            .unwrap()
            .is_none()
    );
    let leader = elector(&a, "job", "c").leader().await.unwrap().unwrap();
    assert_eq!((leader.node, leader.epoch), (node("a"), held.epoch()));
    held.resign().await.unwrap();
    assert!(elector(&a, "job", "c").leader().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_keep_rising_across_empty_restarts() {
    election_tests::init_tracing();
    let server = RedisServer::start().unwrap();
    let mut last = Epoch::ZERO;
    for round in 0..3 {
        let backend = connect(&server.url(), timing()).await;
        let e = elector(&backend, "epochs", "a");
        for _ in 0..5 {
            let l = e.campaign().await.unwrap();
            assert!(
                l.epoch() > last,
                "round {round}: {} after {last}",
                l.epoch()
            );
            last = l.epoch();
            l.resign().await.unwrap();
        }
        drop(backend);
        server.restart(Data::Empty).unwrap();
        let mut raw = raw(&server.url()).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(keys.is_empty(), "restart emptied the server: {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_finds_another_token_revokes_leadership() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let l = elector(&backend, "job", "a").campaign().await.unwrap();
    let mut raw = raw(&server.url()).await;
    let _: () = redis::cmd("HSET")
        .arg("{elector:job}:leader")
        .arg("token")
        .arg("someone-else")
        .query_async(&mut raw)
        .await
        .unwrap();
    let reason = tokio::time::timeout(GENEROUS, l.lost()).await.unwrap();
    assert_eq!(reason, LossReason::Revoked);
    // And the foreign lease was left alone.
    let token: String = redis::cmd("HGET")
        .arg("{elector:job}:leader")
        .arg("token")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(token, "someone-else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_after_an_empty_restart_revokes_and_the_next_epoch_is_higher() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let e = elector(&backend, "job", "a");
    let l = e.campaign().await.unwrap();
    let old = l.epoch();
    server.restart(Data::Empty).unwrap();
    let reason = tokio::time::timeout(GENEROUS, l.lost()).await.unwrap();
    assert!(
        matches!(reason, LossReason::Revoked | LossReason::Expired),
        "{reason:?}"
    );
    let next = tokio::time::timeout(GENEROUS, async {
        loop {
            match e.campaign().await {
                Ok(l) => return l,
                Err(err) => {
                    assert!(err.is_retryable(), "{err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(next.epoch() > old, "{} after {old}", next.epoch());
}

async fn next(s: &mut election_core::LeaderStream) -> Option<election_core::LeaderInfo> {
    tokio::time::timeout(GENEROUS, s.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_each_leader_with_its_epoch_and_no_leader() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), long_ttl()).await;
    let mut stream = elector(&backend, "job", "watcher").observe();
    assert_eq!(next(&mut stream).await, None);
    let a = elector(&backend, "job", "a").campaign().await.unwrap();
    let seen = next(&mut stream).await.unwrap();
    assert_eq!((seen.node, seen.epoch), (node("a"), a.epoch()));
    a.resign().await.unwrap();
    assert_eq!(next(&mut stream).await, None);
    let b = elector(&backend, "job", "b").campaign().await.unwrap();
    let seen = next(&mut stream).await.unwrap();
    assert_eq!((seen.node, seen.epoch), (node("b"), b.epoch()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_notices_an_expired_lease_without_a_push() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let mut raw = raw(&server.url()).await;
    // A lease written by hand with a short TTL (long enough for the first read on a busy
    // machine): nobody publishes when it expires.
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg("{elector:job}:leader")
        .arg(&["token", "t", "node", "ghost", "epoch", "7", "since", "0"])
        .cmd("PEXPIRE")
        .arg("{elector:job}:leader")
        .arg(1500)
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut stream = elector(&backend, "job", "watcher").observe();
    let first = stream.next().await.unwrap().unwrap().unwrap();
    assert_eq!((first.node, first.epoch), (node("ghost"), Epoch(7)));
    let then = tokio::time::timeout(GENEROUS, stream.next()).await.unwrap();
    assert_eq!(then.unwrap().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_naming_the_address() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let err = RedisBackend::connect(config(&url), timing())
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_a_protocol_error_that_never_shows_the_password() {
    let server = RedisServer::start().unwrap();
    let mut raw = raw(&server.url()).await;
    // alice's password is the value of a variable cargo and nextest set for every test
    // process, so that the test need not change the environment of a threaded process.
    let env_var = "CARGO_MANIFEST_DIR";
    let right = std::env::var(env_var).expect("cargo sets CARGO_MANIFEST_DIR for tests");
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "alice",
            "on",
            &format!(">{right}"),
            "~*",
            "&*",
            "+@all",
        ])
        .query_async(&mut raw)
        .await
        .unwrap();
    let cfg = RedisConfig {
        username: Some("alice".into()),
        password: Some("wrong-password".into()),
        ..config(&server.url())
    };
    let err = RedisBackend::connect(cfg, timing()).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{msg}");
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(msg.contains(&server.addr().to_string()), "{msg}");
    assert!(!msg.contains("wrong-password"), "{msg}");
    // The right one, read from the environment, works.
    let cfg = RedisConfig {
        username: Some("alice".into()),
        password_env: Some(env_var.into()),
        ..config(&server.url())
    };
    let backend = RedisBackend::connect(cfg, timing()).await.unwrap();
    let l = elector(&backend, "job", "a").campaign().await.unwrap();
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holding_another_programs_data_is_a_protocol_error_naming_key_and_election() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let mut raw = raw(&server.url()).await;
    let _: () = redis::cmd("LPUSH")
        .arg("{elector:job}:leader")
        .arg("not ours")
        .query_async(&mut raw)
        .await
        .unwrap();
    let e = elector(&backend, "job", "a");
    for err in [
        e.campaign().await.unwrap_err(),
        e.leader().await.unwrap_err(),
    ] {
        let msg = err.to_string();
        eprintln!("{msg}");
        eprintln!("{msg}");
        assert_eq!(err.kind(), ErrorKind::Protocol, "{msg}");
        assert!(msg.contains("WRONGTYPE"), "{msg}");
        assert!(msg.contains("{elector:job}:leader"), "{msg}");
        assert!(msg.contains("election job"), "{msg}");
    }
    let len: i64 = redis::cmd("LLEN")
        .arg("{elector:job}:leader")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(len, 1, "the foreign data is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_url_is_a_config_error() {
    for url in [
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:99999",
        "not a url",
    ] {
        let err = RedisBackend::connect(
            RedisConfig::with_url(url),
            election_core::LeaseTiming::default(),
        )
        .await
        .unwrap_err();
        eprintln!("{err}");
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(err.to_string().contains("redis.url"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_can_be_switched_on_at_connect() {
    let server = RedisServer::start().unwrap();
    let cfg = RedisConfig {
        keyspace_notifications: true,
        ..config(&server.url())
    };
    let _backend = RedisBackend::connect(cfg, timing()).await.unwrap();
    let mut raw = raw(&server.url()).await;
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg(&["GET", "notify-keyspace-events"])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        flags[1].contains('K') && flags[1].contains('x'),
        "{flags:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_leadership_releases_it_without_waiting_for_the_ttl() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), long_ttl()).await;
    let e = elector(&backend, "job", "a");
    drop(e.campaign().await.unwrap());
    let other = elector(&backend, "job", "b");
    let l = tokio::time::timeout(GENEROUS, other.campaign())
        .await
        .expect("elected without waiting for the 60 s TTL")
        .unwrap();
    assert_eq!(l.info().node, node("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_keep_rising_while_electing_through_empty_restarts() {
    election_tests::init_tracing();
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let history = election_tests::history::History::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let e = elector(&backend, "through-restarts", "a");
    let (h, halt) = (history.clone(), stop.clone());
    let electing = tokio::spawn(async move {
        while !halt.load(std::sync::atomic::Ordering::SeqCst) {
            match e.campaign().await {
                Ok(l) => {
                    h.granted(&node("a"), l.epoch());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    h.resigned(&node("a"), l.epoch());
                    let _ = l.resign().await;
                }
                // The server is restarting: retry.
                Err(err) if err.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("{err}"),
            }
        }
    });
    for restart in 0..3 {
        let before = history.grants();
        let what = format!("3 more grants before restart {restart}");
        election_tests::wait_until(GENEROUS, &what, || history.grants() >= before + 3).await;
        server.restart(Data::Empty).unwrap();
    }
    let before = history.grants();
    election_tests::wait_until(GENEROUS, "3 grants after the last restart", || {
        history.grants() >= before + 3
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    electing.await.unwrap();
    if let Err(v) = history.check() {
        panic!("{v:?}\n{history}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyspace_event_wakes_a_waiter_when_a_lease_vanishes_without_a_publish() {
    let server = RedisServer::start().unwrap();
    let mut raw = raw(&server.url()).await;
    // The operator enabled generic and expiry keyspace events on the server.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "notify-keyspace-events", "Kgx"])
        .query_async(&mut raw)
        .await
        .unwrap();
    // Polls (while pub/sub is down) would come only every 5 s.
    let slow_polls = election_core::LeaseTiming {
        retry_interval: Duration::from_secs(5),
        ..long_ttl()
    };
    let backend = connect(&server.url(), slow_polls).await;
    election_tests::wait_until(GENEROUS, "pub/sub is live", || backend.notifications_live()).await;
    // A lease held for a minute by a holder that will never publish.
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg("{elector:job}:leader")
        .arg(&["token", "t", "node", "ghost", "epoch", "7", "since", "0"])
        .cmd("PEXPIRE")
        .arg("{elector:job}:leader")
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    let e = elector(&backend, "job", "a");
    assert!(e.try_campaign().await.unwrap().is_none());
    let before = scripts_run(&mut raw).await;
    let waiter = tokio::spawn(async move { e.campaign().await });
    // The waiter found the ghost's lease held and waits (nothing else runs scripts here).
    until_the_waiter_tried(&mut raw, before).await;
    let _: () = redis::cmd("DEL")
        .arg("{elector:job}:leader")
        .query_async(&mut raw)
        .await
        .unwrap();
    let l = tokio::time::timeout(Duration::from_secs(4), waiter)
        .await
        .expect("woken by the keyspace event, not the 60 s TTL or a 5 s poll")
        .unwrap()
        .unwrap();
    assert!(l.epoch() > Epoch(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_after_connect_is_unavailable_naming_address_and_election() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let e = elector(&backend, "nightly", "a");
    server.kill().unwrap();
    for err in [
        e.campaign().await.unwrap_err(),
        e.leader().await.unwrap_err(),
    ] {
        let msg = err.to_string();
        eprintln!("{msg}");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{msg}");
        assert!(err.is_retryable());
        assert!(msg.contains(&server.addr().to_string()), "{msg}");
        assert!(msg.contains("election nightly"), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_key_that_is_not_an_epoch_is_refused_naming_the_key() {
    let server = RedisServer::start().unwrap();
    let backend = connect(&server.url(), timing()).await;
    let mut raw = raw(&server.url()).await;
    let e = elector(&backend, "job", "a");
    for garbage in ["banana", "1e300"] {
        let _: () = redis::cmd("SET")
            .arg("{elector:job}:epoch")
            .arg(garbage)
            .query_async(&mut raw)
            .await
            .unwrap();
        let err = e.campaign().await.unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{msg}");
        assert!(msg.contains("{elector:job}:epoch"), "{msg}");
        assert!(e.leader().await.unwrap().is_none(), "nothing was acquired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_database_and_key_prefix_hold_the_keys() {
    let server = RedisServer::start().unwrap();
    let cfg = RedisConfig {
        database: Some(3),
        key_prefix: "team-a/".into(),
        ..config(&server.url())
    };
    let backend = RedisBackend::connect(cfg, timing()).await.unwrap();
    assert!(backend.address().ends_with("/3"), "{}", backend.address());
    let l = elector(&backend, "job", "a").campaign().await.unwrap();
    let mut db3 = raw(&format!("{}/3", server.url())).await;
    let node_there: String = redis::cmd("HGET")
        .arg("{team-a/job}:leader")
        .arg("node")
        .query_async(&mut db3)
        .await
        .unwrap();
    assert_eq!(node_there, "a");
    let mut db0 = raw(&server.url()).await;
    let in_db0: i64 = redis::cmd("DBSIZE").query_async(&mut db0).await.unwrap();
    assert_eq!(in_db0, 0, "nothing in database 0");
    l.resign().await.unwrap();
}
