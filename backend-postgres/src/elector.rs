//! One node's elector for one election: take the lease row by compare-and-set, or wait for
//! a notification (or the holder's expiry) and try again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{
    Candidate, ElectionName, LeaderElector, LeaderInfo, LeaderStream, Leadership, Result,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::holder::{PendingAcquire, new_token, start_holding};
use crate::lease::{Acquired, Holder, Lease};
use crate::observe::{Listener, observe};

/// One node's elector for one election on a [`PostgresBackend`](crate::PostgresBackend).
pub(crate) struct PgElector {
    lease: Lease,
    listener: Arc<Listener>,
    me: Candidate,
    /// Keeps the backend's LISTEN connection running while this elector lives.
    _running: Arc<watch::Sender<()>>,
}

impl PgElector {
    pub(crate) fn new(
        lease: Lease,
        listener: Arc<Listener>,
        me: Candidate,
        running: Arc<watch::Sender<()>>,
    ) -> Self {
        PgElector {
            lease,
            listener,
            me,
            _running: running,
        }
    }

    /// One acquisition attempt: the leadership, or the current holder (`None`: look again).
    async fn attempt(&self) -> Result<Result<Leadership, Option<Holder>>> {
        let token = new_token(self.me.node());
        let pending = PendingAcquire::new(self.lease.clone(), token.clone());
        let started = Instant::now();
        // On error `pending` is dropped unsettled: a lease taken by a lost reply is released.
        let acquired = self.lease.acquire(&token, self.me.node()).await?;
        let token = pending.settle();
        Ok(match acquired {
            Acquired::Granted(info) => Ok(start_holding(self.lease.clone(), token, info, started)),
            Acquired::Busy(holder) => Err(holder),
        })
    }
}

#[async_trait]
impl LeaderElector for PgElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            let mut changes = self.listener.changes(&self.lease.name);
            changes.borrow_and_update();
            match self.attempt().await? {
                Ok(leadership) => return Ok(leadership),
                Err(holder) => {
                    // Notifications from here on; until the LISTEN connection is live this
                    // waiter polls, and going live wakes it to look again. Without a
                    // notification it wakes when the holder's lease runs out by the
                    // server's clock (an expiry notifies no one).
                    self.listener.ensure_listening();
                    let ttl_left = holder.map_or(Duration::ZERO, |h| h.ttl_left);
                    self.listener
                        .wait_for_change(&mut changes, Some(ttl_left))
                        .await;
                }
            }
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        Ok(self.attempt().await?.ok())
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        self.lease.leader().await
    }

    fn observe(&self) -> LeaderStream {
        observe(self.lease.clone(), self.listener.clone())
    }

    fn name(&self) -> &ElectionName {
        &self.lease.name
    }
}
