//! One authenticated connection: the handshakes (dialing and accepting) and the framed
//! reads and writes after them. Each connection carries data one way, dialer → acceptor.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use election_core::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{Frame, FrameDecoder, FrameError, MIN_MAX_FRAME_LEN, NONCE_LEN};
use crate::mac::{FrameMac, Transcript};
use crate::tls::{self, TlsContext};
use crate::{Error, Result, Secret};

/// A byte stream: plain TCP or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How this node authenticates, ready to use.
#[derive(Clone)]
pub(crate) enum AuthContext {
    Secret(Secret),
    Tls(TlsContext),
}

/// What every connection needs to know about this node.
#[derive(Clone)]
pub(crate) struct ConnContext {
    pub(crate) me: NodeId,
    pub(crate) peers: BTreeSet<NodeId>,
    pub(crate) decoder: FrameDecoder,
    pub(crate) auth: AuthContext,
}

fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// A stream with a read buffer, speaking frames.
pub(crate) struct FramedIo {
    stream: Box<dyn Stream>,
    rbuf: BytesMut,
    decoder: FrameDecoder,
    pub(crate) peer: Option<NodeId>,
    pub(crate) addr: String,
}

impl FramedIo {
    fn new(
        stream: Box<dyn Stream>,
        decoder: FrameDecoder,
        peer: Option<NodeId>,
        addr: String,
    ) -> Self {
        FramedIo {
            stream,
            rbuf: BytesMut::with_capacity(8 * 1024),
            decoder,
            peer,
            addr,
        }
    }

    fn io_err(&self, what: &'static str, source: io::Error) -> Error {
        if is_tls_error(&source) {
            return self.auth_err(format!("TLS: {source}"));
        }
        Error::Io {
            peer: self.peer.clone(),
            addr: self.addr.clone(),
            what,
            source,
        }
    }

    fn auth_err(&self, reason: impl Into<String>) -> Error {
        Error::Auth {
            peer: self.peer.clone(),
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    fn protocol_err(&self, detail: &'static str) -> Error {
        Error::Protocol {
            peer: self.peer.clone(),
            addr: self.addr.clone(),
            detail,
        }
    }

    fn frame_err(&self, source: FrameError) -> Error {
        Error::Frame {
            peer: self.peer.clone(),
            addr: self.addr.clone(),
            source,
        }
    }

    /// Reads the next frame. Cancel-safe: bytes read so far stay buffered.
    pub(crate) async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(self.frame_err(e)),
            }
            match self.stream.read_buf(&mut self.rbuf).await {
                Ok(0) => {
                    return Err(self.io_err(
                        "reading",
                        io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(self.io_err("reading", e)),
            }
        }
    }

    /// Writes `bytes` and flushes them to the socket.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(e) = self.stream.write_all(bytes).await {
            return Err(self.io_err("writing", e));
        }
        self.stream
            .flush()
            .await
            .map_err(|e| self.io_err("writing", e))
    }

    async fn write_frame(&mut self, frame: &Frame) -> Result<()> {
        let mut out = BytesMut::with_capacity(frame.encoded_len());
        frame.encode(&mut out);
        self.write_all(&out).await
    }

    /// Completes when the peer closes the connection or sends anything (an acceptor sends
    /// nothing after the handshake, so any byte is a protocol violation). Cancel-safe.
    pub(crate) async fn closed(&mut self) -> Error {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte).await {
            Ok(0) => self.io_err(
                "waiting",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by the peer",
                ),
            ),
            Ok(_) => self.protocol_err("the acceptor sent data on a one-way connection"),
            Err(e) => self.io_err("waiting", e),
        }
    }

    /// Closes the connection cleanly (a TLS close_notify, then FIN), best effort.
    pub(crate) async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Handshake frames are small: until a peer has authenticated, anything longer than
/// [`MIN_MAX_FRAME_LEN`] is refused as oversized, so an unauthenticated connection cannot
/// make this node buffer a maximum-size frame.
fn handshake_decoder(ctx: &ConnContext) -> FrameDecoder {
    FrameDecoder::new(MIN_MAX_FRAME_LEN.min(ctx.decoder.max_frame_len()))
}

fn fresh_nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0; NONCE_LEN];
    tls::fill_random(&mut nonce)?;
    Ok(nonce)
}

/// Our side of an outgoing connection, after the handshake.
pub(crate) struct Outgoing {
    pub(crate) io: FramedIo,
    mac: Option<FrameMac>,
}

impl Outgoing {
    /// Appends `payload` as the next data frame (sealed under a shared secret).
    pub(crate) fn encode(&mut self, payload: &Bytes, out: &mut BytesMut) {
        let frame = match &mut self.mac {
            Some(mac) => Frame::SealedData {
                tag: mac.seal(payload),
                payload: payload.clone(),
            },
            None => Frame::Data {
                payload: payload.clone(),
            },
        };
        frame.encode(out);
    }
}

