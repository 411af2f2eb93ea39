//! Watching an election from any node.

use super::Harness;
use std::time::Duration;

use election_core::{Epoch, NodeId};

use super::support::{Changes, Ctx};

fn expect(
    ctx: &Ctx<'_>,
    changes: &Changes,
    got: Option<(NodeId, Epoch)>,
    want: Option<(&NodeId, Epoch)>,
    when: &str,
) {
    let got = got.as_ref().map(|(n, e)| (n, *e));
    if got != want {
        ctx.fail(format!(
            "observe() reported {got:?} {when}, expected {want:?}; all changes seen: {}",
            changes.seen_text()
        ));
    }
}

/// `observe()` reports every change of leader, "no leader" included, with epochs, starting
/// with the current state; `leader()` agrees with it.
pub async fn observe_reports_every_change(h: &dyn Harness) {
    let ctx = Ctx::new(h, "observe_reports_every_change");
    let name = ctx.election("observe");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let watcher = ctx.elector(2, &name).await;
    let mut changes = Changes::new(watcher.elector.observe());
    // Each change follows an event the test already saw happen, so it must be prompt.
    let within = ctx.bounds.takeover_within + Duration::from_secs(5);

    let first = changes.next(&ctx, within).await;
    expect(&ctx, &changes, first, None, "before anyone campaigned");

    let la = ctx.campaign(&a, within).await;
    let got = changes.next(&ctx, within).await;
    expect(
        &ctx,
        &changes,
        got,
        Some((&a.id, la.epoch())),
        "after the first election",
    );
    ctx.wait_leader(&watcher, Some((&a.id, la.epoch()))).await;

    ctx.ok("resign", la.resign().await);
    let got = changes.next(&ctx, within).await;
    expect(
        &ctx,
        &changes,
        got,
        None,
        "after the leader resigned with no one waiting",
    );
    ctx.wait_leader(&watcher, None).await;

    let lb = ctx.campaign(&b, within).await;
    let got = changes.next(&ctx, within).await;
    expect(
        &ctx,
        &changes,
        got,
        Some((&b.id, lb.epoch())),
        "after the second election",
    );
    ctx.wait_leader(&watcher, Some((&b.id, lb.epoch()))).await;

    // A second observer, opened now, starts with the current leader as its node knows it.
    // Peer backends (Raft, Bully) learn of a new leader from its messages, so node `a` may
    // lag the watcher by a heartbeat: wait until its `leader()` agrees, then the observer
    // must start with exactly that.
    ctx.wait_leader(&a, Some((&b.id, lb.epoch()))).await;
    let mut late = Changes::new(a.elector.observe());
    let got = late.next(&ctx, within).await;
    expect(
        &ctx,
        &late,
        got,
        Some((&b.id, lb.epoch())),
        "as the first item of a new observer",
    );

    ctx.ok("resign", lb.resign().await);
    let got = changes.next(&ctx, within).await;
    expect(
        &ctx,
        &changes,
        got,
        None,
        "after the second leader resigned",
    );
    tracing::info!(backend = h.name(), changes = %changes.seen_text(), "observed");
}
