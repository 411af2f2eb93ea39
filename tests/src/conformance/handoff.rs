//! Handing leadership over: resign, drop, withdrawn candidacies, rising epochs.

use std::time::Duration;

use election_core::{Epoch, Leadership};
use tokio::time::Instant;

use super::Harness;
use super::support::{Changes, Ctx, spawn_campaign};

/// How long a candidate is shown to wait while another node leads before the leader lets
/// go: its campaign must not finish meanwhile, and by then it has made its first attempt
/// and registered its candidacy on any backend this suite runs (one round trip).
///
/// This is an assertion over a period, not a sleep to hope through: the [`Harness`] offers
/// no backend-independent way to see a candidacy registered, and no check below depends on
/// it. A candidate that registered late finds the election free once the leader let go and
/// is elected at once all the same, so a slow machine can only make these properties take
/// the less interesting path, never fail a correct backend.
const REGISTER: Duration = Duration::from_millis(300);

/// Fails unless `waiter` is still campaigning after [`REGISTER`] (it must wait while
/// `leader` leads).
async fn still_waiting<T>(
    ctx: &Ctx<'_>,
    waiter: &mut tokio::task::JoinHandle<T>,
    who: &election_core::NodeId,
    leader: &election_core::NodeId,
) {
    if tokio::time::timeout(REGISTER, waiter).await.is_ok() {
        ctx.fail(format!(
            "node {who}'s campaign finished while node {leader} led"
        ));
    }
}

/// Hands over from a leader to a waiting candidate by `release` (resign or drop) and
/// checks the candidate was elected without waiting for a TTL.
async fn handover(ctx: &Ctx<'_>, tag: &str, release: fn(Leadership) -> Option<Leadership>) {
    let name = ctx.election(tag);
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let la = ctx.campaign(&a, ctx.liveness()).await;
    let b_id = b.id.clone();
    let mut waiter = spawn_campaign(b);
    still_waiting(ctx, &mut waiter, &b_id, &a.id).await;

    // Without waiting for a TTL, the waiter must be elected before the old leadership's
    // own deadline would have passed, or within a quarter of the takeover bound, whichever
    // is later; either is well short of a lease running out (decision 013).
    let quarter = ctx.bounds.takeover_within / 4;
    let limit = la.deadline().max(Instant::now() + quarter);
    let released_at = Instant::now();
    let old_epoch = la.epoch();
    if let Some(la) = release(la) {
        ctx.ok("resign", la.resign().await);
    }
    let (b, result) = ctx
        .within(
            ctx.liveness(),
            "the waiting candidate being elected",
            waiter,
        )
        .await
        .unwrap_or_else(|e| ctx.fail(format!("the campaign task failed: {e}")));
    let (granted_at, lb) = ctx.ok("the waiting candidate's campaign", result);
    let lb = ctx.check_grant(&b, lb);
    if granted_at > limit {
        ctx.fail(format!(
            "node {} was elected {:?} after the leader let go, later than the old \
             leadership's deadline and than takeover_within/4 ({quarter:?}): the handover \
             waited for the lease to run out",
            b.id,
            granted_at - released_at
        ));
    }
    if lb.epoch() <= old_epoch {
        ctx.fail(format!(
            "epoch {} after a handover from epoch {old_epoch} does not rise",
            lb.epoch()
        ));
    }
    ctx.ok("resign", lb.resign().await);
}

/// `resign()` hands leadership to a waiting candidate at once, not after a TTL.
pub async fn resign_hands_over_without_waiting_for_ttl(h: &dyn Harness) {
    let ctx = Ctx::new(h, "resign_hands_over_without_waiting_for_ttl");
    handover(&ctx, "resign", Some).await;
}

/// Dropping a `Leadership` releases it: a waiting candidate is elected at once.
pub async fn dropping_a_leadership_releases_it(h: &dyn Harness) {
    let ctx = Ctx::new(h, "dropping_a_leadership_releases_it");
    handover(&ctx, "drop", |l| {
        drop(l);
        None
    })
    .await;
}

