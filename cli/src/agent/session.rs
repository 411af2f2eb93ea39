//! The agent's side of a hold connection (see [`super::api::HOLD_PROTOCOL`]): the first
//! line grants, each `renew` is answered with the hold's deadline, a revocation or loss is
//! told at once, and `resign` ends it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};
use tokio::sync::mpsc;

use super::api::{Granted, HoldEnd, HoldUpdate, MAX_HOLD_LINE};
use super::server::{Agent, Grant, lock};
use crate::clock;

/// Reads lines of at most [`MAX_HOLD_LINE`] bytes into a channel (cancel-safe to
/// receive), until the end of the stream or a line that is too long.
pub(crate) fn lines<R: AsyncRead + Unpin + Send + 'static>(read: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut read = tokio::io::BufReader::new(read);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = u64::try_from(MAX_HOLD_LINE).unwrap_or(u64::MAX);
            match (&mut read).take(limit).read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) if buf.last() != Some(&b'\n') => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// One line of JSON.
pub(crate) fn json_line(value: &impl serde::Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Serves the hold `grant` on `io` until the caller resigns or goes away. When the caller
/// goes away without resigning, the hold stays: [`super::hold::keep`] ends it once the
/// caller's last deadline plus the kill grace has passed.
pub(super) async fn serve<S>(agent: Arc<Agent>, grant: Grant, io: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let id = grant.id.clone();
    let Some(hold) = agent.hold(&id) else {
        return;
    };
    let (read, mut write) = tokio::io::split(io);
    let mut lines = lines(read);
    let first = Granted {
        hold: id.clone(),
        info: grant.info,
        deadline_ns: clock::to_boot_ns(grant.deadline),
        now_ns: clock::boot_now_ns(),
        deadline_page: grant.page,
        caller_timeout_ms: u64::try_from(grant.caller_timeout.as_millis()).unwrap_or(u64::MAX),
    };
    if write.write_all(&json_line(&first)).await.is_err() {
        return;
    }
    let mut revoked = hold.revoked.subscribe();
    let mut told = false;
    // One wait for the whole hold, not one per renewal (each arms a timer).
    let lost = hold.lost();
    tokio::pin!(lost);
    // Each extension of the leadership goes into the page while the caller is alive.
    let mut extensions = hold.watch.clone();
    loop {
        let end = tokio::select! {
            _ = extensions.changed(), if hold.page.is_some() => {
                if hold.caller_alive() {
                    let _ = hold.pass_on();
                }
                continue;
            }
            line = lines.recv() => {
                let Some(line) = line else {
                    tracing::debug!(hold = %id, "the caller's hold connection closed");
                    return;
                };
                let mut words = line.split(' ');
                match words.next() {
                    Some("renew") => {
                        let rtt = words
                            .next()
                            .and_then(|w| w.parse().ok())
                            .map(Duration::from_micros);
                        let update = match agent.renew(&id, rtt) {
                            Some(deadline) => HoldUpdate::Extended {
                                deadline_ns: clock::to_boot_ns(deadline),
                                now_ns: clock::boot_now_ns(),
                            },
                            None => HoldUpdate::Ended { reason: ended(&hold) },
                        };
                        told |= matches!(update, HoldUpdate::Ended { .. });
                        update
                    }
                    Some("resign") => {
                        agent.release_hold(&id).await;
                        let _ = write
                            .write_all(&json_line(&HoldUpdate::Ended { reason: HoldEnd::Resigned }))
                            .await;
                        return;
                    }
                    _ => {
                        tracing::warn!(hold = %id, "unexpected line on a hold connection; closing it");
                        return;
                    }
                }
            }
            () = async { let _ = revoked.wait_for(|r| *r).await; }, if !told => {
                told = true;
                HoldUpdate::Ended { reason: HoldEnd::Revoked }
            }
            _ = &mut lost, if !told => {
                told = true;
                HoldUpdate::Ended { reason: HoldEnd::Lost }
            }
        };
        if write.write_all(&json_line(&end)).await.is_err() {
            return;
        }
    }
}

fn ended(hold: &super::hold::Hold) -> HoldEnd {
    if *hold.revoked.borrow() {
        HoldEnd::Revoked
    } else {
        HoldEnd::Lost
    }
}

/// Registers the task serving hold `id`, so that stopping the API ends it.
pub(super) fn register(agent: &Agent, id: String, task: tokio::task::AbortHandle) {
    lock(&agent.sessions).insert(id, task);
}
