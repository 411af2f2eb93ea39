//! A fault-injecting TCP proxy for partitions, latency and resets between a client and a
//! real server.
//!
//! Point the client at [`FaultProxy::addr`] instead of the server. Each direction has a
//! [`Fault`] that can be changed at any time with [`FaultProxy::set`]; a change applies at
//! once to open connections and to new ones:
//!
//! - [`Fault::Pass`]: bytes flow (the default).
//! - [`Fault::Blackhole`]: bytes are held, not delivered, and the connection stays open, as
//!   in a partition where nothing answers; requests hang until the client's own timeout.
//!   Held bytes are delivered in order when the fault is lifted (like TCP retransmission
//!   after a partition heals).
//! - [`Fault::Delay`]: each chunk is delivered no earlier than the delay after the proxy
//!   read it (latency, not bandwidth: chunks do not queue behind each other's delay).
//! - [`Fault::Reset`]: every connection is reset (`SO_LINGER` 0, then closed, so the peers
//!   see `RST`), and new connections are reset as soon as they are accepted, until the
//!   fault is lifted. A reset concerns a whole connection, so the direction is ignored.
//!
//! Dropping the proxy closes its listener and every connection.

mod connection;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Which way the bytes a [`Fault`] applies to travel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    Both,
    /// From the client to the server (requests).
    ToServer,
    /// From the server to the client (replies, notifications).
    ToClient,
}

/// What the proxy does to the bytes of one direction.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Deliver at once.
    #[default]
    Pass,
    /// Hold the bytes and keep the connection open (a partition).
    Blackhole,
    /// Deliver each chunk this long after it was read.
    Delay(Duration),
    /// Reset every connection, existing and new (the direction is ignored).
    Reset,
}

/// The faults of both directions.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    pub(crate) to_server: Fault,
    pub(crate) to_client: Fault,
    /// How many times [`Fault::Reset`] was set. A watch channel keeps only the newest
    /// value, so a reset lifted at once (`Reset` then `Pass`) could pass unseen by a
    /// connection; a connection opened before the count rose resets all the same.
    pub(crate) reset_count: u64,
}

impl Faults {
    pub(crate) fn resets(&self) -> bool {
        self.to_server == Fault::Reset || self.to_client == Fault::Reset
    }
}

/// A TCP proxy on a free loopback port in front of one upstream server; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port, passing everything.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (faults, rx) = watch::channel(Faults::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, rx));
        Ok(FaultProxy {
            addr,
            upstream,
            faults,
            accept,
        })
    }

    /// The address clients connect to, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Sets the fault of `direction`, for open and new connections alike.
    pub fn set(&self, direction: Direction, fault: Fault) {
        self.faults.send_modify(|f| {
            match direction {
                Direction::Both => {
                    f.to_server = fault;
                    f.to_client = fault;
                }
                Direction::ToServer => f.to_server = fault,
                Direction::ToClient => f.to_client = fault,
            }
            if fault == Fault::Reset {
                f.reset_count += 1;
            }
        });
        tracing::debug!(proxy = %self.addr, ?direction, ?fault, "fault set");
    }

    /// The current fault of one direction (`Both` reports the client-to-server one).
    pub fn fault(&self, direction: Direction) -> Fault {
        let f = *self.faults.borrow();
        match direction {
            Direction::Both | Direction::ToServer => f.to_server,
            Direction::ToClient => f.to_client,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it closes them all.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, faults: watch::Receiver<Faults>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    if faults.borrow().resets() {
                        connection::reset(&client);
                        continue;
                    }
                    connections.spawn(open(client, upstream, faults.clone()));
                }
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn open(client: TcpStream, upstream: SocketAddr, faults: watch::Receiver<Faults>) {
    match TcpStream::connect(upstream).await {
        Ok(server) => {
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            connection::run(client, server, faults).await;
        }
        Err(e) => {
            tracing::debug!(%upstream, error = %e, "proxy could not reach upstream");
            connection::reset(&client);
        }
    }
}
