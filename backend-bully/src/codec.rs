//! The versioned binary encoding of [`Message`]s inside one transport payload.
//!
//! ```text
//! payload  = version:u8 (= 1) count:u32 message*count
//! message  = tag:u8 body
//! name     = len:u8 bytes          (an ElectionName, validated on decode)
//! entries  = n:u32 (name epoch:u64)*n
//! 1 Election     name epoch:u64
//! 2 Alive        name
//! 3 ElectionAck  name epoch:u64 granted:u8
//! 4 Victory      name epoch:u64
//! 5 Heartbeat    round:u64 incarnation:u64 entries
//! 6 Ack          round:u64 incarnation:u64 entries
//! 7 Abdicate     name epoch:u64
//! ```
//! Integers are big-endian. Anything else (another version, an unknown tag, a truncated or
//! over-long payload, an invalid name, a boolean other than 0 or 1) is a [`DecodeError`].

use bytes::{BufMut, Bytes, BytesMut};
use election_peer::wire::{self, FrameError, Reader, put_entries, put_name};

use crate::core::Message;

/// The encoding's version byte.
pub const WIRE_VERSION: u8 = 1;

/// Why a payload could not be decoded. The driver counts these and drops the payload.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The version byte is not [`WIRE_VERSION`]: the peer runs an incompatible release.
    #[error("unsupported bully wire version {0} (this node speaks {WIRE_VERSION})")]
    Version(u8),
    /// The payload ended inside a message.
    #[error("truncated bully payload")]
    Truncated,
    /// An unknown message tag.
    #[error("unknown bully message tag {0}")]
    Tag(u8),
    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean byte {0}")]
    Bool(u8),
    /// An election name that breaks the naming rules.
    #[error("invalid election name in bully payload: {0}")]
    Name(String),
    /// Bytes left over after the last message.
    #[error("{0} trailing bytes after the last bully message")]
    Trailing(usize),
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> DecodeError {
        match e {
            FrameError::Version(v) => DecodeError::Version(v),
            FrameError::Truncated => DecodeError::Truncated,
            FrameError::Bool(b) => DecodeError::Bool(b),
            FrameError::Name(n) => DecodeError::Name(n),
            FrameError::Trailing(n) => DecodeError::Trailing(n),
        }
    }
}

/// Encodes `messages` into as few payloads as possible, each at most `max_len` bytes (a
/// single message longer than that still gets its own payload, which the transport will
/// refuse).
pub fn encode(messages: &[Message], max_len: usize) -> Vec<Bytes> {
    wire::encode_batch(messages, max_len, WIRE_VERSION, encode_message)
}

fn encode_message(m: &Message, buf: &mut BytesMut) {
    match m {
        Message::Election { election, epoch } => {
            buf.put_u8(1);
            put_name(buf, election);
            buf.put_u64(*epoch);
        }
        Message::Alive { election } => {
            buf.put_u8(2);
            put_name(buf, election);
        }
        Message::ElectionAck {
            election,
            epoch,
            granted,
        } => {
            buf.put_u8(3);
            put_name(buf, election);
            buf.put_u64(*epoch);
            buf.put_u8(u8::from(*granted));
        }
        Message::Victory { election, epoch } => {
            buf.put_u8(4);
            put_name(buf, election);
            buf.put_u64(*epoch);
        }
        Message::Heartbeat {
            round,
            incarnation,
            leads,
        } => {
            buf.put_u8(5);
            buf.put_u64(*round);
            buf.put_u64(*incarnation);
            put_entries(buf, leads);
        }
        Message::Ack {
            round,
            incarnation,
            rejects,
        } => {
            buf.put_u8(6);
            buf.put_u64(*round);
            buf.put_u64(*incarnation);
            put_entries(buf, rejects);
        }
        Message::Abdicate { election, epoch } => {
            buf.put_u8(7);
            put_name(buf, election);
            buf.put_u64(*epoch);
        }
    }
}

/// Decodes one payload. Never panics, whatever the input.
pub fn decode(payload: &[u8]) -> Result<Vec<Message>, DecodeError> {
    // Every message takes at least 2 bytes: do not trust `count` for an allocation.
    wire::decode_batch(payload, WIRE_VERSION, 2, read_message)
}

fn read_message(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let tag = r.u8()?;
    Ok(match tag {
        1 => Message::Election {
            election: r.name()?,
            epoch: r.u64()?,
        },
        2 => Message::Alive {
            election: r.name()?,
        },
        3 => Message::ElectionAck {
            election: r.name()?,
            epoch: r.u64()?,
            granted: r.bool()?,
        },
        4 => Message::Victory {
            election: r.name()?,
            epoch: r.u64()?,
        },
        5 => Message::Heartbeat {
            round: r.u64()?,
            incarnation: r.u64()?,
            leads: r.entries()?,
        },
        6 => Message::Ack {
            round: r.u64()?,
            incarnation: r.u64()?,
            rejects: r.entries()?,
        },
        7 => Message::Abdicate {
            election: r.name()?,
            epoch: r.u64()?,
        },
        t => return Err(DecodeError::Tag(t)),
    })
}

#[cfg(test)]
mod tests {
    use election_core::ElectionName;

    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn name(i: u64) -> ElectionName {
        ElectionName::new(format!("job-{i}")).unwrap()
    }

    fn random_message(rng: &mut ChaCha8Rng) -> Message {
        let election = name(rng.random_range(0..1000));
        let epoch = rng.random();
        let entries = |rng: &mut ChaCha8Rng| {
            (0..rng.random_range(0..5))
                .map(|i| (name(i), rng.random()))
                .collect::<Vec<_>>()
        };
        match rng.random_range(0..7) {
            0 => Message::Election { election, epoch },
            1 => Message::Alive { election },
            2 => Message::ElectionAck {
                election,
                epoch,
                granted: rng.random_bool(0.5),
            },
            3 => Message::Victory { election, epoch },
            4 => Message::Heartbeat {
                round: rng.random(),
                incarnation: rng.random(),
                leads: entries(rng),
            },
            5 => Message::Ack {
                round: rng.random(),
                incarnation: rng.random(),
                rejects: entries(rng),
            },
            _ => Message::Abdicate { election, epoch },
        }
    }

    #[test]
    fn every_message_round_trips_and_batches_split_under_the_limit() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let msgs: Vec<Message> = (0..rng.random_range(1..20))
                .map(|_| random_message(&mut rng))
                .collect();
            let limit = rng.random_range(64..2048);
            let mut back = Vec::new();
            for p in &encode(&msgs, limit) {
                back.extend(decode(p).unwrap());
            }
            assert_eq!(back, msgs);
        }
    }

    #[test]
    fn garbage_and_truncations_are_errors_never_panics() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) && !bytes.is_empty() {
                bytes[0] = WIRE_VERSION;
            }
            let _ = decode(&bytes);
        }
        let good = encode(
            &[random_message(&mut rng), random_message(&mut rng)],
            1 << 20,
        );
        for cut in 0..good[0].len() {
            assert!(decode(&good[0][..cut]).is_err());
        }
    }

    #[test]
    fn another_version_is_refused_by_name() {
        let mut p = encode(&[Message::Alive { election: name(1) }], 1024)[0].to_vec();
        p[0] = 9;
        assert_eq!(decode(&p), Err(DecodeError::Version(9)));
    }

    #[test]
    fn a_huge_claimed_count_does_not_allocate() {
        let mut p = vec![WIRE_VERSION];
        p.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&p), Err(DecodeError::Truncated));
    }
}
