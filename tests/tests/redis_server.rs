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

/// Set in the environment of the child test process of
/// `servers_die_with_a_test_process_killed_outright`.
const CHILD_ENV: &str = "ELECTOR_TESTS_SERVER_CHILD";

/// Not a test of its own: the child process of
/// `servers_die_with_a_test_process_killed_outright`, which runs this test binary again with
/// `CHILD_ENV` set. Without it, this returns at once.
#[test]
fn child_process_that_starts_a_server_and_waits_to_be_killed() {
    use std::io::Write;
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = RedisServer::start().expect("redis-server starts");
    println!("SERVER-PID {}", server.pid());
    std::io::stdout().flush().unwrap();
    // The parent kills this process; the bound only keeps a broken parent from leaving
    // it behind forever.
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn servers_die_with_a_test_process_killed_outright() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_that_starts_a_server_and_waits_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_once("SERVER-PID ")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("the child test process reports its server's pid");
    assert!(common::process_alive(pid), "the child's server runs");

    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while common::process_alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server {pid} outlived the test process that started it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
