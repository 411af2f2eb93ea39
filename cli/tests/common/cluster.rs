//! A three-agent cluster of a peer backend on loopback (`elector agent` processes), for
//! tests that look at the agents from outside: their HTTP API, `elector status`, the page.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{Procs, elector, free_port, wait_until};

/// One host of the cluster: its config file and its agent's HTTP port.
pub struct Host {
    /// The host's config file (`n1.toml`, ...).
    pub config: PathBuf,
    /// Its agent's HTTP API port.
    pub api: u16,
}

/// `[backend.KIND]` timing for tests on a busy machine: seconds to notice a dead member,
/// a 300 ms kill grace.
fn peer_timing(kind: &str) -> &'static str {
    match kind {
        "raft" => {
            "heartbeat = \"100ms\"\nelection_timeout_min = \"2s\"\nelection_timeout_max = \"4s\"\n"
        }
        "bully" => "heartbeat = \"100ms\"\nfailure_timeout = \"2s\"\nanswer_timeout = \"500ms\"\n",
        "paxos" => {
            "lease = \"2s\"\nrenew = \"100ms\"\nround_timeout = \"500ms\"\nbackoff = \"100ms\"\n"
        }
        other => panic!("{other} is not a peer backend"),
    }
}

/// Config files for members n1, n2, n3 of `kind` in `dir`, each agent keeping election
/// `job`, with `[timing]` for a busy machine (a 2 s TTL, renewals every 300 ms).
pub fn cluster(dir: &Path, kind: &str) -> Vec<Host> {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peers: String = (0..3)
        .map(|i| format!("n{} = \"127.0.0.1:{}\"\n", i + 1, ports[i]))
        .collect();
    (0..3)
        .map(|i| {
            let api = free_port();
            let config = dir.join(format!("n{}.toml", i + 1));
            let text = format!(
                "node_id = \"n{n}\"\n[backend]\nkind = \"{kind}\"\n[backend.{kind}]\nlisten = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{data}\"\nsecret = \"a-test-secret-of-32-bytes-length\"\n{timing}\
                 clock_drift = \"100ms\"\nkill_grace = \"300ms\"\n[backend.{kind}.peers]\n{peers}[timing]\n\
                 renew_interval = \"300ms\"\nretry_interval = \"100ms\"\nttl = \"2s\"\nkill_grace = \"300ms\"\n\
                 clock_drift = \"100ms\"\n[agent]\nlisten = \"127.0.0.1:{api}\"\nsocket = \"{socket}\"\n\
                 elections = [\"job\"]\n",
                n = i + 1,
                socket = dir.join(format!("n{}.sock", i + 1)).display(),
                port = ports[i],
                data = dir.join(format!("data-n{}", i + 1)).display(),
                timing = peer_timing(kind),
            );
            std::fs::write(&config, text).unwrap();
            Host { config, api }
        })
        .collect()
}

/// Starts `h`'s agent, logging to `nK.agent.log` beside its config.
pub fn agent(h: &Host) -> Child {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(h.config.with_extension("agent.log"))
        .unwrap();
    let mut c = elector();
    c.env("RUST_LOG", "info,elector=debug")
        .arg("--config")
        .arg(&h.config)
        .arg("agent")
        .stdout(Stdio::null())
        .stderr(log);
    c.spawn().unwrap()
}

/// `elector run -e job --supervise -- bash -c SCRIPT` through `h`'s agent, logging to
/// `nK.run.log`.
pub fn supervise(h: &Host, script: &str) -> Child {
    let log = std::fs::File::create(h.config.with_extension("run.log")).unwrap();
    let mut c = elector();
    c.arg("--config")
        .arg(&h.config)
        .args(["run", "-e", "job", "--supervise", "--", "bash", "-c"])
        .arg(script)
        .stdout(Stdio::null())
        .stderr(log);
    c.spawn().unwrap()
}

/// A three-agent cluster of `kind` in `dir`, every agent answering `/health`.
pub fn agents_up(dir: &Path, kind: &str) -> (Vec<Host>, Procs) {
    let hosts = cluster(dir, kind);
    let agents = Procs(hosts.iter().map(agent).collect());
    for h in &hosts {
        wait_until("the agent to answer /health", || {
            http_get(h.api, "/health").is_some_and(|(c, _)| c == 200)
        });
    }
    (hosts, agents)
}

/// `GET path` on the agent's port: the status code and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.split(' ').nth(1)?.parse().ok()?;
    Some((code, raw.split_once("\r\n\r\n")?.1.to_owned()))
}

/// Agent `h`'s `/v1/status`, if it answers.
pub fn status(h: &Host) -> Option<serde_json::Value> {
    let (code, body) = http_get(h.api, "/v1/status")?;
    (code == 200).then_some(())?;
    serde_json::from_str(&body).ok()
}

/// The last 60 lines of every log in `dir` (the agents', the runs'), for failure messages.
pub fn logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        out += &format!("--- {}\n", p.display());
        for l in tail.into_iter().rev() {
            out += l;
            out += "\n";
        }
    }
    out
}
