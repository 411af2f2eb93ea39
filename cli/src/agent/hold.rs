//! A leadership the agent holds on behalf of a local `elector run`, and the task that
//! keeps it until the caller is surely done with it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::{ElectionName, Leadership, LossReason, LossWatch};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio::time::Instant;

use super::deadline_page::PageWriter;
use super::metrics::Metrics;
use super::server::{Agent, HoldId, lock};
use crate::clock::LAZY_LOSS_CHECK;

/// The shortest caller timeout: how long the agent keeps storing deadlines into a hold's
/// page after the caller's last `renew` (a lease, if that is longer).
pub(super) const CALLER_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// A leadership held on behalf of a local caller.
pub(super) struct Hold {
    pub(super) election: ElectionName,
    pub(super) watch: LossWatch,
    pub(super) leadership: Mutex<Option<Leadership>>,
    /// When the last renewal was answered, and the lease it reported: the caller's
    /// deadline is no later than their sum.
    pub(super) last_renewed: Mutex<(Instant, Duration)>,
    /// The agent wants this hold to end (`elector resign`, agent shutdown): the caller is
    /// told on its hold connection, and the agent resigns once the caller let go or its deadline (plus the kill
    /// grace) has passed.
    pub(super) revoked: watch::Sender<bool>,
    /// The caller resigned (`resign` on its hold connection): its command is gone.
    pub(super) released: watch::Sender<bool>,
    /// The deadline page shared with the caller, if one could be made.
    pub(super) page: Option<PageWriter>,
    /// When the caller last sent `renew`: it is alive for `caller_timeout` after.
    pub(super) alive_at: Mutex<Instant>,
    /// See [`CALLER_TIMEOUT_MIN`].
    pub(super) caller_timeout: Duration,
    pub(super) _local: OwnedMutexGuard<()>,
}

impl Hold {
    /// The caller's deadline: the last renewal's answer time plus the lease it reported.
    pub(super) fn caller_deadline(&self) -> Instant {
        let (at, left) = *lock(&self.last_renewed);
        at + left
    }

    /// Whether the caller sent `renew` within the caller timeout.
    pub(super) fn caller_alive(&self) -> bool {
        lock(&self.alive_at).elapsed() < self.caller_timeout
    }

    /// Resolves once the leadership ended. With a page, the caller's guard ends the
    /// command at the deadline by itself and nothing is stored into the page after it, so
    /// an expiry need only be noticed at the next [`LAZY_LOSS_CHECK`]: the hold's tasks
    /// then wake once a second, not once per lease. Explicit losses arrive at once.
    pub(super) async fn lost(&self) -> LossReason {
        if self.page.is_some() {
            self.watch.lost_checking_every(LAZY_LOSS_CHECK).await
        } else {
            self.watch.lost().await
        }
    }

    /// Passes the leadership's current deadline on to the caller: first as the caller's
    /// deadline here (so that [`keep`] never resigns before a deadline the caller's guard
    /// may have read), then into the page. `None`, and nothing passed on, once the
    /// leadership ended or the hold was revoked.
    pub(super) fn pass_on(&self) -> Option<Instant> {
        if !self.watch.is_held() || *self.revoked.borrow() {
            return None;
        }
        let now = Instant::now();
        let deadline = self.watch.deadline();
        *lock(&self.last_renewed) = (now, deadline.saturating_duration_since(now));
        if let Some(page) = &self.page {
            page.store(deadline);
        }
        Some(deadline)
    }
}

/// Keeps a hold until its caller is surely done with it, then resigns it.
///
/// The caller is done when it resigned (`resign` on its hold connection: its command is gone), or
/// once its deadline plus the kill grace and the clock drift has passed: by then the
/// caller's guard has killed the command on its own, even if the caller itself is stopped
/// or dead. Until then the agent never resigns, not even when its own leadership ended:
/// a lost leadership is handed over no earlier than its lease allows (the handover rule),
/// and a revoked hold (`elector resign`, agent shutdown) is only reported to the caller.
pub(super) async fn keep(agent: Arc<Agent>, id: HoldId, hold: Arc<Hold>) {
    let labels = Metrics::labels(hold.election.as_str());
    let mut released = hold.released.subscribe();
    // The caller's command is surely dead by then, whatever became of the caller.
    let caller_done = || hold.caller_deadline() + agent.kill_grace + agent.timing.clock_drift;
    let mut lost = None;
    // One wait for the whole hold, not one per wake-up (each arms a timer).
    let loss = hold.lost();
    tokio::pin!(loss);
    loop {
        let done_at = caller_done();
        tokio::select! {
            reason = &mut loss, if lost.is_none() => {
                if reason != LossReason::Resigned {
                    // Until the loss: an expiry noticed at a lazy check ended at the deadline.
                    let renewed = lock(&hold.last_renewed).0;
                    let at = match reason {
                        LossReason::Expired => hold.watch.deadline().min(Instant::now()),
                        _ => Instant::now(),
                    };
                    let since = at.saturating_duration_since(renewed);
                    agent
                        .metrics
                        .loss_detection
                        .get_or_create(&labels)
                        .observe(since.as_secs_f64());
                    tracing::warn!(election = %hold.election, hold = %id, "leadership lost: {reason}; kept until the caller's command is gone");
                }
                agent.metrics.is_leader.get_or_create(&labels).set(0);
                lost = Some(reason);
            }
            _ = released.wait_for(|r| *r) => break,
            () = tokio::time::sleep_until(done_at) => {
                // Renewals move the caller's deadline; only a deadline that stood still
                // until it passed ends the hold.
                if caller_done() <= Instant::now() {
                    if lost.is_none() {
                        tracing::warn!(election = %hold.election, hold = %id, "the local caller's deadline and kill grace passed without a renewal; resigning");
                    }
                    break;
                }
            }
        }
    }
    if let Some(l) = lock(&hold.leadership).as_ref() {
        let reason = lost.unwrap_or(LossReason::Resigned);
        agent.history.ended(&hold.election, l.info(), reason);
    }
    agent.resign_hold(&id).await;
    agent.metrics.is_leader.get_or_create(&labels).set(0);
    lock(&agent.holds).remove(&id);
    tracing::debug!(election = %hold.election, hold = %id, reason = ?lost, "hold ended");
    if let Some(e) = lock(&agent.elections).get(&hold.election) {
        let mut h = lock(&e.hold);
        if h.as_deref() == Some(id.as_str()) {
            *h = None;
        }
    }
}
