//! Connection floods for starvation tests: many idle TCP connections and slow-loris
//! connections (one byte a second) against one listening port, from chosen loopback source
//! addresses, reopened when the server closes them, all stopped when the [`Flood`] is
//! dropped or its lifetime ends (bounded in count and time, loopback only).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a flood has done so far.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Idle connections opened (counting reopenings).
    pub opened: AtomicU64,
    /// Idle connections the server closed.
    pub closed: AtomicU64,
    /// Connection attempts that failed.
    pub failed: AtomicU64,
    /// Slow-loris connections the server closed.
    pub loris_closed: AtomicU64,
    /// The longest a slow-loris connection stayed open, in milliseconds.
    pub loris_longest_ms: AtomicU64,
    /// Bytes the slow-loris connections sent.
    pub loris_bytes: AtomicU64,
}

impl FloodStats {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} idle opened, {} closed by the server, {} failed; slow-loris: {} closed by the \
             server, longest open {} ms, {} bytes sent",
            g(&self.opened),
            g(&self.closed),
            g(&self.failed),
            g(&self.loris_closed),
            g(&self.loris_longest_ms),
            g(&self.loris_bytes)
        )
    }
}

/// A running flood; dropping it stops every connection.
#[derive(Debug)]
pub struct Flood {
    /// Its counters.
    pub stats: Arc<FloodStats>,
    tasks: JoinSet<()>,
}

impl Flood {
    /// Opens `idle` connections to `target`, spread over `sources` (loopback addresses such
    /// as 127.0.0.2), that send nothing; each is reopened `reopen_after` after the server
    /// closes it. Plus `loris` connections that send one byte a second, reopened at once
    /// when closed. Everything stops after `lifetime`.
    pub fn start(
        target: SocketAddr,
        sources: &[Ipv4Addr],
        idle: usize,
        loris: usize,
        reopen_after: Duration,
        lifetime: Duration,
    ) -> Flood {
        let stats = Arc::new(FloodStats::default());
        let until = Instant::now() + lifetime;
        let mut tasks = JoinSet::new();
        for i in 0..idle {
            let source = sources[i % sources.len()];
            let stats = stats.clone();
            tasks.spawn(async move {
                while Instant::now() < until {
                    match connect(source, target).await {
                        Ok(mut tcp) => {
                            FloodStats::add(&stats.opened);
                            let mut buf = [0u8; 64];
                            let closed = tokio::time::timeout_at(until, async {
                                loop {
                                    match tcp.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(_) => {}
                                    }
                                }
                            })
                            .await;
                            if closed.is_ok() {
                                FloodStats::add(&stats.closed);
                            }
                        }
                        Err(_) => FloodStats::add(&stats.failed),
                    }
                    tokio::time::sleep(reopen_after).await;
                }
            });
        }
        for i in 0..loris {
            let source = sources[i % sources.len()];
            let stats = stats.clone();
            tasks.spawn(async move {
                while Instant::now() < until {
                    let Ok(mut tcp) = connect(source, target).await else {
                        FloodStats::add(&stats.failed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let opened = Instant::now();
                    // A length prefix announcing a 768-byte frame, then one byte a second:
                    // a frame that never completes.
                    let mut bytes = [0u8, 0, 3, 0].into_iter().chain(std::iter::repeat(1u8));
                    loop {
                        let b = bytes.next().unwrap_or(1);
                        if tcp.write_all(&[b]).await.is_err() || Instant::now() >= until {
                            break;
                        }
                        FloodStats::add(&stats.loris_bytes);
                        let mut probe = [0u8; 1];
                        // Wait a second, noticing a close meanwhile.
                        let read =
                            tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut probe));
                        if let Ok(Ok(0) | Err(_)) = read.await {
                            break;
                        }
                    }
                    if Instant::now() < until {
                        FloodStats::add(&stats.loris_closed);
                        let ms = opened.elapsed().as_millis() as u64;
                        stats.loris_longest_ms.fetch_max(ms, Ordering::Relaxed);
                    }
                }
            });
        }
        Flood { stats, tasks }
    }

    /// Stops every connection now.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn connect(source: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(target).await
}

/// Raises this process's soft limit of open files to at least `n` (up to the hard
/// limit); returns the soft limit in force.
pub fn raise_fd_limit(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}
