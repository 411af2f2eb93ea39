//! Helpers shared by the real-server tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, LeaseTiming, NodeId};
use election_postgres::{PostgresBackend, PostgresConfig, tokio_postgres};
use election_tests::launch::PostgresServer;

/// Fast timings: 1 s TTL, deadline 850 ms after each renewal start.
pub fn timing() -> LeaseTiming {
    LeaseTiming::fast_for_tests()
}

/// Timings with a TTL far longer than any wait in a test, to show that something did
/// not wait for the TTL.
pub fn long_ttl() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_secs(60),
        renew_interval: Duration::from_secs(5),
        retry_interval: Duration::from_millis(500),
        clock_drift: Duration::from_millis(200),
        kill_grace: Duration::from_millis(100),
    }
}

/// A server for one test, started off the async worker.
pub fn server() -> PostgresServer {
    election_tests::init_tracing();
    PostgresServer::start().unwrap_or_else(|e| panic!("postgres: {e}"))
}

/// Settings for a test server: short timeouts that fit the fast timings.
pub fn config(url: &str) -> PostgresConfig {
    PostgresConfig {
        connect_timeout: Duration::from_millis(1000),
        statement_timeout: Duration::from_millis(250),
        ..PostgresConfig::with_url(url)
    }
}

pub async fn connect(url: &str, timing: LeaseTiming) -> PostgresBackend {
    PostgresBackend::connect(config(url), timing)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

pub fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn elector(backend: &PostgresBackend, election: &str, who: &str) -> Arc<dyn LeaderElector> {
    backend
        .election(&name(election), Candidate::new(node(who)))
        .unwrap()
}

/// A plain client of `url`, for inspecting and tampering with the table.
pub async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("raw connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}
