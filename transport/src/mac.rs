//! Shared-secret authentication: the handshake proofs and the per-frame MAC. Sans-IO.
//!
//! # Protocol
//!
//! The dialer `A` connects to the acceptor `B`:
//!
//! 1. `A → B  Hello { from: A, to: B, nonce: Na }` (`Na` fresh, 32 random bytes)
//! 2. `B → A  Challenge { from: B, nonce: Nb, proof: HMAC(K, "acceptor" ‖ T) }`
//! 3. `A → B  Auth { proof: HMAC(K, "dialer" ‖ T) }`
//!
//! where `K` is the shared secret and the transcript `T = "elector-transport/1" ‖ A ‖ B ‖
//! Na ‖ Nb` (ids length-prefixed). Each side checks the other's proof in constant time,
//! so each proves knowledge of `K` bound to a nonce the *other* side just chose: recorded
//! handshakes cannot be replayed, and the distinct labels stop a proof from being reflected.
//!
//! Each direction then gets its own key, `HMAC(K, "A→B" ‖ T)` and `HMAC(K, "B→A" ‖ T)`,
//! and every data frame carries `tag = HMAC(key, seq ‖ payload)` where `seq` counts that
//! direction's data frames from 0 and is not sent: the receiver uses the number it expects.
//! A recorded frame therefore fails on another connection (other nonces, other key) and
//! when replayed, dropped or reordered on its own connection (other sequence number).

use election_core::NodeId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Secret;
use crate::codec::{NONCE_LEN, TAG_LEN};

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"elector-transport/1";

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The bound parameters of one shared-secret handshake, from which both proofs and both
/// direction keys derive.
#[derive(Clone, Debug)]
pub struct Transcript {
    bytes: Vec<u8>,
}

impl Transcript {
    /// The transcript of a connection dialed by `dialer` to `acceptor` with the two nonces.
    pub fn new(
        dialer: &NodeId,
        acceptor: &NodeId,
        dialer_nonce: &[u8; NONCE_LEN],
        acceptor_nonce: &[u8; NONCE_LEN],
    ) -> Self {
        let mut bytes = Vec::with_capacity(DOMAIN.len() + 2 + 2 * 253 + 2 * NONCE_LEN);
        bytes.extend_from_slice(DOMAIN);
        for id in [dialer, acceptor] {
            bytes.push(id.as_str().len() as u8);
            bytes.extend_from_slice(id.as_str().as_bytes());
        }
        bytes.extend_from_slice(dialer_nonce);
        bytes.extend_from_slice(acceptor_nonce);
        Transcript { bytes }
    }

    fn labelled(&self, secret: &Secret, label: &[u8]) -> HmacSha256 {
        let mut mac = keyed(secret.expose());
        mac.update(label);
        mac.update(&self.bytes);
        mac
    }

    fn tag(&self, secret: &Secret, label: &[u8]) -> [u8; TAG_LEN] {
        self.labelled(secret, label).finalize().into_bytes().into()
    }

    /// The acceptor's proof of the secret (sent in the Challenge).
    pub fn acceptor_proof(&self, secret: &Secret) -> [u8; TAG_LEN] {
        self.tag(secret, b"acceptor")
    }

    /// The dialer's proof of the secret (sent in Auth).
    pub fn dialer_proof(&self, secret: &Secret) -> [u8; TAG_LEN] {
        self.tag(secret, b"dialer")
    }

    /// Checks the acceptor's proof, in constant time.
    pub fn verify_acceptor_proof(&self, secret: &Secret, proof: &[u8; TAG_LEN]) -> bool {
        self.labelled(secret, b"acceptor")
            .verify_slice(proof)
            .is_ok()
    }

    /// Checks the dialer's proof, in constant time.
    pub fn verify_dialer_proof(&self, secret: &Secret, proof: &[u8; TAG_LEN]) -> bool {
        self.labelled(secret, b"dialer").verify_slice(proof).is_ok()
    }

    /// The MAC state for data frames from the dialer to the acceptor.
    pub fn dialer_to_acceptor(&self, secret: &Secret) -> FrameMac {
        FrameMac::new(&self.tag(secret, "A→B".as_bytes()))
    }

