//! The fault proxy in front of a real redis-server.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::{REQUEST_TIMEOUT, Resp};
use election_tests::launch::RedisServer;
use election_tests::proxy::{Direction, Fault, FaultProxy};

/// A client-side timeout short enough to keep the test fast, long enough that a passing
/// proxy on a busy machine would answer well within it.
const SHORT: Duration = Duration::from_millis(300);

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[test]
fn proxy_passes_blackholes_resets_and_delays_redis_traffic() {
    election_tests::init_tracing();
    let server = RedisServer::start().expect("redis-server starts");
    // The proxy runs on its own runtime; this thread plays a blocking client.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(server.addr())).unwrap();
    assert!(proxy.addr().ip().is_loopback());

    // Pass: PING works through the proxy.
    let mut conn = Resp::connect(proxy.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");

    // Blackhole: the PING times out on the client side, yet the connection stays open:
    // once the fault is lifted, the held PING is delivered and its PONG arrives on the very
    // same connection.
    proxy.set(Direction::Both, Fault::Blackhole);
    conn.set_timeout(SHORT).unwrap();
    let err = conn
        .command(&["PING"])
        .expect_err("a blackholed PING gets no answer");
    assert!(
        is_timeout(&err),
        "expected a client-side timeout, got {err}"
    );
    proxy.set(Direction::Both, Fault::Pass);
    conn.set_timeout(REQUEST_TIMEOUT).unwrap();
    assert_eq!(
        conn.command(&["ECHO", "after"]).unwrap(),
        "PONG",
        "the held PING's reply comes first on the same open connection"
    );

    // Back to Pass: a fresh connection works.
    let mut conn = Resp::connect(proxy.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");

    // Blackhole one way only: requests reach the server but replies are held.
    proxy.set(Direction::ToClient, Fault::Blackhole);
    conn.set_timeout(SHORT).unwrap();
    assert!(is_timeout(
        &conn.command(&["SET", "one-way", "1"]).unwrap_err()
    ));
    let mut direct = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while direct.command(&["GET", "one-way"]).unwrap() != "1" {
        assert!(
            Instant::now() < deadline,
            "the request never reached the server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.set(Direction::ToClient, Fault::Pass);

    // Delay: the round trip takes at least the delay (a lower bound, robust under load).
    let mut conn = Resp::connect(proxy.addr(), REQUEST_TIMEOUT).unwrap();
    let delay = Duration::from_millis(200);
    proxy.set(Direction::ToServer, Fault::Delay(delay));
    let start = Instant::now();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");
    assert!(
        start.elapsed() >= delay,
        "took {:?}, less than the delay",
        start.elapsed()
    );
    proxy.set(Direction::Both, Fault::Delay(delay));
    let start = Instant::now();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");
    assert!(
        start.elapsed() >= 2 * delay,
        "both ways: took {:?}",
        start.elapsed()
    );
    proxy.set(Direction::Both, Fault::Pass);

    // Reset: the open connection is reset, not left hanging.
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");
    proxy.set(Direction::Both, Fault::Reset);
    let err = conn
        .command(&["PING"])
        .expect_err("a reset connection fails");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        ),
        "expected a reset, got {err}"
    );
    // New connections are reset too while the fault is set.
    // The reset may even arrive before the client's connect returns.
    let err = Resp::connect(proxy.addr(), REQUEST_TIMEOUT)
        .and_then(|mut fresh| fresh.command(&["PING"]))
        .expect_err("new connections are reset");
    assert!(!is_timeout(&err), "reset, not hanging: {err}");
    // And work again once it is lifted.
    proxy.set(Direction::Both, Fault::Pass);
    let mut conn = Resp::connect(proxy.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");

    // Dropping the proxy closes its connections.
    drop(proxy);
    conn.set_timeout(REQUEST_TIMEOUT).unwrap();
    let err = conn
        .command(&["PING"])
        .expect_err("the proxy's connections close with it");
    assert!(!is_timeout(&err), "closed, not hanging: {err}");
}

/// A reset that is lifted at once (`Reset`, then `Pass` in the next statement) still resets
/// every connection that was open: the watch channel behind the proxy keeps only the newest
/// fault, so without a count of resets a connection could miss the short one. Twenty
/// times, so a race would show.
#[test]
fn a_reset_lifted_at_once_still_resets_the_open_connections() {
    election_tests::init_tracing();
    let server = RedisServer::start().expect("redis-server starts");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(server.addr())).unwrap();
    for round in 0..20 {
        let mut conn = Resp::connect(proxy.addr(), REQUEST_TIMEOUT).unwrap();
        assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");
        proxy.set(Direction::Both, Fault::Reset);
        proxy.set(Direction::Both, Fault::Pass);
        let err = conn
            .command(&["PING"])
            .expect_err("the open connection was reset");
        assert!(
            !is_timeout(&err),
            "round {round}: reset, not hanging: {err}"
        );
    }
}
