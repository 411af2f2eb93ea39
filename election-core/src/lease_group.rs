//! Deadlines that many leaderships share: one extension and one timer for all of them.
//!
//! A peer backend's leader renews every election it leads with one round, so each round
//! gives every leadership the same new deadline. Extending each [`LeaseKeeper`] and
//! letting each [`lost`](crate::Leadership::lost) waiter keep its own timer costs a system
//! call and a task wake-up per leadership per lease: with thousands of elections, most of
//! an idle node's work. A [`LeaseGroup`] holds that shared deadline instead: extending it
//! is one store, and one task of the group (with one tokio timer and one boot-clock timer)
//! wakes the waiters of its leaderships only when the deadline passes without an
//! extension, or the host was suspended.
//!
//! # Which extensions cover which leadership
//!
//! A keeper joins the group with [`LeaseGroup::join`] right after an extension that covered
//! it (its own deadline extended to the group's): it is covered by the group's *later*
//! extensions, never by one made before it joined (that round did not renew it). An
//! extension made after the group's deadline had passed starts a new era: the
//! leaderships that relied on the passed deadline have ended (a holder may have seen it)
//! and are never covered again, so a late round cannot revive them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::boot_clock::{self, BootTimer};
use crate::leadership::{LeaseKeeper, Moves};

/// The group's deadline, as every reader sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupState {
    /// Extensions so far.
    generation: u64,
    /// Keepers that joined at a generation below this relied on a deadline that passed:
    /// no later extension covers them.
    era: u64,
    /// The deadline of every covered leadership; `None` before the first extension.
    until: Option<Instant>,
    /// No task watches the deadline any more (its runtime shut down): waiters keep their
    /// own timers.
    unwatched: bool,
}

/// A keeper's membership of a group.
#[derive(Debug)]
pub(crate) struct Joined {
    rx: watch::Receiver<GroupState>,
    moves: Arc<Moves>,
    /// Where the keeper stands in the group. Changed only under the group's lock (taken
    /// first, then this one), so that no reader sees a membership and a group state that
    /// do not belong together.
    member: Mutex<Member>,
}

/// A keeper's standing in its group.
#[derive(Clone, Copy, Debug)]
enum Member {
    /// Joined (last) at this generation: later extensions cover it.
    Joined(u64),
    /// Left the group, which had covered it up to this deadline (`None`: not at all):
    /// later extensions do not cover it until it joins again.
    Left(Option<Instant>),
}

/// The deadline a group in state `s` gives a keeper standing at `member`.
fn covered(s: &GroupState, member: Member) -> Option<Instant> {
    match member {
        Member::Joined(joined) => (s.generation > joined && joined >= s.era)
            .then_some(s.until)
            .flatten(),
        Member::Left(until) => until,
    }
}

impl Joined {
    /// The group's deadline, if it covers this keeper.
    pub(crate) fn covered_until(&self) -> Option<Instant> {
        let s = self.rx.borrow();
        covered(&s, *lock(&self.member))
    }

    /// Whether the group's task wakes this keeper's waiters at `deadline`: it covers the
    /// keeper with exactly that deadline, and is still watched.
    pub(crate) fn times(&self, deadline: Instant) -> bool {
        let s = self.rx.borrow();
        let member = *lock(&self.member);
        // A keeper that left keeps the group's last deadline, but the group, extended
        // on, no longer wakes anyone at it.
        !s.unwatched && matches!(member, Member::Joined(_)) && covered(&s, member) == Some(deadline)
    }

    /// A receiver that sees the group's wake-ups (the deadline passed, a suspend, the
    /// watching task gone).
    pub(crate) fn receiver(&self) -> watch::Receiver<GroupState> {
        self.rx.clone()
    }

    pub(crate) fn moves(&self) -> &Arc<Moves> {
        &self.moves
    }
}

/// The shared deadline of many leaderships of one backend, renewed together by one
/// round: one store per extension, one task that wakes the holders only when it passes
/// unextended. A keeper is covered only by extensions after it [joined](Self::join); one
/// that comes after the deadline passed starts a new era that covers no earlier member.
/// Cheap to clone; every clone is the same group.
#[derive(Clone, Debug)]
pub struct LeaseGroup {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    tx: watch::Sender<GroupState>,
    moves: Arc<Moves>,
}

