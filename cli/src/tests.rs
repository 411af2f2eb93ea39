//! Every command reads the backend's settings once: one extract and one validate where it
//! uses them, none where it does not (a peer backend's settings are the agent's).

use clap::Parser as _;

use super::dispatch;
use crate::backend::counters;
use crate::cli::Cli;

/// Runs `elector ARGS` in this thread and returns its exit code and
/// `(extracts, validates)`.
async fn counted(args: &[&str]) -> (u8, (usize, usize)) {
    let cli = Cli::try_parse_from(std::iter::once("elector").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    counters::take();
    let code = match dispatch(cli).await {
        Ok(code) => code,
        Err(f) => f.code,
    };
    (code, counters::take())
}

/// `--set agent.socket=...` in a fresh directory (kept while the guard lives), so no test
/// touches the host's own agent socket.
fn private_socket() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let set = format!(
        "agent.socket={:?}",
        dir.path().join("agent.sock").display().to_string()
    );
    (dir, set)
}

/// A redis backend nobody listens on: commands read their settings, then fail to connect.
#[cfg(feature = "redis")]
const REDIS: &[&str] = &[
    "--backend",
    "redis",
    "--node-id",
    "n1",
    "--set",
    "backend.redis.url=\"redis://127.0.0.1:1\"",
    "--set",
    "agent.listen=\"127.0.0.1:0\"",
];

#[cfg(feature = "redis")]
#[tokio::test]
async fn lease_backend_commands_extract_and_validate_once() {
    for (args, want) in [
        (&["run", "-e", "x", "--", "true"][..], (69, (1, 1))),
        (&["agent"], (69, (1, 1))),
        (&["status", "x"], (69, (1, 1))),
        (&["watch", "x"], (69, (1, 1))),
        (&["config", "--check"], (0, (1, 1))),
        (&["config"], (0, (1, 0))),
        (&["resign", "x"], (69, (0, 0))),
    ] {
        let (_dir, socket) = private_socket();
        let all: Vec<&str> = REDIS
            .iter()
            .copied()
            .chain(["--set", &socket])
            .chain(args.iter().copied())
            .collect();
        assert_eq!(counted(&all).await, want, "elector {args:?}");
    }
}

#[cfg(feature = "raft")]
#[tokio::test]
async fn peer_backend_commands_extract_and_validate_once_and_status_not_at_all() {
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data_dir = format!(
        "backend.raft.data_dir={:?}",
        data.path().display().to_string()
    );
    let agent_listen = format!("agent.listen=\"{}\"", taken.local_addr().unwrap());
    let raft = [
        "--backend",
        "raft",
        "--node-id",
        "n1",
        "--set",
        "backend.raft.secret=\"0123456789abcdef0123\"",
        "--set",
        "backend.raft.listen=\"127.0.0.1:0\"",
        "--set",
        &data_dir,
        "--set",
        &agent_listen,
    ];
    for (args, want) in [
        // The agent cannot bind its API (the port is taken), having read its settings once.
        (&["agent"][..], (69, (1, 1))),
        // `run` reads raft's kill grace, then finds no agent on the socket.
        (&["run", "-e", "x", "--", "true"], (69, (1, 1))),
        (&["status"], (69, (0, 0))),
        (&["config", "--check"], (0, (1, 1))),
        (&["config"], (0, (1, 0))),
    ] {
        let (_dir, socket) = private_socket();
        let all: Vec<&str> = raft
            .iter()
            .copied()
            .chain(["--set", &socket])
            .chain(args.iter().copied())
            .collect();
        assert_eq!(counted(&all).await, want, "elector {args:?}");
    }
}
