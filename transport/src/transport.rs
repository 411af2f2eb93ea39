//! The tokio driver: a listener, one dialing task per peer, one task per incoming
//! connection.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use election_core::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::backoff::Backoff;
use crate::codec::{FrameDecoder, FrameError};
use crate::conn::{self, AuthContext, ConnContext, Outgoing};
use crate::links::{KEEPALIVE_INTERVAL, Link, PeerLink};
use crate::queue::SendQueue;
use crate::stats::Counters;
use crate::{Auth, Error, Result, TransportConfig, TransportStats, tls};

/// Capacity of the [`Inbox`], in messages. When the application falls behind, reading
/// from peers' connections pauses (TCP flow control) and their send queues fill up.
pub const INBOX_LEN: usize = 4096;
/// How long [`Transport::shutdown`] lets connected peers' queues drain.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Longest a write may stall (peer vanished without closing, or not reading) before the
/// connection is dropped and redialed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most messages written in one batch.
const MAX_BATCH_ITEMS: usize = 256;
/// About the most payload bytes written in one batch.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// State shared by the handle and the tasks.
struct Shared {
    ctx: ConnContext,
    queues: BTreeMap<NodeId, Arc<SendQueue>>,
    /// Per peer, a count of its authenticated incoming connections: the newest one wins and
    /// older ones (left half-open by a restart or a network blip) are closed.
    generations: BTreeMap<NodeId, watch::Sender<u64>>,
    /// Per peer, when it was last heard from and which connections are up.
    links: BTreeMap<NodeId, Link>,
    /// When the transport started: the origin of the times in `links`.
    started: tokio::time::Instant,
    stats: Counters,
    shutdown: watch::Sender<bool>,
    max_payload_len: usize,
    reconnect: (Duration, Duration),
    handshake_timeout: Duration,
    /// Incoming connections that have not authenticated yet.
    pending: Mutex<Pending>,
    max_handshakes: usize,
    max_handshakes_per_source: usize,
}

/// One incoming connection still in its handshake.
struct Handshake {
    source: IpAddr,
    /// Set once its first handshake frame arrived whole, naming a configured peer.
    hello: Arc<AtomicBool>,
    /// `None` until its task is spawned.
    abort: Option<AbortHandle>,
}

/// The unauthenticated incoming connections, oldest first, and how many each source
/// address holds. Authenticated connections are never in it: they are always admitted.
#[derive(Default)]
struct Pending {
    next: u64,
    by_age: BTreeMap<u64, Handshake>,
    per_source: HashMap<IpAddr, usize>,
}

impl Pending {
    fn insert(&mut self, source: IpAddr, hello: Arc<AtomicBool>) -> u64 {
        let id = self.next;
        self.next += 1;
        self.by_age.insert(
            id,
            Handshake {
                source,
                hello,
                abort: None,
            },
        );
        *self.per_source.entry(source).or_default() += 1;
        id
    }

    fn remove(&mut self, id: u64) -> Option<Handshake> {
        let h = self.by_age.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&h.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&h.source);
            }
        }
        Some(h)
    }

    /// The handshake to close to make room for one more from `source`, if a cap is
    /// reached: from that source when it holds its share, else from anyone; among those,
    /// the oldest that sent no valid first frame yet, else the oldest.
    fn victim(&self, source: IpAddr, total: usize, per_source: usize) -> Option<u64> {
        let from_source = self.per_source.get(&source).copied().unwrap_or(0) >= per_source;
        if !from_source && self.by_age.len() < total {
            return None;
        }
        let candidates = || {
            self.by_age
                .iter()
                .filter(move |(_, h)| !from_source || h.source == source)
        };
        candidates()
            .find(|(_, h)| !h.hello.load(Ordering::Relaxed))
            .or_else(|| candidates().next())
            .map(|(&id, _)| id)
    }
}

/// Takes an incoming connection out of [`Shared::pending`] when its handshake ends
/// (authenticated, failed, timed out or aborted).
struct PendingGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.remove(self.id);
    }
}