impl Default for LeaseGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl LeaseGroup {
    /// A group with no deadline yet. Its watching task runs on the current tokio runtime
    /// (which needs I/O and time enabled); outside a runtime there is none, and the waiters
    /// of its leaderships keep their own timers, as ungrouped ones do.
    pub fn new() -> LeaseGroup {
        let (tx, _) = watch::channel(GroupState {
            generation: 0,
            era: 0,
            until: None,
            unwatched: true,
        });
        let shared = Arc::new(Shared {
            tx,
            moves: Arc::new(Moves::default()),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            shared.tx.send_modify(|s| s.unwatched = false);
            // The guard is an argument, so dropping the task even before it first ran
            // (its runtime shut down) marks the group unwatched.
            rt.spawn(watch_deadline(Unwatched(Arc::downgrade(&shared))));
        }
        LeaseGroup { shared }
    }

    /// Extends every covered leadership to `until` (if later). Returns `false` if the
    /// group's deadline had already passed: the leaderships that relied on it have ended
    /// (check each keeper's [`is_held`](LeaseKeeper::is_held)), and only keepers that join
    /// from now on are covered by later extensions.
    pub fn extend_to(&self, until: Instant) -> bool {
        let mut kept = true;
        self.shared.tx.send_if_modified(|s| {
            // `now` is read under the lock, so no reader can have seen the deadline pass
            // before this check while this call still extends it.
            let lapsed = s.until.is_some_and(|u| Instant::now() >= u);
            let first = s.until.is_none();
            s.generation += 1;
            if lapsed {
                s.era = s.generation;
                kept = false;
            }
            s.until = Some(match s.until {
                Some(u) if !lapsed => u.max(until),
                _ => until,
            });
            // Only the first deadline and a new era are told (the watching task, which
            // waits for a deadline to arm its timers at, re-arms); a later deadline
            // wakes nobody: the task re-reads it when its timer fires.
            first || lapsed
        });
        self.shared.moves.count.fetch_add(1, Ordering::Release);
        self.shared.moves.notify.notify_waiters();
        kept
    }

    /// Makes `keeper` covered by the group's later extensions. Call it right after an
    /// [`extend_to`](Self::extend_to) that the keeper's own leadership was renewed by, once
    /// [`LeaseKeeper::extend_to`] gave the keeper that same deadline.
    ///
    /// Returns `false`, and changes nothing, if the keeper's deadline is earlier than the
    /// group's: the group's next extension could come after the keeper's deadline but
    /// before the group's, and so revive a leadership whose holder saw it end. (With the
    /// keeper's deadline at least the group's, an extension after it is one after the
    /// group's deadline too, which covers no earlier member.) Joining twice, or a second
    /// group, changes nothing.
    ///
    /// A keeper that joined before may join again (after an extension that came too late
    /// for the group, if its own deadline kept it): it is then covered from the group's
    /// next extension on, like a new member. A keeper of another group is refused.
    pub fn join(&self, keeper: &LeaseKeeper) -> bool {
        let rx = self.shared.tx.subscribe();
        // Read before taking the group's lock: a keeper's lock is never taken under the
        // group's (its own `extend_to` and `end` read the group under the keeper's lock),
        // so the two cannot deadlock. Only the driver moves a keeper's deadline, and it is
        // the caller, so the value cannot change meanwhile; an `end` meanwhile is final
        // whatever the group says.
        let own = keeper.own_deadline();
        let mut joined = false;
        // Under the group's lock, so that no reader sees a generation and a deadline
        // that do not belong together.
        self.shared.tx.send_if_modified(|s| {
            if s.until.is_some_and(|u| own < u) {
                return false;
            }
            joined = match keeper.membership() {
                Some(m) if Arc::ptr_eq(&m.moves, &self.shared.moves) => {
                    *lock(&m.member) = Member::Joined(s.generation);
                    true
                }
                Some(_) => false,
                None => keeper.join(Joined {
                    rx: rx.clone(),
                    moves: self.shared.moves.clone(),
                    member: Mutex::new(Member::Joined(s.generation)),
                }),
            };
            false
        });
        joined
    }

    /// Stops covering `keeper` by the group's later extensions: it keeps the deadline the
    /// group gave it so far, and its own. Call it *before* an
    /// [`extend_to`](Self::extend_to) that does not renew the keeper's leadership (a round
    /// of its own is running); extend it with [`LeaseKeeper::extend_to`] from then on, and
    /// [`join`](Self::join) it again once an extension covers it. Its `lost()` waiters
    /// arm their own timers. Returns `false`, and changes nothing, if the keeper was not a
    /// member (never joined, left already, or belongs to another group).
    pub fn leave(&self, keeper: &LeaseKeeper) -> bool {
        let Some(m) = keeper
            .membership()
            .filter(|m| Arc::ptr_eq(&m.moves, &self.shared.moves))
        else {
            return false;
        };
        let mut left = false;
        self.shared.tx.send_if_modified(|s| {
            let mut member = lock(&m.member);
            if let Member::Joined(_) = *member {
                *member = Member::Left(covered(s, *member));
                left = true;
            }
            false
        });
        if left {
            // A waiter that relied on the group's timer re-checks, and arms its own.
            keeper.touch();
        }
        left
    }

    /// The group's deadline, once extended.
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.tx.borrow().until
    }
}

fn lock(member: &Mutex<Member>) -> MutexGuard<'_, Member> {
    member.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the group unwatched if the watching task is dropped with the group still in use
/// (its runtime shut down), so that waiters elsewhere fall back to their own timers.
struct Unwatched(Weak<Shared>);

impl Drop for Unwatched {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.tx.send_modify(|s| s.unwatched = true);
        }
    }
}

/// The group's one task: sleeps until the deadline (on tokio's clock and on the boot
/// clock), re-reads it, and wakes every waiter once it passed unextended or the host was
/// suspended. Ends with the group.
async fn watch_deadline(guard: Unwatched) {
    let shared = guard.0.clone();
    let Some(mut rx) = shared.upgrade().map(|s| s.tx.subscribe()) else {
        return;
    };
    let mut boot = BootTimer::new();
    let mut baseline = boot_clock::suspended_baseline();
    let mut told_at: Option<Instant> = None;
    loop {
        let until = rx.borrow_and_update().until;
        let suspended = boot_clock::suspended_between(baseline, boot_clock::suspended_ns());
        let passed = until.is_some_and(|u| Instant::now() >= u);
        if suspended || (passed && told_at != until) {
            let Some(s) = shared.upgrade() else { return };
            // Every waiter re-checks its own leadership.
            s.tx.send_modify(|_| {});
            rx.borrow_and_update();
            if suspended {
                baseline = boot_clock::suspended_baseline();
            }
            told_at = until;
        }
        match until {
            Some(u) if Instant::now() < u => {
                let boot_timer = async {
                    match boot.as_mut() {
                        Some(timer) => timer.sleep_until(u).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep_until(u) => {}
                    () = boot_timer => {}
                    changed = rx.changed() => if changed.is_err() { return },
                }
            }
            // No deadline, or it passed and the waiters were told: wait for a new era.
            _ => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}
