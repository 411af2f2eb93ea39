//! Bad input gives clear errors, never a panic or an endless wait: an unreachable or mute
//! server, a bad connect string, refused credentials, and session timeouts the server
//! negotiates outside what the timing allows.

mod support;

use std::time::Duration;

use election_core::{ErrorKind, LeaseTiming};
use election_tests::proxy::{Direction, Fault, FaultProxy};
use election_zookeeper::{ZooKeeperBackend, ZooKeeperConfig};
use support::*;
use tokio::time::Instant;

fn config(connect_string: &str) -> ZooKeeperConfig {
    ZooKeeperConfig {
        connect_timeout: Duration::from_secs(1),
        ..ZooKeeperConfig::with_connect_string(connect_string)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable_naming_the_address() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let err = within(
        SOON,
        "connect to fail",
        ZooKeeperBackend::connect(config(&address), timing()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&address), "{err}");
    assert!(err.to_string().contains("zookeeper"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    let server = shared_zookeeper();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    proxy.set(Direction::Both, Fault::Blackhole);
    let address = proxy.addr().to_string();
    let started = Instant::now();
    let err = within(
        SOON,
        "connect to fail",
        ZooKeeperBackend::connect(config(&address), timing()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&address), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_connect_string_is_a_config_error_before_any_network() {
    let err = ZooKeeperBackend::connect(config("zk1"), timing())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("zookeeper.connect_string"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_timeout_raised_above_the_ttl_by_the_server_is_refused() {
    let server = shared_zookeeper();
    // The test server's minSessionTimeout is 1 s: it raises 800 ms to 1 s, past the ttl.
    let t = LeaseTiming {
        ttl: Duration::from_millis(800),
        renew_interval: Duration::from_millis(200),
        retry_interval: Duration::from_millis(100),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
    };
    let err = ZooKeeperBackend::connect(config(&server.connect_string()), t)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("timing.ttl") && text.contains("negotiated"),
        "{text}"
    );
    assert!(text.contains("1s"), "names the negotiated value: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_follow_the_negotiated_session_timeout_when_the_server_caps_it() {
    let server = shared_zookeeper();
    // The test server's maxSessionTimeout is 30 s: a 60 s ttl is negotiated down to 30 s,
    // and leadership must not be assumed for longer than that.
    let t = LeaseTiming {
        ttl: Duration::from_secs(60),
        ..LeaseTiming::default()
    };
    let backend = ZooKeeperBackend::connect(config(&server.connect_string()), t)
        .await
        .unwrap();
    let negotiated = backend.session_timeout().await.unwrap();
    assert_eq!(negotiated, Duration::from_secs(30));
    let before = Instant::now();
    let l = elector(&backend, &unique("capped"), "node-a")
        .campaign()
        .await
        .unwrap();
    assert!(
        l.deadline() <= Instant::now() + negotiated - t.safety_margin(),
        "the deadline is measured with the negotiated timeout"
    );
    assert!(l.deadline() >= before + negotiated - t.safety_margin());
    l.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_a_protocol_error_naming_the_prefix() {
    let server = shared_zookeeper();
    let prefix = format!("/locked-{}", std::process::id());
    let owner = ZooKeeperConfig {
        prefix: prefix.clone(),
        digest_auth: Some("owner:secret".into()),
        ..config(&server.connect_string())
    };
    // The owner creates the prefix with an ACL for itself only, and can use it.
    let backend = ZooKeeperBackend::connect(owner.clone(), timing())
        .await
        .unwrap();
    let l = elector(&backend, &unique("acl"), "node-a")
        .campaign()
        .await
        .unwrap();
    l.resign().await.unwrap();
    for intruder in [Some("owner:wrong"), None] {
        let c = ZooKeeperConfig {
            digest_auth: intruder.map(Into::into),
            ..owner.clone()
        };
        let err = ZooKeeperBackend::connect(c, timing()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        let text = err.to_string();
        assert!(text.contains(&prefix), "{text}");
        assert!(text.contains("zookeeper.digest_auth"), "{text}");
        assert!(
            !text.contains("secret") && !text.contains("wrong"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_timeout_above_the_ttl_is_refused_before_any_network() {
    let c = ZooKeeperConfig {
        session_timeout: Some(Duration::from_secs(30)),
        ..config("127.0.0.1:1")
    };
    let err = ZooKeeperBackend::connect(c, LeaseTiming::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("zookeeper.session_timeout"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_without_a_follower_lag_or_with_one_the_ttl_cannot_hold_is_refused() {
    // Neither needs a server: both are refused before any connection is tried.
    let err = ZooKeeperBackend::connect(config("127.0.0.1:1,127.0.0.1:2"), timing())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("zookeeper.follower_lag"), "{err}");
    assert!(err.to_string().contains("syncLimit"), "{err}");
    // The default 10 s ttl holds 7.8 s: 6 s of lag + 2 × 2 s of renewals do not fit.
    let too_long = ZooKeeperConfig {
        follower_lag: Some(Duration::from_secs(6)),
        ..config("127.0.0.1:1,127.0.0.1:2")
    };
    let err = ZooKeeperBackend::connect(too_long, LeaseTiming::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("zookeeper.follower_lag"), "{err}");
    assert!(err.to_string().contains("renew_interval"), "{err}");
}
