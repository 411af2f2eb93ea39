//! The wire format: length-prefixed, versioned frames. Sans-IO: bytes in, frames out.
//!
//! ```text
//! frame    = length:u32be  version:u8  kind:u8  body
//! length   = number of bytes after the length field (version + kind + body),
//!            at most the configured maximum frame length
//! kind 1   Hello       from:id  to:id  nonce:[32]      dialer → acceptor, first frame
//! kind 2   Challenge   from:id  nonce:[32]  proof:[32] acceptor → dialer (shared secret only)
//! kind 3   Auth        proof:[32]                      dialer → acceptor (shared secret only)
//! kind 4   Data        payload                         inside mutual TLS
//! kind 5   SealedData  payload  tag:[32]               shared secret: HMAC-SHA256 tag
//! id       = len:u8  bytes (a valid NodeId)
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use election_core::NodeId;

/// The only version of the encoding this crate speaks. Frames with any other version byte
/// are refused.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of handshake nonces, in bytes.
pub const NONCE_LEN: usize = 32;
/// Length of HMAC-SHA256 proofs and tags, in bytes.
pub const TAG_LEN: usize = 32;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Bytes of the version and kind fields, counted in a frame's length.
pub const HEADER_LEN: usize = 2;
/// Smallest accepted maximum frame length: room for a Hello with two 253-byte node ids.
pub const MIN_MAX_FRAME_LEN: usize = 1024;

const KIND_HELLO: u8 = 1;
const KIND_CHALLENGE: u8 = 2;
const KIND_AUTH: u8 = 3;
const KIND_DATA: u8 = 4;
const KIND_SEALED_DATA: u8 = 5;

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The dialer's first frame: who it is, whom it meant to reach, and its fresh nonce
    /// (all zeros under mutual TLS, where it is not used).
    Hello {
        /// The dialing node.
        from: NodeId,
        /// The node it meant to reach.
        to: NodeId,
        /// The dialer's fresh random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// The acceptor's answer under a shared secret: its nonce and its proof of the secret.
    Challenge {
        /// The accepting node.
        from: NodeId,
        /// The acceptor's fresh random nonce.
        nonce: [u8; NONCE_LEN],
        /// HMAC proof over the handshake transcript.
        proof: [u8; TAG_LEN],
    },
    /// The dialer's proof of the secret, completing the shared-secret handshake.
    Auth {
        /// HMAC proof over the handshake transcript.
        proof: [u8; TAG_LEN],
    },
    /// An opaque payload, protected by the TLS session around it.
    Data {
        /// The payload.
        payload: Bytes,
    },
    /// An opaque payload with its HMAC tag (shared-secret mode).
    SealedData {
        /// The payload.
        payload: Bytes,
        /// HMAC-SHA256 over the direction's sequence number and the payload.
        tag: [u8; TAG_LEN],
    },
}

/// Why bytes were not a valid frame. Any of these closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announced more than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The version byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {version} (this node speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version received.
        version: u8,
    },
    /// The frame's structure is wrong.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
}

fn malformed(reason: &'static str) -> FrameError {
    FrameError::Malformed { reason }
}

