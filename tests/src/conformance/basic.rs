//! Election basics: alone means elected, others wait, names are checked, elections are
//! independent.

use election_core::{ElectionName, ErrorKind, MAX_ELECTION_NAME_LEN};

use super::Harness;
use super::support::Ctx;

/// A node campaigning alone is elected, with an epoch above zero, and `leader()` names it.
pub async fn alone_is_elected(h: &dyn Harness) {
    let ctx = Ctx::new(h, "alone_is_elected");
    let name = ctx.election("alone");
    let a = ctx.elector(0, &name).await;
    let l = ctx.campaign(&a, ctx.liveness()).await;
    if !l.is_held() {
        ctx.fail("a fresh leadership reports is_held() == false");
    }
    ctx.wait_leader(&a, Some((&a.id, l.epoch()))).await;
    ctx.ok("resign", l.resign().await);
    ctx.wait_leader(&a, None).await;
}

/// While one node leads, a second candidate's `try_campaign` returns `None` and its
/// `campaign` does not finish — for longer than a lease lasts, so renewals must work —
/// and it is elected once the first resigns.
pub async fn second_candidate_waits(h: &dyn Harness) {
    let ctx = Ctx::new(h, "second_candidate_waits");
    let name = ctx.election("waits");
    let a = ctx.elector(0, &name).await;
    let b = ctx.elector(1, &name).await;
    let la = ctx.campaign(&a, ctx.liveness()).await;

    match b.elector.try_campaign().await {
        Ok(None) => {}
        Ok(Some(lb)) => ctx.fail(format!(
            "try_campaign on node {} returned epoch {} while node {} led at epoch {}",
            b.id,
            lb.epoch(),
            a.id,
            la.epoch()
        )),
        Err(e) => ctx.fail(format!("try_campaign while another leads failed: {e}")),
    }

    let hold = ctx.bounds.takeover_within + ctx.bounds.loss_within;
    let waiting = tokio::time::timeout(hold, super::support::campaign_retrying(&b)).await;
    if let Ok(result) = waiting {
        ctx.fail(format!(
            "node {}'s campaign finished ({}) while node {} led (is_held: {})",
            b.id,
            match result {
                Ok(l) => format!("elected at epoch {}", l.epoch()),
                Err(e) => format!("error: {e}"),
            },
            a.id,
            la.is_held()
        ));
    }
    if !la.is_held() {
        ctx.fail(format!(
            "node {} lost its leadership ({:?}) while nothing disturbed it for {hold:?}: \
             renewals do not keep it",
            a.id,
            la.loss_watch().loss()
        ));
    }
    ctx.wait_leader(&b, Some((&a.id, la.epoch()))).await;
    ctx.ok("resign", la.resign().await);
    let lb = ctx.campaign(&b, ctx.liveness()).await;
    ctx.wait_leader(&a, Some((&b.id, lb.epoch()))).await;
    ctx.ok("resign", lb.resign().await);
}

/// Invalid election names are refused with a clear configuration error before any backend
/// sees them, and every valid name, up to the longest, works on the backend.
pub async fn invalid_election_names_are_refused(h: &dyn Harness) {
    let ctx = Ctx::new(h, "invalid_election_names_are_refused");
    let too_long = "x".repeat(MAX_ELECTION_NAME_LEN + 1);
    for bad in [
        "",
        "a/b",
        "../etc",
        "-lead",
        ".hidden",
        "has space",
        "café",
        "a\0b",
        "{tag}",
        &too_long,
    ] {
        match ElectionName::new(bad) {
            Ok(_) => ctx.fail(format!("the election name {bad:?} was accepted")),
            Err(e) => {
                if e.kind() != ErrorKind::Config || !e.to_string().contains("election name") {
                    ctx.fail(format!(
                        "the refusal of {bad:?} is unclear: {e} ({:?})",
                        e.kind()
                    ));
                }
            }
        }
    }
    // The longest valid name, with every allowed kind of character, maps into the
    // backend's key space.
    let base = ctx.election("n");
    let mut long = format!("{base}.A_z-9");
    while long.len() < MAX_ELECTION_NAME_LEN {
        long.push('z');
    }
    let name = ctx.ok("the longest valid name", ElectionName::new(long));
    let a = ctx.elector(0, &name).await;
    let l = ctx.campaign(&a, ctx.liveness()).await;
    ctx.wait_leader(&a, Some((&a.id, l.epoch()))).await;
    ctx.ok("resign", l.resign().await);
}

/// Two elections on one backend are independent: two leaders at once, and resigning one
/// leaves the other alone.
pub async fn elections_are_independent(h: &dyn Harness) {
    let ctx = Ctx::new(h, "elections_are_independent");
    let first = ctx.election("indep-a");
    let second = ctx.election("indep-b");
    let a1 = ctx.elector(0, &first).await;
    let b2 = ctx.elector(1, &second).await;
    let b1 = ctx.elector(1, &first).await;

    let la = ctx.campaign(&a1, ctx.liveness()).await;
    let lb = ctx.campaign(&b2, ctx.liveness()).await;
    if !la.is_held() || !lb.is_held() {
        ctx.fail("two leaders of two elections could not hold at the same time");
    }
    ctx.wait_leader(&b1, Some((&a1.id, la.epoch()))).await;
    ctx.wait_leader(&b2, Some((&b2.id, lb.epoch()))).await;

    // Resigning the first election leaves the second's leader in place, and the second's
    // leader can win the first as well.
    ctx.ok("resign", la.resign().await);
    let lb1 = ctx.campaign(&b1, ctx.liveness()).await;
    if !lb.is_held() {
        ctx.fail(format!(
            "node {} lost election {second} when election {first} changed hands",
            b2.id
        ));
    }
    ctx.wait_leader(&b2, Some((&b2.id, lb.epoch()))).await;
    ctx.wait_leader(&a1, Some((&b1.id, lb1.epoch()))).await;
    ctx.ok("resign", lb1.resign().await);
    ctx.ok("resign", lb.resign().await);
}
