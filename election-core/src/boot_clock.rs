//! The host's boot clock (`CLOCK_BOOTTIME`), which counts the time the host spent
//! suspended, beside tokio's `Instant` (`CLOCK_MONOTONIC`), which stands still meanwhile.
//!
//! Leaderships measure their deadlines on tokio's clock (so tests can pause time), and use
//! the boot clock for one thing: to notice a suspend. The two clocks tick at the same
//! rate, so their difference ([`suspended_ns`]) grows only while the host is suspended;
//! a leadership that saw it grow ends as expired, since servers' TTLs and peers' timers ran
//! on while this host slept. A [`BootTimer`] wakes a waiter at its deadline on the boot
//! clock too, so that a suspend that outlasted the deadline is noticed at resume, not when
//! the monotonic clock finally gets there.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::{ClockId as Clock, clock_gettime};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

/// Two clock reads are microseconds apart, a suspend lasts seconds: a difference that grew
/// by more than this is a suspend.
const SUSPEND_NOISE_NS: i64 = 20_000_000;

/// Suspended time added by [`inject_suspend`], in nanoseconds.
static INJECTED_NS: AtomicI64 = AtomicI64::new(0);

/// Wakes every [`lost`](crate::Leadership::lost) waiter after [`inject_suspend`].
static RESUMED: Notify = Notify::const_new();

/// Set by the first [`inject_suspend`]: only then do waiters register with [`RESUMED`]
/// (a shared waiter list, which thousands of leaderships would otherwise contend on).
static INJECTING: AtomicBool = AtomicBool::new(false);

/// Fault injection: makes this process see a suspend of the host for `by`, as if it had
/// just resumed. [`suspended_ns`] grows by `by` from now on, and every leadership granted
/// before ends as [`Expired`](crate::LossReason::Expired): `is_held` turns `false` and
/// waiters in [`lost`](crate::Leadership::lost) wake at once, as the boot-clock timer
/// wakes them after a real suspend that outlasted their deadline. Leaderships granted
/// afterwards are unaffected.
///
/// For tests of a holder's reaction to a suspend, which a container cannot do for real.
/// It can only end leaderships early, never keep one longer: the safe side. Waiters listen
/// for it only from the first call on: call `inject_suspend(Duration::ZERO)` (no effect)
/// before the `lost()` waits whose waking is tested begin; earlier ones notice the suspend
/// at their next timer (their deadline), as they would any other expiry.
pub fn inject_suspend(by: Duration) {
    INJECTING.store(true, Ordering::SeqCst);
    let ns = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
    INJECTED_NS.fetch_add(ns, Ordering::SeqCst);
    RESUMED.notify_waiters();
}

/// A wake-up at the next [`inject_suspend`], once one was ever called (else `None`);
/// `enable` it before checking the condition it should re-check.
pub(crate) fn resumed() -> Option<Notified<'static>> {
    INJECTING
        .load(Ordering::Relaxed)
        .then(|| RESUMED.notified())
}

fn read(clock: Clock) -> i64 {
    // Both clocks exist on every Linux since 2.6.39; a failure would be a broken host.
    let ts = clock_gettime(clock).unwrap_or_else(|_| TimeSpec::new(0, 0));
    ts.tv_sec()
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec())
}

/// Now, in nanoseconds on `CLOCK_BOOTTIME`: one clock for every process on the host,
/// counting through suspend.
pub fn boot_now_ns() -> i64 {
    read(Clock::CLOCK_BOOTTIME)
}

/// How far the boot clock has run ahead of `CLOCK_MONOTONIC` since boot, in nanoseconds:
/// the time the host spent suspended. It grows only across a suspend.
///
/// The boot clock is read first, so a preemption between the two reads makes the value
/// *smaller*, never larger: a later reading can exceed an earlier one by more than
/// [`suspended_between`]'s noise only if the host was suspended in between.
pub fn suspended_ns() -> i64 {
    let boot = read(Clock::CLOCK_BOOTTIME);
    let mono = read(Clock::CLOCK_MONOTONIC);
    boot.saturating_sub(mono)
        .saturating_add(INJECTED_NS.load(Ordering::Relaxed))
}

/// [`suspended_ns`] as a baseline to compare later readings with: the largest of three
/// readings, so that a preemption during one of them cannot lower the baseline and make a
/// later, honest reading look like a suspend.
pub(crate) fn suspended_baseline() -> i64 {
    (0..3).map(|_| suspended_ns()).max().unwrap_or_default()
}

/// Whether the host was suspended between two readings of [`suspended_ns`].
pub fn suspended_between(before: i64, after: i64) -> bool {
    after.saturating_sub(before) > SUSPEND_NOISE_NS
}

/// A one-shot timer on the boot clock that a tokio task can await.
pub(crate) struct BootTimer {
    fd: AsyncFd<Fd>,
}

/// A timerfd, as tokio's `AsyncFd` wants it.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl BootTimer {
    /// A timer, or `None` where the host cannot give one (no timerfd, no file descriptor
    /// left) or there is no tokio runtime: waiters then rely on tokio's timer alone, which
    /// a suspend delays. Needs a runtime with I/O enabled, as every backend's connections
    /// do (tokio panics without it).
    pub(crate) fn new() -> Option<BootTimer> {
        tokio::runtime::Handle::try_current().ok()?;
        let fd = TimerFd::new(
            ClockId::CLOCK_BOOTTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()?;
        // SAFETY: the timerfd is owned by `Fd` (an `OwnedFd` inside `TimerFd`), stays open
        // until the `AsyncFd` drops it, and `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register(Fd(fd)) }.ok()?;
        Some(BootTimer { fd })
    }

    /// Resolves once the boot clock reaches the instant `deadline` names now; earlier in
    /// monotonic terms if the host is suspended meanwhile. Never resolves if the timer
    /// cannot be armed (the caller's tokio timer still runs).
    pub(crate) async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        let boot_deadline =
            boot_now_ns().saturating_add(nanos(deadline.saturating_duration_since(now)));
        let at = TimeSpec::new(
            boot_deadline.div_euclid(1_000_000_000),
            boot_deadline.rem_euclid(1_000_000_000),
        );
        if self
            .fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(at),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )
            .is_err()
        {
            return std::future::pending().await;
        }
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            // Reading the expiry count consumes it; `WouldBlock` means a spurious wakeup.
            match ready.try_io(|fd| {
                let mut count = [0u8; 8];
                nix::unistd::read(&fd.get_ref().0, &mut count).map_err(std::io::Error::from)
            }) {
                Ok(_) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_of_the_suspended_time_do_not_grow_without_a_suspend() {
        let base = suspended_baseline();
        for _ in 0..10_000 {
            assert!(!suspended_between(base, suspended_ns()));
        }
    }

    #[test]
    fn a_grown_difference_is_a_suspend() {
        assert!(suspended_between(0, 2_000_000_000));
        assert!(!suspended_between(0, 1_000_000));
    }

    #[tokio::test]
    async fn the_boot_timer_fires_at_its_deadline_not_before() {
        let mut timer = BootTimer::new().expect("timerfd on Linux");
        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        timer.sleep_until(deadline).await;
        assert!(Instant::now() >= deadline - Duration::from_millis(1));
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_fires_at_once() {
        let mut timer = BootTimer::new().expect("timerfd on Linux");
        tokio::time::timeout(
            Duration::from_secs(5),
            timer.sleep_until(Instant::now() - Duration::from_secs(1)),
        )
        .await
        .expect("fires at once");
    }
}
