//! Helpers shared by the real-server tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, LeaseTiming, NodeId};
use election_redis::{RedisBackend, RedisConfig};

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

/// Settings for a test server: short timeouts that fit the fast timings.
pub fn config(url: &str) -> RedisConfig {
    RedisConfig {
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(200),
        ..RedisConfig::with_url(url)
    }
}

pub async fn connect(url: &str, timing: LeaseTiming) -> RedisBackend {
    RedisBackend::connect(config(url), timing)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub fn name(s: &str) -> ElectionName {
    ElectionName::new(s).unwrap()
}

pub fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn elector(backend: &RedisBackend, election: &str, who: &str) -> Arc<dyn LeaderElector> {
    backend
        .election(&name(election), Candidate::new(node(who)))
        .unwrap()
}

/// A raw connection for inspecting and tampering with keys.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
