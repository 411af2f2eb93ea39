//! `elector run` processes against a real PostgreSQL.
#![cfg(feature = "postgres")]

mod common;

use common::scenarios;
use election_tests::launch::PostgresServer;

fn server() -> PostgresServer {
    PostgresServer::start().unwrap_or_else(|e| panic!("postgres: {e}"))
}

/// The backend's arguments for a server (or a proxy in front of it) at `url`.
fn backend_url(url: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        "postgres".into(),
        "--set".into(),
        format!("backend.postgres.url=\"{url}\""),
        "--set".into(),
        "backend.postgres.statement_timeout=\"300ms\"".into(),
    ]
}

fn backend(server: &PostgresServer) -> Vec<String> {
    backend_url(&server.url())
}

#[test]
fn three_at_once_run_exactly_once() {
    let s = server();
    scenarios::three_at_once_run_exactly_once(&backend(&s));
}

#[test]
fn staggered_starts_within_min_hold_run_once() {
    let s = server();
    scenarios::staggered_starts_within_min_hold_run_once(&backend(&s));
}

#[test]
fn supervise_survives_kill_9_of_the_leader() {
    let s = server();
    scenarios::supervise_survives_kill_9_of_the_leader(&backend(&s));
}

#[test]
fn a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts() {
    use election_tests::proxy::{Direction, Fault};
    let s = server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = common::proxy(&rt, s.addr());
    scenarios::a_cut_off_leaders_child_is_killed_after_its_grace_before_the_next_starts(
        &backend_url(&s.url_for(proxy.addr())),
        &backend(&s),
        || proxy.set(Direction::Both, Fault::Blackhole),
    );
}

#[test]
fn sigterm_hands_over_without_a_ttl_wait() {
    let s = server();
    scenarios::sigterm_hands_over_without_a_ttl_wait(&backend(&s));
}

#[test]
fn watch_streams_leader_changes() {
    let s = server();
    scenarios::watch_streams_leader_changes(&backend(&s));
}

/// The documented exit codes: a wrong password is a protocol error (76), no server is
/// unavailable (69), a malformed URL a configuration error (78); each message names the
/// backend and the address, never the password.
#[test]
fn connection_errors_exit_with_the_documented_codes() {
    let s = server();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cases = [
        (
            s.url().replace("elector-test-password", "wrong-secret"),
            76,
            "password authentication failed",
        ),
        (
            format!("postgres://postgres:pw@{free}/postgres?sslmode=disable"),
            69,
            "is unavailable",
        ),
        (
            "postgres://h:notaport/db".to_owned(),
            78,
            "backend.postgres.url",
        ),
    ];
    for (url, code, needle) in cases {
        let mut c = common::elector();
        c.args(backend_url(&url)).args(common::FAST).args([
            "--node-id",
            "n1",
            "run",
            "-e",
            "job",
            "--",
            "true",
        ]);
        let o = common::output(c);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{url}: {err}");
        assert!(err.contains(needle), "{url}: {err}");
        assert!(!err.contains("wrong-secret"), "{err}");
        if code != 78 {
            assert!(err.contains("postgres at "), "{err}");
        }
    }
}

/// The password from an environment variable the configuration names
/// (`backend.postgres.password_env`), with none in the URL: the job runs. The variable
/// named but not set is a configuration error (78) naming the key, never a connection
/// attempt without a password.
#[test]
fn the_password_comes_from_the_named_environment_variable() {
    let s = server();
    let no_password = s.url().replace(
        &format!(":{}@", election_tests::launch::POSTGRES_PASSWORD),
        "@",
    );
    assert!(!no_password.contains(election_tests::launch::POSTGRES_PASSWORD));
    let run = |env: Option<&str>| {
        let mut c = common::elector();
        c.args(backend_url(&no_password))
            .args(common::FAST)
            .args([
                "--set",
                "backend.postgres.password_env=\"JOB_DB_PASSWORD\"",
                "--node-id",
                "n1",
                "run",
                "-e",
                "job",
                "--",
                "sh",
                "-c",
                "echo ran",
            ])
            .env_remove("JOB_DB_PASSWORD")
            .env_remove("PGPASSWORD");
        if let Some(pw) = env {
            c.env("JOB_DB_PASSWORD", pw);
        }
        common::output(c)
    };
    let o = run(Some(election_tests::launch::POSTGRES_PASSWORD));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ran", "{err}");
    let o = run(None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains("password_env"), "{err}");
    assert!(err.contains("JOB_DB_PASSWORD"), "{err}");
}
