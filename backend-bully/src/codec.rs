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
//! Decoding is fuzzed (`fuzz/fuzz_targets/bully_codec.rs`: never a panic, and what decodes
//! re-encodes to the same messages).

use bytes::{BufMut, Bytes, BytesMut};
use election_peer::wire::{self, DecodeError, Reader, put_entries, put_name};

use crate::KIND;
use crate::core::Message;

/// The encoding's version byte.
pub const WIRE_VERSION: u8 = 1;

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
    wire::decode_batch(payload, KIND, WIRE_VERSION, 2, read_message)
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
        t => return Err(r.unknown_tag(t)),
    })
}

#[cfg(test)]
mod tests {
    use election_core::ElectionName;

    use super::*;
    use rand::Rng;
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

    election_peer::test_support::codec_tests! {
        backend: KIND,
        encode: encode,
        decode: decode,
        version: WIRE_VERSION,
        random_message: random_message,
        one_message: Message::Alive { election: name(1) },
    }

    #[test]
    fn decode_error_texts_name_the_backend() {
        let texts = [
            (
                DecodeError::Version {
                    backend: KIND,
                    found: 9,
                    speaks: WIRE_VERSION,
                },
                "unsupported bully wire version 9 (this node speaks 1)",
            ),
            (
                DecodeError::Truncated { backend: KIND },
                "truncated bully payload",
            ),
            (
                DecodeError::Tag {
                    backend: KIND,
                    tag: 42,
                },
                "unknown bully message tag 42",
            ),
            (DecodeError::Bool(2), "invalid boolean byte 2"),
            (
                DecodeError::Name {
                    backend: KIND,
                    reason: "empty".into(),
                },
                "invalid election name in bully payload: empty",
            ),
            (
                DecodeError::Trailing {
                    backend: KIND,
                    count: 3,
                },
                "3 trailing bytes after the last bully message",
            ),
        ];
        for (error, text) in texts {
            assert_eq!(error.to_string(), text);
        }
    }
}
