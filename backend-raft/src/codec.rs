//! The versioned binary encoding of [`Message`]s inside one transport payload.
//!
//! ```text
//! payload  = version:u8 (= 1) count:u32 message*count
//! message  = tag:u8 body
//! name     = len:u8 bytes          (an ElectionName, validated on decode)
//! entries  = n:u32 (name term:u64)*n
//! 1 Heartbeat     round:u64 incarnation:u64 version:u64 update:u8 (0 none | 1 entries
//!                 | 2 base:u64 entries, term 0 meaning "no longer led")
//! 2 HeartbeatAck  round:u64 incarnation:u64 version:u64 need_full:u8 entries
//! 3 PreVote       name term:u64 force:u8
//! 4 PreVoteResp   name term:u64 granted:u8
//! 5 Vote          name term:u64 force:u8
//! 6 VoteResp      name term:u64 granted:u8
//! 7 TimeoutNow    name term:u64
//! 8 Candidacy     name term:u64 campaigning:u8          (priority 0)
//! 9 Candidacy     name term:u64 campaigning:u8 priority:u32 (priority not 0)
//! 10 Prefer       name term:u64
//! ```
//! Tags 9 and 10 are only sent where priorities are configured, so a cluster whose members
//! all have priority 0 speaks the encoding of the releases before priorities (decision
//! record 134): set priorities once every member runs a release that knows them.
//! Integers are big-endian. Anything else (another version, an unknown tag, a truncated or
//! over-long payload, an invalid name, a boolean other than 0 or 1) is a [`DecodeError`].
//! Decoding is fuzzed (`fuzz/fuzz_targets/raft_codec.rs`: never a panic, and what decodes
//! re-encodes to the same messages).

use bytes::{BufMut, Bytes, BytesMut};
use election_core::ElectionName;
use election_peer::wire::{self, DecodeError, Reader, put_entries, put_name};

use crate::KIND;
use crate::core::{Message, SetUpdate, Term};

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
        Message::Heartbeat {
            round,
            incarnation,
            version,
            update,
        } => {
            buf.put_u8(1);
            buf.put_u64(*round);
            buf.put_u64(*incarnation);
            buf.put_u64(*version);
            match update {
                Some(SetUpdate::Full(set)) => {
                    buf.put_u8(1);
                    put_entries(buf, set);
                }
                Some(SetUpdate::Delta { base, changes }) => {
                    buf.put_u8(2);
                    buf.put_u64(*base);
                    put_entries(buf, changes);
                }
                None => buf.put_u8(0),
            }
        }
        Message::HeartbeatAck {
            round,
            incarnation,
            version,
            need_full,
            rejects,
        } => {
            buf.put_u8(2);
            buf.put_u64(*round);
            buf.put_u64(*incarnation);
            buf.put_u64(*version);
            buf.put_u8(u8::from(*need_full));
            put_entries(buf, rejects);
        }
        Message::PreVote {
            election,
            term,
            force,
        } => per_election(buf, 3, election, *term, Some(*force)),
        Message::PreVoteResp {
            election,
            term,
            granted,
        } => per_election(buf, 4, election, *term, Some(*granted)),
        Message::Vote {
            election,
            term,
            force,
        } => per_election(buf, 5, election, *term, Some(*force)),
        Message::VoteResp {
            election,
            term,
            granted,
        } => per_election(buf, 6, election, *term, Some(*granted)),
        Message::TimeoutNow { election, term } => per_election(buf, 7, election, *term, None),
        Message::Candidacy {
            election,
            term,
            campaigning,
            priority: 0,
        } => per_election(buf, 8, election, *term, Some(*campaigning)),
        Message::Candidacy {
            election,
            term,
            campaigning,
            priority,
        } => {
            per_election(buf, 9, election, *term, Some(*campaigning));
            buf.put_u32(*priority);
        }
        Message::Prefer { election, term } => per_election(buf, 10, election, *term, None),
    }
}

fn per_election(buf: &mut BytesMut, tag: u8, name: &ElectionName, term: Term, flag: Option<bool>) {
    buf.put_u8(tag);
    put_name(buf, name);
    buf.put_u64(term);
    if let Some(f) = flag {
        buf.put_u8(u8::from(f));
    }
}

/// Decodes one payload. Never panics, whatever the input.
pub fn decode(payload: &[u8]) -> Result<Vec<Message>, DecodeError> {
    // Every message takes at least 10 bytes: do not trust `count` for an allocation.
    wire::decode_batch(payload, KIND, WIRE_VERSION, 10, read_message)
}

