use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::boot_clock::{self, BootTimer};
use crate::{Epoch, NodeId, Result};

/// Who leads an election, as a backend knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// The leading node.
    pub node: NodeId,
    /// Its fencing token.
    pub epoch: Epoch,
    /// Wall-clock time the leadership began, as well as the backend can tell (for display;
    /// never used for safety).
    #[serde(with = "humantime_serde")]
    pub since: SystemTime,
}

/// Why a [`Leadership`] ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LossReason {
    /// The deadline passed without a successful renewal: the backend is unreachable or too
    /// slow, so leadership is no longer guaranteed.
    Expired,
    /// The backend says the lease is gone or another node holds the election (our key was
    /// deleted, our lease revoked, a higher term seen).
    Revoked,
    /// A Raft or Bully leader lost contact with a majority of its peers.
    QuorumLost,
    /// This node resigned (explicitly, or by dropping the [`Leadership`]).
    Resigned,
    /// The elector or its backend connection shut down.
    Shutdown,
    /// This node stepped down so that a healthy candidate of higher priority can lead. It
    /// did not hand over early: the next leader is granted only after this leadership's
    /// lease and its kill grace have passed, as after [`Expired`](Self::Expired).
    Yielded,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Expired => "the lease deadline passed without a renewal",
            LossReason::Revoked => "the backend revoked the lease or another node took over",
            LossReason::QuorumLost => "contact with a majority of peers was lost",
            LossReason::Resigned => "this node resigned",
            LossReason::Shutdown => "the elector shut down",
            LossReason::Yielded => "this node stepped down for a candidate of higher priority",
        })
    }
}

/// The state shared by a leadership's backend side and its holder.
#[derive(Clone, Copy, Debug)]
struct Hold {
    /// Leadership is guaranteed strictly before this instant.
    deadline: Instant,
    /// Set once, when the backend or the holder ends the leadership.
    lost: Option<LossReason>,
    /// [`boot_clock::suspended_ns`] when the leadership was granted: if it grows, the host
    /// was suspended, `deadline` (on the monotonic clock, which stood still) says nothing
    /// any more, and the leadership is over.
    suspended_at_grant: i64,
}

impl Hold {
    /// The loss as of `now`, if any: an explicit loss, the deadline having passed, or a
    /// suspend of the host since the grant.
    fn loss_at(&self, now: Instant) -> Option<LossReason> {
        self.loss_given(now, boot_clock::suspended_ns())
    }

    /// [`loss_at`](Self::loss_at) with the host's suspended time read as `suspended_now`.
    fn loss_given(&self, now: Instant, suspended_now: i64) -> Option<LossReason> {
        let suspended = boot_clock::suspended_between(self.suspended_at_grant, suspended_now);
        self.lost
            .or((now >= self.deadline || suspended).then_some(LossReason::Expired))
    }
}

/// How a backend resigns a leadership it granted.
///
/// # The handover rule
///
/// This is the *only* way a backend may let the next candidate in early. A leadership that
/// ends by expiry, revocation or any other loss the holder did not choose is never released
/// by the backend's own machinery (no release script, lease revoke, znode delete, transfer
/// or abdication when the deadline passes): the lease runs out on the server, or the
/// followers' promises expire, and the margin between the holder's deadline and that moment
/// is the holder's kill grace. A stalled server, network or process that wakes up inside
/// that window must therefore find nothing queued that would hand the election over. Only
/// the holder's [`Leadership::resign`] (or drop), made once its work has stopped, reaches
/// this trait.
#[async_trait]
pub trait LeadershipControl: Send + Sync + 'static {
    /// Gives the leadership up now so that the next candidate can take over at once;
    /// returns when the backend confirmed (or failed to).
    async fn resign(&self) -> Result<()>;

    /// Called when a [`Leadership`] is dropped without [`Leadership::resign`]: start
    /// resigning without blocking. The default spawns [`resign`](Self::resign) on the
    /// current tokio runtime, if there is one; without a runtime the lease simply expires.
    fn abandon(self: Arc<Self>) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = self.resign().await {
                    tracing::debug!(error = %e, "best-effort resign on drop failed");
                }
            });
        }
    }
}

/// The backend's side of one granted leadership: extends its deadline after each
/// successful renewal and ends it when the backend learns it is gone.
///
/// Backends create one with [`LeaseKeeper::grant`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaseKeeper {
    tx: Arc<watch::Sender<Hold>>,
}

