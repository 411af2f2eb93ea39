//! The host's boot clock (`CLOCK_BOOTTIME`): one clock for every process on the host,
//! counting through suspend. elector hands deadlines to its guard, and the agent hands
//! them to its callers, as nanoseconds on it, so that a message read late (by a process
//! that was stopped meanwhile) still names the same instant.

use std::time::Duration;

use tokio::time::Instant;

/// Now, in nanoseconds on `CLOCK_BOOTTIME` (one `clock_gettime`, async-signal-safe).
pub(crate) use election_core::boot_now_ns;

/// How often a holder whose deadline is also kept in a deadline page (decision 126)
/// checks whether its leadership expired: `elector run`, whose guard SIGTERMs the command
/// at the deadline by itself, and the agent's tasks for such a hold, which stop storing
/// into the page at the deadline whenever they notice. Explicit losses still arrive at
/// once; only the notice of an expiry waits for the next check, so that an idle hold
/// costs one wake-up a second instead of one per lease.
pub(crate) const LAZY_LOSS_CHECK: Duration = Duration::from_secs(1);

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
