//! Seeded random and mutated byte streams through the frame decoder and the frame MAC:
//! never a panic, and never an accepted payload that differs from what was sealed.
//!
//! Replay a failure with `TRANSPORT_CODEC_SEED=<seed> cargo test -p election-transport
//! --test codec_random`.

use bytes::{Bytes, BytesMut};
use election_transport::{Frame, FrameDecoder, FrameMac, NodeId, Transcript};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROUNDS: usize = 5_000;
const MAX_FRAME_LEN: usize = 4096;

fn seed() -> u64 {
    let seed = std::env::var("TRANSPORT_CODEC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    println!("seed {seed} (set TRANSPORT_CODEC_SEED to replay)");
    seed
}

fn random_id(rng: &mut ChaCha8Rng) -> NodeId {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-_";
    let len = rng.random_range(1..=40);
    let mut s = String::from("n");
    for _ in 1..len {
        s.push(CHARS[rng.random_range(0..CHARS.len())] as char);
    }
    NodeId::new(s).unwrap()
}

fn random_bytes(rng: &mut ChaCha8Rng, max: usize) -> Bytes {
    let mut v = vec![0; rng.random_range(0..=max)];
    rng.fill_bytes(&mut v);
    Bytes::from(v)
}

fn random_handshake_frame(rng: &mut ChaCha8Rng) -> Frame {
    let mut a = [0; 32];
    rng.fill_bytes(&mut a);
    match rng.random_range(0..4) {
        0 => Frame::Hello {
            from: random_id(rng),
            to: random_id(rng),
            nonce: a,
        },
        1 => Frame::Challenge {
            from: random_id(rng),
            nonce: a,
            proof: a,
        },
        2 => Frame::Auth { proof: a },
        _ => Frame::Data {
            payload: random_bytes(rng, 300),
        },
    }
}

/// Flips bits, overwrites, truncates, inserts or duplicates bytes.
fn mutate(rng: &mut ChaCha8Rng, wire: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=4) {
        if wire.is_empty() {
            wire.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..wire.len());
        match rng.random_range(0..6) {
            0 => wire[at] ^= 1 << rng.random_range(0..8),
            1 => wire[at] = rng.random(),
            2 => wire.truncate(at),
            3 => wire.insert(at, rng.random()),
            4 => {
                let end = (at + rng.random_range(1..64)).min(wire.len());
                let copy = wire[at..end].to_vec();
                let to = rng.random_range(0..=wire.len());
                wire.splice(to..to, copy);
            }
            _ => {
                wire.remove(at);
            }
        }
    }
}

/// Decodes `wire` fed in random-sized chunks; opens sealed frames in order. Returns the
/// payloads accepted before the first refusal.
fn receive(rng: &mut ChaCha8Rng, wire: &[u8], mut mac: FrameMac) -> Vec<(u64, Bytes)> {
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let mut buf = BytesMut::new();
    let mut accepted = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(512));
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Frame::SealedData { payload, tag })) => {
                    let seq = mac.next_seq();
                    if !mac.open(&payload, &tag) {
                        return accepted;
                    }
                    accepted.push((seq, payload));
                }
                Ok(Some(_)) => return accepted, // Out of order on a data connection.
                Ok(None) => break,
                Err(_) => return accepted,
            }
        }
    }
    accepted
}

#[test]
fn mutated_sealed_streams_never_yield_a_payload_that_was_not_sealed() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let secret = election_transport::Secret::new(*b"0123456789abcdef").unwrap();
    let mut mutated_frames_refused = 0;
    for _ in 0..ROUNDS {
        let t = Transcript::new(
            &random_id(&mut rng),
            &random_id(&mut rng),
            &[1; 32],
            &[2; 32],
        );
        let mut tx = t.dialer_to_acceptor(&secret);
        let sent: Vec<Bytes> = (0..rng.random_range(1..8))
            .map(|_| random_bytes(&mut rng, 200))
            .collect();
        let mut wire = BytesMut::new();
        for p in &sent {
            Frame::SealedData {
                payload: p.clone(),
                tag: tx.seal(p),
            }
            .encode(&mut wire);
        }
        let mut wire = wire.to_vec();
        let original = wire.clone();
        mutate(&mut rng, &mut wire);
        let accepted = receive(&mut rng, &wire, t.dialer_to_acceptor(&secret));
        for (seq, payload) in &accepted {
            assert_eq!(
                payload, &sent[*seq as usize],
                "accepted a payload that was never sealed at {seq}"
            );
        }
        if wire != original && accepted.len() < sent.len() {
            mutated_frames_refused += 1;
        }
        // The unmutated stream is accepted whole.
        assert_eq!(
            receive(&mut rng, &original, t.dialer_to_acceptor(&secret)).len(),
            sent.len()
        );
    }
    println!("{mutated_frames_refused} of {ROUNDS} mutated streams were cut short");
    assert!(mutated_frames_refused > ROUNDS / 2);
}

#[test]
fn random_and_mutated_bytes_never_panic_the_decoder() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 1);
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let (mut frames, mut errors) = (0, 0);
    for round in 0..ROUNDS * 2 {
        let mut wire = Vec::new();
        if round % 2 == 0 {
            // Pure noise, with a plausible length prefix half the time.
            wire = random_bytes(&mut rng, 600).to_vec();
            if rng.random() && wire.len() >= 6 {
                let len = (wire.len() - 4) as u32;
                wire[..4].copy_from_slice(&len.to_be_bytes());
                wire[4] = 1;
            }
        } else {
            let mut buf = BytesMut::new();
            for _ in 0..rng.random_range(1..4) {
                random_handshake_frame(&mut rng).encode(&mut buf);
            }
            wire.extend_from_slice(&buf);
            mutate(&mut rng, &mut wire);
        }
        let mut buf = BytesMut::from(&wire[..]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    frames += 1;
                    // Whatever decodes re-encodes to a frame that decodes the same.
                    let mut again = BytesMut::new();
                    frame.encode(&mut again);
                    assert_eq!(decoder.decode(&mut again), Ok(Some(frame)));
                }
                Ok(None) => break,
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    println!("{frames} frames decoded, {errors} streams refused");
    assert!(frames > 0 && errors > 0);
}
