//! `elector demo`: no config, no external service. Three nodes elect a leader, the leader
//! runs a guarded job that prints its epoch and writes through a fence, the leader
//! crashes, a new leader is elected with a higher epoch, and the old leader's late write is
//! refused by the fence.
//!
//! With the `raft` feature the three nodes are real raft peers on loopback (temporary data
//! dirs); without it they share an in-process lease server.

mod cluster;
#[cfg(not(feature = "raft"))]
mod memory;
#[cfg(feature = "raft")]
mod raft;

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use election_core::{ElectionName, Fence, Leadership, NodeId};

use crate::exit::{self, Failure};
use crate::run::{Job, Launcher};
use cluster::Cluster;

/// How long the demo waits for any one step.
const STEP: Duration = Duration::from_secs(30);

fn step<T>(what: &str, r: Result<T, tokio::time::error::Elapsed>) -> Result<T, Failure> {
    r.map_err(|_| Failure::new(exit::SOFTWARE, anyhow!("demo step timed out: {what}")))
}

/// Campaigns on every node whose index is in `among`; returns the first elected.
async fn first_elected(cluster: &Cluster, among: &[usize]) -> Result<(usize, Leadership), Failure> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(among.len());
    let mut tasks = Vec::new();
    for &i in among {
        let elector = cluster.nodes[i].1.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match elector.campaign().await {
                    Ok(l) => {
                        let _ = tx.send((i, l)).await;
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    drop(tx);
    let won = step(
        "electing a leader",
        tokio::time::timeout(STEP, rx.recv()).await,
    )?
    .ok_or_else(|| Failure::new(exit::SOFTWARE, anyhow!("no node was elected")))?;
    for t in &tasks {
        t.abort();
    }
    // Losers that were elected after the winner (impossible, but be tidy) resign on drop.
    while let Ok(extra) = rx.try_recv() {
        drop(extra);
    }
    Ok(won)
}

async fn guarded_job(
    kind: &str,
    node: &NodeId,
    election: &ElectionName,
    leadership: &Leadership,
) -> Result<(), Failure> {
    let epoch = leadership.epoch();
    let job = Job {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "echo \"    job: running on $ELECTOR_NODE_ID as leader of $ELECTOR_ELECTION at epoch $ELECTOR_EPOCH\"".into(),
        ],
    };
    let env = [
        (election_core::env::EPOCH, epoch.to_string()),
        (election_core::env::ELECTION, election.to_string()),
        (election_core::env::NODE_ID, node.to_string()),
        (election_core::env::BACKEND, kind.to_owned()),
    ];
    let mut child = Launcher::guarded()
        .spawn(
            &job,
            &env,
            leadership.deadline(),
            None,
            Duration::from_secs(1),
        )
        .context("starting the demo job")
        .map_err(|e| Failure::new(exit::SOFTWARE, e))?;
    let exit = step(
        "the demo job",
        tokio::time::timeout(STEP, child.wait()).await,
    )?;
    child.clean_up(Duration::from_secs(1)).await;
    if !exit.success() {
        return Err(Failure::new(
            exit::SOFTWARE,
            anyhow!("the demo job failed: {exit}"),
        ));
    }
    Ok(())
}

/// Runs the demo; exit code 0 when every step behaved as it should.
pub(crate) async fn run() -> Result<u8, Failure> {
    let election = ElectionName::new("demo").map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
    let mut cluster = cluster(&election).await?;
    println!("1. {}", cluster.description);
    let all: Vec<usize> = (0..cluster.nodes.len()).collect();
    let (leader, leadership) = first_elected(&cluster, &all).await?;
    let old = leadership.epoch();
    let old_node = cluster.nodes[leader].0.clone();
    println!("2. {old_node} was elected leader of `{election}` at epoch {old}");

    println!("3. {old_node} runs the guarded job (elector sets ELECTOR_EPOCH and friends):");
    guarded_job(cluster.kind, &old_node, &election, &leadership).await?;
    let fence = Fence::new();
    fence
        .admit(old)
        .map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
    println!("    the job's write at epoch {old} was accepted by the fence");

    println!("4. {old_node} crashes (no resign, no goodbye)");
    let crashed_at = tokio::time::Instant::now();
    (cluster.crash)(leader);
    // The crashed node's own view lapses at its deadline; keep the guard from resigning.
    std::mem::forget(leadership);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let (next, new_leadership) = first_elected(&cluster, &rest).await?;
    let new = new_leadership.epoch();
    let new_node = cluster.nodes[next].0.clone();
    println!(
        "5. {new_node} was elected leader at epoch {new} (higher than {old}), {} ms after the crash",
        crashed_at.elapsed().as_millis()
    );
    if new <= old {
        return Err(Failure::new(
            exit::SOFTWARE,
            anyhow!("epoch did not rise: {old} then {new}"),
        ));
    }
    guarded_job(cluster.kind, &new_node, &election, &new_leadership).await?;
    fence
        .admit(new)
        .map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
    println!("    the new leader's write at epoch {new} was accepted by the fence");

    println!("6. {old_node} wakes up late and tries to write with its old epoch {old}:");
    match fence.admit(old) {
        Err(e) => println!("    refused: {e}"),
        Ok(()) => {
            return Err(Failure::new(
                exit::SOFTWARE,
                anyhow!("the fence admitted a stale epoch"),
            ));
        }
    }
    let _ = new_leadership.resign().await;
    println!("done: one leader at a time, epochs only rise, and stale writes are fenced off");
    Ok(0)
}

/// The demo's three nodes: raft peers with the `raft` feature, else an in-process lease
/// server.
async fn cluster(election: &ElectionName) -> Result<Cluster, Failure> {
    #[cfg(feature = "raft")]
    return raft::cluster(election).await;
    #[cfg(not(feature = "raft"))]
    return memory::cluster(election).await;
}
