//! Reconnection delays: exponential with jitter. Sans-IO: the random draw is an argument.

use std::time::Duration;

/// The delay before the next reconnection attempt to one peer.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// After a connection completed its handshake: start again from the minimum.
    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }

    /// The wait before the next attempt, drawn from [current/2, current] by `random`, then
    /// doubles the current delay up to the maximum ("equal jitter": peers that lost the same
    /// node do not reconnect in lockstep, and never wait less than half the nominal delay).
    pub(crate) fn next_delay(&mut self, random: u64) -> Duration {
        let nominal = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = nominal / 2;
        let spread = (nominal - half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_within_their_jitter_band() {
        let min = Duration::from_millis(50);
        let max = Duration::from_millis(400);
        let mut b = Backoff::new(min, max);
        let mut nominal = min;
        for i in 0..10u64 {
            let d = b.next_delay(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!(
                d >= nominal / 2 && d <= nominal,
                "{d:?} outside [{:?}, {nominal:?}]",
                nominal / 2
            );
            nominal = (nominal * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay(u64::MAX) <= min);
    }
}