impl Shared {
    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Counts a connection-ending error under its counter and logs it.
    fn record(&self, e: &Error, dialing: bool) {
        let s = &self.stats;
        let counter = match e {
            Error::Frame {
                source: FrameError::Oversized { .. },
                ..
            } => Some(&s.oversized_frames),
            Error::Frame {
                source: FrameError::UnsupportedVersion { .. },
                ..
            } => Some(&s.bad_version_frames),
            Error::Frame { .. } | Error::Protocol { .. } => Some(&s.malformed_frames),
            Error::Auth { .. } => Some(&s.auth_failures),
            Error::UnknownPeer { .. } | Error::Misaddressed { .. } => Some(&s.unknown_peer_frames),
            _ => None,
        };
        let me = &self.ctx.me;
        match counter {
            Some(counter) => {
                Counters::add(counter, 1);
                tracing::warn!(node = %me, "closed connection: {e}");
            }
            None if dialing => tracing::debug!(node = %me, "{e}"),
            None => tracing::debug!(node = %me, "connection ended: {e}"),
        }
    }
}

/// The handle's owned part: dropping the last [`Transport`] clone stops every task.
struct Handle {
    shared: Arc<Shared>,
    tasks: Mutex<JoinSet<()>>,
    local_addr: SocketAddr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        // Dropping the JoinSet aborts the listener (and with it the incoming connections)
        // and the dialers.
    }
}

/// A running transport. Cheap to clone; all clones share the same connections. Dropping
/// the last clone stops it abruptly; [`Transport::shutdown`] stops it gracefully.
#[derive(Clone)]
pub struct Transport {
    handle: Arc<Handle>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("me", &self.handle.shared.ctx.me)
            .field("local_addr", &self.handle.local_addr)
            .finish_non_exhaustive()
    }
}

/// The messages peers sent to this node, in order per connection.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<(NodeId, Bytes)>,
}

impl Inbox {
    /// The next message and the authenticated peer that sent it; `None` once the transport
    /// has shut down.
    pub async fn recv(&mut self) -> Option<(NodeId, Bytes)> {
        self.rx.recv().await
    }
}

impl Transport {
    /// Validates `config`, loads TLS files if any, listens on `config.listen`, and starts
    /// connecting to every peer.
    ///
    /// # Errors
    /// [`Error::Config`] for a setting breaking its rule, [`Error::TlsFile`] for an
    /// unusable certificate or key, [`Error::Bind`] when the address cannot be listened on.
    pub async fn bind(config: TransportConfig) -> Result<(Transport, Inbox)> {
        config.validate()?;
        let auth = match &config.auth {
            Auth::SharedSecret(secret) => AuthContext::Secret(secret.clone()),
            Auth::MutualTls(files) => AuthContext::Tls(tls::load(files, &config.me)?),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let queues = config
            .remote_peers()
            .map(|(id, _)| (id.clone(), Arc::new(SendQueue::new(config.send_queue_len))))
            .collect();
        let shared = Arc::new(Shared {
            ctx: ConnContext {
                me: config.me.clone(),
                peers: config.remote_peers().map(|(id, _)| id.clone()).collect(),
                decoder: FrameDecoder::new(config.max_frame_len),
                auth,
            },
            queues,
            generations: config
                .remote_peers()
                .map(|(id, _)| (id.clone(), watch::channel(0).0))
                .collect(),
            links: config
                .remote_peers()
                .map(|(id, addr)| (id.clone(), Link::new(addr.clone())))
                .collect(),
            started: tokio::time::Instant::now(),
            stats: Counters::default(),
            shutdown: watch::channel(false).0,
            max_payload_len: config.max_payload_len(),
            reconnect: (config.reconnect_min, config.reconnect_max),
            handshake_timeout: config.handshake_timeout,
            pending: Mutex::new(Pending::default()),
            max_handshakes: config.max_handshakes,
            max_handshakes_per_source: config.max_handshakes_per_source,
        });
        let (inbox_tx, rx) = mpsc::channel(INBOX_LEN);
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(shared.clone(), listener, inbox_tx));
        for (id, addr) in config.remote_peers() {
            let queue = shared.queues[id].clone();
            tasks.spawn(dial_loop(shared.clone(), id.clone(), addr.clone(), queue));
        }
        tracing::info!(node = %config.me, %local_addr, peers = shared.ctx.peers.len(), "transport listening");
        let handle = Handle {
            shared,
            tasks: Mutex::new(tasks),
            local_addr,
        };
        Ok((
            Transport {
                handle: Arc::new(handle),
            },
            Inbox { rx },
        ))
    }

