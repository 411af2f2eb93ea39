//! The versioned binary encoding of [`Message`]s inside one transport payload.
//!
//! ```text
//! payload  = version:u8 (= 3) count:u32 message*count
//! message  = tag:u8 body
//! name     = len:u8 bytes          (an ElectionName, validated on decode)
//! open     = 0 | 1 left:u64 | 2 left:u64   (none, yours, other; µs left)
//! 1 Prepare     name ballot:u64 incarnation:u64
//! 2 PrepareAck  name ballot:u64 incarnation:u64 promised:u8 seen:u64 open
//! 3 Propose     name ballot:u64 epoch:u64 incarnation:u64
//! 4 ProposeAck  name ballot:u64 incarnation:u64 accepted:u8 seen:u64
//! 5 Release     name epoch:u64 incarnation:u64
//! 6 Handoff     name epoch:u64 incarnation:u64 ballot:u64 candidate:u64
//! 7 Extend      incarnation:u64 round:u64 first:u32 n:u32 (name ballot:u64 epoch:u64)*n
//! 8 ExtendAck   incarnation:u64 round:u64 first:u32 count:u32 n:u32 name*n
//! 9 ExtendAll   incarnation:u64 round:u64 count:u32 xor:u64 sum:u64
//! 10 ExtendAllAck incarnation:u64 round:u64 matched:u8
//! ```
//! Version 2 added `Handoff`, `Extend` and `ExtendAck` (decision records 130 and 131),
//! version 3 `ExtendAll` and `ExtendAllAck` (decision record 142); a payload of another
//! version is refused.
//! Integers are big-endian. Anything else (another version, an unknown tag or open kind, a
//! truncated or over-long payload, an invalid name, a boolean other than 0 or 1) is a
//! [`DecodeError`]. Decoding is fuzzed (`fuzz/fuzz_targets/paxos_codec.rs`: never a panic,
//! and what decodes re-encodes to the same messages).

use bytes::{BufMut, Bytes, BytesMut};
use election_peer::wire::{self, DecodeError, Reader, put_name};

use crate::KIND;
use crate::core::{LeaseSet, Message, Open};

/// The encoding's version byte.
pub const WIRE_VERSION: u8 = 3;

/// Encodes `messages` into as few payloads as possible, each at most `max_len` bytes (a
/// single message longer than that still gets its own payload, which the transport will
/// refuse).
pub fn encode(messages: &[Message], max_len: usize) -> Vec<Bytes> {
    wire::encode_batch(messages, max_len, WIRE_VERSION, encode_message)
}

fn put_open(buf: &mut BytesMut, open: Open) {
    match open {
        Open::None => buf.put_u8(0),
        Open::Yours(left) => {
            buf.put_u8(1);
            buf.put_u64(left);
        }
        Open::Other(left) => {
            buf.put_u8(2);
            buf.put_u64(left);
        }
    }
}

