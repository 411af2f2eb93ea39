//! Arbitrary bytes through the frame decoder, fed in chunks, with sealed frames checked
//! against a fixed key: the decoder must never panic, whatever decodes must re-encode to
//! the same frame, and no sealed frame may open (the input cannot know the key).
//!
//! Run: `cargo fuzz run -s none frame_decoder -- -max_total_time=60` (stable toolchain),
//! or with a sanitizer on nightly: `cargo +nightly fuzz run frame_decoder`.
#![no_main]

use bytes::BytesMut;
use election_transport::{Frame, FrameDecoder, FrameMac};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so split frames are explored too.
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => return,
    };
    let decoder = FrameDecoder::new(64 * 1024);
    let mut mac = FrameMac::new(&[0x5a; 32]);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let mut again = BytesMut::new();
                    frame.encode(&mut again);
                    assert_eq!(again.len(), frame.encoded_len());
                    assert_eq!(decoder.decode(&mut again), Ok(Some(frame.clone())));
                    if let Frame::SealedData { payload, tag } = &frame {
                        assert!(!mac.open(payload, tag), "a forged tag was accepted");
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
