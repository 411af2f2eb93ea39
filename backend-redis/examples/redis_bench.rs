//! Latency figures for the Redis backend against a private redis-server on loopback.
//!
//! ```text
//! cargo run -p election-redis --release --example redis_bench [ROUNDS]
//! ```
//!
//! Prints, in microseconds (median, p90, p99, max):
//! - acquire+release: one `try_campaign` that wins plus its `resign`;
//! - graceful handoff: from the holder's `resign()` call to the waiter's `campaign()`
//!   returning (target: median ≤ 2 ms);
//! - crash failover: from the moment a crashed holder's lease expires on the server to
//!   the waiter's `campaign()` returning (target ≤ 50 ms). The crashed lease is written by
//!   hand with a TTL; its expiry is known to within the write's round trip, so both bounds
//!   are shown.

use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaseTiming, NodeId};
use election_redis::{RedisBackend, RedisConfig};
use election_tests::launch::RedisServer;
use tokio::time::Instant;

fn timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_millis(300),
        renew_interval: Duration::from_millis(50),
        retry_interval: Duration::from_millis(50),
        clock_drift: Duration::from_millis(20),
        kill_grace: Duration::from_millis(30),
    }
}

async fn connect(url: &str) -> RedisBackend {
    let config = RedisConfig {
        command_timeout: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(500),
        ..RedisConfig::with_url(url)
    };
    RedisBackend::connect(config, timing())
        .await
        .expect("connect")
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_micros();
    println!(
        "{what:<36} n={:<5} median {:>6} µs  p90 {:>6} µs  p99 {:>6} µs  max {:>6} µs",
        samples.len(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        samples.last().unwrap().as_micros()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let server = RedisServer::start().expect("redis-server (see scripts/install-deps.sh)");
    let url = server.url();
    let a = connect(&url).await;
    let b = connect(&url).await;
    let name = ElectionName::new("bench").unwrap();
    let ea = a
        .election(&name, Candidate::new(NodeId::new("a").unwrap()))
        .unwrap();
    let eb = b
        .election(&name, Candidate::new(NodeId::new("b").unwrap()))
        .unwrap();

    // Warm up: scripts loaded, connections hot.
    for _ in 0..50 {
        ea.try_campaign()
            .await
            .unwrap()
            .unwrap()
            .resign()
            .await
            .unwrap();
    }

    let mut acquire_release = Vec::new();
    for _ in 0..rounds * 4 {
        let t = Instant::now();
        let l = ea.try_campaign().await.unwrap().expect("free");
        l.resign().await.unwrap();
        acquire_release.push(t.elapsed());
    }
    report("acquire+release", acquire_release);

    let mut handoff = Vec::new();
    for _ in 0..rounds {
        let held = ea.campaign().await.unwrap();
        let eb2 = eb.clone();
        let waiter = tokio::spawn(async move {
            let l = eb2.campaign().await.unwrap();
            (Instant::now(), l)
        });
        // Let the waiter find the lease held and start waiting.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t = Instant::now();
        held.resign().await.unwrap();
        let (elected, l) = waiter.await.unwrap();
        handoff.push(elected - t);
        l.resign().await.unwrap();
    }
    report("graceful handoff (resign -> elected)", handoff);

    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl = Duration::from_millis(150);
    let (mut lower, mut upper) = (Vec::new(), Vec::new());
    for _ in 0..(rounds / 5).max(10) {
        // A holder that acquired and then crashed: nobody renews or releases its lease.
        let sent = Instant::now();
        let _: () = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg("{elector:bench}:leader")
            .arg(&[
                "token", "crashed", "node", "crashed", "epoch", "1", "since", "0",
            ])
            .cmd("PEXPIRE")
            .arg("{elector:bench}:leader")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut raw)
            .await
            .unwrap();
        let acked = Instant::now();
        let l = eb.campaign().await.unwrap();
        let elected = Instant::now();
        // The server expired the lease between sent + ttl and acked + ttl.
        lower.push(elected.saturating_duration_since(acked + ttl));
        upper.push(elected.saturating_duration_since(sent + ttl));
        l.resign().await.unwrap();
    }
    report("crash failover, expiry -> elected (lo)", lower);
    report("crash failover, expiry -> elected (hi)", upper);
}
