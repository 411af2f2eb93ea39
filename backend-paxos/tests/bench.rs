//! Failover and handoff timings with the crate's default timings (lease 150 ms, renew 25 ms,
//! back-off 20 ms) on 3 nodes over real TCP on loopback (the nodes dial each other
//! directly, as in raft's benchmark, not through the tests' fault proxies), and the idle
//! cost of many elections. Prints figures, asserts none.
//!
//! `cargo test -p election-paxos --release --test bench -- --ignored --nocapture
//! --test-threads 1` (one benchmark at a time; name one to run it alone).

mod cluster;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cluster::{Cluster, defaults};
use election_core::{ElectionName, Leadership};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const ROUNDS: usize = 30;

fn campaign_all(
    c: &Cluster,
    e: &ElectionName,
    who: &[usize],
) -> mpsc::UnboundedReceiver<(usize, Leadership, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    for &i in who {
        let elector = c.elector(i, e);
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Ok(l) = elector.campaign().await {
                let _ = tx.send((i, l, Instant::now()));
                std::future::pending::<()>().await;
            }
        });
    }
    rx
}

async fn grant(
    rx: &mut mpsc::UnboundedReceiver<(usize, Leadership, Instant)>,
) -> (usize, Leadership, Instant) {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no grant within 10 s")
        .expect("campaign tasks ended")
}

fn report(what: &str, mut v: Vec<Duration>) {
    println!(
        "{what}: {:?}",
        v.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    v.sort();
    let pick = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: n={} median {:?} p99 {:?} min {:?} max {:?}",
        v.len(),
        pick(0.5),
        pick(0.99),
        v[0],
        v[v.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: takes ~50 s and prints timings without asserting them; run with --ignored --nocapture"]
async fn bench_crash_failover() {
    let mut c = Cluster::start_direct(3, defaults).await;
    let mut crash = Vec::new();
    for k in 0..ROUNDS {
        let e = ElectionName::new(format!("crash-{k}")).unwrap();
        let mut grants = campaign_all(&c, &e, &[0, 1, 2]);
        let (old, _l, _) = grant(&mut grants).await;
        // Let the acceptors accept a few renewals, as in steady state.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        c.crash(old);
        let (_, _, at) = grant(&mut grants).await;
        crash.push(at - t0);
        c.restart(old).await;
        // Measure from a steady state: the peers' dials to the restarted node back off up
        // to the reconnect cap (lease), and a restarted node takes no part for one lease
        // time; the wait leaves a wide margin.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    report(
        "crash failover (kill -9 of the leader -> next grant)",
        crash,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: takes ~5 s and prints timings without asserting them; run with --ignored --nocapture"]
async fn bench_resign_handoff() {
    let c = Cluster::start_direct(3, defaults).await;
    // Past the nodes' restart quiet time, with connections up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resign = Vec::new();
    for k in 0..ROUNDS * 2 {
        let e = ElectionName::new(format!("resign-{k}")).unwrap();
        let mut grants = campaign_all(&c, &e, &[0, 1, 2]);
        let (_, l, _) = grant(&mut grants).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        l.resign().await.unwrap();
        let (_, _, at) = grant(&mut grants).await;
        resign.push(at - t0);
    }
    report("resign handoff (resign() -> next grant)", resign);
}

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: takes ~30 s to minutes and prints the idle cost without asserting it; run with --ignored --nocapture"]
async fn bench_idle_cost_of_10000_elections_on_3_nodes() {
    election_tests::init_tracing();
    // `PAXOS_BENCH_ELECTIONS` changes the count.
    let count: usize = std::env::var("PAXOS_BENCH_ELECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let c = Cluster::start_direct(3, defaults).await;
    let started = Instant::now();
    // Each election campaigns again when its leadership is lost (as a supervise loop
    // would, and as raft's benchmark does), so the figure is that of a steady state.
    let led = Arc::new(AtomicUsize::new(0));
    let grants = Arc::new(AtomicUsize::new(0));
    let losses = Arc::new(std::sync::Mutex::new(BTreeMap::<String, usize>::new()));
    // `PAXOS_BENCH_RAMP` campaigns start at a time, the next batch once these lead (all
    // at once if 0): how a fleet's services come up, rather than 10,000 at one instant.
    let ramp: usize = std::env::var("PAXOS_BENCH_RAMP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    for k in 0..count {
        if ramp > 0 && k > 0 && k % ramp == 0 {
            let until = Instant::now() + Duration::from_secs(60);
            while led.load(Ordering::SeqCst) < k && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let e = ElectionName::new(format!("idle-{k}")).unwrap();
        // Spread the leaderships over the three nodes.
        let i = k % 3;
        let elector = c.elector(i, &e);
        let (led, grants, losses) = (led.clone(), grants.clone(), losses.clone());
        tokio::spawn(async move {
            while let Ok(l) = elector.campaign().await {
                led.fetch_add(1, Ordering::SeqCst);
                grants.fetch_add(1, Ordering::SeqCst);
                let why = l.lost().await;
                led.fetch_sub(1, Ordering::SeqCst);
                *losses
                    .lock()
                    .unwrap()
                    .entry(format!("{why:?}"))
                    .or_default() += 1;
            }
        });
    }
    // Every election led, and no new grant for 2 s.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (grants.load(Ordering::SeqCst), Instant::now());
    loop {
        assert!(
            Instant::now() < deadline,
            "not every election had a stable leader within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let g = grants.load(Ordering::SeqCst);
        if g != last.0 {
            last = (g, Instant::now());
        } else if led.load(Ordering::SeqCst) == count && last.1.elapsed() >= Duration::from_secs(2)
        {
            break;
        }
    }
    println!(
        "idle: {count} elections each led (stable for 2 s) {:?} after starting ({} grants; \
         leaderships lost meanwhile by reason: {:?})",
        started.elapsed(),
        grants.load(Ordering::SeqCst),
        losses.lock().unwrap()
    );
    let g0 = grants.load(Ordering::SeqCst);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let still = led.load(Ordering::SeqCst);
    let during = grants.load(Ordering::SeqCst) - g0;
    let share = (cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64();
    println!(
        "idle: {count} elections led on 3 nodes (one process): {:.1} % of one core in all, \
         {:.1} % per node; {still} of {count} led at the end; {during} grants during the window",
        share * 100.0,
        share * 100.0 / 3.0
    );
}
