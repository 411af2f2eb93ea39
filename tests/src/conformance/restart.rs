//! Epochs across restarts of the backend itself.

use election_core::Epoch;

use super::Harness;
use super::support::Ctx;

/// For every restart the harness says its backend survives ([`Harness::restarts`]): a
/// leadership granted after the restart has an epoch above every one granted before it.
/// A backend that declares no restart passes this vacuously; its harness documents why.
pub async fn epochs_rise_across_restarts(h: &dyn Harness) {
    let ctx = Ctx::new(h, "epochs_rise_across_restarts");
    let name = ctx.election("restart");
    let mut highest = Epoch::ZERO;
    for &restart in h.restarts() {
        let a = ctx.elector(0, &name).await;
        let before = ctx.campaign(&a, ctx.liveness()).await;
        if before.epoch() <= highest {
            ctx.fail(format!(
                "epoch {} granted after epoch {highest} does not rise",
                before.epoch()
            ));
        }
        highest = before.epoch();
        ctx.ok("resign", before.resign().await);
        tracing::info!(backend = h.name(), ?restart, %highest, "restarting the backend");
        h.restart(restart).await;
        // A fresh elector: peer backends' nodes are new processes' worth of state.
        let b = ctx.elector(1, &name).await;
        let after = ctx.campaign(&b, ctx.liveness()).await;
        if after.epoch() <= highest {
            ctx.fail(format!(
                "node {} was granted epoch {} after a restart ({restart:?}), not above the \
                 epoch {highest} granted before it: a fence would admit the old leader's \
                 writes again",
                b.id,
                after.epoch()
            ));
        }
        highest = after.epoch();
        ctx.ok("resign", after.resign().await);
    }
}
