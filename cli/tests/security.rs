//! Who may change leadership through the agent, and what outsiders cannot grow: real
//! `elector agent` and `elector run` processes on a one-node raft cluster (a quorum of
//! one), with real sockets.

#![cfg(feature = "raft")]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use common::*;

const TOKEN: &str = "a-remote-control-token-of-40-characters!";

struct Agent {
    dir: tempfile::TempDir,
    config: PathBuf,
    api: u16,
    procs: Vec<Child>,
}

impl Agent {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/agent.sock")
    }

    fn log(&self, what: &str) -> std::fs::File {
        std::fs::File::create(self.dir.path().join(format!("{what}.log"))).unwrap()
    }

    fn logs(&self) -> String {
        ["agent", "run"]
            .iter()
            .map(|w| {
                let p = self.dir.path().join(format!("{w}.log"));
                format!(
                    "--- {w}\n{}",
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect()
    }

    /// `elector run --supervise -e job -- sleep 1000` through this agent.
    fn supervise(&mut self) {
        let mut c = elector();
        c.arg("--config")
            .arg(&self.config)
            .args(["run", "-e", "job", "--supervise", "--", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(self.log("run"));
        self.procs.push(c.spawn().unwrap());
    }

    /// The epoch this node leads `job` at, if it does.
    fn leading_epoch(&self) -> Option<u64> {
        let (code, body) = http(self.api, "GET", "/v1/leader/job", None)?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["leader"]["epoch"].as_u64()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill_all(&mut self.procs);
    }
}

/// A one-node raft agent; `extra` is appended to its `[agent]` table.
fn agent(extra: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let (config, api) = one_node_raft_config(dir.path(), extra);
    let mut a = Agent {
        dir,
        config,
        api,
        procs: Vec::new(),
    };
    let mut c = elector();
    c.env("RUST_LOG", "info,elector=debug")
        .arg("--config")
        .arg(&a.config)
        .arg("agent")
        .stdout(Stdio::null())
        .stderr(a.log("agent"));
    a.procs.push(c.spawn().unwrap());
    wait_until("the agent answers /health", || {
        http(a.api, "GET", "/health", None).is_some_and(|(c, _)| c == 200)
    });
    a
}

/// One HTTP/1.1 request over TCP: status and body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.split(' ').nth(1)?.parse().ok()?;
    Some((code, raw.split_once("\r\n\r\n")?.1.to_owned()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

#[test]
fn changing_leadership_over_tcp_is_refused_and_the_leader_keeps_leading() {
    let mut a = agent("");
    a.supervise();
    wait_until("the supervised run leads", || a.leading_epoch().is_some());
    let epoch = a.leading_epoch().unwrap();
    // The attacks of issue 14, and their neighbours, from any local process.
    for (method, path, refused) in [
        ("POST", "/v1/elections/job/resign", 403),
        ("POST", "/v1/elections/job/campaign", 403),
        ("DELETE", "/v1/holds/1", 404),
        ("POST", "/v1/holds/1/renew", 404),
    ] {
        let (code, body) = http(a.api, method, path, None).unwrap();
        assert_eq!(code, refused, "{method} {path}: {body}");
    }
    let (_, body) = http(a.api, "POST", "/v1/elections/job/resign", None).unwrap();
    assert!(body.contains("agent.socket"), "{body}");
    // Still the same leadership, still running: a resign would have ended the epoch.
    assert!(a.procs.iter_mut().all(|p| p.try_wait().unwrap().is_none()));
    assert_eq!(a.leading_epoch(), Some(epoch), "{}", a.logs());
    // The owner's own `elector resign`, over the socket, does hand over.
    let mut c = elector();
    c.arg("--config").arg(&a.config).args(["resign", "job"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), a.logs());
    wait_until("the supervised run leads at a later epoch", || {
        a.leading_epoch().is_some_and(|e| e > epoch)
    });
}

#[test]
fn a_bearer_token_allows_remote_resign_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut a = agent(&format!("token_file = \"{}\"\n", token.display()));
    a.supervise();
    wait_until("the supervised run leads", || a.leading_epoch().is_some());
    let epoch = a.leading_epoch().unwrap();
    let resign = "/v1/elections/job/resign";
    let wrong = "a-wrong-token-that-is-also-40-characters";
    assert_eq!(http(a.api, "POST", resign, None).unwrap().0, 401);
    assert_eq!(http(a.api, "POST", resign, Some(wrong)).unwrap().0, 401);
    assert_eq!(a.leading_epoch(), Some(epoch));
    let campaign = "/v1/elections/job/campaign";
    assert_eq!(http(a.api, "POST", campaign, Some(TOKEN)).unwrap().0, 403);
    assert_eq!(http(a.api, "POST", resign, Some(TOKEN)).unwrap().0, 200);
    wait_until("the supervised run leads at a later epoch", || {
        a.leading_epoch().is_some_and(|e| e > epoch)
    });
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = elector();
    c.args(["--backend", "raft", "--node-id", "n1"])
        .args(["--set", "backend.raft.secret=\"0123456789abcdef0123\""])
        .arg("--set")
        .arg(format!("agent.token_file=\"{}\"", token.display()))
        .arg("--set")
        .arg(format!(
            "agent.socket=\"{}\"",
            dir.path().join("agent.sock").display()
        ))
        .args(["--set", "agent.listen=\"127.0.0.1:0\"", "agent"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(
        text(&o).contains("agent.token_file") && text(&o).contains("chmod 600"),
        "{}",
        text(&o)
    );
}

#[test]
fn another_user_cannot_use_the_socket() {
    let mut a = agent("");
    a.supervise();
    wait_until("the supervised run leads", || a.leading_epoch().is_some());
    let epoch = a.leading_epoch().unwrap();
    assert_eq!(mode(&a.socket()), 0o600);
    assert_eq!(mode(a.socket().parent().unwrap()), 0o700);
    // The same `elector resign`, as user and group nobody: the kernel refuses the connect.
    // (Run as root, the test drops privileges for the child; as another user, it is that
    // user already.)
    let mut c = elector();
    c.arg("--config").arg(&a.config).args(["resign", "job"]);
    if nix::unistd::geteuid().is_root() {
        // (std drops the supplementary groups too when root sets a uid.)
        c.uid(65534).gid(65534);
        // The config file and its directory must be readable by nobody for the child to
        // get as far as the socket.
        std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&a.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = output(c);
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
    assert_eq!(a.leading_epoch(), Some(epoch), "{}", a.logs());
}

#[test]
fn reads_of_unknown_elections_create_nothing() {
    let a = agent("");
    // 100,000 distinct names on one keep-alive connection, pipelined a thousand at a
    // time: each answers 404, and the agent still knows only its configured election.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.api)).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    for batch in 0..100 {
        let mut requests = String::new();
        for i in batch * 1000..(batch + 1) * 1000 {
            requests += &format!("GET /v1/elections/probe-{i} HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        s.write_all(requests.as_bytes()).unwrap();
        for i in batch * 1000..(batch + 1) * 1000 {
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert!(status.contains(" 404 "), "probe-{i}: {status}");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
        }
    }
    let (code, status) = http(a.api, "GET", "/v1/status", None).unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let names: Vec<&str> = v["elections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["election"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["job"], "{status}");
}

/// Raises this process's open-file limit to its hard limit (for a thousand sockets).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[test]
fn idle_and_slow_connections_to_the_agent_port_neither_pile_up_nor_stop_elector_run() {
    raise_fd_limit();
    let a = agent("");
    let agent_pid = a.procs[0].id();
    // A slow-loris, first in line: a request head, one byte a second, for longer than
    // the agent lets any connection live (30 s).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.api)).unwrap();
    // Its first byte is read once it is accepted, before the flood.
    s.write_all(b"G").unwrap();
    wait_until("the agent accepted the slow-loris", || {
        http(a.api, "GET", "/health", None).is_some()
    });
    let loris = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        for b in b"ET /v1/status HTTP/1.1\r\nX-Slow: "
            .iter()
            .cycle()
            .take(120)
        {
            if s.write_all(&[*b]).is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        None
    });
    let idle: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", a.api)).unwrap())
        .collect();
    // Meanwhile the agent's own callers, on its socket, are not disturbed.
    let mut c = elector();
    c.arg("--config")
        .arg(&a.config)
        .args(["run", "-e", "job", "--min-hold", "0s", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o), a.logs());
    // The agent holds at most its cap of them, and closes idle ones on its own.
    let fds = std::fs::read_dir(format!("/proc/{agent_pid}/fd"))
        .unwrap()
        .count();
    assert!(fds < 256 + 64, "the agent holds {fds} descriptors");
    for mut s in idle {
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut byte = [0u8; 1];
        // EOF (0) or a reset: closed by the agent, not by our timeout.
        match s.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("an idle connection was not closed: {other:?}"),
        }
    }
    let cut = loris.join().unwrap();
    assert!(
        cut.is_some_and(|after| after < std::time::Duration::from_secs(90)),
        "the slow-loris was not cut off ({cut:?})\n{}",
        a.logs()
    );
    assert_eq!(http(a.api, "GET", "/health", None).map(|r| r.0), Some(200));
}

/// A small seeded generator, so a failure names its case.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Sends `raw` on a fresh connection to the socket or the TCP port; the status line's
/// code, or `None` if the agent closed the connection without one.
fn raw_exchange(a: &Agent, over_socket: bool, raw: &[u8]) -> Option<u16> {
    let mut answer = Vec::new();
    if over_socket {
        let mut s = std::os::unix::net::UnixStream::connect(a.socket()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let _ = s.write_all(raw);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut answer);
    } else {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", a.api)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let _ = s.write_all(raw);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut answer);
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn malformed_requests_get_4xx_and_never_take_the_agent_down() {
    let a = agent("");
    let mut rng = XorShift(0x5eed_2026_1202);
    let methods = [
        "GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "G\0T", "",
    ];
    let paths = [
        "/v1/elections/%ZZ",
        "/v1/elections/..%2F..%2Fetc",
        "/v1/elections/a b",
        "/v1/elections/job/campaign?wait_ms=-1",
        "/v1/elections/job/campaign?wait_ms=99999999999999999999",
        "/v1/leader/",
        "/v1/holds/00000000000000000000000000000000",
        "/v1/status?x=\u{0}",
        "//////",
        "*",
    ];
    let headers = [
        "",
        "Upgrade: elector-hold/1\r\nConnection: upgrade\r\n",
        "Upgrade: other/9\r\nConnection: upgrade\r\n",
        "Content-Length: 5\r\n",
        "Content-Length: -1\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Authorization: Bearer \r\n",
    ];
    let mut answered = 0;
    for case in 0..600 {
        let over_socket = case % 2 == 0;
        let raw = if case % 5 == 4 {
            let n = 1 + (rng.next() % 300) as usize;
            rng.bytes(n)
        } else {
            let long = "x".repeat((rng.next() % 3) as usize * 5000);
            format!(
                "{} {}{long} HTTP/1.1\r\nHost: x\r\n{}\r\n",
                rng.pick(&methods),
                rng.pick(&paths),
                rng.pick(&headers)
            )
            .into_bytes()
        };
        if let Some(code) = raw_exchange(&a, over_socket, &raw) {
            answered += 1;
            assert!(
                (400..500).contains(&code) || code == 200 || code == 101 || code == 409,
                "case {case} ({}) answered {code}: {:?}",
                if over_socket { "socket" } else { "tcp" },
                String::from_utf8_lossy(&raw)
            );
        }
    }
    // Random bytes may get no status line at all; the rest of the cases do.
    assert!(
        answered >= 400,
        "only {answered} of 600 cases were answered"
    );
    assert_eq!(http(a.api, "GET", "/health", None).map(|r| r.0), Some(200));
    let logs = a.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}
