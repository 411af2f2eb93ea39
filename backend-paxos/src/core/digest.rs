//! [`LeaseSet`]: an order-free digest of a set of proposals `(election, ballot, epoch)`,
//! updated one proposal at a time, so that a leader can name every lease it holds in a
//! few bytes and an acceptor can tell, without listing, whether it holds open exactly
//! those proposals of that leader (decision record 142).

use election_core::ElectionName;

use super::{Ballot, EpochNo};

/// A multiset digest: the count of proposals, and two order-free combinations (XOR and
/// wrapping sum) of a 64-bit hash of each. Two sets that differ give the same digest only
/// if their differences cancel in both combinations at once: never by accident in
/// practice (peers are authenticated, so no one chooses names to make them cancel).
///
/// The hash is FNV-1a over the name's bytes, a separator, the ballot and the epoch, then
/// a SplitMix64 finalizer: fixed by this code, not by the Rust version, so that members
/// built by different compilers agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseSet {
    /// How many proposals.
    pub count: u32,
    /// XOR of their hashes.
    pub xor: u64,
    /// Wrapping sum of their hashes, each multiplied by an odd constant.
    pub sum: u64,
}

impl LeaseSet {
    /// Adds one proposal in the election whose [`NamePrefix`] is `name`.
    pub fn add(&mut self, name: NamePrefix, ballot: Ballot, epoch: EpochNo) {
        let h = hash(name, ballot, epoch);
        self.count = self.count.wrapping_add(1);
        self.xor ^= h;
        self.sum = self.sum.wrapping_add(h.wrapping_mul(MUL));
    }

    /// Removes one proposal that was added.
    pub fn remove(&mut self, name: NamePrefix, ballot: Ballot, epoch: EpochNo) {
        let h = hash(name, ballot, epoch);
        self.count = self.count.wrapping_sub(1);
        self.xor ^= h;
        self.sum = self.sum.wrapping_sub(h.wrapping_mul(MUL));
    }
}

/// The hash's state after an election's name (FNV-1a over its bytes and a separator):
/// computed once per election, so that hashing a proposal there costs 16 bytes of FNV
/// and the finalizer, whatever the name's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamePrefix(u64);

impl NamePrefix {
    /// The prefix of `election`'s proposals.
    pub fn of(election: &ElectionName) -> NamePrefix {
        NamePrefix(
            election
                .as_str()
                .bytes()
                .chain([0xff])
                .fold(OFFSET, fnv_step),
        )
    }
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(h: u64, b: u8) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    (h ^ u64::from(b)).wrapping_mul(PRIME)
}

fn hash(name: NamePrefix, ballot: Ballot, epoch: EpochNo) -> u64 {
    let mut h = ballot
        .to_le_bytes()
        .into_iter()
        .chain(epoch.to_le_bytes())
        .fold(name.0, fnv_step);
    // SplitMix64's finalizer: every input bit reaches every output bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NamePrefix {
        NamePrefix::of(&ElectionName::new(s).unwrap())
    }

    #[test]
    fn the_digest_does_not_depend_on_the_order_and_removal_undoes_addition() {
        let mut a = LeaseSet::default();
        a.add(p("x"), 65, 65);
        a.add(p("y"), 130, 66);
        let mut b = LeaseSet::default();
        b.add(p("y"), 130, 66);
        b.add(p("z"), 1, 1);
        b.add(p("x"), 65, 65);
        assert_ne!(a, b);
        b.remove(p("z"), 1, 1);
        assert_eq!(a, b);
    }

    #[test]
    fn another_ballot_or_epoch_is_another_proposal() {
        let digest = |ballot, epoch| {
            let mut d = LeaseSet::default();
            d.add(p("job"), ballot, epoch);
            d
        };
        assert_ne!(digest(65, 65), digest(129, 65));
        assert_ne!(digest(129, 65), digest(129, 129));
        assert_eq!(digest(129, 65), digest(129, 65));
    }

    #[test]
    fn the_hash_is_fixed_by_this_code() {
        // Members built by different compilers must agree: this value may never change
        // within one wire version.
        assert_eq!(hash(p("job"), 65, 65), 0xeca1_93d4_acd7_0fcd);
    }
}
