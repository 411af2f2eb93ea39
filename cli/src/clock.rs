//! The host's boot clock (`CLOCK_BOOTTIME`): one clock for every process on the host,
//! counting through suspend. elector hands deadlines to its guard, and the agent hands
//! them to its callers, as nanoseconds on it, so that a message read late (by a process
//! that was stopped meanwhile) still names the same instant.

use std::time::Duration;

use tokio::time::Instant;

/// Now, in nanoseconds on `CLOCK_BOOTTIME`. Async-signal-safe (one `clock_gettime`).
pub(crate) fn boot_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the local `ts`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts);
    }
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// How far the boot clock has run ahead of `CLOCK_MONOTONIC` since boot, in nanoseconds:
/// the time the host spent suspended. It grows only across a suspend.
pub(crate) fn suspended_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let boot = boot_now_ns();
    // SAFETY: clock_gettime writes into the local `ts`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    let mono = ts
        .tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec);
    boot.saturating_sub(mono)
}

/// Whether the host was suspended between two readings of [`suspended_ns`] (by more than
/// the reading's own noise).
pub(crate) fn suspended_between(before: i64, after: i64) -> bool {
    after.saturating_sub(before) > SUSPEND_NOISE_NS
}

/// Two clock reads are microseconds apart; a suspend lasts seconds.
const SUSPEND_NOISE_NS: i64 = 20_000_000;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `at` as nanoseconds on `CLOCK_BOOTTIME`.
pub(crate) fn to_boot_ns(at: Instant) -> i64 {
    let now = Instant::now();
    let boot = boot_now_ns();
    if at >= now {
        boot.saturating_add(nanos(at - now))
    } else {
        boot.saturating_sub(nanos(now - at))
    }
}

/// The instant `ns` nanoseconds on `CLOCK_BOOTTIME` name.
pub(crate) fn from_boot_ns(ns: i64) -> Instant {
    let now = Instant::now();
    let boot = boot_now_ns();
    let between = Duration::from_nanos(ns.abs_diff(boot));
    if ns >= boot {
        now + between
    } else {
        now.checked_sub(between).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspend_is_told_from_the_noise_of_two_readings() {
        let a = suspended_ns();
        let b = suspended_ns();
        assert!(!suspended_between(a, b), "{a} then {b}");
        assert!(suspended_between(a, a + 2_000_000_000));
        assert!(!suspended_between(a, a + 1_000_000));
    }

    #[test]
    fn an_instant_survives_the_round_trip_through_the_boot_clock() {
        let now = Instant::now();
        for at in [
            now,
            now + Duration::from_secs(3),
            now - Duration::from_millis(20),
        ] {
            let back = from_boot_ns(to_boot_ns(at));
            let error = if back > at { back - at } else { at - back };
            // Two clock reads apart on each side: microseconds, on any machine.
            assert!(error < Duration::from_millis(5), "{error:?}");
        }
    }
}
