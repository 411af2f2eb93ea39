//! Faults over real TCP with a recorded history: three members run a supervise loop each
//! (campaign, write through a shared `Fence` while leading, campaign again after a loss)
//! while the test cuts members off, heals, crashes and restarts them. The history checker
//! then finds no epoch granted twice, no epoch going back, no two holders at once and no
//! stale fenced write accepted.

mod cluster;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::Cluster;
use election_bully::BullyConfig;
use election_core::{ElectionName, Epoch, Fence, LeaderElector, NodeId};
use election_tests::history::History;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;

/// Relaxed timings with a wide safety margin (clock drift + kill grace = 400 ms), so that
/// a busy machine delaying the task that records a loss cannot fake an overlap.
fn wide_margin(c: &mut BullyConfig) {
    c.heartbeat = Duration::from_millis(50);
    c.failure_timeout = Duration::from_millis(1000);
    c.answer_timeout = Duration::from_millis(200);
    c.clock_drift = Duration::from_millis(100);
    c.kill_grace = Duration::from_millis(300);
}

/// The epoch a node holds right now, as its supervise loop knows it.
type Holding = Arc<Mutex<Option<Epoch>>>;

fn supervise(
    id: NodeId,
    elector: Arc<dyn LeaderElector>,
    history: History,
    fence: Arc<Fence>,
    holding: Holding,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let l = match elector.campaign().await {
                Ok(l) => l,
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(_) => return,
            };
            let epoch = l.epoch();
            history.granted(&id, epoch);
            *holding.lock().unwrap() = Some(epoch);
            loop {
                tokio::select! {
                    _ = l.lost() => {
                        history.lost(&id, epoch);
                        *holding.lock().unwrap() = None;
                        break;
                    }
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        if l.is_held() {
                            let ok = fence.admit(epoch).is_ok();
                            history.fenced_write(&id, epoch, ok);
                        }
                    }
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_crashes_and_restarts_keep_the_history_clean() {
    election_tests::init_tracing();
    let mut c = Cluster::start(3, wide_margin).await;
    let e = ElectionName::new("faults").unwrap();
    let history = History::new();
    let fence = Arc::new(Fence::new());
    let holding: Vec<Holding> = (0..3).map(|_| Arc::new(Mutex::new(None))).collect();
    let start = |c: &Cluster, i: usize| {
        supervise(
            c.ids[i].clone(),
            c.elector(i, &e),
            history.clone(),
            fence.clone(),
            holding[i].clone(),
        )
    };
    let mut tasks: Vec<JoinHandle<()>> = (0..3).map(|i| start(&c, i)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0xb0_11);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..8 {
        // Mostly the leader: that is where the faults matter.
        let leader = (0..3).find(|&i| holding[i].lock().unwrap().is_some());
        let victim = match leader {
            Some(l) if rng.random_bool(0.8) => l,
            _ => rng.random_range(0..3),
        };
        if rng.random_bool(0.5) {
            c.isolate(victim);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            c.heal();
        } else {
            // kill -9: the process and its guarded work are gone at once.
            tasks[victim].abort();
            let _ = (&mut tasks[victim]).await;
            if let Some(epoch) = holding[victim].lock().unwrap().take() {
                history.lost(&c.ids[victim], epoch);
            }
            c.crash(victim);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            c.restart(victim).await;
            tasks[victim] = start(&c, victim);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    for t in &tasks {
        t.abort();
    }
    if let Err(violations) = history.check() {
        let events: Vec<String> = history.events().iter().map(|e| e.to_string()).collect();
        panic!(
            "history violations: {violations:#?}\nevents:\n{}",
            events.join("\n")
        );
    }
    eprintln!(
        "{} grants, {} events, fence at epoch {}",
        history.grants(),
        history.events().len(),
        fence.highest()
    );
    assert!(history.grants() >= 2, "faults caused no handover at all");
}
