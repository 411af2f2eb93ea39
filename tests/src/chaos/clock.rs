//! The one clock of a run: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! Every stamp of a run comes from this clock: the runner's fault records and fence events,
//! and the `START_NS` a child reads first thing. `CLOCK_MONOTONIC` is system-wide on Linux,
//! so stamps taken in different processes of one machine compare directly.

use std::fmt;
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub(crate) fn now_ns() -> u64 {
    // clock_gettime(CLOCK_MONOTONIC) cannot fail on Linux (the clock always exists and the
    // buffer is ours); a zero stamp would only make a life look longer, never hide one.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0)
    })
}

/// A duration in nanoseconds, as stamps are.
pub(crate) fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A stamp shown relative to the start of the run: `+12.345s`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Since {
    /// The stamp.
    pub(crate) at: u64,
    /// The run's start.
    pub(crate) origin: u64,
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.at.saturating_sub(self.origin);
        write!(f, "+{}.{:03}s", d / 1_000_000_000, (d / 1_000_000) % 1000)
    }
}

/// A span of nanoseconds shown in milliseconds: `182 ms`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Millis(pub(crate) u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0 / 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn stamps_show_relative_to_the_origin() {
        let s = Since {
            at: 12_345_678_901,
            origin: 1_000_000,
        };
        assert_eq!(s.to_string(), "+12.344s");
        assert_eq!(Millis(182_400_000).to_string(), "182 ms");
    }
}
