//! The main error texts, byte for byte, with their exit codes. Operators grep for these
//! and scripts match on them; a refactoring must not change a word. `{file}` stands for
//! the config file the case writes. (The three "local agent" texts changed on purpose when
//! the agent's hold protocol moved to its Unix socket, decision 107; the two "unknown
//! field" texts inside a backend table now name the key as the file spells it,
//! `backend.redis.bogus` where figment said `bogus.backend.redis`.)

#![cfg(all(
    feature = "raft",
    feature = "bully",
    feature = "redis",
    feature = "etcd",
    feature = "zookeeper"
))]

mod common;

use common::*;

/// One invocation: an optional config file, the arguments, the exit code and stderr.
struct Case {
    file: Option<&'static str>,
    args: &'static [&'static str],
    code: i32,
    stderr: &'static str,
}

const SECRET: &str = "backend.raft.secret=\"0123456789abcdef0123\"";

const CASES: &[Case] = &[
    Case {
        file: None,
        args: &["--node-id", "n1", "run", "-e", "x", "--", "true"],
        code: 78,
        stderr: "elector: error: invalid configuration: missing key backend.kind: choose one of raft, bully, paxos, redis, etcd, zookeeper, postgres in [backend] of /etc/elector/elector.toml (or --config FILE), ELECTOR_BACKEND__KIND, or --backend",
    },
    Case {
        file: None,
        args: &["--node-id", "n1", "status", "x"],
        code: 78,
        stderr: "elector: error: invalid configuration: missing key backend.kind: choose one of raft, bully, paxos, redis, etcd, zookeeper, postgres in [backend] of /etc/elector/elector.toml (or --config FILE), ELECTOR_BACKEND__KIND, or --backend",
    },
    Case {
        file: Some("[backend]\nkind = \"consul\"\n"),
        args: &["--node-id", "n1", "run", "-e", "x", "--", "true"],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.kind (from file {file}): unknown backend \"consul\"; known backends: raft, bully, paxos, redis, etcd, zookeeper, postgres",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "memory",
            "--node-id",
            "n1",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.kind (from command-line flag): the memory backend is not available to elector: it lives inside one process and coordinates nothing between hosts, so every host would run the job; choose one of raft, bully, paxos, redis, etcd, zookeeper, postgres",
    },
    Case {
        file: Some("[timing]\nttl = \"ten seconds\"\n"),
        args: &["config"],
        code: 78,
        stderr: "elector: error: invalid configuration: invalid value string \"ten seconds\", expected a duration for key \"default.timing.ttl\" in {file} TOML file",
    },
    Case {
        file: Some("[timing]\nttll = \"5s\"\n"),
        args: &["config"],
        code: 78,
        stderr: "elector: error: invalid configuration: unknown field: found `ttll`, expected `one of `ttl`, `renew_interval`, `retry_interval`, `clock_drift`, `kill_grace`` for key \"default.timing.ttll\" in {file} TOML file",
    },
    Case {
        file: Some("[backend.memory]\n"),
        args: &["config"],
        code: 78,
        stderr: "elector: error: invalid configuration: unknown field: found `memory`, expected `one of `kind`, `raft`, `bully`, `paxos`, `redis`, `etcd`, `zookeeper`, `postgres`` for key \"default.backend.memory\" in {file} TOML file",
    },
    Case {
        file: None,
        args: &["--config", "/nonexistent/elector.toml", "config"],
        code: 78,
        stderr: "elector: error: config file /nonexistent/elector.toml does not exist or is not a file",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "run.kill_grace=\"5s\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: run.kill_grace (from command-line flag): 5s exceeds timing.kill_grace (2s): the leadership deadline leaves only timing.kill_grace for the child to die, so a longer grace could let it run on after another node is elected; raise timing.kill_grace instead",
    },
    Case {
        file: None,
        args: &["--backend", "bully", "--node-id", "n1", "config", "--check"],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.bully.secret (from built-in default): exactly one of bully.secret, bully.secret_file and bully.tls must be set (0 are): peers must authenticate each other",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "bully",
            "--node-id",
            "n1",
            "--set",
            "backend.bully.secret=\"0123456789abcdef0123\"",
            "--set",
            "run.kill_grace=\"1s\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: run.kill_grace (from command-line flag): 1s exceeds backend.bully.kill_grace (50ms): the leadership deadline leaves only backend.bully.kill_grace for the child to die, so a longer grace could let it run on after another node is elected; raise backend.bully.kill_grace instead",
    },
    Case {
        file: None,
        args: &["--backend", "raft", "--node-id", "n1", "config", "--check"],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.raft.secret (from built-in default): exactly one of raft.secret, raft.secret_file and raft.tls must be set (0 are): peers must authenticate each other",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "raft",
            "--node-id",
            "n1",
            "--set",
            SECRET,
            "--set",
            "backend.raft.election_timeout_min=\"10ms\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.raft.election_timeout_min (from command-line flag): election_timeout_min (10ms) must be at least clock_drift (25ms) + kill_grace (50ms) + 2 x heartbeat (50ms): the leader lease is election_timeout_min - clock_drift - kill_grace counted from a quorum-acknowledged heartbeat, and it must outlast one lost heartbeat round, or every dropped packet would depose the leader",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "raft",
            "--node-id",
            "n1",
            "--set",
            SECRET,
            "--set",
            "agent.socket=\"/nonexistent/agent.sock\"",
            "run",
            "-e",
            "x",
            "--",
            "true",
        ],
        code: 69,
        stderr: "elector: error: raft at local agent unix:/nonexistent/agent.sock is unavailable (election x): No such file or directory (os error 2) (is `elector agent` running? agent.socket = /nonexistent/agent.sock)",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "raft",
            "--node-id",
            "n1",
            "--set",
            "agent.socket=\"/nonexistent/agent.sock\"",
            "status",
        ],
        code: 69,
        stderr: "elector: error: agent at local agent unix:/nonexistent/agent.sock is unavailable: No such file or directory (os error 2) (is `elector agent` running? agent.socket = /nonexistent/agent.sock)",
    },
    Case {
        file: None,
        args: &[
            "--node-id",
            "n1",
            "--set",
            "agent.socket=\"/nonexistent/agent.sock\"",
            "resign",
            "x",
        ],
        code: 69,
        stderr: "elector: error: agent at local agent unix:/nonexistent/agent.sock is unavailable (election x): No such file or directory (os error 2) (is `elector agent` running? agent.socket = /nonexistent/agent.sock)",
    },
    Case {
        file: None,
        args: &["--backend", "redis", "--node-id", "n1", "status"],
        code: 64,
        stderr: "elector: error: name the elections to show (elector status NAME...) or list them in agent.elections",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "timing.renew_interval=\"20s\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: timing.renew_interval (from command-line flag): renew_interval (20s) must be at most half of ttl - clock_drift - kill_grace (7s 800ms), so that a failed renewal can be retried before the leadership deadline",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "bad id!",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: node_id (from command-line flag): invalid node id \"bad id!\": may contain only ASCII letters, digits, '.', '_' and '-'",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "run.restart_delay=\"0s\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: run.restart_delay (from command-line flag): must be greater than zero",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "run",
            "-e",
            "a b",
            "--",
            "true",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: run.election (from command-line flag): invalid election name \"a b\": may contain only ASCII letters, digits, '.', '_' and '-'",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "backend.redis.url=\"http://x\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.redis.url (from command-line flag): \"http://x\" is not a Redis URL: expected redis://host:port/db or rediss://host:port/db",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "backend.redis.url=\"http://x\"",
            "run",
            "-e",
            "x",
            "--",
            "true",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.redis.url (from command-line flag): \"http://x\" is not a Redis URL: expected redis://host:port/db or rediss://host:port/db",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "backend.redis.url=\"http://x\"",
            "status",
            "x",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.redis.url (from command-line flag): \"http://x\" is not a Redis URL: expected redis://host:port/db or rediss://host:port/db",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "redis",
            "--node-id",
            "n1",
            "--set",
            "backend.redis.bogus=1",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: unknown field: found `bogus`, expected `one of `url`, `username`, `password`, `password_env`, `database`, `connect_timeout`, `command_timeout`, `key_prefix`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `sentinel`, `keyspace_notifications`` for key \"default.backend.redis.bogus\" in command-line flag",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "etcd",
            "--node-id",
            "n1",
            "--set",
            "backend.etcd.endpoints=[]",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.etcd.endpoints (from command-line flag): at least one endpoint is needed, such as \"http://127.0.0.1:2379\"",
    },
    Case {
        file: Some("[backend]\nkind = \"zookeeper\"\n[backend.zookeeper]\nconect_string = \"x\"\n"),
        args: &["config", "--check"],
        code: 78,
        stderr: "elector: error: invalid configuration: unknown field: found `conect_string`, expected `one of `connect_string`, `prefix`, `session_timeout`, `connect_timeout`, `request_timeout`, `follower_lag`, `digest_auth`, `digest_auth_env`` for key \"default.backend.zookeeper.conect_string\" in {file} TOML file",
    },
    Case {
        file: None,
        args: &[
            "--backend",
            "zookeeper",
            "--node-id",
            "n1",
            "--set",
            "backend.zookeeper.connect_string=\"\"",
            "config",
            "--check",
        ],
        code: 78,
        stderr: "elector: error: invalid configuration: backend.zookeeper.connect_string (from command-line flag): must name at least one server, such as \"127.0.0.1:2181\"",
    },
];

#[test]
fn the_main_error_texts_stay_byte_for_byte_the_same() {
    let mut wrong = Vec::new();
    for case in CASES {
        let (_dir, path) = scratch("elector.toml");
        let mut c = elector();
        if let Some(text) = case.file {
            std::fs::write(&path, text).unwrap();
            c.arg("--config").arg(&path);
        }
        c.args(case.args);
        let o = output(c);
        let want = case.stderr.replace("{file}", &path.display().to_string());
        let got = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(case.code) || got.trim_end() != want {
            wrong.push(format!(
                "elector {:?}\n  want {}: {want}\n  got  {:?}: {}",
                case.args,
                case.code,
                o.status.code(),
                got.trim_end()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
