//! A real process pause: the leader runs in a child process, which the test stops with
//! SIGSTOP past its TTL and resumes with SIGCONT after another node was elected. Every
//! write it makes after waking is refused by the fenced write, and its `is_held()` says
//! so.
//!
//! The child is this test binary again, running the ignored helper test
//! `sigstop_child_leader` with `ELECTOR_SIGSTOP_CHILD_URL` set.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use election_core::{Epoch, LeaseTiming};
use election_tests::history::History;
use election_tests::launch::RedisServer;

const CHILD_ENV: &str = "ELECTOR_SIGSTOP_CHILD_URL";
const GENEROUS: Duration = Duration::from_secs(15);

fn timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(1),
        renew_interval: Duration::from_millis(100),
        retry_interval: Duration::from_millis(50),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
    }
}

/// The fenced write recipe from `election_core::Fence`'s documentation.
const FENCED_WRITE: &str = r#"
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) < seen then return redis.error_reply('STALE epoch') end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 'OK'
"#;

async fn fenced_write(
    conn: &mut redis::aio::MultiplexedConnection,
    epoch: Epoch,
    value: &str,
) -> Result<(), String> {
    redis::Script::new(FENCED_WRITE)
        .key("job:data")
        .key("job:fence")
        .arg(epoch.get())
        .arg(value)
        .invoke_async::<()>(conn)
        .await
        .map_err(|e| e.to_string())
}

#[test]
#[ignore = "the leader process that a_sigstopped_leader_process_is_fenced_off_when_it_resumes \
            starts and pauses; it does nothing on its own"]
fn sigstop_child_leader() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let backend = connect(&url, timing()).await;
        let mut data = raw(&url).await;
        let l = elector(&backend, "job", "child").campaign().await.unwrap();
        println!("EPOCH {}", l.epoch());
        loop {
            match fenced_write(&mut data, l.epoch(), "from the child").await {
                Ok(()) => println!("WRITE ok held={}", l.is_held()),
                Err(e) => {
                    println!("WRITE refused held={}: {e}", l.is_held());
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Kills the child on drop, whatever happened.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = signal(self.0.id(), "CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, sig: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -{sig} {pid}: {status}"
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_leader_process_is_fenced_off_when_it_resumes() {
    election_tests::init_tracing();
    let server = RedisServer::start().unwrap();
    let history = History::new();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "sigstop_child_leader",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    let pid = child.0.id();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    // The child's lines, without what libtest prints around them (it starts the test's
    // output on its own "test ... " line).
    let next_line = |what: &str, tag: &str| -> String {
        let give_up = std::time::Instant::now() + GENEROUS;
        loop {
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("child: no {what} within {GENEROUS:?}: {e}"));
            if let Some(at) = line.find(tag) {
                return line[at..].to_owned();
            }
        }
    };
    let epoch_line = next_line("epoch", "EPOCH ");
    let child_epoch = Epoch(epoch_line["EPOCH ".len()..].trim().parse().unwrap());
    let child_id = node("child");
    history.granted(&child_id, child_epoch);
    next_line("first write", "WRITE ok");
    history.fenced_write(&child_id, child_epoch, true);

    signal(pid, "STOP").unwrap();
    history.pause_injected();
    let backend = connect(&server.url(), timing()).await;
    let lb = tokio::time::timeout(GENEROUS, elector(&backend, "job", "b").campaign())
        .await
        .expect("b elected once the stopped child's lease expired")
        .unwrap();
    history.granted(&node("b"), lb.epoch());
    assert!(lb.epoch() > child_epoch);
    let mut data = raw(&server.url()).await;
    let written = fenced_write(&mut data, lb.epoch(), "from b").await;
    history.fenced_write(&node("b"), lb.epoch(), written.is_ok());
    written.unwrap();

    signal(pid, "CONT").unwrap();
    // Lines written before the stop may still be in the pipe; the child stops writing at
    // its first refusal.
    let refused = next_line("refused write", "WRITE refused");
    history.fenced_write(&child_id, child_epoch, false);
    assert!(
        refused.starts_with("WRITE refused held=false") && refused.contains("STALE"),
        "refused by the fence, and the child knows it no longer leads: {refused}"
    );
    let value: String = redis::cmd("GET")
        .arg("job:data")
        .query_async(&mut data)
        .await
        .unwrap();
    assert_eq!(
        value, "from b",
        "no write of the resumed child landed after b's"
    );
    if let Err(v) = history.check() {
        panic!("{v:?}\n{history}");
    }
    drop(child);
}
