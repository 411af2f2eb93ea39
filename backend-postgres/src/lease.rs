//! One election's lease row on the backend's connection: the four operations on it, each
//! one prepared statement cut off at the statement timeout.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use election_core::{ElectionName, Epoch, Error, LeaderInfo, LeaseTiming, NodeId, Result};
use tokio_postgres::error::SqlState;

use crate::conn::{Conn, KIND};

/// The lease as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) info: LeaderInfo,
    /// Time left on the lease by the server's clock when the statement ran.
    pub(crate) ttl_left: Duration,
}

/// What an acquisition found.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// We hold it now.
    Granted(LeaderInfo),
    /// Someone else (or an earlier leadership of ours) holds it; `None` if the row seen
    /// was already free (another acquisition committed meanwhile: look again).
    Busy(Option<Holder>),
}

/// One election's lease on one backend connection. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    pub(crate) conn: Arc<Conn>,
    pub(crate) timing: LeaseTiming,
    pub(crate) name: ElectionName,
}

impl Lease {
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.timing.ttl.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    fn holder(&self, node: &str, epoch: i64, since_ms: i64, ttl_left_ms: i64) -> Result<Holder> {
        let bad = || {
            Error::protocol(
                KIND,
                self.conn.address(),
                Some(&self.name),
                format!(
                    "the row of this election in {} holds a lease elector cannot read \
                     (leader {node:?}, epoch {epoch}): another program writes to this table",
                    self.conn.table
                ),
            )
        };
        let node = NodeId::new(node).map_err(|_| bad())?;
        let epoch = u64::try_from(epoch).map_err(|_| bad())?;
        Ok(Holder {
            info: LeaderInfo {
                node,
                epoch: Epoch(epoch),
                since: UNIX_EPOCH + Duration::from_millis(u64::try_from(since_ms).unwrap_or(0)),
            },
            ttl_left: Duration::from_millis(u64::try_from(ttl_left_ms).unwrap_or(0)),
        })
    }

    /// Takes the lease for `token` if nobody holds it, allocating the next epoch.
    pub(crate) async fn acquire(&self, token: &str, node: &NodeId) -> Result<Acquired> {
        let name = self.name.as_str().to_owned();
        let token = token.to_owned();
        let node_s = node.to_string();
        let ttl = self.ttl_ms();
        let rows = self
            .conn
            .run(Some(&self.name), "acquiring the lease", |live| async move {
                let rows = live
                    .client
                    .query(&live.statements.acquire, &[&name, &token, &node_s, &ttl])
                    .await;
                match rows {
                    // The row stayed locked for the whole statement timeout: a fenced
                    // write of the holder is open (or a concurrent acquisition is slow).
                    // The election is busy; nothing was changed.
                    Err(e)
                        if e.code() == Some(&SqlState::QUERY_CANCELED)
                            || e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
                    {
                        Ok(Vec::new())
                    }
                    other => other,
                }
            })
            .await?;
        let Some(row) = rows.first() else {
            // No row at all: the insert conflicted with one that committed after our
            // snapshot and is taken, or the row stayed locked (see above). Look again.
            return Ok(Acquired::Busy(None));
        };
        let granted: bool = row.get(0);
        let holder = self.holder(row.get(1), row.get(2), row.get(3), row.get(4))?;
        Ok(if granted {
            Acquired::Granted(holder.info)
        } else if holder.ttl_left.is_zero() {
            Acquired::Busy(None)
        } else {
            Acquired::Busy(Some(holder))
        })
    }

    /// Extends the lease of `token` by the TTL. `Ok(false)`: the token no longer holds it.
    pub(crate) async fn renew(&self, token: &str) -> Result<bool> {
        let name = self.name.as_str().to_owned();
        let token = token.to_owned();
        let ttl = self.ttl_ms();
        let n = self
            .conn
            .run(Some(&self.name), "renewing the lease", |live| async move {
                live.client
                    .execute(&live.statements.renew, &[&name, &token, &ttl])
                    .await
            })
            .await?;
        Ok(n == 1)
    }

    /// Ends the lease if `token` still holds it and tells waiters. `Ok(false)`: it was not
    /// ours (any more), nothing changed.
    pub(crate) async fn release(&self, token: &str) -> Result<bool> {
        let name = self.name.as_str().to_owned();
        let token = token.to_owned();
        let rows = self
            .conn
            .run(Some(&self.name), "releasing the lease", |live| async move {
                live.client
                    .query(&live.statements.release, &[&name, &token])
                    .await
            })
            .await?;
        Ok(!rows.is_empty())
    }

    /// The live holder, if any.
    pub(crate) async fn read(&self) -> Result<Option<Holder>> {
        let name = self.name.as_str().to_owned();
        let row = self
            .conn
            .run(Some(&self.name), "reading the leader", |live| async move {
                live.client.query_opt(&live.statements.read, &[&name]).await
            })
            .await?;
        match row {
            None => Ok(None),
            Some(r) => self
                .holder(r.get(0), r.get(1), r.get(2), r.get(3))
                .map(Some),
        }
    }

    /// The current leader, as [`LeaderInfo`].
    pub(crate) async fn leader(&self) -> Result<Option<LeaderInfo>> {
        Ok(self.read().await?.map(|h| h.info))
    }
}
