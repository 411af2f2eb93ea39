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
use election_core::ElectionName;

use crate::core::{EpochNo, Message};

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

/// Encodes `messages` into as few payloads as possible, each at most `max_len` bytes (a
/// single message longer than that still gets its own payload, which the transport will
/// refuse).
pub fn encode(messages: &[Message], max_len: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut count: u32 = 0;
    let mut one = BytesMut::new();
    for m in messages {
        one.clear();
        encode_message(m, &mut one);
        if count > 0 && buf.len() + one.len() > max_len {
            out.push(finish(&mut buf, count));
            count = 0;
        }
        if count == 0 {
            buf.put_u8(WIRE_VERSION);
            buf.put_u32(0);
        }
        buf.extend_from_slice(&one);
        count += 1;
    }
    if count > 0 {
        out.push(finish(&mut buf, count));
    }
    out
}

fn finish(buf: &mut BytesMut, count: u32) -> Bytes {
    buf[1..5].copy_from_slice(&count.to_be_bytes());
    buf.split().freeze()
}

fn put_name(buf: &mut BytesMut, name: &ElectionName) {
    // Names are at most 128 bytes (MAX_ELECTION_NAME_LEN), so one length byte suffices.
    buf.put_u8(name.as_str().len() as u8);
    buf.put_slice(name.as_str().as_bytes());
}

fn put_entries(buf: &mut BytesMut, entries: &[(ElectionName, EpochNo)]) {
    buf.put_u32(entries.len() as u32);
    for (name, epoch) in entries {
        put_name(buf, name);
        buf.put_u64(*epoch);
    }
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
    let mut r = Reader { buf: payload };
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version(version));
    }
    let count = r.u32()? as usize;
    // Every message takes at least 2 bytes: do not trust `count` for an allocation.
    let mut out = Vec::with_capacity(count.min(r.buf.len() / 2 + 1));
    for _ in 0..count {
        out.push(r.message()?);
    }
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing(r.buf.len()));
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::Bool(b)),
        }
    }

    fn name(&mut self) -> Result<ElectionName, DecodeError> {
        let len = self.u8()? as usize;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|e| DecodeError::Name(e.to_string()))?;
        ElectionName::new(s).map_err(|e| DecodeError::Name(e.to_string()))
    }

    fn entries(&mut self) -> Result<Vec<(ElectionName, EpochNo)>, DecodeError> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(self.buf.len() / 10 + 1));
        for _ in 0..n {
            out.push((self.name()?, self.u64()?));
        }
        Ok(out)
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        let tag = self.u8()?;
        Ok(match tag {
            1 => Message::Election {
                election: self.name()?,
                epoch: self.u64()?,
            },
            2 => Message::Alive {
                election: self.name()?,
            },
            3 => Message::ElectionAck {
                election: self.name()?,
                epoch: self.u64()?,
                granted: self.bool()?,
            },
            4 => Message::Victory {
                election: self.name()?,
                epoch: self.u64()?,
            },
            5 => Message::Heartbeat {
                round: self.u64()?,
                incarnation: self.u64()?,
                leads: self.entries()?,
            },
            6 => Message::Ack {
                round: self.u64()?,
                incarnation: self.u64()?,
                rejects: self.entries()?,
            },
            7 => Message::Abdicate {
                election: self.name()?,
                epoch: self.u64()?,
            },
            t => return Err(DecodeError::Tag(t)),
        })
    }
}

#[cfg(test)]
mod tests {
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