impl LeaseKeeper {
    /// Grants a leadership that is guaranteed until `deadline` unless extended. Returns the
    /// keeper for the backend and the [`Leadership`] for the caller of `campaign`.
    pub fn grant(
        info: LeaderInfo,
        deadline: Instant,
        control: Arc<dyn LeadershipControl>,
    ) -> (LeaseKeeper, Leadership) {
        let (tx, rx) = watch::channel(Hold {
            deadline,
            lost: None,
            suspended_at_grant: boot_clock::suspended_baseline(),
        });
        let keeper = LeaseKeeper { tx: Arc::new(tx) };
        let leadership = Leadership {
            info,
            watch: LossWatch { rx },
            keeper: keeper.clone(),
            control: Some(control),
        };
        (keeper, leadership)
    }

    /// Moves the deadline to `deadline` if that is later. Returns `false`, and changes
    /// nothing, if the leadership has already ended (explicitly or because its deadline had
    /// passed when this was called): a lapsed leadership is never revived.
    pub fn extend_to(&self, deadline: Instant) -> bool {
        let mut extended = false;
        self.tx.send_if_modified(|hold| {
            // `now` is read under the lock, so no reader can have seen the deadline pass
            // before this check while this call still extends it.
            if hold.loss_at(Instant::now()).is_some() {
                return false;
            }
            extended = true;
            if deadline > hold.deadline {
                hold.deadline = deadline;
                true
            } else {
                false
            }
        });
        extended
    }

    /// Ends the leadership for `reason`, unless it has already ended. Returns whether this
    /// call ended it.
    pub fn end(&self, reason: LossReason) -> bool {
        self.tx.send_if_modified(|hold| {
            if hold.lost.is_some() {
                return false;
            }
            // A lapsed deadline already ended it as `Expired`; record that, not `reason`.
            hold.lost = Some(hold.loss_at(Instant::now()).unwrap_or(reason));
            true
        })
    }

    /// A watch on this leadership, for the backend's own renewal loop.
    pub fn watch(&self) -> LossWatch {
        LossWatch {
            rx: self.tx.subscribe(),
        }
    }

    /// Whether leadership still holds (as [`Leadership::is_held`]).
    pub fn is_held(&self) -> bool {
        self.tx.borrow().loss_at(Instant::now()).is_none()
    }

    /// The current deadline.
    pub fn deadline(&self) -> Instant {
        self.tx.borrow().deadline
    }
}

/// A cloneable view of whether a leadership still holds; hand it to tasks that must stop
/// when leadership ends.
#[derive(Clone, Debug)]
pub struct LossWatch {
    rx: watch::Receiver<Hold>,
}

impl LossWatch {
    /// Resolves once, when the leadership ends: at its deadline at the latest, even if the
    /// backend never answers again. Cancel-safe.
    ///
    /// Waits on tokio's timer and on a timer on the boot clock: after a suspend that outlasted
    /// the deadline it resolves at resume, as [`LossReason::Expired`] (the monotonic clock
    /// stood still while the servers' TTLs ran on). Needs a tokio runtime with I/O and
    /// time enabled (`enable_all`).
    pub async fn lost(&self) -> LossReason {
        let mut rx = self.rx.clone();
        let mut boot = BootTimer::new();
        let mut keepers_gone = false;
        loop {
            let hold = *rx.borrow_and_update();
            if let Some(reason) = hold.loss_at(Instant::now()) {
                return reason;
            }
            let boot_timer = async {
                match boot.as_mut() {
                    Some(timer) => timer.sleep_until(hold.deadline).await,
                    None => std::future::pending().await,
                }
            };
            // Loop to re-check after each: a renewal may have moved the deadline meanwhile.
            tokio::select! {
                () = tokio::time::sleep_until(hold.deadline) => {}
                () = boot_timer => {}
                // Once every keeper is gone nothing can extend the deadline any more; the
                // loop resolves at the deadline.
                changed = rx.changed(), if !keepers_gone => keepers_gone = changed.is_err(),
            }
        }
    }

    /// `false` from the moment [`lost`](Self::lost) would resolve.
    pub fn is_held(&self) -> bool {
        self.rx.borrow().loss_at(Instant::now()).is_none()
    }

    /// Why leadership ended, or `None` while it holds.
    pub fn loss(&self) -> Option<LossReason> {
        self.rx.borrow().loss_at(Instant::now())
    }

