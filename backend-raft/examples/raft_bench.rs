//! Benchmark figures for the Raft backend, with the default timings, on loopback (no
//! assertions; run in release):
//!
//! ```text
//! cargo run --release -p election-raft --example raft_bench -- [runs] [elections]
//! ```
//!
//! - crash failover: kill the leader (`RaftNode::crash`, the kill -9 analogue) → the next
//!   leadership granted on another node; median and p99 over `runs` (default 40);
//! - resign handoff: `Leadership::resign` → the next leadership granted; median and p99;
//! - idle cost: CPU of `elections` (default 10,000) elections led on 3 nodes in this
//!   process, over 10 s, from /proc/self/stat, divided by 3 for a per-node figure.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, Leadership, NodeId};
use election_raft::{RaftConfig, RaftNode};
use tokio::sync::mpsc;
use tokio::time::Instant;

type Grants = mpsc::UnboundedSender<(usize, Leadership, Instant)>;

struct Cluster {
    ids: Vec<NodeId>,
    listen: Vec<SocketAddr>,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<Arc<RaftNode>>>,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        let ids: Vec<NodeId> = (1..=n)
            .map(|i| NodeId::new(format!("n{i}")).unwrap())
            .collect();
        let listen = (0..n)
            .map(|_| {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
                l.local_addr().unwrap()
            })
            .collect();
        let mut c = Cluster {
            ids,
            listen,
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            nodes: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.restart(i).await;
        }
        c
    }

    async fn restart(&mut self, i: usize) {
        let config = RaftConfig {
            node_id: Some(self.ids[i].clone()),
            listen: self.listen[i],
            peers: self
                .ids
                .iter()
                .zip(&self.listen)
                .map(|(id, a)| (id.clone(), a.to_string()))
                .collect(),
            data_dir: self.dirs[i].path().to_owned(),
            secret: Some("bench-shared-secret-0123".into()),
            ..RaftConfig::default()
        };
        let node = loop {
            match RaftNode::start(config.clone()).await {
                Ok(n) => break n,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("{e}"),
            }
        };
        self.nodes[i] = Some(Arc::new(node));
    }

    fn campaign(&self, i: usize, e: &ElectionName, tx: &Grants) {
        self.campaign_tagged(i, e, i, tx);
    }

    /// Campaigns as node `i`; the grant is reported with `tag`.
    fn campaign_tagged(&self, i: usize, e: &ElectionName, tag: usize, tx: &Grants) {
        let elector = self.nodes[i]
            .as_ref()
            .unwrap()
            .election(e, Candidate::new(self.ids[i].clone()))
            .unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Ok(l) = elector.campaign().await {
                let _ = tx.send((tag, l, Instant::now()));
            }
        });
    }

    fn crash(&mut self, i: usize) {
        let node = Arc::try_unwrap(self.nodes[i].take().unwrap()).expect("sole handle");
        node.crash();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn report(what: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{what}: n={} median={:.1?} p99={:.1?} min={:.1?} max={:.1?}",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v[0],
        v[v.len() - 1]
    );
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<(usize, Leadership, Instant)>,
) -> (usize, Leadership, Instant) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no leader within 10 s")
        .unwrap()
}

