//! The fence server: the resource every child writes to, guarded by one
//! [`election_core::Fence`] (in the [`Journal`]), and the runner's eyes on the children.
//!
//! The protocol is lines over TCP on loopback, the child speaking first:
//!
//! ```text
//! child:  hello NODE EPOCH PID START_NS
//! child:  w SEQ            server: ok | stale      (every write_every)
//! child:  term NOW_NS                              (SIGTERM received)
//! child:  bye NOW_NS                               (about to exit 0)
//! ```
//!
//! Every event is stamped on the runner's `CLOCK_MONOTONIC` when it is read. A child's
//! death is the EOF on its connection: the kernel closes the socket when the process dies,
//! whether it exited or was SIGKILLed.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use election_core::Epoch;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::clock::now_ns;
use super::journal::{Hello, Journal, Life};

/// The running fence server; dropping it stops accepting (open connections end with the
/// runtime).
#[derive(Debug)]
pub(crate) struct FenceServer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl FenceServer {
    /// Listens on a free loopback port and records into `journal`.
    pub(crate) async fn start(journal: Arc<Journal>) -> io::Result<FenceServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(accept_loop(listener, journal));
        Ok(FenceServer { addr, accept })
    }

    /// Where children connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FenceServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, journal: Arc<Journal>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let accepted_ns = now_ns();
                let child = {
                    let mut r = journal.lock();
                    r.lives.push(Life {
                        accepted_ns,
                        hello: None,
                        term_ns: None,
                        bye_ns: None,
                        eof_ns: None,
                        accepted: 0,
                        refused: Vec::new(),
                        garbled: None,
                    });
                    r.lives.len() - 1
                };
                tokio::spawn(serve(stream, child, journal.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "fence server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// One child's connection, until EOF.
async fn serve(stream: TcpStream, child: usize, journal: Arc<Journal>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut epoch: Option<Epoch> = None;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => break,
        };
        let at = now_ns();
        match handle(&line, child, &mut epoch, at, &journal) {
            Ok(Some(reply)) => {
                if write.write_all(reply).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(()) => {
                journal.lock().lives[child].garbled = Some(line);
                break;
            }
        }
    }
    // Without a reply pending, a dead child's connection reads EOF at once; an error (a
    // reset) means the same.
    journal.lock().lives[child].eof_ns = Some(now_ns());
}

/// Handles one line; returns the reply to send, or `Err` for a line that breaks the
/// protocol.
fn handle(
    line: &str,
    child: usize,
    epoch: &mut Option<Epoch>,
    at: u64,
    journal: &Journal,
) -> Result<Option<&'static [u8]>, ()> {
    let mut words = line.split_whitespace();
    match (words.next(), *epoch) {
        (Some("hello"), None) => {
            let node = words.next().ok_or(())?.to_owned();
            let e = Epoch(number(words.next())?);
            let pid = u32::try_from(number(words.next())?).map_err(|_| ())?;
            let start_ns = number(words.next())?;
            *epoch = Some(e);
            journal.lock().lives[child].hello = Some(Hello {
                node,
                epoch: e,
                pid,
                start_ns,
            });
            Ok(None)
        }
        (Some("w"), Some(e)) => Ok(Some(if journal.write(child, e, at) {
            b"ok\n"
        } else {
            b"stale\n"
        })),
        (Some("term"), Some(_)) => {
            journal.lock().lives[child].term_ns = Some(number(words.next())?);
            Ok(None)
        }
        (Some("bye"), Some(_)) => {
            journal.lock().lives[child].bye_ns = Some(number(words.next())?);
            Ok(None)
        }
        _ => Err(()),
    }
}

fn number(word: Option<&str>) -> Result<u64, ()> {
    word.ok_or(())?.parse().map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_session_is_recorded_and_fenced() {
        let journal = Arc::new(Journal::default());
        let server = FenceServer::start(journal.clone()).await.unwrap();
        let talk = |lines: &'static str| {
            let addr = server.addr();
            async move {
                let s = TcpStream::connect(addr).await.unwrap();
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r).lines();
                let mut replies = Vec::new();
                for l in lines.lines() {
                    w.write_all(format!("{l}\n").as_bytes()).await.unwrap();
                    if l.starts_with("w ") {
                        replies.push(r.next_line().await.unwrap().unwrap());
                    }
                }
                replies
            }
        };
        assert_eq!(talk("hello n1 7 100 5\nw 1\nterm 9\nbye 10").await, ["ok"]);
        assert_eq!(talk("hello n2 6 101 6\nw 1").await, ["stale"]);
        crate::wait_until(std::time::Duration::from_secs(10), "both EOFs", || {
            journal.alive() == 0
        })
        .await;
        let r = journal.snapshot();
        assert_eq!(r.lives[0].hello.as_ref().unwrap().epoch, Epoch(7));
        assert_eq!((r.lives[0].term_ns, r.lives[0].bye_ns), (Some(9), Some(10)));
        assert_eq!(r.lives[1].refused.len(), 1);
        assert_eq!(r.writes.len(), 2);
    }
}
