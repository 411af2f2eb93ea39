//! Helpers for the transport's integration tests: clusters on loopback, test certificates,
//! a hand-driven "raw" peer for attacks, and waiting on conditions with deadlines.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use election_transport::{
    Auth, Frame, FrameDecoder, FrameMac, NodeId, Secret, TlsFiles, Transcript, Transport,
    TransportConfig, TransportStats,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: the machine is shared with other engineers' builds.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn secret(s: &str) -> Secret {
    Secret::new(format!("{s:0>16}").into_bytes()).unwrap()
}

/// `n` distinct loopback ports that were free a moment ago, outside the ephemeral range
/// (see [`election_tests::launch::free_port`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let port = election_tests::launch::free_port().expect("a free loopback port");
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Configurations for nodes `names` on free loopback ports, all with `auth(name)`.
pub fn configs(names: &[&str], auth: impl Fn(&str) -> Auth) -> Vec<TransportConfig> {
    let ports = free_ports(names.len());
    let peers: BTreeMap<NodeId, String> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| (id(n), format!("127.0.0.1:{p}")))
        .collect();
    names
        .iter()
        .zip(&ports)
        .map(|(n, p)| {
            let mut c = TransportConfig::new(
                id(n),
                SocketAddr::from(([127, 0, 0, 1], *p)),
                peers.clone(),
                auth(n),
            );
            c.reconnect_min = Duration::from_millis(20);
            c.reconnect_max = Duration::from_millis(200);
            c
        })
        .collect()
}

/// Binds every configuration, retrying on a new set of ports if one was taken meanwhile.
pub async fn cluster(
    names: &[&str],
    auth: impl Fn(&str) -> Auth,
) -> Vec<(Transport, election_transport::Inbox)> {
    for _ in 0..5 {
        let mut out = Vec::new();
        let mut failed = false;
        for c in configs(names, &auth) {
            match Transport::bind(c).await {
                Ok(t) => out.push(t),
                Err(election_transport::Error::Bind { .. }) => {
                    failed = true;
                    break;
                }
                Err(e) => panic!("bind: {e}"),
            }
        }
        if !failed {
            return out;
        }
        for (t, _) in out {
            t.shutdown().await;
        }
    }
    panic!("could not find free ports for {names:?}");
}

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn wait_stats(t: &Transport, what: &str, cond: impl Fn(&TransportStats) -> bool) {
    wait_until(what, || cond(&t.stats())).await;
}

/// The next message, or a panic naming `what` after the deadline.
pub async fn recv(inbox: &mut election_transport::Inbox, what: &str) -> (NodeId, Bytes) {
    tokio::time::timeout(DEADLINE, inbox.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("inbox closed while waiting for {what}"))
}

/// Sends `payload` to `to` until `inbox` yields that payload (a connection may still be
/// forming: earlier copies may be queued or lost), then returns it with its sender.
pub async fn send_until_received(
    from: &Transport,
    to: &NodeId,
    inbox: &mut election_transport::Inbox,
    payload: &'static [u8],
) -> (NodeId, Bytes) {
    let start = Instant::now();
    loop {
        assert!(from.send(to, Bytes::from_static(payload)));
        // Only this payload counts: an earlier call's retries may still be in the inbox,
        // and taking one of those for this message would end the wait before it arrived.
        let retry_at = Instant::now() + Duration::from_millis(100);
        while let Ok(got) = tokio::time::timeout_at(retry_at.into(), inbox.recv()).await {
            let got = got.expect("inbox open");
            if got.1 == payload {
                return got;
            }
        }
        assert!(start.elapsed() < DEADLINE, "no message reached {to}");
    }
}

// ---- Certificates ----

pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// Writes `ca.pem`, `<file>.pem` and `<file>.key` into `dir` for a certificate whose
    /// DNS SAN is `san`, and returns the files.
    pub fn issue(&self, dir: &Path, file: &str, san: &str) -> TlsFiles {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let files = TlsFiles {
            ca: dir.join(format!("ca-for-{file}.pem")),
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&files.ca, &self.pem).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

// ---- A raw peer, driven by hand, for attacks on the wire ----

pub struct RawPeer {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub decoder: FrameDecoder,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        RawPeer {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(1 << 20),
        }
    }

    pub async fn send_frame(&mut self, frame: &Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        self.stream.write_all(&out).await.unwrap();
        out
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            let n = tokio::time::timeout(DEADLINE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("raw peer read timed out")
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    /// Whether the other side closed the connection (EOF or reset) before the deadline.
    pub async fn is_closed_by_peer(&mut self) -> bool {
        let mut byte = [0u8; 64];
        loop {
            match tokio::time::timeout(DEADLINE, self.stream.read(&mut byte)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// Runs the shared-secret handshake as `me` toward `to`; returns the sending MAC.
    pub async fn handshake(&mut self, me: &NodeId, to: &NodeId, secret: &Secret) -> FrameMac {
        let nonce = [42u8; 32];
        self.send_frame(&Frame::Hello {
            from: me.clone(),
            to: to.clone(),
            nonce,
        })
        .await;
        let Some(Frame::Challenge {
            from,
            nonce: theirs,
            proof,
        }) = self.read_frame().await
        else {
            panic!("expected a Challenge");
        };
        assert_eq!(&from, to);
        let t = Transcript::new(me, to, &nonce, &theirs);
        assert!(t.verify_acceptor_proof(secret, &proof));
        self.send_frame(&Frame::Auth {
            proof: t.dialer_proof(secret),
        })
        .await;
        t.dialer_to_acceptor(secret)
    }

    /// Sends one sealed data frame; returns its bytes as written.
    pub async fn send_sealed(&mut self, mac: &mut FrameMac, payload: &'static [u8]) -> BytesMut {
        let tag = mac.seal(payload);
        self.send_frame(&Frame::SealedData {
            payload: Bytes::from_static(payload),
            tag,
        })
        .await
    }
}