impl Frame {
    /// Bytes this frame takes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        LENGTH_PREFIX_LEN + HEADER_LEN + self.body_len()
    }

    fn body_len(&self) -> usize {
        match self {
            Frame::Hello { from, to, .. } => {
                2 + from.as_str().len() + to.as_str().len() + NONCE_LEN
            }
            Frame::Challenge { from, .. } => 1 + from.as_str().len() + NONCE_LEN + TAG_LEN,
            Frame::Auth { .. } => TAG_LEN,
            Frame::Data { payload } => payload.len(),
            Frame::SealedData { payload, .. } => payload.len() + TAG_LEN,
        }
    }

    /// Appends the frame's encoding to `out`.
    ///
    /// # Panics
    /// If the frame is longer than `u32::MAX` bytes; callers check payloads against the
    /// maximum frame length first.
    pub fn encode(&self, out: &mut BytesMut) {
        let len = HEADER_LEN + self.body_len();
        let len = u32::try_from(len).expect("frame length checked against the maximum");
        out.reserve(LENGTH_PREFIX_LEN + len as usize);
        out.put_u32(len);
        out.put_u8(PROTOCOL_VERSION);
        match self {
            Frame::Hello { from, to, nonce } => {
                out.put_u8(KIND_HELLO);
                put_id(out, from);
                put_id(out, to);
                out.put_slice(nonce);
            }
            Frame::Challenge { from, nonce, proof } => {
                out.put_u8(KIND_CHALLENGE);
                put_id(out, from);
                out.put_slice(nonce);
                out.put_slice(proof);
            }
            Frame::Auth { proof } => {
                out.put_u8(KIND_AUTH);
                out.put_slice(proof);
            }
            Frame::Data { payload } => {
                out.put_u8(KIND_DATA);
                out.put_slice(payload);
            }
            Frame::SealedData { payload, tag } => {
                out.put_u8(KIND_SEALED_DATA);
                out.put_slice(payload);
                out.put_slice(tag);
            }
        }
    }
}

fn put_id(out: &mut BytesMut, id: &NodeId) {
    // NodeId is at most 253 bytes, so its length fits in a byte.
    out.put_u8(id.as_str().len() as u8);
    out.put_slice(id.as_str().as_bytes());
}

/// Splits a byte stream into [`Frame`]s, refusing oversized, wrong-version and malformed
/// ones. Holds no buffer of its own: the caller owns the bytes.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames whose length field exceeds `max_frame_len`.
    pub fn new(max_frame_len: usize) -> Self {
        FrameDecoder { max_frame_len }
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Decodes one frame from the front of `buf`, removing its bytes.
    ///
    /// `Ok(None)` means more bytes are needed (nothing is consumed). An oversized length is
    /// reported as soon as the prefix is complete, before its body arrives. After an error
    /// the stream cannot be resynchronized: close the connection.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame_len {
            return Err(FrameError::Oversized {
                len,
                max: self.max_frame_len,
            });
        }
        if len < HEADER_LEN {
            return Err(malformed("length shorter than the header"));
        }
        // The version is checked as soon as it arrives, not after the whole body.
        if buf.len() > LENGTH_PREFIX_LEN && buf[LENGTH_PREFIX_LEN] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion {
                version: buf[LENGTH_PREFIX_LEN],
            });
        }
        if buf.len() < LENGTH_PREFIX_LEN + len {
            // Room for the rest, in steps of at most 64 KiB: a length prefix alone does not
            // make the reader allocate the whole announced frame.
            buf.reserve((LENGTH_PREFIX_LEN + len - buf.len()).min(64 * 1024));
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX_LEN);
        let mut frame = buf.split_to(len).freeze();
        let _version = frame.get_u8();
        let kind = frame.get_u8();
        parse_body(kind, frame).map(Some)
    }
}

fn parse_body(kind: u8, mut body: Bytes) -> Result<Frame, FrameError> {
    let frame = match kind {
        KIND_HELLO => {
            let from = take_id(&mut body)?;
            let to = take_id(&mut body)?;
            let nonce = take_array(&mut body)?;
            Frame::Hello { from, to, nonce }
        }
        KIND_CHALLENGE => {
            let from = take_id(&mut body)?;
            let nonce = take_array(&mut body)?;
            let proof = take_array(&mut body)?;
            Frame::Challenge { from, nonce, proof }
        }
        KIND_AUTH => Frame::Auth {
            proof: take_array(&mut body)?,
        },
        KIND_DATA => {
            return Ok(Frame::Data { payload: body });
        }
        KIND_SEALED_DATA => {
            if body.len() < TAG_LEN {
                return Err(malformed("sealed data shorter than its tag"));
            }
            let tag_bytes = body.split_off(body.len() - TAG_LEN);
            let mut tag = [0; TAG_LEN];
            tag.copy_from_slice(&tag_bytes);
            return Ok(Frame::SealedData { payload: body, tag });
        }
        _ => return Err(malformed("unknown frame kind")),
    };
    if body.has_remaining() {
        return Err(malformed("trailing bytes after the frame's fields"));
    }
    Ok(frame)
}

