//! One node's elector for one election: acquire the lease by compare-and-set, or wait for
//! a push (or the holder's TTL) and try again.

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{
    Candidate, ElectionName, LeaderElector, LeaderInfo, LeaderStream, Leadership, Result,
};
use tokio::time::Instant;

use crate::holder::{PendingAcquire, new_token, start_holding};
use crate::lease::Lease;
use crate::observe::{Listener, observe};
use crate::scripts::{Acquired, Holder};

/// One node's elector for one election on a [`RedisBackend`](crate::RedisBackend).
pub(crate) struct RedisElector {
    lease: Lease,
    listener: Arc<Listener>,
    me: Candidate,
}

impl RedisElector {
    pub(crate) fn new(lease: Lease, listener: Arc<Listener>, me: Candidate) -> Self {
        RedisElector {
            lease,
            listener,
            me,
        }
    }

    /// One acquisition attempt: the leadership, or the current holder.
    async fn attempt(&self) -> Result<Result<Leadership, Holder>> {
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
impl LeaderElector for RedisElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            let mut changes = self.listener.changes(&self.lease.name);
            changes.borrow_and_update();
            match self.attempt().await? {
                Ok(leadership) => return Ok(leadership),
                Err(holder) => {
                    // Pushes from here on; until the subscription is live this waiter
                    // polls, and going live wakes it to look again.
                    self.listener.ensure_listening();
                    self.listener
                        .wait_for_change(&mut changes, holder.ttl_left)
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