fn read_message(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let tag = r.u8()?;
    Ok(match tag {
        1 => Message::Heartbeat {
            round: r.u64()?,
            incarnation: r.u64()?,
            version: r.u64()?,
            update: match r.u8()? {
                0 => None,
                1 => Some(SetUpdate::Full(r.entries()?)),
                2 => Some(SetUpdate::Delta {
                    base: r.u64()?,
                    changes: r.entries()?,
                }),
                value => {
                    return Err(DecodeError::Unknown {
                        field: "heartbeat set update kind",
                        value,
                    });
                }
            },
        },
        2 => Message::HeartbeatAck {
            round: r.u64()?,
            incarnation: r.u64()?,
            version: r.u64()?,
            need_full: r.bool()?,
            rejects: r.entries()?,
        },
        3 => Message::PreVote {
            election: r.name()?,
            term: r.u64()?,
            force: r.bool()?,
        },
        4 => Message::PreVoteResp {
            election: r.name()?,
            term: r.u64()?,
            granted: r.bool()?,
        },
        5 => Message::Vote {
            election: r.name()?,
            term: r.u64()?,
            force: r.bool()?,
        },
        6 => Message::VoteResp {
            election: r.name()?,
            term: r.u64()?,
            granted: r.bool()?,
        },
        7 => Message::TimeoutNow {
            election: r.name()?,
            term: r.u64()?,
        },
        8 => Message::Candidacy {
            election: r.name()?,
            term: r.u64()?,
            campaigning: r.bool()?,
            priority: 0,
        },
        9 => Message::Candidacy {
            election: r.name()?,
            term: r.u64()?,
            campaigning: r.bool()?,
            priority: r.u32()?,
        },
        10 => Message::Prefer {
            election: r.name()?,
            term: r.u64()?,
        },
        t => return Err(r.unknown_tag(t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    fn name(i: u64) -> ElectionName {
        ElectionName::new(format!("job-{i}")).unwrap()
    }

    fn random_message(rng: &mut ChaCha8Rng) -> Message {
        let e = name(rng.random_range(0..1000));
        let t = rng.random();
        let b = rng.random_bool(0.5);
        let entries = |rng: &mut ChaCha8Rng| {
            (0..rng.random_range(0..5))
                .map(|i| (name(i), rng.random()))
                .collect::<Vec<_>>()
        };
        match rng.random_range(0..9) {
            0 => Message::Heartbeat {
                round: rng.random(),
                incarnation: rng.random(),
                version: rng.random(),
                update: match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(SetUpdate::Full(entries(rng))),
                    _ => Some(SetUpdate::Delta {
                        base: rng.random(),
                        changes: entries(rng),
                    }),
                },
            },
            1 => Message::HeartbeatAck {
                round: rng.random(),
                incarnation: rng.random(),
                version: rng.random(),
                need_full: b,
                rejects: entries(rng),
            },
            2 => Message::PreVote {
                election: e,
                term: t,
                force: b,
            },
            3 => Message::PreVoteResp {
                election: e,
                term: t,
                granted: b,
            },
            4 => Message::Vote {
                election: e,
                term: t,
                force: b,
            },
            5 => Message::VoteResp {
                election: e,
                term: t,
                granted: b,
            },
            6 => Message::TimeoutNow {
                election: e,
                term: t,
            },
            7 => Message::Candidacy {
                election: e,
                term: t,
                campaigning: b,
                priority: if rng.random_bool(0.5) {
                    0
                } else {
                    rng.random()
                },
            },
            _ => Message::Prefer {
                election: e,
                term: t,
            },
        }
    }

    election_peer::test_support::codec_tests! {
        backend: KIND,
        encode: encode,
        decode: decode,
        version: WIRE_VERSION,
        random_message: random_message,
        one_message: Message::TimeoutNow {
            election: name(1),
            term: 3,
        },
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
                "unsupported raft wire version 9 (this node speaks 1)",
            ),
            (
                DecodeError::Truncated { backend: KIND },
                "truncated raft payload",
            ),
            (
                DecodeError::Tag {
                    backend: KIND,
                    tag: 42,
                },
                "unknown raft message tag 42",
            ),
            (DecodeError::Bool(2), "invalid boolean byte 2"),
            (
                DecodeError::Unknown {
                    field: "heartbeat set update kind",
                    value: 4,
                },
                "unknown heartbeat set update kind 4",
            ),
            (
                DecodeError::Name {
                    backend: KIND,
                    reason: "empty".into(),
                },
                "invalid election name in raft payload: empty",
            ),
            (
                DecodeError::Trailing {
                    backend: KIND,
                    count: 3,
                },
                "3 trailing bytes after the last raft message",
            ),
        ];
        for (error, text) in texts {
            assert_eq!(error.to_string(), text);
        }
    }
}
