//! Elections shared with kazoo, the Python client of the seed's ZooKeeper example: a real
//! `kazoo.Election` (Debian `python3-kazoo`) and this backend on one election path queue
//! together, one leader among all, each side seeing the other's leader, both ways round.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

/// A kazoo contender in a Python process (tests/kazoo/contender.py).
struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Kazoo {
    fn start(hosts: &str, path: &str, identifier: &str) -> Kazoo {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kazoo/contender.py");
        // Debian's python3, for which python3-kazoo is installed (not a pyenv's).
        let mut child = Command::new("/usr/bin/python3")
            .args([script, hosts, path, identifier])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with kazoo (apt-get install python3-kazoo)");
        let stdin = child.stdin.take().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let k = Kazoo {
            child,
            stdin,
            lines,
        };
        assert_eq!(
            k.next(),
            "started",
            "kazoo did not start (is python3-kazoo installed?)"
        );
        k
    }

    /// The next line it prints (within a generous deadline).
    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the kazoo contender answers")
    }

    /// Whether it prints `line` within `within`.
    fn says_within(&self, line: &str, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l == line => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
    }

    /// kazoo's `contenders()`: the identifiers in queue order.
    fn contenders(&mut self) -> Vec<String> {
        self.send("contenders");
        loop {
            let line = self.next();
            if let Some(json) = line.strip_prefix("contenders ") {
                return serde_json::from_str(json).unwrap();
            }
        }
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kazoo_leader_keeps_elector_waiting_and_hands_over_when_it_releases() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("kazoo-first");
    let path = backend.election_path(&election);
    let mut kazoo = Kazoo::start(&server.connect_string(), &path, "py-worker");
    assert_eq!(kazoo.next(), "leading");

    let e = elector(&backend, &election, "node-a");
    // kazoo leads: we see it, and do not lead ourselves.
    let leader = e.leader().await.unwrap().expect("kazoo's leader");
    assert_eq!(leader.node.as_str(), "py-worker");
    assert!(e.try_campaign().await.unwrap().is_none());
    let waiting = tokio::spawn({
        let e = e.clone();
        async move { e.campaign().await }
    });
    eventually(SOON, "kazoo lists us behind itself", || {
        let listed = kazoo.contenders();
        async move { listed == ["py-worker", "node-a"] }
    })
    .await;
    assert!(!waiting.is_finished(), "elected while kazoo leads");

    kazoo.send("release");
    let ours = within(SOON, "our campaign after kazoo released", waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(ours.epoch() > leader.epoch);
    assert_eq!(kazoo.contenders(), ["node-a"]);
    ours.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elector_leader_keeps_kazoo_waiting_and_kazoo_leads_once_it_resigns() {
    let server = shared_zookeeper();
    let backend = connect(&server.connect_string(), long_timing()).await;
    let election = unique("elector-first");
    let path = backend.election_path(&election);
    let e = elector(&backend, &election, "node-a");
    let ours = e.campaign().await.unwrap();

    let mut kazoo = Kazoo::start(&server.connect_string(), &path, "py-worker");
    eventually(SOON, "kazoo queues behind our leader", || {
        let listed = kazoo.contenders();
        async move { listed == ["node-a", "py-worker"] }
    })
    .await;
    // kazoo's `Election.run` has not called its function: we lead.
    assert!(!kazoo.says_within("leading", Duration::from_millis(500)));
    assert_eq!(
        e.leader().await.unwrap().map(|l| l.node.to_string()),
        Some("node-a".to_owned())
    );

    ours.resign().await.unwrap();
    assert!(
        kazoo.says_within("leading", SOON),
        "kazoo did not lead after we resigned"
    );
    eventually(SOON, "we see kazoo's leader", || {
        let e = e.clone();
        async move {
            e.leader()
                .await
                .ok()
                .flatten()
                .is_some_and(|l| l.node.as_str() == "py-worker")
        }
    })
    .await;
    kazoo.send("release");
}
