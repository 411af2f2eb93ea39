//! Arbitrary bytes through the Bully message codec (`election_bully::decode`), as an
//! authenticated peer's payload would reach it: decoding must never panic, and whatever
//! decodes must encode again to payloads that decode to the same messages.
//!
//! Run: `cargo fuzz run -s none bully_codec -- -max_total_time=60` (stable toolchain), or
//! with a sanitizer on nightly: `cargo +nightly fuzz run bully_codec`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = election_bully::decode(data) else {
        return;
    };
    let again: Vec<_> = election_bully::encode(&messages, 1 << 20)
        .iter()
        .flat_map(|p| election_bully::decode(p).expect("an encoded batch decodes"))
        .collect();
    assert_eq!(again, messages);
});
