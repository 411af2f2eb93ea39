//! A leadership the agent holds on behalf of a local `elector run`, and the task that
//! keeps it until the caller is surely done with it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::{ElectionName, Leadership, LossReason, LossWatch};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio::time::Instant;

use super::{Agent, Metrics, lock};

/// A leadership held on behalf of a local caller.
pub(super) struct Hold {
    pub(super) election: ElectionName,
    pub(super) watch: LossWatch,
    pub(super) leadership: Mutex<Option<Leadership>>,
    /// When the last renewal was answered, and the lease it reported: the caller's
    /// deadline is no later than their sum.
    pub(super) last_renewed: Mutex<(Instant, Duration)>,
    /// The agent wants this hold to end (`elector resign`, agent shutdown): renewals get
    /// 410, and the agent resigns once the caller let go or its deadline has passed.
    pub(super) revoked: watch::Sender<bool>,
    /// The caller resigned (`DELETE /v1/holds/{id}`): its command is gone.
    pub(super) released: watch::Sender<bool>,
    pub(super) _local: OwnedMutexGuard<()>,
}

impl Hold {
    /// The caller's deadline: the last renewal's answer time plus the lease it reported.
    pub(super) fn caller_deadline(&self) -> Instant {
        let (at, left) = *lock(&self.last_renewed);
        at + left
    }
}

/// Keeps a hold until it is lost, resigned, revoked, or its caller stops renewing. The
/// agent resigns on its own only once the caller's deadline has passed, so the caller's
/// command is dead before another node can be elected.
pub(super) async fn keep(agent: Arc<Agent>, id: u64, hold: Arc<Hold>) {
    let timeout = agent.client_timeout();
    let labels = Metrics::labels(hold.election.as_str());
    let mut revoked = hold.revoked.subscribe();
    let reason = loop {
        let (last, _) = *lock(&hold.last_renewed);
        // By then the caller has surely stopped its command: its deadline, plus the grace
        // it gives the command to exit.
        let caller_deadline = hold.caller_deadline() + agent.kill_grace;
        let is_revoked = *revoked.borrow_and_update();
        let expiry = if is_revoked {
            caller_deadline
        } else {
            caller_deadline.max(last + timeout)
        };
        tokio::select! {
            reason = hold.watch.lost() => break Some(reason),
            _ = revoked.changed(), if !is_revoked => {}
            () = tokio::time::sleep_until(expiry) => {
                if lock(&hold.last_renewed).0 == last || is_revoked {
                    if is_revoked {
                        tracing::info!(election = %hold.election, hold = id, "revoked hold's caller deadline passed; resigning");
                    } else {
                        tracing::warn!(election = %hold.election, hold = id, "the local caller stopped renewing; resigning");
                    }
                    break None;
                }
            }
        }
    };
    if let Some(reason) = reason {
        if reason != LossReason::Resigned {
            let since = lock(&hold.last_renewed).0.elapsed();
            agent
                .metrics
                .loss_detection
                .get_or_create(&labels)
                .observe(since.as_secs_f64());
            tracing::warn!(election = %hold.election, hold = id, "leadership lost: {reason}");
        }
    }
    agent.resign_hold(id).await;
    agent.metrics.is_leader.get_or_create(&labels).set(0);
    // Keep the hold (renewals answer 410) until its caller has surely stopped its command,
    // so that an agent draining for shutdown does not exit under a running command.
    let mut released = hold.released.subscribe();
    tokio::select! {
        () = tokio::time::sleep_until(hold.caller_deadline() + agent.kill_grace) => {}
        _ = released.wait_for(|r| *r) => {}
    }
    lock(&agent.holds).remove(&id);
    tracing::debug!(election = %hold.election, hold = id, ?reason, "hold ended");
    if let Some(e) = lock(&agent.elections).get(&hold.election) {
        let mut h = lock(&e.hold);
        if *h == Some(id) {
            *h = None;
        }
    }
}
