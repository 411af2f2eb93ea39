//! One election's lease key on the backend's connection: the four operations on it, each
//! one script run with a timeout.

use std::sync::Arc;

use election_core::{ElectionName, Error, LeaderInfo, LeaseTiming, NodeId, Result};

use crate::conn::{Conn, KIND, Tasks};
use crate::keys::Keys;
use crate::scripts::{
    ACQUIRE_SCRIPT, Acquired, Holder, READ_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT, holder,
};

/// One election's lease on one backend connection. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    pub(crate) conn: Arc<Conn>,
    pub(crate) timing: LeaseTiming,
    pub(crate) name: ElectionName,
    pub(crate) keys: Arc<Keys>,
    _tasks: Tasks,
}

impl Lease {
    pub(crate) fn new(
        conn: Arc<Conn>,
        timing: LeaseTiming,
        name: ElectionName,
        keys: Keys,
        tasks: Tasks,
    ) -> Lease {
        Lease {
            conn,
            timing,
            name,
            keys: Arc::new(keys),
            _tasks: tasks,
        }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.timing.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn bad_holder(&self, node: &str, epoch: i64) -> Error {
        Error::protocol(
            KIND,
            self.conn.address(),
            Some(&self.name),
            format!(
                "key {} holds a lease elector cannot read (leader {node:?}, epoch {epoch}): \
                 another program writes to this key",
                self.keys.leader
            ),
        )
    }

    /// Acquires the lease for `token` if nobody holds it, allocating the next epoch.
    pub(crate) async fn acquire(&self, token: &str, node: &NodeId) -> Result<Acquired> {
        let keys = self.keys.clone();
        let token = token.to_owned();
        let node = node.to_string();
        let ttl_ms = self.ttl_ms();
        let (granted, holder_node, epoch, pttl, since): (i64, String, i64, i64, i64) = self
            .conn
            .run(
                Some(&self.name),
                "acquiring the lease",
                |mut c| async move {
                    ACQUIRE_SCRIPT
                        .key(&keys.leader)
                        .key(&keys.epoch)
                        .key(&keys.channel)
                        .arg(&token)
                        .arg(&node)
                        .arg(ttl_ms)
                        .invoke_async(&mut c)
                        .await
                },
            )
            .await?;
        let h = holder(&holder_node, epoch, pttl, since)
            .ok_or_else(|| self.bad_holder(&holder_node, epoch))?;
        Ok(if granted == 1 {
            Acquired::Granted(h.info)
        } else {
            Acquired::Busy(h)
        })
    }

    /// Extends the lease of `token` by the TTL. `Ok(false)`: the token no longer holds it.
    pub(crate) async fn renew(&self, token: &str) -> Result<bool> {
        let leader = self.keys.leader.clone();
        let token = token.to_owned();
        let ttl_ms = self.ttl_ms();
        let extended: i64 = self
            .conn
            .run(Some(&self.name), "renewing the lease", |mut c| async move {
                RENEW_SCRIPT
                    .key(&leader)
                    .arg(&token)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(extended == 1)
    }

    /// Deletes the lease if `token` still holds it and tells waiters. `Ok(false)`: it was
    /// not ours (any more), nothing changed.
    pub(crate) async fn release(&self, token: &str) -> Result<bool> {
        let keys = self.keys.clone();
        let token = token.to_owned();
        let released: i64 = self
            .conn
            .run(
                Some(&self.name),
                "releasing the lease",
                |mut c| async move {
                    RELEASE_SCRIPT
                        .key(&keys.leader)
                        .key(&keys.channel)
                        .arg(&token)
                        .invoke_async(&mut c)
                        .await
                },
            )
            .await?;
        Ok(released == 1)
    }

    /// The current holder, if any.
    pub(crate) async fn read(&self) -> Result<Option<Holder>> {
        let leader = self.keys.leader.clone();
        let found: Option<(String, i64, i64, i64)> = self
            .conn
            .run(Some(&self.name), "reading the leader", |mut c| async move {
                READ_SCRIPT.key(&leader).invoke_async(&mut c).await
            })
            .await?;
        match found {
            None => Ok(None),
            Some((node, epoch, pttl, since)) => holder(&node, epoch, pttl, since)
                .map(Some)
                .ok_or_else(|| self.bad_holder(&node, epoch)),
        }
    }

    /// The current leader, as [`LeaderInfo`].
    pub(crate) async fn leader(&self) -> Result<Option<LeaderInfo>> {
        Ok(self.read().await?.map(|h| h.info))
    }
}
