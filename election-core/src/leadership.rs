use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::boot_clock::{self, BootTimer};
use crate::lease_group::Joined;
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
    /// The loss as of `now`, with the host's suspended time read as `suspended_now`: an
    /// explicit loss, the deadline having passed, or a suspend of the host since the grant.
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
    moves: Arc<Moves>,
    elsewhere: Option<Arc<Elsewhere>>,
    /// The [`LeaseGroup`](crate::LeaseGroup) whose later extensions cover this leadership,
    /// once it joined one.
    group: Arc<OnceLock<Joined>>,
}

/// Extensions of a deadline, counted apart from the [`Hold`] watch: a deadline that only
/// moves later wakes no [`LossWatch::lost`] waiter (their timers, armed at the earlier
/// deadline, re-read it when they fire), only [`LossWatch::changed`] callers. With
/// thousands of leaderships extended together, waking every waiter per extension was most
/// of an idle node's work.
#[derive(Debug, Default)]
pub(crate) struct Moves {
    /// How many times the deadline moved.
    pub(crate) count: AtomicU64,
    /// Woken at each move.
    pub(crate) notify: Notify,
}

/// A deadline kept outside this process as well, read only when it matters.
///
/// A backend whose deadlines are extended *somewhere else* (another process storing each
/// extension into memory shared with this one, as `elector agent` does for its local
/// callers) grants with [`LeaseKeeper::grant_with_source`]: no task of this process then
/// wakes per extension. The source is consulted only once the keeper's own deadline has
/// passed; a later deadline it vouches for keeps the leadership, and the first time it
/// does not, the leadership is over for good (it is never revived, whatever the source
/// says later).
pub trait DeadlineSource: fmt::Debug + Send + Sync + 'static {
    /// The latest deadline the source vouches for now, if any.
    fn deadline(&self) -> Option<Instant>;

    /// The same deadline as nanoseconds on `CLOCK_BOOTTIME` (see [`boot_now_ns`]), in
    /// memory that a process forked after this call keeps sharing (a `MAP_SHARED`
    /// mapping), for a guard process that must keep the deadline even if this one stops.
    /// `None` (the default) if the source has no such word.
    ///
    /// [`boot_now_ns`]: crate::boot_now_ns
    fn shared_boot_ns(&self) -> Option<&AtomicI64> {
        None
    }
}

/// A keeper's [`DeadlineSource`], and whether a reader saw its deadline pass.
#[derive(Debug)]
struct Elsewhere {
    source: Arc<dyn DeadlineSource>,
    /// Set by the first reader that found both deadlines passed: latched, so that a
    /// leadership seen lost stays lost for every reader.
    lapsed: AtomicBool,
    /// The source's deadline that reader found passed: the leadership's last deadline.
    last: std::sync::Mutex<Option<Instant>>,
}

impl Elsewhere {
    /// Whether the source keeps the leadership beyond `now` (the keeper's own deadline
    /// having passed). Latches the answer `false`.
    fn keeps(&self, now: Instant) -> bool {
        if self.lapsed.load(Ordering::Acquire) {
            return false;
        }
        let deadline = self.source.deadline();
        if deadline.is_some_and(|d| d > now) {
            return true;
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.lapsed.swap(true, Ordering::AcqRel) {
            *last = deadline;
        }
        false
    }

    /// The source's deadline; once lapsed, the one that passed.
    fn deadline(&self) -> Option<Instant> {
        if self.lapsed.load(Ordering::Acquire) {
            *self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        } else {
            self.source.deadline()
        }
    }
}

/// `hold` with its deadline moved to its group's, if that covers it and is later.
fn with_group(hold: &Hold, group: Option<&Joined>) -> Hold {
    match group.and_then(Joined::covered_until) {
        Some(until) if until > hold.deadline => Hold {
            deadline: until,
            ..*hold
        },
        _ => *hold,
    }
}

/// The loss as of `now` of `hold`, whose deadline may also be kept by its `group` or
/// `elsewhere`.
fn loss_at(
    hold: &Hold,
    group: Option<&Joined>,
    elsewhere: Option<&Elsewhere>,
    now: Instant,
) -> Option<LossReason> {
    let hold = &with_group(hold, group);
    let suspended_now = boot_clock::suspended_ns();
    match hold.loss_given(now, suspended_now) {
        // Only the keeper's own deadline passed (no explicit loss, no suspend): the
        // source may vouch for a later one.
        Some(LossReason::Expired)
            if hold.lost.is_none()
                && !boot_clock::suspended_between(hold.suspended_at_grant, suspended_now)
                && elsewhere.is_some_and(|e| e.keeps(now)) =>
        {
            None
        }
        loss => loss,
    }
}

/// The latest of `hold`'s deadline, its group's and the one kept `elsewhere`.
fn deadline_of(hold: &Hold, group: Option<&Joined>, elsewhere: Option<&Elsewhere>) -> Instant {
    let hold = with_group(hold, group);
    match elsewhere.and_then(Elsewhere::deadline) {
        Some(d) if d > hold.deadline => d,
        _ => hold.deadline,
    }
}

impl LeaseKeeper {
    /// Grants a leadership that is guaranteed until `deadline` unless extended. Returns the
    /// keeper for the backend and the [`Leadership`] for the caller of `campaign`.
    pub fn grant(
        info: LeaderInfo,
        deadline: Instant,
        control: Arc<dyn LeadershipControl>,
    ) -> (LeaseKeeper, Leadership) {
        Self::grant_inner(info, deadline, control, None)
    }