    /// The instant until which leadership is guaranteed without a further renewal.
    pub fn deadline(&self) -> Instant {
        self.rx.borrow().deadline
    }

    /// Waits until the deadline moves or the leadership ends, whichever comes first, and
    /// returns the deadline then. Returns at once if something changed since the last call
    /// (on this clone); pends forever once every keeper is gone and nothing can change.
    /// Cancel-safe. For forwarding each new deadline to another process, such as the
    /// guard that kills a child at its deadline by itself.
    pub async fn changed(&mut self) -> Instant {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.rx.borrow_and_update().deadline
    }
}

/// Proof of leading one election, with its fencing [`Epoch`].
///
/// Hold it while doing guarded work and select on [`lost`](Self::lost). Dropping it resigns
/// best-effort; [`resign`](Self::resign) hands over and waits for the backend to confirm.
///
/// # Resign or drop only after your work has stopped
///
/// Resigning (or dropping) lets the next candidate in at once, so do it only once the work
/// done under this leadership has stopped, also after [`lost`](Self::lost) fired: until you
/// drop it, a leadership that was lost by expiry or revocation still keeps the backend from
/// handing the election over before its lease runs out (the handover rule, see
/// [`LeadershipControl`]). `elector run` drops it only once the child's whole process group
/// is gone.
#[derive(Debug)]
#[must_use = "dropping a Leadership resigns it"]
pub struct Leadership {
    info: LeaderInfo,
    watch: LossWatch,
    keeper: LeaseKeeper,
    control: Option<Arc<dyn LeadershipControl>>,
}

impl fmt::Debug for dyn LeadershipControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeadershipControl")
    }
}

impl Leadership {
    /// The fencing token: pass it to every guarded write.
    pub fn epoch(&self) -> Epoch {
        self.info.epoch
    }

    /// The node, epoch and start time of this leadership.
    pub fn info(&self) -> &LeaderInfo {
        &self.info
    }

    /// Resolves once, when leadership is lost or no longer guaranteed. See
    /// [`LeaseTiming`](crate::LeaseTiming) for the deadline rule. Cancel-safe.
    pub async fn lost(&self) -> LossReason {
        self.watch.lost().await
    }

    /// `false` from the moment [`lost`](Self::lost) would resolve.
    pub fn is_held(&self) -> bool {
        self.watch.is_held()
    }

    /// The instant until which leadership is guaranteed without a further renewal.
    pub fn deadline(&self) -> Instant {
        self.watch.deadline()
    }

    /// A cloneable watch on this leadership, for other tasks.
    pub fn loss_watch(&self) -> LossWatch {
        self.watch.clone()
    }

    /// Hands leadership over now: marks it lost (so [`is_held`](Self::is_held) is false
    /// before any network round trip), then asks the backend to release it so the next
    /// candidate is elected without waiting for a TTL.
    pub async fn resign(mut self) -> Result<()> {
        self.keeper.end(LossReason::Resigned);
        match self.control.take() {
            Some(control) => control.resign().await,
            None => Ok(()),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            self.keeper.end(LossReason::Resigned);
            control.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn hold(deadline: Instant) -> Hold {
        Hold {
            deadline,
            lost: None,
            suspended_at_grant: 5 * SECOND,
        }
    }

    #[test]
    fn a_suspend_of_the_host_ends_a_leadership_whose_deadline_has_not_come() {
        let now = Instant::now();
        let h = hold(now + Duration::from_secs(60));
        assert_eq!(h.loss_given(now, 5 * SECOND), None);
        // Three seconds suspended: the monotonic clock stood still, the servers' did not.
        assert_eq!(h.loss_given(now, 8 * SECOND), Some(LossReason::Expired));
    }

    #[test]
    fn clock_read_noise_is_not_a_suspend() {
        let now = Instant::now();
        let h = hold(now + Duration::from_secs(60));
        assert_eq!(h.loss_given(now, 5 * SECOND + 1_000_000), None);
        assert_eq!(h.loss_given(now, 5 * SECOND - SECOND), None);
    }

    #[test]
    fn an_explicit_loss_keeps_its_reason_across_a_suspend() {
        let now = Instant::now();
        let h = Hold {
            lost: Some(LossReason::Resigned),
            ..hold(now + Duration::from_secs(60))
        };
        assert_eq!(h.loss_given(now, 9 * SECOND), Some(LossReason::Resigned));
    }
}
