//! The real binary: bad input, exit codes, signals, demo. Tests that need a backend
//! that answers use a real redis-server (the quickest to start); there is no in-process
//! backend kind.

mod common;

#[cfg(feature = "redis")]
use std::process::Stdio;

use common::*;
#[cfg(feature = "redis")]
use nix::sys::signal::Signal;

/// Runs a command from [`run_redis`] to completion, keeping its server up meanwhile.
#[cfg(feature = "redis")]
fn output_on(
    (_server, c): (election_tests::launch::RedisServer, std::process::Command),
) -> std::process::Output {
    output(c)
}

/// `elector run` on a real redis-server, with no minimum hold. The server lives as long
/// as the returned handle.
#[cfg(feature = "redis")]
fn run_redis(args: &[&str]) -> (election_tests::launch::RedisServer, std::process::Command) {
    let server = election_tests::launch::RedisServer::start().expect("redis-server");
    let mut c = elector();
    c.args(["--backend", "redis", "--set"])
        .arg(format!("backend.redis.url=\"{}\"", server.url()))
        .args(["--node-id", "n1", "run", "--min-hold", "0s"]);
    c.args(args);
    (server, c)
}

#[test]
fn a_missing_backend_kind_is_a_configuration_error_naming_the_key() {
    let mut c = elector();
    c.args(["run", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(
        text(&o).contains("missing key backend.kind"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_unknown_backend_is_refused_listing_the_known_ones() {
    let (_d, file) = scratch("elector.toml");
    std::fs::write(&file, "[backend]\nkind = \"consul\"\n").unwrap();
    let mut c = elector();
    c.arg("--config").arg(&file).args(["run", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("backend.kind") && t.contains("\"consul\""),
        "{t}"
    );
    assert!(
        t.contains("raft, bully, paxos, redis, etcd, zookeeper, postgres"),
        "{t}"
    );
    assert!(t.contains(&file.display().to_string()), "{t}");
}

#[cfg(feature = "redis")]
#[test]
fn the_memory_backend_is_refused_because_every_host_would_run_the_job() {
    let mut c = elector();
    c.args([
        "--backend",
        "memory",
        "--node-id",
        "n1",
        "run",
        "--",
        "true",
    ]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("backend.kind") && t.contains("coordinates nothing"),
        "{t}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn a_bad_duration_flag_is_a_usage_error() {
    let o = output_on(run_redis(&["--wait", "5 parsecs", "--", "true"]));
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("--wait"), "{}", text(&o));
}

#[test]
fn a_bad_duration_in_the_file_names_the_key_and_the_file() {
    let (_d, file) = scratch("elector.toml");
    std::fs::write(
        &file,
        "[backend]\nkind = \"redis\"\n[timing]\nttl = \"soon\"\n",
    )
    .unwrap();
    let mut c = elector();
    c.arg("--config").arg(&file).args(["run", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("timing.ttl") && t.contains(&file.display().to_string()),
        "{t}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn a_missing_command_exits_127_before_campaigning() {
    let o = output_on(run_redis(&["--", "no-such-command-xyz"]));
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(
        text(&o).contains("command not found: no-such-command-xyz"),
        "{}",
        text(&o)
    );
}

#[cfg(feature = "redis")]
#[test]
fn usage_errors_exit_64() {
    let o = output_on(run_redis(&[]));
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let mut c = elector();
    c.arg("frobnicate");
    assert_eq!(output(c).status.code(), Some(64));
}

#[cfg(feature = "redis")]
#[test]
fn a_kill_grace_beyond_the_lease_margin_is_refused() {
    let o = output_on(run_redis(&["--kill-grace", "10s", "--", "true"]));
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("run.kill_grace"), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn an_unreachable_server_exits_69() {
    // A port nothing listens on: bind, read it back, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = elector();
    c.args(["--backend", "redis", "--set"])
        .arg(format!("backend.redis.url=\"redis://127.0.0.1:{port}\""))
        .args(["run", "-e", "x", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
    assert!(text(&o).contains(&port.to_string()), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn the_commands_exit_code_and_environment_are_passed_through() {
    let o = output_on(run_redis(&[
        "-e",
        "nightly",
        "--",
        "sh",
        "-c",
        "echo \"$ELECTOR_ELECTION $ELECTOR_NODE_ID $ELECTOR_BACKEND $ELECTOR_EPOCH\"; exit 7",
    ]));
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("nightly n1 redis "), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn kill_9_of_elector_takes_the_command_and_its_grandchildren_down() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let script = format!(
        "sleep 1000 & echo $! > {d}/gc; echo $$ > {d}/c; wait",
        d = dir.display()
    );
    let (_server, mut c) = run_redis(&["--supervise", "--", "sh", "-c", &script]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let pid_in = |f: &str| -> Option<i32> {
        std::fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    wait_until("the command to start", || {
        pid_in("c").is_some() && pid_in("gc").is_some()
    });
    let (cmd, grandchild) = (pid_in("c").unwrap(), pid_in("gc").unwrap());
    assert!(!is_gone(cmd) && !is_gone(grandchild));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the command to die with elector", || is_gone(cmd));
    wait_until("the grandchild to die with elector", || is_gone(grandchild));
}

#[cfg(feature = "redis")]
#[test]
fn sigterm_to_elector_is_forwarded_to_the_command() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let script = format!(
        "trap 'echo got-term > {d}/term; exit 5' TERM; echo $$ > {d}/c; while :; do sleep 0.05; done",
        d = dir.display()
    );
    let (_server, mut c) = run_redis(&["--", "sh", "-c", &script]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_until("the command to start", || dir.join("c").exists());
    signal(child.id(), Signal::SIGTERM);
    let o = wait_output(child);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("term")).unwrap().trim(),
        "got-term"
    );
}

#[test]
fn demo_exits_0_and_shows_a_refused_stale_write() {
    let mut c = elector();
    c.arg("demo");
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("refused: stale epoch"), "{}", text(&o));
    assert!(out.contains("job: running on"), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn config_reports_each_values_source_and_check_validates() {
    let (_d, file) = scratch("elector.toml");
    std::fs::write(
        &file,
        "[backend]\nkind = \"redis\"\n[timing]\nttl = \"20s\"\n",
    )
    .unwrap();
    let mut c = elector();
    c.arg("--config")
        .arg(&file)
        .env("ELECTOR_TIMING__KILL_GRACE", "1s")
        .args(["--node-id", "n7", "config"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"))
            .to_owned()
    };
    assert!(
        line("timing.ttl").contains(&file.display().to_string()),
        "{out}"
    );
    assert!(
        line("timing.kill_grace").contains("ELECTOR_TIMING__KILL_GRACE"),
        "{out}"
    );
    assert!(line("node_id").contains("command-line flag"), "{out}");
    assert!(
        line("timing.clock_drift").contains("built-in default"),
        "{out}"
    );

    let mut c = elector();
    c.arg("--config").arg(&file).args(["config", "--check"]);
    assert_eq!(output(c).status.code(), Some(0));
    let mut c = elector();
    c.arg("--config").arg(&file).args([
        "--set",
        "timing.renew_interval=\"30s\"",
        "config",
        "--check",
    ]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("timing.renew_interval"), "{}", text(&o));
}

#[test]
fn help_lists_the_exit_codes_and_completions_and_man_render() {
    let mut c = elector();
    c.args(["run", "--help"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("78"), "{}", text(&o));
    let mut c = elector();
    c.arg("--help");
    let o = output(c);
    assert!(
        text(&o).contains("bully")
            && text(&o).contains("zookeeper")
            && !text(&o).contains("memory"),
        "{}",
        text(&o)
    );
    let mut c = elector();
    c.args(["completions", "bash"]);
    let o = output(c);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("elector"));
    let mut c = elector();
    c.arg("man");
    let o = output(c);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains(".TH"));
}

#[cfg(feature = "redis")]
#[test]
fn the_command_starts_with_no_signal_blocked() {
    // No shell in between: a shell blocks signals of its own while it waits for a child.
    let o = output_on(run_redis(&["--", "grep", "SigBlk", "/proc/self/status"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.trim().ends_with("0000000000000000"), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn json_logs_are_one_json_object_per_line() {
    let (_server, mut c) = run_redis(&["--", "true"]);
    c.env("ELECTOR_LOG_FORMAT", "json");
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.trim().is_empty(), "{}", text(&o));
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[cfg(feature = "raft")]
#[test]
fn raft_without_a_local_agent_exits_69_naming_the_agent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = elector();
    c.args(["--backend", "raft", "--node-id", "n1"])
        .args(["--set", "backend.raft.secret=\"0123456789abcdef0123\""])
        .arg("--set")
        .arg(format!(
            "agent.socket=\"/nonexistent/elector-{port}/agent.sock\""
        ))
        .args(["run", "-e", "x", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
    assert!(text(&o).contains("elector agent"), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn config_never_prints_secrets_and_shows_backend_defaults() {
    let mut c = elector();
    c.args(["--backend", "redis", "--node-id", "n1"])
        .args([
            "--set",
            "backend.redis.url=\"redis://:hunter2@127.0.0.1:6379\"",
        ])
        .args(["--set", "backend.redis.password=\"hunter3\""])
        .arg("config");
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !out.contains("hunter2") && !out.contains("hunter3"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("backend.redis.command_timeout = ") && l.contains("default")),
        "{out}"
    );
}

#[cfg(feature = "zookeeper")]
#[test]
fn config_check_names_a_bad_zookeeper_key_and_shows_its_defaults() {
    let (_d, file) = scratch("elector.toml");
    std::fs::write(
        &file,
        "[backend]\nkind = \"zookeeper\"\n[backend.zookeeper]\nconect_string = \"x\"\n",
    )
    .unwrap();
    let mut c = elector();
    c.arg("--config").arg(&file).args(["config", "--check"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("conect_string"), "{}", text(&o));
    let mut c = elector();
    c.args(["--backend", "zookeeper", "--node-id", "n1", "config"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("backend.zookeeper.connect_string = ") && l.contains("default")),
        "{out}"
    );
}

#[cfg(feature = "bully")]
#[test]
fn bully_needs_peer_authentication_and_its_kill_grace_bounds_the_runs() {
    let mut c = elector();
    c.args(["--backend", "bully", "--node-id", "n1", "config", "--check"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("backend.bully.secret"), "{}", text(&o));
    let mut c = elector();
    c.args(["--backend", "bully", "--node-id", "n1"])
        .args(["--set", "backend.bully.secret=\"0123456789abcdef0123\""])
        .args(["--set", "run.kill_grace=\"1s\"", "config", "--check"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(
        text(&o).contains("run.kill_grace") && text(&o).contains("backend.bully.kill_grace"),
        "{}",
        text(&o)
    );
}

#[cfg(feature = "bully")]
#[test]
fn bully_without_a_local_agent_exits_69_naming_the_agent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = elector();
    c.args(["--backend", "bully", "--node-id", "n1"])
        .args(["--set", "backend.bully.secret=\"0123456789abcdef0123\""])
        .arg("--set")
        .arg(format!(
            "agent.socket=\"/nonexistent/elector-{port}/agent.sock\""
        ))
        .args(["run", "-e", "x", "--", "true"]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
    assert!(text(&o).contains("elector agent"), "{}", text(&o));
}

#[cfg(feature = "redis")]
#[test]
fn the_guard_keeps_none_of_electors_own_descriptors() {
    // The guard is forked, not exec'd: it must close what exec would have closed, such
    // as elector's connection to the backend (a socket) and its event loop's descriptors.
    // The command's parent ($PPID) is the guard.
    let (_server, c) = run_redis(&[
        "--",
        "sh",
        "-c",
        "for f in /proc/$PPID/fd/*; do echo \"${f##*/} $(readlink $f)\"; done; true",
    ]);
    let o = output(c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // Nothing of elector's own (its backend socket, its event loop's epoll and eventfd);
    // the guard's own signalfd and deadline pipe (decision 101) are expected.
    assert!(!out.contains("socket:"), "{}", text(&o));
    let anon: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("anon_inode:"))
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(anon, ["[signalfd]"], "{}", text(&o));
}