fn take_id(body: &mut Bytes) -> Result<NodeId, FrameError> {
    if !body.has_remaining() {
        return Err(malformed("truncated node id"));
    }
    let len = body.get_u8() as usize;
    if body.len() < len {
        return Err(malformed("truncated node id"));
    }
    let raw = body.split_to(len);
    let text = std::str::from_utf8(&raw).map_err(|_| malformed("node id is not UTF-8"))?;
    NodeId::new(text).map_err(|_| malformed("invalid node id"))
}

fn take_array<const N: usize>(body: &mut Bytes) -> Result<[u8; N], FrameError> {
    if body.len() < N {
        return Err(malformed("truncated fixed-size field"));
    }
    let mut out = [0; N];
    body.copy_to_slice(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Hello {
                from: id("a"),
                to: id("node-b.example"),
                nonce: [7; NONCE_LEN],
            },
            Frame::Challenge {
                from: id("b"),
                nonce: [1; NONCE_LEN],
                proof: [2; TAG_LEN],
            },
            Frame::Auth {
                proof: [3; TAG_LEN],
            },
            Frame::Data {
                payload: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                payload: Bytes::new(),
            },
            Frame::SealedData {
                payload: Bytes::from_static(b"sealed"),
                tag: [9; TAG_LEN],
            },
        ]
    }

    #[test]
    fn every_frame_kind_round_trips() {
        let decoder = FrameDecoder::new(MIN_MAX_FRAME_LEN);
        for frame in all_kinds() {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(buf.len(), frame.encoded_len());
            assert_eq!(decoder.decode(&mut buf), Ok(Some(frame)));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn frames_split_at_every_byte_boundary_decode_once_complete() {
        let decoder = FrameDecoder::new(MIN_MAX_FRAME_LEN);
        let mut wire = BytesMut::new();
        for frame in all_kinds() {
            frame.encode(&mut wire);
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        assert_eq!(out, all_kinds());
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let decoder = FrameDecoder::new(MIN_MAX_FRAME_LEN);
        let mut buf = BytesMut::new();
        buf.put_u32(MIN_MAX_FRAME_LEN as u32 + 1);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::Oversized {
                len: MIN_MAX_FRAME_LEN + 1,
                max: MIN_MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn unknown_version_is_refused() {
        let decoder = FrameDecoder::new(MIN_MAX_FRAME_LEN);
        let mut buf = BytesMut::new();
        Frame::Auth { proof: [0; 32] }.encode(&mut buf);
        buf[LENGTH_PREFIX_LEN] = 2;
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::UnsupportedVersion { version: 2 })
        );
        // Refused on the version byte alone, without waiting for the rest.
        let mut partial = BytesMut::from(&buf[..LENGTH_PREFIX_LEN + 1]);
        assert!(decoder.decode(&mut partial).is_err());
    }

    #[test]
    fn invalid_node_ids_and_trailing_bytes_are_malformed() {
        let decoder = FrameDecoder::new(MIN_MAX_FRAME_LEN);
        let mut buf = BytesMut::new();
        buf.put_u32(2 + 3);
        buf.put_u8(PROTOCOL_VERSION);
        buf.put_u8(KIND_HELLO);
        buf.put_slice(b"\x02..");
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::Malformed { .. })
        ));

        let mut buf = BytesMut::new();
        Frame::Auth { proof: [0; 32] }.encode(&mut buf);
        buf.put_u8(0);
        let len = (HEADER_LEN + TAG_LEN + 1) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::Malformed { .. })
        ));

        let mut buf = BytesMut::new();
        Frame::Hello {
            from: id("a"),
            to: id("b"),
            nonce: [0; 32],
        }
        .encode(&mut buf);
        buf[LENGTH_PREFIX_LEN + HEADER_LEN + 1] = b'!';
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::Malformed { .. })
        ));
    }
}