    /// The address the transport listens on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Queues `payload` for peer `to`. Never blocks.
    ///
    /// Returns `false`, and counts it in `sends_refused`, when the payload is not queued:
    /// `to` is not a configured peer (or is this node), the payload is empty (an empty
    /// data frame is a keepalive) or exceeds [`TransportConfig::max_payload_len`], or the
    /// transport is shutting down. Returns
    /// `true` when queued; if the queue was full, the *oldest* queued message was dropped to
    /// make room (counted in `queue_drops`). A queued message is delivered at most once and
    /// may still be lost with its connection: the protocol above must tolerate loss.
    pub fn send(&self, to: &NodeId, payload: Bytes) -> bool {
        let shared = &self.handle.shared;
        let queue = shared.queues.get(to);
        match queue {
            Some(queue)
                if !payload.is_empty()
                    && payload.len() <= shared.max_payload_len
                    && !shared.is_shut_down() =>
            {
                if queue.push(payload) {
                    Counters::add(&shared.stats.queue_drops, 1);
                }
                true
            }
            _ => {
                Counters::add(&shared.stats.sends_refused, 1);
                false
            }
        }
    }

    /// The counters since the transport started.
    pub fn stats(&self) -> TransportStats {
        self.handle.shared.stats.snapshot()
    }

    /// Every configured peer (not this node), by id, as seen now: whether it is
    /// [reachable](PeerLink::reachable), when it was last heard from, which connections
    /// are up. Cheap: a few atomic loads per peer.
    pub fn peers(&self) -> Vec<PeerLink> {
        let shared = &self.handle.shared;
        shared
            .links
            .iter()
            .map(|(id, link)| link.snapshot(id, shared.started))
            .collect()
    }