    /// The MAC state for data frames from the acceptor to the dialer.
    pub fn acceptor_to_dialer(&self, secret: &Secret) -> FrameMac {
        FrameMac::new(&self.tag(secret, "B→A".as_bytes()))
    }
}

/// One direction's data-frame MAC: a key and the next sequence number.
///
/// The sender calls [`seal`](Self::seal) and the receiver [`open`](Self::open) once per
/// frame, in order; both advance the sequence number, `open` only on success.
#[derive(Clone)]
pub struct FrameMac {
    mac: HmacSha256,
    seq: u64,
}

impl std::fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMac")
            .field("key", &"<redacted>")
            .field("seq", &self.seq)
            .finish()
    }
}

impl FrameMac {
    /// A direction keyed by `key`, starting at sequence number 0.
    pub fn new(key: &[u8; TAG_LEN]) -> Self {
        FrameMac {
            mac: keyed(key),
            seq: 0,
        }
    }

    /// The sequence number of the next frame.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    fn for_seq(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&self.seq.to_be_bytes());
        mac.update(payload);
        mac
    }

    /// The tag of the next outgoing frame carrying `payload`.
    pub fn seal(&mut self, payload: &[u8]) -> [u8; TAG_LEN] {
        let tag = self.for_seq(payload).finalize().into_bytes().into();
        self.seq = self.seq.wrapping_add(1);
        tag
    }

    /// Whether `tag` authenticates `payload` as the next incoming frame (constant-time
    /// compare). On success the sequence number advances; on failure close the connection.
    #[must_use]
    pub fn open(&mut self, payload: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        let ok = self.for_seq(payload).verify_slice(tag).is_ok();
        if ok {
            self.seq = self.seq.wrapping_add(1);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec()).unwrap()
    }

    fn transcript(na: u8, nb: u8) -> Transcript {
        Transcript::new(&id("a"), &id("b"), &[na; 32], &[nb; 32])
    }

    #[test]
    fn proofs_verify_only_with_the_same_secret_nonces_and_role() {
        let k = secret("0123456789abcdef");
        let t = transcript(1, 2);
        assert!(t.verify_acceptor_proof(&k, &t.acceptor_proof(&k)));
        assert!(t.verify_dialer_proof(&k, &t.dialer_proof(&k)));
        // A reflected proof (acceptor's presented as the dialer's) fails.
        assert!(!t.verify_dialer_proof(&k, &t.acceptor_proof(&k)));
        // A wrong secret fails.
        assert!(!t.verify_dialer_proof(&secret("0123456789abcdeX"), &t.dialer_proof(&k)));
        // A proof from another handshake (other nonce) fails.
        assert!(!transcript(1, 3).verify_dialer_proof(&k, &t.dialer_proof(&k)));
        // Swapped ids fail.
        let swapped = Transcript::new(&id("b"), &id("a"), &[1; 32], &[2; 32]);
        assert!(!swapped.verify_dialer_proof(&k, &t.dialer_proof(&k)));
    }

    #[test]
    fn a_sealed_frame_opens_once_in_order_and_only_on_its_connection() {
        let k = secret("0123456789abcdef");
        let t = transcript(1, 2);
        let mut tx = t.dialer_to_acceptor(&k);
        let mut rx = t.dialer_to_acceptor(&k);
        let first = tx.seal(b"one");
        let second = tx.seal(b"two");
        // Out of order: refused.
        assert!(!rx.clone().open(b"two", &second));
        assert!(rx.open(b"one", &first));
        // Replayed: refused.
        assert!(!rx.clone().open(b"one", &first));
        assert!(rx.open(b"two", &second));
        // On another connection (other nonces), even at the same sequence number: refused.
        let mut other = transcript(1, 9).dialer_to_acceptor(&k);
        assert!(!other.open(b"one", &first));
        // The other direction's key does not open it either.
        assert!(!t.acceptor_to_dialer(&k).open(b"one", &first));
        // A modified payload is refused.
        let mut rx = t.dialer_to_acceptor(&k);
        assert!(!rx.open(b"onE", &first));
    }
}