/// Connects to peer `to` at `addr` and authenticates both ways. The caller bounds the
/// time with [`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout).
pub(crate) async fn dial(ctx: &ConnContext, to: &NodeId, addr: &str) -> Result<Outgoing> {
    let io_err = |what, source| Error::Io {
        peer: Some(to.clone()),
        addr: addr.to_owned(),
        what,
        source,
    };
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| io_err("connecting", e))?;
    tcp.set_nodelay(true).map_err(|e| io_err("connecting", e))?;
    let addr = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_owned());
    let stream: Box<dyn Stream> = match &ctx.auth {
        AuthContext::Secret(_) => Box::new(tcp),
        AuthContext::Tls(tls) => {
            let name = tls::server_name(to).ok_or_else(|| Error::Auth {
                peer: Some(to.clone()),
                addr: addr.clone(),
                reason: "node id is not a DNS name a certificate could carry".into(),
            })?;
            let stream = tls
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| Error::Auth {
                    peer: Some(to.clone()),
                    addr: addr.clone(),
                    reason: format!("TLS handshake: {e}"),
                })?;
            Box::new(stream)
        }
    };
    let mut io = FramedIo::new(stream, handshake_decoder(ctx), Some(to.clone()), addr);
    let nonce = match ctx.auth {
        AuthContext::Secret(_) => fresh_nonce().map_err(|e| io.io_err("drawing a nonce", e))?,
        AuthContext::Tls(_) => [0; NONCE_LEN],
    };
    io.write_frame(&Frame::Hello {
        from: ctx.me.clone(),
        to: to.clone(),
        nonce,
    })
    .await?;
    let mac = match &ctx.auth {
        AuthContext::Tls(_) => None,
        AuthContext::Secret(secret) => {
            let Frame::Challenge {
                from,
                nonce: theirs,
                proof,
            } = io.read_frame().await?
            else {
                return Err(io.protocol_err("expected a Challenge after Hello"));
            };
            if &from != to {
                return Err(io.auth_err(format!("answered as node {from}")));
            }
            let transcript = Transcript::new(&ctx.me, to, &nonce, &theirs);
            if !transcript.verify_acceptor_proof(secret, &proof) {
                return Err(io.auth_err(
                    "its proof of the shared secret does not verify (the secrets differ)",
                ));
            }
            io.write_frame(&Frame::Auth {
                proof: transcript.dialer_proof(secret),
            })
            .await?;
            Some(transcript.dialer_to_acceptor(secret))
        }
    };
    io.decoder = ctx.decoder;
    Ok(Outgoing { io, mac })
}

/// Our side of an incoming connection, after the handshake.
pub(crate) struct Incoming {
    pub(crate) io: FramedIo,
    pub(crate) peer: NodeId,
    mac: Option<FrameMac>,
}

impl Incoming {
    /// The next authenticated payload. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Result<Bytes> {
        let frame = self.io.read_frame().await?;
        match (frame, &mut self.mac) {
            (Frame::SealedData { payload, tag }, Some(mac)) => {
                if mac.open(&payload, &tag) {
                    Ok(payload)
                } else {
                    Err(self.io.auth_err(format!(
                        "bad MAC on data frame {} (forged, modified, replayed or reordered)",
                        mac.next_seq()
                    )))
                }
            }
            (Frame::Data { payload }, None) => Ok(payload),
            (Frame::Data { .. }, Some(_)) => Err(self
                .io
                .auth_err("unauthenticated data frame on a shared-secret connection")),
            (Frame::SealedData { .. }, None) => Err(self
                .io
                .protocol_err("sealed data frame on a TLS connection")),
            _ => Err(self.io.protocol_err("handshake frame after the handshake")),
        }
    }
}

/// Authenticates a connection a peer dialed. The caller bounds the time with
/// [`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout).
/// `hello` turns true once the first handshake frame arrived whole and names a configured
/// peer (such a connection is displaced last).
pub(crate) async fn accept(
    ctx: &ConnContext,
    tcp: TcpStream,
    addr: String,
    hello: &AtomicBool,
) -> Result<Incoming> {
    let _ = tcp.set_nodelay(true);
    let (stream, cert): (Box<dyn Stream>, _) = match &ctx.auth {
        AuthContext::Secret(_) => (Box::new(tcp), None),
        AuthContext::Tls(tls) => {
            let stream = tls.acceptor.accept(tcp).await.map_err(|e| Error::Auth {
                peer: None,
                addr: addr.clone(),
                reason: format!("TLS handshake: {e}"),
            })?;
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| c.clone().into_owned());
            (Box::new(stream), cert)
        }
    };
    let mut io = FramedIo::new(stream, handshake_decoder(ctx), None, addr);
    let Frame::Hello { from, to, nonce } = io.read_frame().await? else {
        return Err(io.protocol_err("expected Hello as the first frame"));
    };
    if from == ctx.me || !ctx.peers.contains(&from) {
        return Err(Error::UnknownPeer {
            claimed: from,
            addr: io.addr.clone(),
        });
    }
    io.peer = Some(from.clone());
    hello.store(true, Ordering::Relaxed);
    if to != ctx.me {
        return Err(Error::Misaddressed {
            peer: from,
            addr: io.addr.clone(),
            to,
            me: ctx.me.clone(),
        });
    }
    let mac = match &ctx.auth {
        AuthContext::Tls(_) => {
            if !cert.is_some_and(|cert| tls::cert_names(&cert, &from)) {
                return Err(io.auth_err(format!(
                    "its certificate has no DNS subject alternative name {from}"
                )));
            }
            None
        }
        AuthContext::Secret(secret) => {
            let ours = fresh_nonce().map_err(|e| io.io_err("drawing a nonce", e))?;
            let transcript = Transcript::new(&from, &ctx.me, &nonce, &ours);
            io.write_frame(&Frame::Challenge {
                from: ctx.me.clone(),
                nonce: ours,
                proof: transcript.acceptor_proof(secret),
            })
            .await?;
            let Frame::Auth { proof } = io.read_frame().await? else {
                return Err(io.protocol_err("expected Auth after Challenge"));
            };
            if !transcript.verify_dialer_proof(secret, &proof) {
                return Err(io.auth_err(
                    "its proof of the shared secret does not verify (the secrets differ)",
                ));
            }
            Some(transcript.dialer_to_acceptor(secret))
        }
    };
    io.decoder = ctx.decoder;
    Ok(Incoming {
        io,
        peer: from,
        mac,
    })
}
