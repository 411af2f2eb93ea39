//! One proxied connection: two pumps, each applying its direction's fault.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Fault, Faults};

/// Bytes a pump holds (blackholed or delayed) before it stops reading, leaving the rest to
/// TCP flow control.
const MAX_HELD: usize = 4 << 20;
/// One read.
const CHUNK: usize = 16 << 10;

/// Resets `stream`: `SO_LINGER` 0 makes the close send `RST`.
pub(super) fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Proxies between `client` and `server` until both sides are done, an error, or a reset.
pub(super) async fn run(client: TcpStream, server: TcpStream, faults: watch::Receiver<Faults>) {
    let resets_before = faults.borrow().reset_count;
    let (mut client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    let was_reset = {
        let to_server = pump(&mut client_r, &mut server_w, faults.clone(), |f| {
            f.to_server
        });
        let to_client = pump(&mut server_r, &mut client_w, faults.clone(), |f| {
            f.to_client
        });
        tokio::select! {
            done = async { tokio::try_join!(to_server, to_client) } => {
                // An error in either direction ends both: the peer is gone.
                if let Err(e) = done {
                    tracing::debug!(error = %e, "proxied connection ended with an error");
                }
                false
            }
            () = until_reset(faults, resets_before) => true,
        }
    };
    if was_reset {
        reset(client_r.as_ref());
        reset(server_r.as_ref());
    }
    // Dropping the halves closes both sockets (with RST after a reset).
}

/// Until a reset is set, or was set (and perhaps lifted) since the connection opened,
/// when the proxy had counted `resets_before` resets.
async fn until_reset(mut faults: watch::Receiver<Faults>, resets_before: u64) {
    // An error means the proxy is gone; the connection task is being aborted anyway.
    let _ = faults
        .wait_for(|f| f.resets() || f.reset_count > resets_before)
        .await;
}

/// Copies `from` to `to` under the fault `pick` selects, until `from` ends and everything
/// held was delivered.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut faults: watch::Receiver<Faults>,
    pick: fn(&Faults) -> Fault,
) -> io::Result<()> {
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut held_bytes = 0;
    let mut eof = false;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if eof && held.is_empty() {
            return to.shutdown().await;
        }
        let fault = pick(&faults.borrow_and_update());
        let due = held.front().and_then(|(read_at, _)| match fault {
            Fault::Pass => Some(Instant::now()),
            Fault::Delay(d) => Some(*read_at + d),
            // Held until the fault is lifted (a reset ends the connection elsewhere).
            Fault::Blackhole | Fault::Reset => None,
        });
        tokio::select! {
            read = from.read(&mut buf), if !eof && held_bytes < MAX_HELD => {
                let n = read?;
                if n == 0 {
                    eof = true;
                } else {
                    held_bytes += n;
                    held.push_back((Instant::now(), buf[..n].to_vec()));
                }
            }
            () = sleep_until(due), if due.is_some() => {
                if let Some((_, chunk)) = held.pop_front() {
                    held_bytes -= chunk.len();
                    to.write_all(&chunk).await?;
                }
            }
            changed = faults.changed() => {
                if changed.is_err() {
                    // The proxy is gone.
                    return Ok(());
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
