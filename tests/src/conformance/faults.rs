//! A leader cut off from the backend: it learns in time, and nobody else leads before it
//! has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;

use super::Harness;
use super::support::{Ctx, SLACK, campaign_retrying};

/// A leader cut off from the backend sees `lost()` resolve within `bounds.loss_within`
/// (plus slack for a busy machine), and `is_held()` is false from then on.
pub async fn lost_fires_in_time_when_cut_off(h: &dyn Harness) {
    let ctx = Ctx::new(h, "lost_fires_in_time_when_cut_off");
    let name = ctx.election("lost");
    let a = ctx.elector(0, &name).await;
    let l = ctx.campaign(&a, ctx.liveness()).await;

    let cut_at = Instant::now();
    a.node.cut_off().await;
    let limit = ctx.bounds.loss_within + SLACK;
    let reason = match tokio::time::timeout(limit, l.lost()).await {
        Ok(reason) => reason,
        Err(_) => {
            a.node.heal().await;
            ctx.fail(format!(
                "lost() did not resolve within loss_within {:?} + slack {SLACK:?} after the \
                 leader was cut off (is_held: {})",
                ctx.bounds.loss_within,
                l.is_held()
            ))
        }
    };
    let took = cut_at.elapsed();
    if l.is_held() {
        ctx.fail(format!(
            "is_held() is true after lost() resolved ({reason})"
        ));
    }
    tracing::info!(backend = h.name(), ?took, %reason, "lost() after cut-off");
    a.node.heal().await;
    drop(l);
    // The healed node can lead again.
    let l = ctx.campaign(&a, ctx.liveness()).await;
    ctx.ok("resign", l.resign().await);
}

/// After the leader is cut off, a waiting candidate is elected only after the old
/// leader's `lost()` fired (its deadline had passed), and within `bounds.takeover_within`
/// (plus slack).
pub async fn takeover_only_after_the_cut_off_holder_lost(h: &dyn Harness) {
    let ctx = Ctx::new(h, "takeover_only_after_the_cut_off_holder_lost");
    let name = ctx.election("takeover");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let la = ctx.campaign(&a, ctx.liveness()).await;

    // A task that notes the moment the old leader's lost() fires.
    let fired = Arc::new(AtomicBool::new(false));
    let watch = la.loss_watch();
    let noted = fired.clone();
    let noter = tokio::spawn(async move {
        watch.lost().await;
        noted.store(true, Ordering::SeqCst);
    });

    a.node.cut_off().await;
    let cut_at = Instant::now();
    let limit = ctx.bounds.takeover_within + SLACK;
    let lb = match tokio::time::timeout(limit, campaign_retrying(&b)).await {
        Ok(Ok(lb)) => lb,
        Ok(Err(e)) => ctx.fail(format!("the waiting candidate's campaign failed: {e}")),
        Err(_) => ctx.fail(format!(
            "no other candidate was elected within takeover_within {:?} + slack {SLACK:?} \
             after the leader was cut off",
            ctx.bounds.takeover_within
        )),
    };
    // The ordering, checked on clocks that need no scheduling: the moment the new
    // leadership was granted (at the latest, now) must be past the old one's deadline.
    let granted_by = Instant::now();
    let took = cut_at.elapsed();
    let held_at_grant = la.is_held();
    let old_deadline = la.deadline();
    let lb = ctx.check_grant(&b, lb);
    if held_at_grant || old_deadline > granted_by {
        ctx.fail(format!(
            "node {} was elected at epoch {} while the cut-off node {} still held epoch {} \
             (is_held: {held_at_grant}, its deadline {:?} after the new grant)",
            b.id,
            lb.epoch(),
            a.id,
            la.epoch(),
            old_deadline.saturating_duration_since(granted_by)
        ));
    }
    ctx.within(SLACK, "the old leader's lost() task noting the loss", noter)
        .await
        .unwrap_or_else(|e| ctx.fail(format!("the watch task failed: {e}")));
    if !fired.load(Ordering::SeqCst) {
        ctx.fail("the old leader's lost() never fired");
    }
    if lb.epoch() <= la.epoch() {
        ctx.fail(format!(
            "the new epoch {} is not above the cut-off leader's {}",
            lb.epoch(),
            la.epoch()
        ));
    }
    tracing::info!(backend = h.name(), ?took, "takeover after cut-off");
    a.node.heal().await;
    drop(la);
    ctx.wait_leader(&a, Some((&b.id, lb.epoch()))).await;
    ctx.ok("resign", lb.resign().await);
}
