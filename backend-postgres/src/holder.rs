//! A granted leadership: the renewal loop that extends election-core's `LeaseKeeper`
//! deadline, resignation, and cleanup of an acquisition whose outcome the caller never saw.

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{
    LeaderInfo, Leadership, LeadershipControl, LeaseKeeper, LossReason, NodeId, Result,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::lease::Lease;

/// A fresh per-leadership token: the node id plus 128 random bits.
pub(crate) fn new_token(node: &NodeId) -> String {
    format!("{node}/{:032x}", rand::random::<u128>())
}

/// Resigns one leadership: a release (compare-and-set on its token).
pub(crate) struct PgControl {
    lease: Lease,
    token: String,
    stop: Notify,
}

#[async_trait]
impl LeadershipControl for PgControl {
    /// Releases, retrying failures that may pass (a timeout, a reconnect) until the hold
    /// budget is spent: a release that gives up leaves the next candidate waiting for the
    /// whole TTL, and the leadership has already ended, so waiting costs no safety. The
    /// release is a compare-and-delete on our token, so repeating it is harmless.
    async fn resign(&self) -> Result<()> {
        self.stop.notify_one();
        let timing = self.lease.timing;
        let give_up = Instant::now() + timing.hold_budget();
        loop {
            match self.lease.release(&self.token).await {
                Ok(released) => {
                    tracing::debug!(election = %self.lease.name, released, "resigned");
                    return Ok(());
                }
                Err(e) if e.is_retryable() && Instant::now() + timing.retry_interval < give_up => {
                    tracing::debug!(election = %self.lease.name, error = %e, "releasing failed; retrying");
                    tokio::time::sleep(timing.retry_interval).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Hands out a [`Leadership`] for a lease acquired at `started` and starts renewing it.
pub(crate) fn start_holding(
    lease: Lease,
    token: String,
    info: LeaderInfo,
    started: Instant,
) -> Leadership {
    let timing = lease.timing;
    let control = Arc::new(PgControl {
        lease,
        token,
        stop: Notify::new(),
    });
    let (keeper, leadership) =
        LeaseKeeper::grant(info, timing.deadline_after(started), control.clone());
    tracing::info!(
        election = %control.lease.name,
        node = %leadership.info().node,
        epoch = %leadership.epoch(),
        "became leader"
    );
    tokio::spawn(renew(control, keeper));
    leadership
}

/// Renews every `renew_interval` (every `retry_interval` after a failure), each attempt cut
/// off at the leadership deadline. A renewal that finds another token ends the leadership
/// at once as `Revoked`; a lapsed deadline ends it as `Expired` (the keeper does that by
/// itself). Either way the loop only stops: it never releases (the handover rule). The lease
/// runs out on the server a TTL after the last renewal reached it, which is after the
/// holder's deadline plus its kill grace, unless the holder resigns first, which `elector
/// run` does once its child is gone. A release sent at the deadline would wait in the
/// socket of a stalled server and let the next candidate in while the old child is still
/// in its kill grace.
async fn renew(control: Arc<PgControl>, keeper: LeaseKeeper) {
    let timing = control.lease.timing;
    let watch = keeper.watch();
    let mut wait = timing.renew_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = control.stop.notified() => return,
            _ = watch.lost() => return,
        }
        let started = Instant::now();
        let deadline = keeper.deadline();
        match tokio::time::timeout_at(deadline, control.lease.renew(&control.token)).await {
            Ok(Ok(true)) => {
                if !keeper.extend_to(timing.deadline_after(started)) {
                    // The deadline passed while we waited: never revive a lapsed lease,
                    // and leave the lease to run out on the server.
                    return;
                }
                wait = timing.renew_interval;
            }
            Ok(Ok(false)) => {
                if keeper.end(LossReason::Revoked) {
                    tracing::warn!(election = %control.lease.name,
                        "lease taken over or gone (the table was reset, or a standby promoted that missed it?): leadership revoked");
                }
                return;
            }
            Ok(Err(e)) if e.kind() == election_core::ErrorKind::Protocol => {
                tracing::warn!(election = %control.lease.name, error = %e,
                    "renewal refused: leadership revoked");
                keeper.end(LossReason::Revoked);
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(election = %control.lease.name, error = %e, "renewal failed; retrying");
                wait = timing.retry_interval;
            }
            Err(_) => {
                tracing::warn!(election = %control.lease.name,
                    "renewal got no answer before the leadership deadline");
                wait = timing.retry_interval;
            }
        }
    }
}

/// An acquisition in flight. If it is dropped before [`settle`](Self::settle) (the
/// `campaign` future was cancelled, or the reply was lost to a timeout), the lease may
/// have been taken with a token nobody will renew: release it in the background so that
/// no one waits for its TTL.
pub(crate) struct PendingAcquire {
    lease: Lease,
    token: Option<String>,
}

impl PendingAcquire {
    pub(crate) fn new(lease: Lease, token: String) -> PendingAcquire {
        PendingAcquire {
            lease,
            token: Some(token),
        }
    }

    /// The outcome is known: nothing to clean up.
    pub(crate) fn settle(mut self) -> String {
        self.token.take().unwrap_or_default()
    }
}

impl Drop for PendingAcquire {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let lease = self.lease.clone();
            rt.spawn(async move {
                if let Ok(true) = lease.release(&token).await {
                    tracing::debug!(election = %lease.name, "released a lease whose acquisition was abandoned");
                }
            });
        }
    }
}
