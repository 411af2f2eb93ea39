//! The framing shared by the peer backends' message encodings: a payload is
//! `version:u8 count:u32 message*count`, integers big-endian, election names as
//! `len:u8 bytes`, and `(name, epoch)` lists as `n:u32 (name epoch:u64)*n`. Each backend
//! encodes and decodes its own messages with [`encode_batch`] / [`decode_batch`],
//! [`put_name`] / [`put_entries`] and a [`Reader`]; every decoding failure is one
//! [`DecodeError`], which names the backend whose encoding it is.

use bytes::{BufMut, Bytes, BytesMut};
use election_core::ElectionName;

/// Why a payload could not be decoded, naming the backend (`raft`, `bully`) whose encoding
/// it is. The driver counts these and drops the payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The version byte is not the one this node speaks: the peer runs an incompatible
    /// release.
    #[error("unsupported {backend} wire version {found} (this node speaks {speaks})")]
    Version {
        /// The backend.
        backend: &'static str,
        /// The version byte received.
        found: u8,
        /// The version this node speaks.
        speaks: u8,
    },
    /// The payload ended inside a message.
    #[error("truncated {backend} payload")]
    Truncated {
        /// The backend.
        backend: &'static str,
    },
    /// An unknown message tag.
    #[error("unknown {backend} message tag {tag}")]
    Tag {
        /// The backend.
        backend: &'static str,
        /// The tag received.
        tag: u8,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean byte {0}")]
    Bool(u8),
    /// An unknown value of a backend's one-byte enumeration (Raft's kind of heartbeat set
    /// update).
    #[error("unknown {field} {value}")]
    Unknown {
        /// What the byte says (`heartbeat set update kind`).
        field: &'static str,
        /// The byte received.
        value: u8,
    },
    /// An election name that breaks the naming rules.
    #[error("invalid election name in {backend} payload: {reason}")]
    Name {
        /// The backend.
        backend: &'static str,
        /// The rule broken.
        reason: String,
    },
    /// Bytes left over after the last message.
    #[error("{count} trailing bytes after the last {backend} message")]
    Trailing {
        /// The backend.
        backend: &'static str,
        /// How many bytes were left.
        count: usize,
    },
}

/// Encodes `messages` into as few payloads as possible, each at most `max_len` bytes (a
/// single message longer than that still gets its own payload, which the transport will
/// refuse). Each payload starts with `version` and the message count.
pub fn encode_batch<M>(
    messages: &[M],
    max_len: usize,
    version: u8,
    mut encode_message: impl FnMut(&M, &mut BytesMut),
) -> Vec<Bytes> {
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
            buf.put_u8(version);
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

/// Writes an election name as `len:u8 bytes`.
pub fn put_name(buf: &mut BytesMut, name: &ElectionName) {
    // Names are at most 128 bytes (MAX_ELECTION_NAME_LEN), so one length byte suffices.
    buf.put_u8(name.as_str().len() as u8);
    buf.put_slice(name.as_str().as_bytes());
}

/// Writes `(name, epoch)` pairs as `n:u32 (name epoch:u64)*n`.
pub fn put_entries(buf: &mut BytesMut, entries: &[(ElectionName, u64)]) {
    buf.put_u32(entries.len() as u32);
    for (name, epoch) in entries {
        put_name(buf, name);
        buf.put_u64(*epoch);
    }
}

/// Decodes one payload of `backend`'s encoding at `version`, reading each message with
/// `read_message`. Never panics, whatever the input: `count` is not trusted for an
/// allocation beyond `payload.len() / min_message_len`.
///
/// # Errors
/// The framing's errors, or those of `read_message`.
pub fn decode_batch<M>(
    payload: &[u8],
    backend: &'static str,
    version: u8,
    min_message_len: usize,
    mut read_message: impl FnMut(&mut Reader<'_>) -> Result<M, DecodeError>,
) -> Result<Vec<M>, DecodeError> {
    let mut r = Reader {
        buf: payload,
        backend,
    };
    let v = r.u8()?;
    if v != version {
        return Err(DecodeError::Version {
            backend,
            found: v,
            speaks: version,
        });
    }
    let count = r.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(r.buf.len() / min_message_len.max(1) + 1));
    for _ in 0..count {
        out.push(read_message(&mut r)?);
    }
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing {
            backend,
            count: r.buf.len(),
        });
    }
    Ok(out)
}

/// Reads the framing's primitives from a payload, refusing to read past its end.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    backend: &'static str,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                backend: self.backend,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The error for an unknown message `tag` ([`DecodeError::Tag`]).
    pub fn unknown_tag(&self, tag: u8) -> DecodeError {
        DecodeError::Tag {
            backend: self.backend,
            tag,
        }
    }

    /// One byte.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of the payload.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of the payload.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of the payload.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A boolean byte, 0 or 1.
    ///
    /// # Errors
    /// [`DecodeError::Bool`] for any other byte, [`DecodeError::Truncated`] at the end.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::Bool(b)),
        }
    }

    /// An election name, validated.
    ///
    /// # Errors
    /// [`DecodeError::Name`] for a name that breaks the rules, [`DecodeError::Truncated`].
    pub fn name(&mut self) -> Result<ElectionName, DecodeError> {
        let len = self.u8()? as usize;
        let bytes = self.take(len)?;
        let name = std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|s| ElectionName::new(s).map_err(|e| e.to_string()));
        name.map_err(|reason| DecodeError::Name {
            backend: self.backend,
            reason,
        })
    }

    /// `(name, epoch)` pairs.
    ///
    /// # Errors
    /// As [`name`](Self::name) and [`u64`](Self::u64).
    pub fn entries(&mut self) -> Result<Vec<(ElectionName, u64)>, DecodeError> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(self.buf.len() / 10 + 1));
        for _ in 0..n {
            out.push((self.name()?, self.u64()?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<(ElectionName, u64)> {
        (0..n)
            .map(|i| (ElectionName::new(format!("e{i}")).unwrap(), i as u64))
            .collect()
    }

    const BACKEND: &str = "test";

    fn decode(payload: &[u8]) -> Result<Vec<Vec<(ElectionName, u64)>>, DecodeError> {
        decode_batch(payload, BACKEND, 9, 4, |r| r.entries())
    }

    #[test]
    fn batches_split_at_max_len_and_round_trip() {
        let msgs: Vec<_> = (0..10).map(|_| names(3)).collect();
        let payloads = encode_batch(&msgs, 64, 9, |m, b| put_entries(b, m));
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= 64));
        let back: Vec<_> = payloads.iter().flat_map(|p| decode(p).unwrap()).collect();
        assert_eq!(back, msgs);
    }

    #[test]
    fn a_wrong_version_truncation_and_trailing_bytes_are_errors_not_panics() {
        let p = encode_batch(&[names(2)], 1 << 20, 9, |m, b| put_entries(b, m)).remove(0);
        let mut other = p.to_vec();
        other[0] = 8;
        let truncated = Err(DecodeError::Truncated { backend: BACKEND });
        assert_eq!(
            decode(&other),
            Err(DecodeError::Version {
                backend: BACKEND,
                found: 8,
                speaks: 9
            })
        );
        assert_eq!(decode(&p[..p.len() - 1]), truncated);
        let mut long = p.to_vec();
        long.push(0);
        assert_eq!(
            decode(&long),
            Err(DecodeError::Trailing {
                backend: BACKEND,
                count: 1
            })
        );
        let huge_count = [9u8, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&huge_count), truncated);
    }
}
