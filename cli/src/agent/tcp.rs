//! Bounds on the agent's TCP listener, so that idle or slow clients cannot take its file
//! descriptors (and with them the socket that carries the holds): at most
//! [`MAX_CONNECTIONS`] at once (one more is closed at once), each closed after
//! [`IDLE`] without a byte either way, and after [`LIFETIME`] in all (a slow-loris that
//! sends a byte a second gets no further).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Most TCP connections open at once.
pub(super) const MAX_CONNECTIONS: usize = 256;
/// A connection with no byte either way for this long is closed.
pub(super) const IDLE: Duration = Duration::from_secs(10);
/// A connection is closed this long after it was accepted, whatever it does.
pub(super) const LIFETIME: Duration = Duration::from_secs(30);

/// The agent's TCP listener, bounded.
pub(super) struct Bounded {
    inner: TcpListener,
    open: Arc<Semaphore>,
}

impl Bounded {
    pub(super) fn new(inner: TcpListener) -> Self {
        Bounded {
            inner,
            open: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (BoundedStream, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to be released.
                    tracing::debug!(error = %e, "accepting a TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.open.clone().try_acquire_owned() {
                Ok(permit) => return (BoundedStream::new(stream, permit), addr),
                Err(_) => {
                    tracing::debug!(%addr, "too many TCP connections; closing a new one");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One bounded TCP connection.
pub(super) struct BoundedStream {
    stream: TcpStream,
    idle: Pin<Box<Sleep>>,
    end: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl BoundedStream {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit) -> Self {
        let now = Instant::now();
        BoundedStream {
            stream,
            idle: Box::pin(tokio::time::sleep_until(now + IDLE)),
            end: Box::pin(tokio::time::sleep_until(now + LIFETIME)),
            _permit: permit,
        }
    }

    /// `Some(error)` once the connection has outlived its bounds; wakes the task when it
    /// will.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.end.as_mut().poll(cx).is_ready() || self.idle.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle or open too long",
            ));
        }
        None
    }

    fn progressed(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE);
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => match self.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