    /// As [`grant`](Self::grant), for a leadership whose deadline is also extended
    /// elsewhere: `source` (see [`DeadlineSource`]) keeps it beyond the keeper's own
    /// deadline for as long as it vouches for a later one.
    pub fn grant_with_source(
        info: LeaderInfo,
        deadline: Instant,
        control: Arc<dyn LeadershipControl>,
        source: Arc<dyn DeadlineSource>,
    ) -> (LeaseKeeper, Leadership) {
        let elsewhere = Elsewhere {
            source,
            lapsed: AtomicBool::new(false),
            last: std::sync::Mutex::new(None),
        };
        Self::grant_inner(info, deadline, control, Some(Arc::new(elsewhere)))
    }

    fn grant_inner(
        info: LeaderInfo,
        deadline: Instant,
        control: Arc<dyn LeadershipControl>,
        elsewhere: Option<Arc<Elsewhere>>,
    ) -> (LeaseKeeper, Leadership) {
        let (tx, _) = watch::channel(Hold {
            deadline,
            lost: None,
            suspended_at_grant: boot_clock::suspended_baseline(),
        });
        let keeper = LeaseKeeper {
            tx: Arc::new(tx),
            moves: Arc::new(Moves::default()),
            elsewhere,
            group: Arc::new(OnceLock::new()),
        };
        let leadership = Leadership {
            info,
            watch: keeper.watch(),
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
        let mut moved = false;
        let elsewhere = self.elsewhere.as_deref();
        let group = self.group.get();
        self.tx.send_if_modified(|hold| {
            // `now` is read under the lock, so no reader can have seen the deadline pass
            // before this check while this call still extends it.
            if loss_at(hold, group, elsewhere, Instant::now()).is_some() {
                return false;
            }
            extended = true;
            if deadline > hold.deadline {
                hold.deadline = deadline;
                moved = true;
            }
            // A later deadline is stored without waking `lost()` waiters (see `Moves`).
            false
        });
        if moved {
            self.moves.count.fetch_add(1, Ordering::Release);
            self.moves.notify.notify_waiters();
        }
        extended
    }

    /// Ends the leadership for `reason`, unless it has already ended. Returns whether this
    /// call ended it.
    pub fn end(&self, reason: LossReason) -> bool {
        let elsewhere = self.elsewhere.as_deref();
        let group = self.group.get();
        self.tx.send_if_modified(|hold| {
            if hold.lost.is_some() {
                return false;
            }
            // A lapsed deadline already ended it as `Expired`; record that, not `reason`.
            hold.lost = Some(loss_at(hold, group, elsewhere, Instant::now()).unwrap_or(reason));
            true
        })
    }

    /// A watch on this leadership, for the backend's own renewal loop.
    pub fn watch(&self) -> LossWatch {
        LossWatch {
            rx: self.tx.subscribe(),
            moves: self.moves.clone(),
            seen_moves: self.moves.count.load(Ordering::Acquire),
            seen_group_moves: 0,
            elsewhere: self.elsewhere.clone(),
            group: self.group.clone(),
        }
    }

    /// Whether leadership still holds (as [`Leadership::is_held`]).
    pub fn is_held(&self) -> bool {
        loss_at(
            &self.tx.borrow(),
            self.group.get(),
            self.elsewhere.as_deref(),
            Instant::now(),
        )
        .is_none()
    }

    /// The current deadline (the latest of the keeper's own, its group's and its
    /// source's, if any).
    pub fn deadline(&self) -> Instant {
        deadline_of(
            &self.tx.borrow(),
            self.group.get(),
            self.elsewhere.as_deref(),
        )
    }

    /// Joins a group (see [`LeaseGroup::join`](crate::LeaseGroup::join)); only the first
    /// call counts. Returns whether this one did.
    pub(crate) fn join(&self, joined: Joined) -> bool {
        self.group.set(joined).is_ok()
    }

    /// Wakes every watcher of this leadership to re-check it (its group stopped covering
    /// it).
    pub(crate) fn touch(&self) {
        self.tx.send_modify(|_| {});
    }

    /// The group this keeper joined, if any.
    pub(crate) fn membership(&self) -> Option<&Joined> {
        self.group.get()
    }

    /// The deadline this keeper was given itself, without its group's or source's.
    pub(crate) fn own_deadline(&self) -> Instant {
        self.tx.borrow().deadline
    }
}

/// A cloneable view of whether a leadership still holds; hand it to tasks that must stop
/// when leadership ends.
#[derive(Clone, Debug)]
pub struct LossWatch {
    rx: watch::Receiver<Hold>,
    moves: Arc<Moves>,
    /// The moves [`changed`](Self::changed) has reported on this clone.
    seen_moves: u64,
    /// The group's moves [`changed`](Self::changed) has reported on this clone.
    seen_group_moves: u64,
    elsewhere: Option<Arc<Elsewhere>>,
    group: Arc<OnceLock<Joined>>,
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
        // Made at the first wait that needs it (`None` until then; `Some(None)` where the
        // host has no boot-clock timer): the group's task times grouped waiters.
        let mut boot: Option<Option<BootTimer>> = None;
        let mut keepers_gone = false;
        let mut group_gone = false;
        let elsewhere = self.elsewhere.as_deref();
        loop {
            // Registered before the check, so an injected suspend in between is not missed.
            let resumed = boot_clock::resumed();
            tokio::pin!(resumed);
            if let Some(r) = resumed.as_mut().as_pin_mut() {
                r.enable();
            }
            // Likewise the group's wake-ups (its deadline passed, a suspend, its task gone).
            let group = self.group.get();
            let mut group_rx = group.filter(|_| !group_gone).map(Joined::receiver);
            if let Some(g) = group_rx.as_mut() {
                g.borrow_and_update();
            }
            let hold = *rx.borrow_and_update();
            if let Some(reason) = loss_at(&hold, group, elsewhere, Instant::now()) {
                return reason;
            }
            // With a source, this wakes about once per lease (to read it), not per renewal.
            let deadline = deadline_of(&hold, group, elsewhere);
            // A deadline its group's task watches needs no timer of this waiter's own.
            let own_timers = group_rx.is_none() || !group.is_some_and(|g| g.times(deadline));
            // Made only once this waiter times a deadline itself: a grouped one never does.
            if own_timers && boot.is_none() {
                boot = Some(BootTimer::new());
            }
            let boot_timer = async {
                match boot.as_mut().and_then(Option::as_mut) {
                    Some(timer) if own_timers => timer.sleep_until(deadline).await,
                    _ => std::future::pending().await,
                }
            };
            let sleep = async {
                if own_timers {
                    tokio::time::sleep_until(deadline).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let resumed_wait = async move {
                match resumed.as_pin_mut() {
                    Some(r) => r.await,
                    None => std::future::pending().await,
                }
            };
            let group_woke = async {
                match group_rx.as_mut() {
                    Some(g) => g.changed().await.is_err(),
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(boot_timer, sleep, resumed_wait, group_woke);
            // A renewal that only moves the deadline later leaves the timers armed (no
            // system call per renewal): they fire at the old deadline, and the outer loop
            // re-checks and re-arms then. An end, or an earlier deadline, re-checks at once.
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    () = &mut boot_timer => break,
                    () = &mut resumed_wait => break,
                    gone = &mut group_woke => {
                        group_gone = gone;
                        break;
                    }
                    // Once every keeper is gone nothing can extend the deadline any more;
                    // the timers resolve it at the deadline.
                    changed = rx.changed(), if !keepers_gone => {
                        keepers_gone = changed.is_err();
                        let now = *rx.borrow_and_update();
                        // Also when the group stopped timing this waiter (it left).
                        if now.lost.is_some()
                            || deadline_of(&now, group, elsewhere) < deadline
                            || !own_timers
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Resolves once the leadership has ended, like [`lost`](Self::lost), but notices an
    /// end by its deadline only at the next check, one `period` after the last: an
    /// explicit end (the backend's, a resign) still at once. For a holder whose deadline
    /// is also enforced by someone who does not wait on this (elector's guard process,
    /// which reads the [`DeadlineSource`] by itself), so that waiting costs one wake-up
    /// per `period` instead of one per lease. Cancel-safe.
    pub async fn lost_checking_every(&self, period: Duration) -> LossReason {
        let mut rx = self.rx.clone();
        let mut keepers_gone = false;
        loop {
            rx.borrow_and_update();
            if let Some(reason) = self.loss() {
                return reason;
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                changed = rx.changed(), if !keepers_gone => keepers_gone = changed.is_err(),
            }
        }
    }

    /// `false` from the moment [`lost`](Self::lost) would resolve.
    pub fn is_held(&self) -> bool {
        self.loss().is_none()
    }

    /// Why leadership ended, or `None` while it holds.
    pub fn loss(&self) -> Option<LossReason> {
        loss_at(
            &self.rx.borrow(),
            self.group.get(),
            self.elsewhere.as_deref(),
            Instant::now(),
        )
    }

    /// The instant until which leadership is guaranteed without a further renewal (the
    /// later of the keeper's own deadline and its source's, if any).
    pub fn deadline(&self) -> Instant {
        deadline_of(
            &self.rx.borrow(),
            self.group.get(),
            self.elsewhere.as_deref(),
        )
    }

    /// The source this leadership's deadline is also kept in (see [`DeadlineSource`]),
    /// unless it has lapsed.
    pub fn deadline_source(&self) -> Option<&Arc<dyn DeadlineSource>> {
        self.elsewhere
            .as_deref()
            .filter(|e| !e.lapsed.load(Ordering::Acquire))
            .map(|e| &e.source)
    }

    /// Waits until the deadline moves or the leadership ends, whichever comes first, and
    /// returns the deadline then. Returns at once if something changed since the last call
    /// (on this clone); pends forever once every keeper is gone and nothing can change.
    /// Cancel-safe. For forwarding each new deadline to another process, such as the
    /// guard that kills a child at its deadline by itself.
    pub async fn changed(&mut self) -> Instant {
        let mut ended = false;
        loop {
            // Registered before the check, so a move in between is not missed.
            let moved = self.moves.notify.notified();
            let group_moves = self.group.get().map(Joined::moves);
            let group_moved = group_moves.map(|m| m.notify.notified());
            tokio::pin!(moved, group_moved);
            moved.as_mut().enable();
            if let Some(n) = group_moved.as_mut().as_pin_mut() {
                n.enable();
            }
            let count = self.moves.count.load(Ordering::Acquire);
            let group_count = group_moves.map_or(0, |m| m.count.load(Ordering::Acquire));
            if count != self.seen_moves || group_count != self.seen_group_moves {
                self.seen_moves = count;
                self.seen_group_moves = group_count;
                return self.own_deadline();
            }
            let group_wait = async {
                match group_moved.as_pin_mut() {
                    Some(n) => n.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut moved => {}
                () = group_wait => {}
                // An end (or, once every keeper is gone, nothing ever again).
                changed = self.rx.changed(), if !ended => match changed {
                    Ok(()) => {
                        self.rx.borrow_and_update();
                        return self.own_deadline();
                    }
                    Err(_) => ended = true,
                },
            }
        }
    }

    /// The deadline the backend gave (its own or its group's), whatever a source says.
    fn own_deadline(&self) -> Instant {
        with_group(&self.rx.borrow(), self.group.get()).deadline
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