fn encode_message(m: &Message, buf: &mut BytesMut) {
    match m {
        Message::Prepare {
            election,
            ballot,
            incarnation,
        } => {
            buf.put_u8(1);
            put_name(buf, election);
            buf.put_u64(*ballot);
            buf.put_u64(*incarnation);
        }
        Message::PrepareAck {
            election,
            ballot,
            incarnation,
            promised,
            seen,
            open,
        } => {
            buf.put_u8(2);
            put_name(buf, election);
            buf.put_u64(*ballot);
            buf.put_u64(*incarnation);
            buf.put_u8(u8::from(*promised));
            buf.put_u64(*seen);
            put_open(buf, *open);
        }
        Message::Propose {
            election,
            ballot,
            epoch,
            incarnation,
        } => {
            buf.put_u8(3);
            put_name(buf, election);
            buf.put_u64(*ballot);
            buf.put_u64(*epoch);
            buf.put_u64(*incarnation);
        }
        Message::ProposeAck {
            election,
            ballot,
            incarnation,
            accepted,
            seen,
        } => {
            buf.put_u8(4);
            put_name(buf, election);
            buf.put_u64(*ballot);
            buf.put_u64(*incarnation);
            buf.put_u8(u8::from(*accepted));
            buf.put_u64(*seen);
        }
        Message::Release {
            election,
            epoch,
            incarnation,
        } => {
            buf.put_u8(5);
            put_name(buf, election);
            buf.put_u64(*epoch);
            buf.put_u64(*incarnation);
        }
        Message::Handoff {
            election,
            epoch,
            incarnation,
            ballot,
            candidate,
        } => {
            buf.put_u8(6);
            put_name(buf, election);
            buf.put_u64(*epoch);
            buf.put_u64(*incarnation);
            buf.put_u64(*ballot);
            buf.put_u64(*candidate);
        }
        Message::Extend {
            incarnation,
            round,
            first,
            entries,
        } => {
            buf.put_u8(7);
            buf.put_u64(*incarnation);
            buf.put_u64(*round);
            buf.put_u32(*first);
            buf.put_u32(entries.len() as u32);
            for (name, ballot, epoch) in entries {
                put_name(buf, name);
                buf.put_u64(*ballot);
                buf.put_u64(*epoch);
            }
        }
        Message::ExtendAck {
            incarnation,
            round,
            first,
            count,
            refused,
        } => {
            buf.put_u8(8);
            buf.put_u64(*incarnation);
            buf.put_u64(*round);
            buf.put_u32(*first);
            buf.put_u32(*count);
            buf.put_u32(refused.len() as u32);
            for name in refused {
                put_name(buf, name);
            }
        }
        Message::ExtendAll {
            incarnation,
            round,
            leases,
        } => {
            buf.put_u8(9);
            buf.put_u64(*incarnation);
            buf.put_u64(*round);
            buf.put_u32(leases.count);
            buf.put_u64(leases.xor);
            buf.put_u64(leases.sum);
        }
        Message::ExtendAllAck {
            incarnation,
            round,
            matched,
        } => {
            buf.put_u8(10);
            buf.put_u64(*incarnation);
            buf.put_u64(*round);
            buf.put_u8(u8::from(*matched));
        }
    }
}

/// Decodes one payload. Never panics, whatever the input.
pub fn decode(payload: &[u8]) -> Result<Vec<Message>, DecodeError> {
    // Every message takes at least 2 bytes: do not trust `count` for an allocation.
    wire::decode_batch(payload, KIND, WIRE_VERSION, 2, read_message)
}

fn read_open(r: &mut Reader<'_>) -> Result<Open, DecodeError> {
    Ok(match r.u8()? {
        0 => Open::None,
        1 => Open::Yours(r.u64()?),
        2 => Open::Other(r.u64()?),
        value => {
            return Err(DecodeError::Unknown {
                field: "paxos open-proposal kind",
                value,
            });
        }
    })
}

