use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{Error, Result};

/// The timing of a lease-based election, and the one rule that makes it safe.
///
/// # The deadline rule
///
/// A holder measures its lease from the monotonic instant at which it *started* its last
/// successful renewal (or acquisition), never from a server timestamp. The server starts its
/// own TTL no earlier than that instant, so the holder's view ends first. The holder then
/// gives up its claim a safety margin before the TTL ends:
///
/// ```text
/// deadline = renewal_started + ttl - clock_drift - kill_grace
/// ```
///
/// [`Leadership::lost`](crate::Leadership::lost) resolves at that deadline at the latest,
/// even if the backend never answers again. `clock_drift` covers the difference in clock
/// *rates* between holder and server (a few hundred ppm at worst) and timer lateness;
/// `kill_grace` is the time the CLI allows a guarded child to exit after SIGTERM before
/// SIGKILL. So, barring process pauses, the old leader's child is dead before the server
/// lets anyone else acquire. Pauses (GC, SIGSTOP, VM stalls) can break any timing rule:
/// that is what epochs and [`Fence`](crate::Fence) are for.
///
/// Every field's unit is a [`Duration`]; in configuration files they are written as
/// human-readable strings such as `"10s"` or `"250ms"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseTiming {
    /// How long the backend keeps a lease without renewal. Default 10 s. Crash failover
    /// takes about this long; shorter means faster failover and more renewal traffic.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often the holder renews. Default 2 s. At most half of `ttl - clock_drift -
    /// kill_grace`, so that one failed renewal can be retried before the deadline.
    #[serde(with = "humantime_serde")]
    pub renew_interval: Duration,
    /// Pause between attempts after a failed renewal or a failed acquisition when no change
    /// notification is available. Default 500 ms. At most `renew_interval`.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// Bound on clock-rate difference and timer lateness between holder and server over one
    /// TTL. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub clock_drift: Duration,
    /// Time a guarded process gets between SIGTERM and SIGKILL. Default 2 s. Counted in the
    /// safety margin so the process is dead before the lease can pass to another node.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            ttl: Duration::from_secs(10),
            renew_interval: Duration::from_secs(2),
            retry_interval: Duration::from_millis(500),
            clock_drift: Duration::from_millis(200),
            kill_grace: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// Fast timings for tests on one machine: a 1 s TTL with a 150 ms margin.
    pub fn fast_for_tests() -> Self {
        LeaseTiming {
            ttl: Duration::from_millis(1000),
            renew_interval: Duration::from_millis(150),
            retry_interval: Duration::from_millis(50),
            clock_drift: Duration::from_millis(50),
            kill_grace: Duration::from_millis(100),
        }
    }

    /// `clock_drift + kill_grace`: how long before the TTL ends the holder lets go.
    pub fn safety_margin(&self) -> Duration {
        self.clock_drift + self.kill_grace
    }

    /// `ttl - safety_margin`: how long one successful renewal lets the holder lead.
    pub fn hold_budget(&self) -> Duration {
        self.ttl.saturating_sub(self.safety_margin())
    }

    /// The deadline rule: the instant until which a renewal started at `renewal_started`
    /// lets the holder lead.
    pub fn deadline_after(&self, renewal_started: Instant) -> Instant {
        renewal_started + self.hold_budget()
    }

    /// Checks the rules that make these timings safe and live. The error names the rule
    /// that failed and why it matters.
    pub fn validate(&self) -> Result<()> {
        let rule = |key: &str, ok: bool, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(format!("timing.{key}"), reason))
            }
        };
        let h = humantime::format_duration;
        rule(
            "ttl",
            !self.ttl.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "renew_interval",
            !self.renew_interval.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "retry_interval",
            !self.retry_interval.is_zero(),
            "must be greater than zero".into(),
        )?;
        rule(
            "ttl",
            self.ttl > self.safety_margin(),
            format!(
                "ttl ({}) must exceed clock_drift + kill_grace ({}): the holder gives up its \
                 claim that long before the lease ends, so nothing would be left to lead with",
                h(self.ttl),
                h(self.safety_margin())
            ),
        )?;
        rule(
            "renew_interval",
            self.renew_interval * 2 <= self.hold_budget(),
            format!(
                "renew_interval ({}) must be at most half of ttl - clock_drift - kill_grace ({}), \
                 so that a failed renewal can be retried before the leadership deadline",
                h(self.renew_interval),
                h(self.hold_budget())
            ),
        )?;
        rule(
            "retry_interval",
            self.retry_interval <= self.renew_interval,
            format!(
                "retry_interval ({}) must not exceed renew_interval ({})",
                h(self.retry_interval),
                h(self.renew_interval)
            ),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_test_timings_are_valid() {
        LeaseTiming::default().validate().unwrap();
        LeaseTiming::fast_for_tests().validate().unwrap();
    }

    #[test]
    fn deadline_is_ttl_minus_drift_and_grace_after_renewal_start() {
        let t = LeaseTiming::default();
        let start = Instant::now();
        assert_eq!(t.deadline_after(start) - start, Duration::from_millis(7800));
    }

    #[test]
    fn a_margin_that_eats_the_ttl_is_refused_naming_the_rule() {
        let t = LeaseTiming {
            ttl: Duration::from_secs(2),
            kill_grace: Duration::from_secs(2),
            ..LeaseTiming::default()
        };
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("timing.ttl"), "{err}");
        assert!(err.contains("clock_drift + kill_grace"), "{err}");
    }

    #[test]
    fn a_renewal_too_slow_to_retry_before_the_deadline_is_refused() {
        let t = LeaseTiming {
            renew_interval: Duration::from_secs(5),
            ..LeaseTiming::default()
        };
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("timing.renew_interval"), "{err}");
    }

    #[test]
    fn retry_slower_than_renew_is_refused() {
        let t = LeaseTiming {
            retry_interval: Duration::from_secs(3),
            ..LeaseTiming::default()
        };
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("timing.retry_interval")
        );
    }

    #[test]
    fn zero_durations_are_refused() {
        for t in [
            LeaseTiming {
                ttl: Duration::ZERO,
                ..LeaseTiming::default()
            },
            LeaseTiming {
                renew_interval: Duration::ZERO,
                ..LeaseTiming::default()
            },
            LeaseTiming {
                retry_interval: Duration::ZERO,
                ..LeaseTiming::default()
            },
        ] {
            assert!(t.validate().is_err(), "{t:?}");
        }
    }
}
