//! Clear errors: a bad connection string, no server, a wrong password, a missing database,
//! missing privileges (to create the table, to write it), a standby.

mod common;

use std::time::Duration;

use common::*;
use election_core::ErrorKind;
use election_postgres::{PostgresBackend, PostgresConfig};
use election_tests::launch::PostgresServer;

async fn connect_err(config: PostgresConfig) -> election_core::Error {
    PostgresBackend::connect(config, timing())
        .await
        .map(|_| ())
        .expect_err("connect must fail")
}

#[tokio::test]
async fn a_malformed_url_is_a_config_error_naming_the_key() {
    let err = connect_err(config("postgres://u@h:notaport/db")).await;
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("postgres.url"), "{err}");
}

#[tokio::test]
async fn no_server_is_unavailable_naming_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:pw@127.0.0.1:{port}/postgres?sslmode=disable");
    let err = connect_err(config(&url)).await;
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("pw@"), "no password in messages: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_databases_and_privileges_are_refused_clearly() {
    let server = server();
    let addr = server.addr();
    // A wrong password.
    let url = format!("postgres://postgres:wrong@{addr}/postgres?sslmode=disable");
    let err = connect_err(config(&url)).await;
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("check the user and password"), "{text}");
    assert!(!text.contains("wrong"), "no password in messages: {text}");
    // The password from a file (from an environment variable: cli/tests/postgres.rs,
    // where the test sets the variable in the child elector process only).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(
        &file,
        format!("{}\n", election_tests::launch::POSTGRES_PASSWORD),
    )
    .unwrap();
    let no_pw = format!("postgres://postgres@{addr}/postgres?sslmode=disable");
    PostgresBackend::connect(
        PostgresConfig {
            password_file: Some(file),
            ..config(&no_pw)
        },
        timing(),
    )
    .await
    .expect("password from a file");
    // A database that does not exist.
    let url = server.url().replace("/postgres?", "/nosuchdb?");
    let err = connect_err(config(&url)).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("database does not exist"), "{err}");

    // A user that may not create the table (PostgreSQL 15: no CREATE on public for
    // others), then one that may read it but not write it.
    let admin = raw(&server.url()).await;
    admin
        .batch_execute("CREATE ROLE weak LOGIN PASSWORD 'weakpw'")
        .await
        .unwrap();
    let weak = format!("postgres://weak:weakpw@{addr}/postgres?sslmode=disable");
    let err = connect_err(config(&weak)).await;
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{text}");
    assert!(text.contains("permission denied"), "{text}");
    assert!(text.contains("GRANT SELECT, INSERT, UPDATE"), "{text}");
    assert!(text.contains("\"public\".\"elector_leases\""), "{text}");
    // An owner creates it; the weak user may only read.
    let _owner = connect(&server.url(), timing()).await;
    admin
        .batch_execute("GRANT SELECT ON elector_leases TO weak")
        .await
        .unwrap();
    let err = connect_err(config(&weak)).await;
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{text}");
    assert!(text.contains("permission denied for table"), "{text}");
    admin
        .batch_execute("GRANT INSERT, UPDATE ON elector_leases TO weak")
        .await
        .unwrap();
    let backend = connect(&weak, timing()).await;
    let l = elector(&backend, "job", "w").campaign().await.unwrap();
    // Privileges revoked while leading: the renewal is refused, the leadership revoked.
    admin
        .batch_execute("REVOKE UPDATE ON elector_leases FROM weak")
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), l.lost())
        .await
        .expect("lost");
    assert_eq!(reason, election_core::LossReason::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_is_refused_as_unavailable_with_what_to_point_at() {
    let primary = server();
    let standby = tokio::task::block_in_place(|| PostgresServer::start_standby(&primary))
        .unwrap_or_else(|e| panic!("standby: {e}"));
    let err = connect_err(config(&standby.url())).await;
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{text}");
    assert!(text.contains("read-only standby"), "{text}");
    // Both hosts with target_session_attrs=read-write: the client picks the primary.
    let both = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres password={} dbname=postgres \
         sslmode=disable target_session_attrs=read-write",
        standby.addr().port(),
        primary.addr().port(),
        election_tests::launch::POSTGRES_PASSWORD
    );
    let backend = connect(&both, timing()).await;
    let _l = elector(&backend, "job", "a").campaign().await.unwrap();
    let on_primary = tokio::task::block_in_place(|| {
        primary.psql(&[
            "-c",
            "SELECT count(*) FROM elector_leases WHERE token IS NOT NULL",
        ])
    })
    .unwrap();
    assert_eq!(on_primary.trim(), "1", "the lease is on the primary");
}
