use std::fmt;

use serde::{Deserialize, Serialize};

/// The fencing token of one leadership.
///
/// Within one election, epochs are strictly increasing across successive leaderships and
/// never handed to two leaderships. A resource that remembers the highest epoch it has seen
/// (see [`Fence`](crate::Fence)) can therefore refuse a stale leader's late write. Each
/// backend documents where its epochs come from and what could break the rule.
///
/// `Epoch(0)` is never granted: it is the "nothing seen yet" value of a fence.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The value below every granted epoch.
    pub const ZERO: Epoch = Epoch(0);

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The epoch after this one.
    ///
    /// # Panics
    /// On overflow of `u64`, which a real election cannot reach.
    #[must_use]
    pub fn next(self) -> Epoch {
        Epoch(self.0.checked_add(1).expect("epoch overflowed u64"))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Epoch {
    fn from(v: u64) -> Self {
        Epoch(v)
    }
}
