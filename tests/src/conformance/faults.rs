//! A leader cut off from the backend: it learns in time, nobody else leads before it has,
//! and a fence refuses its late writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use election_core::{Epoch, ErrorKind, Fence};
use tokio::time::Instant;

use super::Harness;
use super::support::{Ctx, Member, SCHEDULING_SLACK, SLACK, campaign_retrying};
use crate::history::History;

/// A leader cut off from the backend sees `lost()` resolve within `bounds.loss_within` of
/// the cut-off, plus [`SCHEDULING_SLACK`](super::SCHEDULING_SLACK) (250 ms) for a timer that
/// fires late on a busy machine, and `is_held()` is false from then on.
///
/// The bound is the backend's own (for lease backends the deadline rule: the last
/// successful renewal started before the cut-off took effect, and the deadline is
/// `hold_budget` after that start), measured from the moment
/// [`cut_off`](super::TestNode::cut_off) returned. No more slack than a late timer needs: a
/// `lost()` that fires a kill grace or a renewal late already fails (decision 013).
pub async fn lost_fires_in_time_when_cut_off(h: &dyn Harness) {
    let ctx = Ctx::new(h, "lost_fires_in_time_when_cut_off");
    let name = ctx.election("lost");
    let a = ctx.elector(0, &name).await;
    let l = ctx.campaign(&a, ctx.liveness()).await;

    a.node.cut_off().await;
    let cut_at = Instant::now();
    let by = cut_at + ctx.bounds.loss_within + SCHEDULING_SLACK;
    let Ok(reason) = tokio::time::timeout(ctx.liveness(), l.lost()).await else {
        a.node.heal().await;
        ctx.fail(format!(
            "lost() never resolved ({:?}) after the leader was cut off (loss_within {:?}, \
             is_held: {})",
            ctx.liveness(),
            ctx.bounds.loss_within,
            l.is_held()
        ))
    };
    let lost_at = Instant::now();
    let took = lost_at - cut_at;
    if lost_at > by {
        a.node.heal().await;
        ctx.fail(format!(
            "lost() resolved {took:?} after the leader was cut off ({reason}), later than \
             loss_within {:?} + scheduling slack {SCHEDULING_SLACK:?}",
            ctx.bounds.loss_within
        ));
    }
    if l.is_held() {
        a.node.heal().await;
        ctx.fail(format!(
            "is_held() is true after lost() resolved ({reason})"
        ));
    }
    tracing::info!(
        backend = h.name(),
        ?took,
        loss_within = ?ctx.bounds.loss_within,
        %reason,
        "lost() after cut-off"
    );
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

/// A leader that is paused (cut off, keeping its stale [`Leadership`](election_core::Leadership)
/// and never looking at `lost()`) is fenced off: a waiting candidate is elected within
/// `bounds.takeover_within` (plus slack) at a higher epoch and writes through a shared
/// [`Fence`], after which the paused leader's late write with its old epoch is refused
/// with [`ErrorKind::StaleEpoch`]; the recorded history has no violation, and the old
/// leadership's `is_held()` is false by then.
pub async fn a_paused_leader_is_fenced_off(h: &dyn Harness) {
    let ctx = Ctx::new(h, "a_paused_leader_is_fenced_off");
    let name = ctx.election("fence");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let fence = Fence::new();
    let history = History::new();
    let write = |m: &Member, epoch: Epoch| {
        let admitted = fence.admit(epoch);
        history.fenced_write(&m.id, epoch, admitted.is_ok());
        admitted
    };

    let old = ctx.campaign(&a, ctx.liveness()).await;
    history.granted(&a.id, old.epoch());
    ctx.ok(
        &format!("node {}'s first write at epoch {}", a.id, old.epoch()),
        write(&a, old.epoch()),
    );

    // Node 0 is paused, as far as the backend can tell: nothing it sends arrives, and it
    // does not look at lost() before its next write.
    history.pause_injected();
    a.node.cut_off().await;
    let limit = ctx.bounds.takeover_within + SLACK;
    let new = match tokio::time::timeout(limit, campaign_retrying(&b)).await {
        Ok(Ok(l)) => ctx.check_grant(&b, l),
        Ok(Err(e)) => {
            a.node.heal().await;
            ctx.fail(format!("the waiting candidate's campaign failed: {e}"))
        }
        Err(_) => {
            a.node.heal().await;
            ctx.fail(format!(
                "no other candidate was elected within takeover_within {:?} + slack \
                 {SLACK:?} after the leader was paused",
                ctx.bounds.takeover_within
            ))
        }
    };
    history.granted(&b.id, new.epoch());
    if new.epoch() <= old.epoch() {
        a.node.heal().await;
        ctx.fail(format!(
            "node {} was elected at epoch {}, not above the paused leader's {}",
            b.id,
            new.epoch(),
            old.epoch()
        ));
    }
    ctx.ok(
        &format!("the new leader {}'s write at epoch {}", b.id, new.epoch()),
        write(&b, new.epoch()),
    );

    // Node 0 wakes up and, before looking at lost(), writes with the epoch it still has.
    match write(&a, old.epoch()) {
        Ok(()) => {
            a.node.heal().await;
            ctx.fail(format!(
                "the paused leader {}'s late write at its old epoch {} was admitted after \
                 node {} wrote at epoch {}",
                a.id,
                old.epoch(),
                b.id,
                new.epoch()
            ))
        }
        Err(e) if e.kind() == ErrorKind::StaleEpoch => {}
        Err(e) => {
            a.node.heal().await;
            ctx.fail(format!(
                "the paused leader's late write was refused, but not as a stale epoch: {e}"
            ))
        }
    }
    if let Err(violations) = history.check() {
        a.node.heal().await;
        ctx.fail(format!("history violations: {violations:?}\n{history}"));
    }
    if old.is_held() {
        a.node.heal().await;
        ctx.fail(format!(
            "the paused leader {}'s leadership at epoch {} still reports is_held() after \
             node {} was elected at epoch {}",
            a.id,
            old.epoch(),
            b.id,
            new.epoch()
        ));
    }

    a.node.heal().await;
    drop(old);
    ctx.wait_leader(&a, Some((&b.id, new.epoch()))).await;
    ctx.ok("resign", new.resign().await);
}