fn read_message(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let tag = r.u8()?;
    Ok(match tag {
        1 => Message::Prepare {
            election: r.name()?,
            ballot: r.u64()?,
            incarnation: r.u64()?,
        },
        2 => Message::PrepareAck {
            election: r.name()?,
            ballot: r.u64()?,
            incarnation: r.u64()?,
            promised: r.bool()?,
            seen: r.u64()?,
            open: read_open(r)?,
        },
        3 => Message::Propose {
            election: r.name()?,
            ballot: r.u64()?,
            epoch: r.u64()?,
            incarnation: r.u64()?,
        },
        4 => Message::ProposeAck {
            election: r.name()?,
            ballot: r.u64()?,
            incarnation: r.u64()?,
            accepted: r.bool()?,
            seen: r.u64()?,
        },
        5 => Message::Release {
            election: r.name()?,
            epoch: r.u64()?,
            incarnation: r.u64()?,
        },
        6 => Message::Handoff {
            election: r.name()?,
            epoch: r.u64()?,
            incarnation: r.u64()?,
            ballot: r.u64()?,
            candidate: r.u64()?,
        },
        7 => {
            let incarnation = r.u64()?;
            let round = r.u64()?;
            let first = r.u32()?;
            let n = r.u32()?;
            // Every entry takes at least 17 bytes: do not trust `n` for an allocation.
            let mut entries = Vec::with_capacity((n as usize).min(4096));
            for _ in 0..n {
                entries.push((r.name()?, r.u64()?, r.u64()?));
            }
            Message::Extend {
                incarnation,
                round,
                first,
                entries,
            }
        }
        8 => {
            let incarnation = r.u64()?;
            let round = r.u64()?;
            let first = r.u32()?;
            let count = r.u32()?;
            let n = r.u32()?;
            let mut refused = Vec::with_capacity((n as usize).min(4096));
            for _ in 0..n {
                refused.push(r.name()?);
            }
            Message::ExtendAck {
                incarnation,
                round,
                first,
                count,
                refused,
            }
        }
        9 => Message::ExtendAll {
            incarnation: r.u64()?,
            round: r.u64()?,
            leases: LeaseSet {
                count: r.u32()?,
                xor: r.u64()?,
                sum: r.u64()?,
            },
        },
        10 => Message::ExtendAllAck {
            incarnation: r.u64()?,
            round: r.u64()?,
            matched: r.bool()?,
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
        let open = match rng.random_range(0..3) {
            0 => Open::None,
            1 => Open::Yours(rng.random()),
            _ => Open::Other(rng.random()),
        };
        match rng.random_range(0..10) {
            0 => Message::Prepare {
                election,
                ballot: rng.random(),
                incarnation: rng.random(),
            },
            1 => Message::PrepareAck {
                election,
                ballot: rng.random(),
                incarnation: rng.random(),
                promised: rng.random_bool(0.5),
                seen: rng.random(),
                open,
            },
            2 => Message::Propose {
                election,
                ballot: rng.random(),
                epoch: rng.random(),
                incarnation: rng.random(),
            },
            3 => Message::ProposeAck {
                election,
                ballot: rng.random(),
                incarnation: rng.random(),
                accepted: rng.random_bool(0.5),
                seen: rng.random(),
            },
            4 => Message::Release {
                election,
                epoch: rng.random(),
                incarnation: rng.random(),
            },
            6 => Message::Extend {
                incarnation: rng.random(),
                round: rng.random(),
                first: rng.random(),
                entries: (0..rng.random_range(0..4))
                    .map(|k| (name(k), rng.random(), rng.random()))
                    .collect(),
            },
            7 => Message::ExtendAck {
                incarnation: rng.random(),
                round: rng.random(),
                first: rng.random(),
                count: rng.random(),
                refused: (0..rng.random_range(0..3)).map(name).collect(),
            },
            8 => Message::ExtendAll {
                incarnation: rng.random(),
                round: rng.random(),
                leases: LeaseSet {
                    count: rng.random(),
                    xor: rng.random(),
                    sum: rng.random(),
                },
            },
            9 => Message::ExtendAllAck {
                incarnation: rng.random(),
                round: rng.random(),
                matched: rng.random_bool(0.5),
            },
            _ => Message::Handoff {
                election,
                epoch: rng.random(),
                incarnation: rng.random(),
                ballot: rng.random(),
                candidate: rng.random(),
            },
        }
    }

    election_peer::test_support::codec_tests! {
        backend: KIND,
        encode: encode,
        decode: decode,
        version: WIRE_VERSION,
        random_message: random_message,
        one_message: Message::Release { election: name(1), epoch: 7, incarnation: 1 },
    }

    #[test]
    fn an_unknown_open_kind_is_refused() {
        let mut one = encode(
            &[Message::PrepareAck {
                election: name(1),
                ballot: 1,
                incarnation: 1,
                promised: true,
                seen: 1,
                open: Open::None,
            }],
            1 << 16,
        )[0]
        .to_vec();
        *one.last_mut().unwrap() = 9;
        let err = decode(&one).unwrap_err().to_string();
        assert!(err.contains("open-proposal kind 9"), "{err}");
    }
}
