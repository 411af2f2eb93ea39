//! Several nodes competing in a loop: at most one holder at any instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::history::History;

use super::Harness;
use super::support::{Ctx, campaign_retrying};

/// How many grants the contest runs for.
const GRANTS: usize = 15;

/// Several nodes campaign in a loop, each holding briefly and then resigning or dropping
/// its leadership; the recorded history shows at most one holder at any instant, epochs
/// unique and rising.
pub async fn at_most_one_holder(h: &dyn Harness) {
    let ctx = Ctx::new(h, "at_most_one_holder");
    let name = ctx.election("contest");
    let nodes = h.max_nodes().min(3);
    let history = History::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks: Vec<tokio::task::JoinHandle<election_core::Result<()>>> = Vec::new();
    for i in 0..nodes {
        let m = ctx.elector(i, &name).await;
        let history = history.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let l = campaign_retrying(&m).await?;
                let epoch = l.epoch();
                history.granted(&m.id, epoch);
                // Deterministic, varied hold times.
                let hold = Duration::from_millis(5 + (i as u64 * 7 + round * 13) % 25);
                tokio::select! {
                    _ = l.lost() => {
                        history.lost(&m.id, epoch);
                        continue;
                    }
                    () = tokio::time::sleep(hold) => {}
                }
                // Recorded before letting go, so that the next grant is recorded after it.
                history.resigned(&m.id, epoch);
                if round % 2 == 0 {
                    if let Err(e) = l.resign().await {
                        tracing::debug!(error = %e, "resign failed");
                    }
                } else {
                    drop(l);
                }
                round += 1;
            }
            Ok(())
        }));
    }

    let deadline = ctx.liveness() * 2;
    let progress = history.clone();
    let waited = tokio::time::timeout(deadline, async {
        while progress.grants() < GRANTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    if waited.is_err() {
        for t in &tasks {
            t.abort();
        }
        ctx.fail(format!(
            "only {} grants in {deadline:?} among {nodes} competing nodes:\n{history}",
            history.grants()
        ));
    }
    for t in tasks {
        match ctx
            .within(ctx.liveness(), "the competing nodes stopping", t)
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.fail(format!("a competing node's campaign failed: {e}")),
            Err(e) => ctx.fail(format!("a competing node's task failed: {e}")),
        }
    }
    if let Err(violations) = history.check() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        ctx.fail(format!(
            "the history of {} grants has violations:\n  {}\nhistory:\n{history}",
            history.grants(),
            list.join("\n  ")
        ));
    }
}
