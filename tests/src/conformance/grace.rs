//! The handover rule: a holder that lost by missing its deadline keeps the election for
//! one kill grace more, even when whatever made it miss (a partition, a stalled server or
//! driver) wakes up inside that window with a release queued.

use super::Harness;
use super::support::{Ctx, SLACK, spawn_campaign};

/// How the holder is made to miss its deadline.
#[derive(Clone, Copy, Debug)]
enum Miss {
    /// [`TestNode::cut_off`](super::TestNode::cut_off), then heal.
    CutOff,
    /// [`TestNode::stall`](super::TestNode::stall), then resume.
    Stall,
}

/// A holder is cut off until its deadline has passed and healed early inside the window
/// between its deadline and deadline + `kill_grace`, keeping its lost `Leadership` (its child is
/// still in its kill grace). No other candidate is granted before deadline + `kill_grace`;
/// once the holder lets go, the waiting candidate is elected at a higher epoch.
pub async fn no_takeover_inside_the_kill_grace_after_a_cut_off(h: &dyn Harness) {
    let ctx = Ctx::new(h, "no_takeover_inside_the_kill_grace_after_a_cut_off");
    no_takeover_inside_the_kill_grace(&ctx, Miss::CutOff).await;
}

/// As [`no_takeover_inside_the_kill_grace_after_a_cut_off`], with the backend stalled
/// (server SIGSTOPped, peer driver stopped) instead of a partition, and resumed inside the
/// window: whatever it finds queued when it wakes must not hand the election over early.
pub async fn no_takeover_inside_the_kill_grace_after_a_stall(h: &dyn Harness) {
    let ctx = Ctx::new(h, "no_takeover_inside_the_kill_grace_after_a_stall");
    no_takeover_inside_the_kill_grace(&ctx, Miss::Stall).await;
}

async fn no_takeover_inside_the_kill_grace(ctx: &Ctx<'_>, miss: Miss) {
    let name = ctx.election(match miss {
        Miss::CutOff => "grace-cut",
        Miss::Stall => "grace-stall",
    });
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let la = ctx.campaign(&a, ctx.liveness()).await;
    // Steady state first: two renewals, so that the leadership is renewed as it is for
    // hours (a peer driver's shared deadline, for one, covers it only from its second
    // round on). A backend that renews less often than that just goes on.
    let mut renewals = la.loss_watch();
    for _ in 0..2 {
        if tokio::time::timeout(ctx.bounds.loss_within, renewals.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    let waiter = spawn_campaign(b);

    let unmiss = || async {
        match miss {
            Miss::CutOff => a.node.heal().await,
            Miss::Stall => a.node.resume().await,
        }
    };
    match miss {
        Miss::CutOff => a.node.cut_off().await,
        Miss::Stall => a.node.stall().await,
    }
    let limit = ctx.bounds.loss_within + SLACK;
    let reason = match tokio::time::timeout(limit, la.lost()).await {
        Ok(reason) => reason,
        Err(_) => {
            unmiss().await;
            ctx.fail(format!(
                "lost() did not resolve within loss_within {:?} + slack {SLACK:?} ({miss:?})",
                ctx.bounds.loss_within
            ))
        }
    };
    let deadline = la.deadline();
    let grace = ctx.bounds.kill_grace;
    let window_end = deadline + grace;

    // Wake up early in the window, with the lost leadership still held: a peer core's own
    // lease may still run a heartbeat longer than the holder's deadline, and a driver that
    // hands over when it finds its holder lapsed would do it now.
    tokio::time::sleep_until(deadline + grace / 10).await;
    unmiss().await;
    tokio::time::sleep_until(window_end).await;

    // The holder's work has stopped (a child is dead by deadline + kill grace): let go, as
    // `elector run` does once the child's process group is gone.
    let old_epoch = la.epoch();
    drop(la);
    let (b, result) = ctx
        .within(
            ctx.bounds.takeover_within + SLACK,
            "the waiting candidate being elected after the holder let go",
            waiter,
        )
        .await
        .unwrap_or_else(|e| ctx.fail(format!("the campaign task failed: {e}")));
    let (granted_at, lb) = ctx.ok("the waiting candidate's campaign", result);
    let lb = ctx.check_grant(&b, lb);
    if granted_at < window_end {
        ctx.fail(format!(
            "node {} was elected at epoch {} {:?} before the lost holder {}'s deadline + \
             kill_grace {grace:?} ({miss:?}, holder lost: {reason}): the election was handed \
             over while the old holder's child could still be in its kill grace",
            b.id,
            lb.epoch(),
            window_end.saturating_duration_since(granted_at),
            a.id
        ));
    }
    if lb.epoch() <= old_epoch {
        ctx.fail(format!(
            "epoch {} after epoch {old_epoch} does not rise",
            lb.epoch()
        ));
    }
    tracing::info!(backend = ctx.h.name(), ?miss, after_window = ?granted_at - window_end, "takeover after the kill grace");
    ctx.ok("resign", lb.resign().await);
}
