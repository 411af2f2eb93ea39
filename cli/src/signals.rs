//! SIGTERM, SIGINT and SIGHUP, turned into a value the long-running commands act on.

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::exit::{self, Failure};

/// Signals elector received and must act on (SIGTERM, SIGINT, SIGHUP): the last one, or
/// `None` while none came.
pub(crate) type Stop = watch::Receiver<Option<Signal>>;

/// Starts listening for SIGTERM, SIGINT and SIGHUP.
pub(crate) fn forward() -> Result<Stop, Failure> {
    let (tx, rx) = watch::channel(None);
    let mut streams = Vec::new();
    for (kind, sig) in [
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::hangup(), Signal::SIGHUP),
    ] {
        let s = signal(kind).map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
        streams.push((s, sig));
    }
    for (mut s, sig) in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                tracing::info!("received {sig}");
                tx.send_replace(Some(sig));
            }
        });
    }
    Ok(rx)
}
