//! A holder whose whole process is paused (GC, SIGSTOP, a VM stall): not just cut off, but
//! frozen, its renewal tasks and timers included.

use std::sync::Arc;

use election_core::{ErrorKind, Fence, Result};

use super::Harness;
use super::support::{Ctx, SLACK, campaign_retrying};

/// What the frozen holder reports from its own runtime.
enum Report {
    Granted(election_core::Epoch),
    Failed(String),
    /// After thawing, before looking at `lost()`: its write at its old epoch, and whether
    /// it still thought it led.
    Woke(Result<()>, bool),
}

/// A holder whose runtime is frozen (its thread blocked: renewals and timers stop, as in a
/// paused process; [`TestNode::freeze`](super::TestNode::freeze) does the same for what
/// runs outside it) loses the election to a waiting candidate, which is elected at a higher
/// epoch within `takeover_within` (plus slack) and writes through a shared [`Fence`]. When
/// the holder wakes up and writes before looking at `lost()`, the fence refuses its old
/// epoch, and `is_held()` is already false: no late renewal revived the leadership.
pub async fn a_frozen_holder_is_fenced_off(h: &dyn Harness) {
    let ctx = Ctx::new(h, "a_frozen_holder_is_fenced_off");
    let name = ctx.election("frozen");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let fence = Arc::new(Fence::new());

    // The holder lives on its own runtime, on its own thread, so that blocking the thread
    // freezes every task the backend spawned for the leadership.
    let (reports, mut from_holder) = tokio::sync::mpsc::unbounded_channel();
    let (freeze_tx, freeze_rx) = tokio::sync::oneshot::channel::<()>();
    let (thaw_tx, thaw_rx) = std::sync::mpsc::channel::<()>();
    let elector = a.elector.clone();
    let holder_fence = fence.clone();
    let holder_id = a.id.clone();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the holder");
        rt.block_on(async move {
            let member = super::support::Member {
                node: a.node,
                id: holder_id,
                elector,
            };
            let l = match campaign_retrying(&member).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = reports.send(Report::Failed(e.to_string()));
                    return;
                }
            };
            if let Err(e) = holder_fence.admit(l.epoch()) {
                let _ = reports.send(Report::Failed(format!("first write: {e}")));
                return;
            }
            let _ = reports.send(Report::Granted(l.epoch()));
            let _ = freeze_rx.await;
            // Frozen: nothing of this runtime runs until the test thaws it.
            let _ = thaw_rx.recv();
            let wrote = holder_fence.admit(l.epoch());
            let _ = reports.send(Report::Woke(wrote, l.is_held()));
            drop(l);
        });
    });

    let old = match ctx
        .within(
            ctx.liveness(),
            "the holder being elected",
            from_holder.recv(),
        )
        .await
    {
        Some(Report::Granted(epoch)) => epoch,
        Some(Report::Failed(e)) => ctx.fail(format!("the holder's campaign failed: {e}")),
        _ => ctx.fail("the holder's thread ended before it was elected"),
    };
    let _ = freeze_tx.send(());
    let frozen_node = ctx.node(0).await;
    frozen_node.freeze().await;
    let limit = ctx.bounds.takeover_within + SLACK;
    let new = match tokio::time::timeout(limit, campaign_retrying(&b)).await {
        Ok(Ok(l)) => ctx.check_grant(&b, l),
        outcome => {
            frozen_node.thaw().await;
            let _ = thaw_tx.send(());
            let _ = holder.join();
            match outcome {
                Ok(Err(e)) => ctx.fail(format!("the waiting candidate's campaign failed: {e}")),
                _ => ctx.fail(format!(
                    "no other candidate was elected within takeover_within {:?} + slack \
                     {SLACK:?} while the holder was frozen",
                    ctx.bounds.takeover_within
                )),
            }
        }
    };
    let new_write = fence.admit(new.epoch());
    frozen_node.thaw().await;
    let _ = thaw_tx.send(());
    let woke = ctx
        .within(SLACK, "the thawed holder's report", from_holder.recv())
        .await;
    let _ = holder.join();
    if new.epoch() <= old {
        ctx.fail(format!(
            "node {} was elected at epoch {}, not above the frozen holder's {old}",
            b.id,
            new.epoch()
        ));
    }
    ctx.ok(
        &format!("the new leader {}'s write at epoch {}", b.id, new.epoch()),
        new_write,
    );
    match woke {
        Some(Report::Woke(Err(e), held)) if e.kind() == ErrorKind::StaleEpoch => {
            if held {
                ctx.fail(format!(
                    "the thawed holder's leadership at epoch {old} still reports is_held() \
                     after node {} was elected at epoch {}: a late renewal revived it",
                    b.id,
                    new.epoch()
                ));
            }
        }
        Some(Report::Woke(Ok(()), _)) => ctx.fail(format!(
            "the thawed holder's write at its old epoch {old} was admitted after node {} \
             wrote at epoch {}",
            b.id,
            new.epoch()
        )),
        Some(Report::Woke(Err(e), _)) => ctx.fail(format!(
            "the thawed holder's write was refused, but not as a stale epoch: {e}"
        )),
        _ => ctx.fail("the thawed holder reported nothing"),
    }
    ctx.ok("resign", new.resign().await);
}
