//! The redis launcher: start, serve, pause, resume, restart with kept and emptied data,
//! stop on drop.

mod common;

use std::time::Duration;

use common::{REQUEST_TIMEOUT, Resp, process_exists};
use election_tests::launch::{Data, RedisServer};

#[test]
fn redis_server_serves_pauses_resumes_restarts_and_stops_without_a_zombie() {
    let server = RedisServer::start().expect("redis-server starts");
    assert!(
        server.url().starts_with("redis://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert!(server.addr().ip().is_loopback());

    let mut conn = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["SET", "kept", "v1"]).unwrap(), "OK");
    assert_eq!(conn.command(&["GET", "kept"]).unwrap(), "v1");

    // Paused: a request gets no answer within a client-side timeout.
    server.pause().unwrap();
    conn.set_timeout(Duration::from_millis(300)).unwrap();
    let err = conn
        .command(&["PING"])
        .expect_err("a paused server must not answer");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "expected a timeout, got {err}"
    );
    // Resumed: the pending PING is answered, then new requests work again.
    server.resume().unwrap();
    let mut conn = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["PING"]).unwrap(), "PONG");

    // Restart keeping data, on the same port.
    let addr = server.addr();
    let old_pid = server.pid();
    server.restart(Data::Keep).unwrap();
    assert_eq!(server.addr(), addr);
    assert_ne!(server.pid(), old_pid);
    assert!(!process_exists(old_pid), "the old process was reaped");
    let mut conn = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["GET", "kept"]).unwrap(), "v1", "data kept");

    // Killed, then restarted keeping data: the fsynced AOF survives SIGKILL.
    assert_eq!(conn.command(&["SET", "after-kill", "v2"]).unwrap(), "OK");
    server.kill().unwrap();
    assert!(!server.is_running());
    server.restart(Data::Keep).unwrap();
    let mut conn = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(conn.command(&["GET", "after-kill"]).unwrap(), "v2");

    // Restart with empty data: the key is gone.
    server.restart(Data::Empty).unwrap();
    let mut conn = Resp::connect(server.addr(), REQUEST_TIMEOUT).unwrap();
    assert_eq!(
        conn.command(&["GET", "kept"]).unwrap(),
        "(nil)",
        "data emptied"
    );

    let pid = server.pid();
    let dir = server.dir().to_owned();
    drop(server);
    assert!(
        !process_exists(pid),
        "the server process is gone and reaped (no zombie)"
    );
    assert!(!dir.exists(), "the temporary directory is removed");
}
