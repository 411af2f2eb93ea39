//! Arbitrary bytes through the PaxosLease message codec (`election_paxos::decode`), as an
//! authenticated peer's payload would reach it: decoding must never panic, and whatever
//! decodes must encode again to payloads that decode to the same messages.
//!
//! Run: `cargo fuzz run -s none paxos_codec -- -max_total_time=60` (stable toolchain), or
//! with a sanitizer on nightly: `cargo +nightly fuzz run paxos_codec`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = election_paxos::decode(data) else {
        return;
    };
    let again: Vec<_> = election_paxos::encode(&messages, 1 << 20)
        .iter()
        .flat_map(|p| election_paxos::decode(p).expect("an encoded batch decodes"))
        .collect();
    assert_eq!(again, messages);
});