/// Dropping a `campaign()` future withdraws the candidacy: a later candidate is elected
/// when the leader resigns, and the withdrawn node never appears as leader.
pub async fn dropping_a_campaign_withdraws_the_candidacy(h: &dyn Harness) {
    let ctx = Ctx::new(h, "dropping_a_campaign_withdraws_the_candidacy");
    let name = ctx.election("withdraw");
    let a = ctx.elector(0, &name).await;
    let quitter = ctx.elector(1, &name).await;
    let c = ctx.elector(2, &name).await;
    let mut changes = Changes::new(c.elector.observe());

    let la = ctx.campaign(&a, ctx.liveness()).await;
    // The quitter campaigns long enough to register (see REGISTER), then its future is
    // dropped.
    if let Ok(result) = tokio::time::timeout(REGISTER, quitter.elector.campaign()).await {
        ctx.fail(format!(
            "node {}'s campaign finished while node {} led: {:?}",
            quitter.id,
            a.id,
            result.map(|l| l.epoch())
        ));
    }
    let c_id = c.id.clone();
    let mut waiter = spawn_campaign(c);
    still_waiting(&ctx, &mut waiter, &c_id, &a.id).await;
    let a_epoch = la.epoch();
    ctx.ok("resign", la.resign().await);

    // Everything observed up to the next grant after the resign: it must be the later
    // candidate's, never the withdrawn node's (which would also keep the later candidate
    // waiting).
    let (node, epoch) = loop {
        match changes.next(&ctx, ctx.liveness()).await {
            Some((node, _)) if node == quitter.id => ctx.fail(format!(
                "the withdrawn node {} appeared as leader: {}",
                quitter.id,
                changes.seen_text()
            )),
            Some((node, epoch)) if !(node == a.id && epoch == a_epoch) => break (node, epoch),
            _ => {}
        }
    };
    let (c, result) = ctx
        .within(ctx.liveness(), "the later candidate being elected", waiter)
        .await
        .unwrap_or_else(|e| ctx.fail(format!("the campaign task failed: {e}")));
    let (_, lc) = ctx.ok("the later candidate's campaign", result);
    let lc = ctx.check_grant(&c, lc);
    if (&node, epoch) != (&c.id, lc.epoch()) {
        ctx.fail(format!(
            "after node {} resigned, observe() reported {node}@{epoch} before the later \
             candidate {}@{}: {}",
            a.id,
            c.id,
            lc.epoch(),
            changes.seen_text()
        ));
    }
    // Once the later candidate resigns, nobody is left: a leaked candidacy would be
    // elected now.
    ctx.ok("resign", lc.resign().await);
    ctx.wait_leader(&a, None).await;
    let quiet = ctx.bounds.takeover_within.min(Duration::from_secs(2));
    let quiet_until = Instant::now() + quiet;
    while let Ok(change) = tokio::time::timeout_at(quiet_until, changes.next(&ctx, quiet * 2)).await
    {
        if let Some((node, epoch)) = change {
            ctx.fail(format!(
                "after the last candidate resigned, node {node} was elected at epoch {epoch} \
                 (a withdrawn candidacy leaked?): {}",
                changes.seen_text()
            ));
        }
    }
    match a.elector.leader().await {
        Ok(None) => {}
        Ok(Some(info)) => ctx.fail(format!(
            "after every candidate left, {} leads at epoch {}",
            info.node, info.epoch
        )),
        Err(e) => ctx.fail(format!("leader() failed: {e}")),
    }
}

/// Epochs strictly rise across every kind of handoff (resign, drop, expiry after a
/// cut-off, the same node again) and are never shared.
pub async fn epochs_rise_across_handoffs(h: &dyn Harness) {
    let ctx = Ctx::new(h, "epochs_rise_across_handoffs");
    let name = ctx.election("epochs");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let c = ctx.elector(2, &name).await;
    let mut epochs: Vec<(String, Epoch)> = Vec::new();
    let mut record = |how: &str, l: &Leadership| {
        if let Some((prev_how, prev)) = epochs.last() {
            if l.epoch() <= *prev {
                ctx.fail(format!(
                    "epoch {} ({how}) is not above epoch {prev} ({prev_how}); all: {epochs:?}",
                    l.epoch()
                ));
            }
        }
        epochs.push((how.to_owned(), l.epoch()));
    };

    let l = ctx.campaign(&a, ctx.liveness()).await;
    record("first grant", &l);
    ctx.ok("resign", l.resign().await);

    let l = ctx.campaign(&b, ctx.liveness()).await;
    record("after a resign", &l);
    ctx.wait_leader(&c, Some((&b.id, l.epoch()))).await;
    drop(l);

    let l = ctx.campaign(&a, ctx.liveness()).await;
    record("after a drop", &l);
    let l = {
        let again = l.epoch();
        ctx.ok("resign", l.resign().await);
        let l = ctx.campaign(&a, ctx.liveness()).await;
        if l.epoch() == again {
            ctx.fail("the same node got the same epoch twice");
        }
        l
    };
    record("the same node again", &l);

    // The holder is cut off; once its lease is gone another node takes over.
    a.node.cut_off().await;
    let lc = ctx.campaign(&c, ctx.liveness()).await;
    record("after the holder was cut off", &lc);
    ctx.within(ctx.liveness(), "the cut-off holder's lost()", l.lost())
        .await;
    drop(l);
    a.node.heal().await;
    ctx.wait_leader(&a, Some((&c.id, lc.epoch()))).await;
    ctx.ok("resign", lc.resign().await);

    let l = ctx.campaign(&a, ctx.liveness()).await;
    record("the healed node", &l);
    ctx.ok("resign", l.resign().await);
}