    /// Stops the transport for every clone: stops listening and reading at once, lets
    /// connected peers' queues drain for up to [`SHUTDOWN_GRACE`], then closes every
    /// connection. The [`Inbox`] ends once all connections are closed.
    pub async fn shutdown(self) {
        self.handle.shared.shutdown.send_replace(true);
        let mut tasks =
            std::mem::take(&mut *self.handle.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let drained = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
        tasks.shutdown().await;
    }
}

/// Accepts connections until shutdown; each runs in its own task, aborted with this one.
///
/// Connections that have not authenticated are capped, per source address and in total
/// (`max_handshakes_per_source`, `max_handshakes`); a new one past a cap displaces the
/// oldest pending one that has not sent a valid first frame (else the oldest), so a flood of
/// idle or slow connections cannot keep a real peer's handshake out. Authenticated
/// connections are not counted: each peer's newest one supersedes its older ones.
async fn listen(shared: Arc<Shared>, listener: TcpListener, inbox: mpsc::Sender<(NodeId, Bytes)>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => admit(&shared, &mut conns, tcp, addr, &inbox),
                Err(e) => {
                    // Usually out of file descriptors: wait instead of spinning.
                    tracing::warn!(node = %shared.ctx.me, "accepting a peer connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Starts serving a new incoming connection, displacing a pending one first if a cap is
/// reached.
fn admit(
    shared: &Arc<Shared>,
    conns: &mut JoinSet<()>,
    tcp: TcpStream,
    addr: SocketAddr,
    inbox: &mpsc::Sender<(NodeId, Bytes)>,
) {
    let source = addr.ip();
    let hello = Arc::new(AtomicBool::new(false));
    let id = {
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(victim) = pending.victim(
            source,
            shared.max_handshakes,
            shared.max_handshakes_per_source,
        ) && let Some(h) = pending.remove(victim)
        {
            if let Some(abort) = h.abort {
                abort.abort();
            }
            Counters::add(&shared.stats.handshakes_displaced, 1);
            tracing::debug!(node = %shared.ctx.me, %addr, displaced = %h.source, "too many unauthenticated connections: closed the oldest");
        }
        pending.insert(source, hello.clone())
    };
    let guard = PendingGuard {
        shared: shared.clone(),
        id,
    };
    let abort = conns.spawn(serve(
        shared.clone(),
        tcp,
        addr,
        inbox.clone(),
        guard,
        hello,
    ));
    let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    // Gone already if its handshake ended meanwhile.
    if let Some(h) = pending.by_age.get_mut(&id) {
        h.abort = Some(abort);
    }
}

/// Authenticates one incoming connection and delivers its messages to the inbox.
async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    inbox: mpsc::Sender<(NodeId, Bytes)>,
    guard: PendingGuard,
    hello: Arc<AtomicBool>,
) {
    let timeout = shared.handshake_timeout;
    let handshake = tokio::time::timeout(
        timeout,
        conn::accept(&shared.ctx, tcp, addr.to_string(), &hello),
    );
    let outcome = handshake.await;
    // Authenticated or not, it no longer counts against the caps.
    drop(guard);
    let mut incoming = match outcome {
        Ok(Ok(incoming)) => incoming,
        Ok(Err(e)) => return shared.record(&e, false),
        Err(_) => {
            Counters::add(&shared.stats.handshake_timeouts, 1);
            let e = Error::Timeout {
                peer: None,
                addr: addr.to_string(),
                what: "the incoming handshake",
                millis: timeout.as_millis() as u64,
            };
            return shared.record(&e, false);
        }
    };
    Counters::add(&shared.stats.connections_accepted, 1);
    tracing::debug!(node = %shared.ctx.me, peer = %incoming.peer, %addr, "accepted peer connection");
    let mut shutdown = shared.shutdown.subscribe();
    let link = &shared.links[&incoming.peer];
    let _open = link.incoming();
    link.heard(shared.started);
    let generations = &shared.generations[&incoming.peer];
    let mut mine = 0;
    generations.send_modify(|g| {
        *g += 1;
        mine = *g;
    });
    let mut newer = generations.subscribe();
    loop {
        let payload = tokio::select! {
            next = incoming.next() => match next {
                Ok(payload) => payload,
                Err(e) => return shared.record(&e, false),
            },
            () = stopped(&mut shutdown) => return,
            changed = superseded(&mut newer, mine) => {
                if changed {
                    tracing::debug!(node = %shared.ctx.me, peer = %incoming.peer, %addr, "closing a connection superseded by a newer one");
                    return;
                }
                continue;
            }
        };
        link.heard(shared.started);
        if payload.is_empty() {
            Counters::add(&shared.stats.keepalives_received, 1);
            continue;
        }
        Counters::add(&shared.stats.frames_received, 1);
        Counters::add(&shared.stats.bytes_received, payload.len() as u64);
        if inbox.send((incoming.peer.clone(), payload)).await.is_err() {
            return; // The application dropped its Inbox.
        }
    }
}

/// Completes when the peer's connection count moved on from `mine` (with `true`: a newer
/// connection from the same peer exists) or on a spurious wakeup (`false`).
async fn superseded(generations: &mut watch::Receiver<u64>, mine: u64) -> bool {
    if *generations.borrow_and_update() != mine {
        return true;
    }
    // The sender lives as long as the tasks; an error would mean "gone", so stop then too.
    generations.changed().await.is_err() || *generations.borrow_and_update() != mine
}

/// Completes once shutdown has begun.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop. The guard is dropped here,
    // before any await of the caller.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn random_u64() -> u64 {
    let mut bytes = [0; 8];
    // On failure the jitter is merely zero.
    let _ = tls::fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Keeps one authenticated connection to `peer` and writes its queue into it; reconnects
/// with backoff after any failure.
async fn dial_loop(shared: Arc<Shared>, peer: NodeId, addr: String, queue: Arc<SendQueue>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Backoff::new(shared.reconnect.0, shared.reconnect.1);
    loop {
        if shared.is_shut_down() {
            return;
        }
        let attempt = tokio::time::timeout(
            shared.handshake_timeout,
            conn::dial(&shared.ctx, &peer, &addr),
        );
        match attempt.await {
            Ok(Ok(outgoing)) => {
                let since = tokio::time::Instant::now();
                Counters::add(&shared.stats.connections_established, 1);
                tracing::debug!(node = %shared.ctx.me, %peer, %addr, "connected to peer");
                let link = &shared.links[&peer];
                link.set_outgoing(true);
                let pumped = pump(&shared, outgoing, &queue, &mut shutdown).await;
                link.set_outgoing(false);
                match pumped {
                    Ok(()) => return,
                    Err(e) => shared.record(&e, false),
                }
                // Start again from the shortest delay only after a connection that lasted:
                // an acceptor that closes every connection at once (it refuses our
                // certificate or secret after the handshake, under TLS 1.3) is not
                // redialed at the shortest delay forever.
                if since.elapsed() >= shared.reconnect.1 {
                    backoff.reset();
                }
            }
            Ok(Err(e)) => {
                Counters::add(&shared.stats.connect_failures, 1);
                shared.record(&e, true);
            }
            Err(_) => {
                Counters::add(&shared.stats.connect_failures, 1);
                let e = Error::Timeout {
                    peer: Some(peer.clone()),
                    addr: addr.clone(),
                    what: "connecting",
                    millis: shared.handshake_timeout.as_millis() as u64,
                };
                shared.record(&e, true);
            }
        }
        let delay = backoff.next_delay(random_u64());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Writes queued messages into the connection until it fails (`Err`) or the transport shuts
/// down and the queue is empty (`Ok`); writes a keepalive (an empty data frame) when
/// nothing was written for [`KEEPALIVE_INTERVAL`].
async fn pump(
    shared: &Shared,
    mut conn: Outgoing,
    queue: &SendQueue,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<()> {
    let mut batch = Vec::new();
    let mut out = BytesMut::new();
    let mut keepalive_at = tokio::time::Instant::now() + KEEPALIVE_INTERVAL;
    loop {
        queue.drain_into(&mut batch, MAX_BATCH_ITEMS, MAX_BATCH_BYTES);
        let mut keepalive = false;
        if batch.is_empty() {
            if *shutdown.borrow() {
                conn.io.close().await;
                return Ok(());
            }
            tokio::select! {
                () = queue.ready() => {}
                e = conn.io.closed() => return Err(e),
                () = stopped(shutdown) => {}
                () = tokio::time::sleep_until(keepalive_at) => keepalive = true,
            }
            if !keepalive {
                continue;
            }
            batch.push(Bytes::new());
        }
        out.clear();
        let mut bytes = 0;
        for payload in &batch {
            conn.encode(payload, &mut out);
            bytes += payload.len() as u64;
        }
        let frames = batch.len() as u64;
        batch.clear();
        match tokio::time::timeout(WRITE_TIMEOUT, conn.io.write_all(&out)).await {
            Ok(written) => written?,
            Err(_) => {
                return Err(Error::Timeout {
                    peer: conn.io.peer.clone(),
                    addr: conn.io.addr.clone(),
                    what: "writing (the peer stopped reading)",
                    millis: WRITE_TIMEOUT.as_millis() as u64,
                });
            }
        }
        keepalive_at = tokio::time::Instant::now() + KEEPALIVE_INTERVAL;
        if keepalive {
            Counters::add(&shared.stats.keepalives_sent, 1);
        } else {
            Counters::add(&shared.stats.frames_sent, frames);
            Counters::add(&shared.stats.bytes_sent, bytes);
        }
    }
}
