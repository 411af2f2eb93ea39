//! Faults over real TCP with a recorded history: three members run a supervise loop each
//! (campaign, write through a shared `Fence` while leading, campaign again after a loss)
//! while the test cuts members off, heals, crashes and restarts them. The history checker
//! then finds no epoch granted twice, no epoch going back, no two holders at once and no
//! stale fenced write accepted.

mod cluster;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::Cluster;
use election_core::{ElectionName, Epoch, Fence, LeaderElector, NodeId};
use election_paxos::PaxosConfig;
use election_tests::conformance::SLACK;
use election_tests::history::History;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;

/// Relaxed timings with a wide safety margin (clock drift + kill grace = 400 ms), so that
/// a busy machine delaying the task that records a loss cannot fake an overlap.
fn wide_margin(c: &mut PaxosConfig) {
    c.lease = Duration::from_millis(1000);
    c.renew = Duration::from_millis(50);
    c.round_timeout = Duration::from_millis(200);
    c.backoff = Duration::from_millis(40);
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
    let mut rng = ChaCha8Rng::seed_from_u64(0x9a_05);
    let config = {
        let mut c = PaxosConfig::default();
        wide_margin(&mut c);
        c
    };
    // The conformance suite's takeover bound for these timings (acceptors hold the old
    // lease open for one lease time, then a back-off and a round or two), plus the suite's
    // slack for a busy machine.
    let takeover = config.lease * 2 + config.round_timeout * 4 + config.backoff * 2 + SLACK;
    // How long a fault that no condition ends (a follower cut off or crashed) lasts: longer
    // than an acceptor's open lease, so that it campaigns on its own side.
    let fault = config.lease + config.round_timeout * 2;
    let holder = |holding: &[Holding]| {
        (0..3).find_map(|i| holding[i].lock().unwrap().map(|epoch| (i, epoch)))
    };
    election_tests::wait_until(takeover, "a first leader", || holder(&holding).is_some()).await;
    let mut handovers = 0;
    for round in 0..8 {
        // Mostly the leader: that is where the faults matter.
        let leader = holder(&holding);
        let victim = match leader {
            Some((l, _)) if rng.random_bool(0.8) => l,
            _ => rng.random_range(0..3),
        };
        // A fault on the leader hands over: the two others elect one of them at a higher
        // epoch, within the takeover bound, while the old leader is still cut off or down.
        let handed_over = |holding: &[Holding]| {
            leader.is_some_and(|(old, epoch)| {
                (0..3).any(|i| i != old && holding[i].lock().unwrap().is_some_and(|e| e > epoch))
            })
        };
        let on_the_leader = leader.is_some_and(|(l, _)| l == victim);
        let what = format!("round {round}: a handover from the faulted leader {victim}");
        if rng.random_bool(0.5) {
            c.isolate(victim);
            if on_the_leader {
                election_tests::wait_until(takeover, &what, || handed_over(&holding)).await;
                handovers += 1;
            } else {
                tokio::time::sleep(fault).await;
            }
            c.heal();
        } else {
            // kill -9: the process and its guarded work are gone at once.
            tasks[victim].abort();
            let _ = (&mut tasks[victim]).await;
            if let Some(epoch) = holding[victim].lock().unwrap().take() {
                history.lost(&c.ids[victim], epoch);
            }
            c.crash(victim);
            if on_the_leader {
                election_tests::wait_until(takeover, &what, || handed_over(&holding)).await;
                handovers += 1;
            } else {
                tokio::time::sleep(fault).await;
            }
            c.restart(victim).await;
            tasks[victim] = start(&c, victim);
        }
        // Healed or restarted: the cluster settles on a leader again within the bound.
        let what = format!("round {round}: a leader after the fault ended");
        election_tests::wait_until(takeover, &what, || holder(&holding).is_some()).await;
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
    eprintln!("{handovers} faults on the leader, each handed over within {takeover:?}");
    assert!(handovers > 0, "the seeded schedule faulted no leader");
}
