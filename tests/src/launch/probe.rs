//! Readiness probes, spoken over plain TCP from Rust (no client binaries needed).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    Ok(stream)
}

/// Sends `request` and reads until the server closes or `done` says the answer is
/// complete (or the read times out).
fn exchange(addr: SocketAddr, request: &[u8], done: impl Fn(&[u8]) -> bool) -> io::Result<String> {
    let mut stream = connect(addr)?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if done(&answer) {
                    break;
                }
            }
            Err(e) if answer.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Redis: `PING` answers `+PONG` (not `-LOADING`) once the server serves.
pub(crate) fn redis_ready(addr: SocketAddr) -> bool {
    exchange(addr, b"PING\r\n", |a| a.ends_with(b"\r\n")).is_ok_and(|a| a.starts_with("+PONG"))
}

/// etcd: `GET /health` answers `"health":"true"` once the member has a leader.
pub(crate) fn etcd_ready(addr: SocketAddr) -> bool {
    http_get(addr, "/health").is_ok_and(|body| body.contains("\"health\":\"true\""))
}

/// ZooKeeper: `srvr` reports `Mode: standalone` once the server serves (`ruok` answers
/// earlier than that).
pub(crate) fn zookeeper_ready(addr: SocketAddr) -> bool {
    exchange(addr, b"srvr", |_| false).is_ok_and(|a| a.contains("Mode: standalone"))
}

/// ZooKeeper: the `Mode:` line of `srvr` (`standalone`, `leader`, `follower`, ...), or
/// `None` when the server does not answer or does not serve yet.
pub(crate) fn zookeeper_mode(addr: SocketAddr) -> Option<String> {
    zookeeper_srvr(addr, "Mode")
}

/// ZooKeeper: the value of one `Name: value` line of `srvr` (such as `Mode` or
/// `Connections`), or `None` when the server does not answer or does not serve yet.
pub(crate) fn zookeeper_srvr(addr: SocketAddr, name: &str) -> Option<String> {
    let answer = exchange(addr, b"srvr", |_| false).ok()?;
    answer.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
            .map(|v| v.trim().to_owned())
    })
}

/// A ZooKeeper ensemble member: `srvr` reports `Mode: leader` or `Mode: follower`, once it
/// has joined a quorum and serves clients.
pub(crate) fn zookeeper_member_ready(addr: SocketAddr) -> bool {
    zookeeper_mode(addr).is_some_and(|m| m == "leader" || m == "follower")
}

/// A minimal HTTP/1.0 GET; returns the whole response (status line, headers, body).
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, request.as_bytes(), |_| false)
}
