use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_core::Stream;
use tokio::sync::watch;

use crate::{Candidate, ElectionName, LeaderInfo, Leadership, Result};

/// A connection to one backend; hands out one [`LeaderElector`] per election name.
///
/// Many elections may share one backend connection (partitioned leadership: each election
/// has its own leader and epochs).
pub trait Backend: Send + Sync {
    /// The backend's kind, such as `raft` or `redis`; also the value of `ELECTOR_BACKEND`.
    fn kind(&self) -> &'static str;

    /// An elector for election `name`, campaigning as `me`.
    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>>;
}

/// One node's handle on one election.
///
/// Object safe: the CLI holds `Arc<dyn LeaderElector>` whatever the backend.
#[async_trait]
pub trait LeaderElector: Send + Sync {
    /// Waits until this node leads. Cancel-safe: dropping the future withdraws the
    /// candidacy (a lock or key taken meanwhile is released).
    ///
    /// Returns an error when the backend cannot be reached rather than waiting for it
    /// forever; the caller decides whether to retry.
    async fn campaign(&self) -> Result<Leadership>;

    /// One attempt: `Some` if elected now, `None` if another node leads.
    async fn try_campaign(&self) -> Result<Option<Leadership>>;

    /// Who leads now, as the backend knows it (any node may ask, candidate or not).
    async fn leader(&self) -> Result<Option<LeaderInfo>>;

    /// Every change of leader, starting with the current one; `None` means "no leader".
    fn observe(&self) -> LeaderStream;

    /// The election this elector takes part in.
    fn name(&self) -> &ElectionName;
}

/// A stream of leader changes: `Some(info)` when a node leads, `None` when none does.
/// Consecutive duplicates are not repeated.
pub struct LeaderStream {
    inner: Pin<Box<dyn Stream<Item = Result<Option<LeaderInfo>>> + Send>>,
}

impl fmt::Debug for LeaderStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaderStream")
    }
}

impl LeaderStream {
    /// Wraps a backend's stream.
    pub fn new(stream: impl Stream<Item = Result<Option<LeaderInfo>>> + Send + 'static) -> Self {
        LeaderStream {
            inner: Box::pin(stream),
        }
    }

    /// A stream of the values of a watch channel, starting with the current one, skipping
    /// repeats. Ends when the sender is dropped.
    pub fn from_watch(rx: watch::Receiver<Option<LeaderInfo>>) -> Self {
        let stream =
            futures_util::stream::unfold((rx, None, true), |(mut rx, last, first)| async move {
                let mut first = first;
                loop {
                    if !first && rx.changed().await.is_err() {
                        return None;
                    }
                    first = false;
                    let current = rx.borrow_and_update().clone();
                    if Some(&current) != last.as_ref() {
                        return Some((Ok(current.clone()), (rx, Some(current), false)));
                    }
                }
            });
        LeaderStream::new(stream)
    }

    /// The next change, or `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<Result<Option<LeaderInfo>>> {
        futures_util::StreamExt::next(self).await
    }
}

impl Stream for LeaderStream {
    type Item = Result<Option<LeaderInfo>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
