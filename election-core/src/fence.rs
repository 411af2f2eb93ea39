use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Epoch, Error, Result};

/// A resource-side guard against stale leaders: admits an epoch only if it is at least the
/// highest one admitted so far.
///
/// A leader that was paused (GC, SIGSTOP, a VM stall) past its lease may wake up believing
/// it still leads. Timing cannot stop it; the resource can, by remembering the highest
/// epoch it has seen and refusing anything older. Equal epochs are admitted: one leader
/// writes many times.
///
/// `Fence` guards a resource inside one process. Thread-safe and lock-free.
///
/// # Fenced writes in a real store
///
/// Keep the highest epoch next to the data and make every write a compare-and-set on it,
/// in the same transaction as the write itself:
///
/// ```sql
/// -- PostgreSQL: the write lands only if no newer leader has written.
/// UPDATE job_state SET payload = $2, fence_epoch = $1
///  WHERE id = 'nightly-backup' AND fence_epoch <= $1;
/// -- 0 rows updated => a newer epoch exists: stop, you are no longer the leader.
/// ```
///
/// ```lua
/// -- Redis (EVAL, KEYS[1] = data key, KEYS[2] = its fence key, ARGV[1] = epoch, ARGV[2] = value)
/// local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
/// if tonumber(ARGV[1]) < seen then return redis.error_reply('STALE epoch') end
/// redis.call('SET', KEYS[2], ARGV[1])
/// redis.call('SET', KEYS[1], ARGV[2])
/// return 'OK'
/// ```
///
/// The guarded process started by `elector run` finds its epoch in `ELECTOR_EPOCH`.
///
/// ```
/// use election_core::{Epoch, Fence};
/// let fence = Fence::new();
/// fence.admit(Epoch(7)).unwrap();
/// fence.admit(Epoch(7)).unwrap(); // the same leader again
/// assert!(fence.admit(Epoch(6)).is_err()); // a stale leader
/// ```
#[derive(Debug, Default)]
pub struct Fence {
    highest: AtomicU64,
}

impl Fence {
    /// A fence that has admitted nothing yet.
    pub const fn new() -> Self {
        Fence {
            highest: AtomicU64::new(0),
        }
    }

    /// A fence that resumes from a persisted highest epoch.
    pub const fn starting_at(highest: Epoch) -> Self {
        Fence {
            highest: AtomicU64::new(highest.0),
        }
    }

    /// Admits `epoch` if it is not below the highest admitted so far, and raises the mark.
    /// Fails with [`Error::StaleEpoch`] otherwise, changing nothing.
    pub fn admit(&self, epoch: Epoch) -> Result<()> {
        let previous = self.highest.fetch_max(epoch.0, Ordering::AcqRel);
        if previous > epoch.0 {
            Err(Error::StaleEpoch {
                epoch,
                highest: Epoch(previous),
            })
        } else {
            Ok(())
        }
    }

    /// The highest epoch admitted so far (`Epoch::ZERO` if none).
    pub fn highest(&self) -> Epoch {
        Epoch(self.highest.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_lower_epoch_after_a_higher_one_is_refused() {
        let fence = Fence::new();
        fence.admit(Epoch(3)).unwrap();
        let err = fence.admit(Epoch(2)).unwrap_err();
        assert!(matches!(
            err,
            Error::StaleEpoch {
                epoch: Epoch(2),
                highest: Epoch(3)
            }
        ));
        assert_eq!(fence.highest(), Epoch(3), "a refused epoch changes nothing");
    }

    #[test]
    fn equal_and_higher_epochs_are_admitted() {
        let fence = Fence::starting_at(Epoch(5));
        fence.admit(Epoch(5)).unwrap();
        fence.admit(Epoch(9)).unwrap();
        assert_eq!(fence.highest(), Epoch(9));
    }

    #[test]
    fn concurrent_admits_never_let_a_stale_epoch_through_after_a_newer_one() {
        let fence = Arc::new(Fence::new());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let fence = fence.clone();
                std::thread::spawn(move || {
                    let mut admitted = Vec::new();
                    for i in 0..10_000u64 {
                        let e = Epoch(i * 4 + t);
                        if fence.admit(e).is_ok() {
                            admitted.push(e);
                        }
                    }
                    admitted
                })
            })
            .collect();
        for t in threads {
            let admitted = t.join().unwrap();
            assert!(admitted.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(fence.highest(), Epoch(9_999 * 4 + 3));
    }
}