async fn failover(runs: usize) {
    let mut c = Cluster::start(3).await;
    let e = ElectionName::new("bench-failover").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..3 {
        c.campaign(i, &e, &tx);
    }
    let (mut leader, mut held, _) = next(&mut rx).await;
    let mut crash = Vec::new();
    for _ in 0..runs {
        // Let the cluster settle (followers heard the leader recently) before the crash.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Take any grant that came meanwhile (a spurious election on a busy machine) so
        // that the node crashed is the current leader.
        while let Ok((i, l, _)) = rx.try_recv() {
            leader = i;
            held = l;
        }
        // On a loaded machine a lease can lapse while idle: wait for the next leader.
        let mut spurious = 0;
        while !held.is_held() {
            let (i, l, _) = next(&mut rx).await;
            leader = i;
            held = l;
            spurious += 1;
        }
        if spurious > 0 {
            println!("  ({spurious} leadership change(s) while idle before this run)");
        }
        let t0 = Instant::now();
        c.crash(leader);
        // After the crash: dropping it now sends nothing (the node is gone).
        drop(held);
        let (new, l, at) = next(&mut rx).await;
        crash.push(at - t0);
        c.restart(leader).await;
        c.campaign(leader, &e, &tx);
        leader = new;
        held = l;
    }
    report("crash failover (kill -> new leader)", crash);

    let mut handoff = Vec::new();
    for _ in 0..runs {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let old = leader;
        let t0 = Instant::now();
        held.resign().await.unwrap();
        let (new, l, at) = next(&mut rx).await;
        handoff.push(at - t0);
        c.campaign(old, &e, &tx);
        leader = new;
        held = l;
    }
    report("resign handoff (resign -> new leader)", handoff);
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

async fn idle(elections: usize) {
    let c = Cluster::start(3).await;
    let names: Vec<ElectionName> = (0..elections)
        .map(|k| ElectionName::new(format!("partition-{k}")).unwrap())
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Node i's current leadership of election k, if any; a node whose leadership ended
    // campaigns again (a supervise loop, checked by polling so that no task wakes on
    // every lease extension).
    let mut held: Vec<[Option<Leadership>; 3]> =
        (0..elections).map(|_| [None, None, None]).collect();
    for (k, e) in names.iter().enumerate() {
        for i in 0..3 {
            c.campaign_tagged(i, e, k * 3 + i, &tx);
        }
    }
    let t0 = Instant::now();
    let mut grants = 0usize;
    let mut last_check = Instant::now();
    let led = |held: &[[Option<Leadership>; 3]]| {
        held.iter()
            .filter(|ls| ls.iter().flatten().any(|l| l.is_held()))
            .count()
    };
    let mut settled_at = None;
    let mut losses = std::collections::BTreeMap::new();
    loop {
        if let Ok(Some((tag, l, _))) =
            tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
        {
            grants += 1;
            held[tag / 3][tag % 3] = Some(l);
            while let Ok((tag, l, _)) = rx.try_recv() {
                grants += 1;
                held[tag / 3][tag % 3] = Some(l);
            }
        }
        if last_check.elapsed() >= Duration::from_millis(200) {
            last_check = Instant::now();
            for (k, ls) in held.iter_mut().enumerate() {
                for (i, slot) in ls.iter_mut().enumerate() {
                    if let Some(l) = slot.as_ref().filter(|l| !l.is_held()) {
                        *losses
                            .entry(format!("{:?}", l.loss_watch().loss()))
                            .or_insert(0usize) += 1;
                        *slot = None;
                        c.campaign_tagged(i, &names[k], k * 3 + i, &tx);
                    }
                }
            }
            if led(&held) == elections {
                settled_at.get_or_insert(t0.elapsed());
                if t0.elapsed() >= settled_at.unwrap() + Duration::from_secs(2) {
                    break;
                }
            } else {
                settled_at = None;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "only {} of {elections} elections led after {:.1?} ({grants} grants)",
                led(&held),
                t0.elapsed()
            );
        }
    }
    println!(
        "{elections} elections each led (stable for 2 s) {:.1?} after starting ({grants} grants; \
         leaderships lost meanwhile by reason: {losses:?})",
        t0.elapsed()
    );
    let grants_before = grants;
    let ticks_per_s = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let before = cpu_ticks();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let used = (cpu_ticks() - before) as f64 / ticks_per_s;
    while let Ok((tag, l, _)) = rx.try_recv() {
        grants += 1;
        held[tag / 3][tag % 3] = Some(l);
    }
    println!(
        "idle: {elections} elections on 3 nodes: {:.2}% of one core for the process, {:.2}% per \
         node; {}/{elections} led at the end; {} grants during the window",
        used / window.as_secs_f64() * 100.0,
        used / window.as_secs_f64() * 100.0 / 3.0,
        led(&held),
        grants - grants_before
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let elections = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    if runs > 0 {
        failover(runs).await;
    }
    if elections > 0 {
        idle(elections).await;
    }
}
