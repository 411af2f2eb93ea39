//! [`RedisElector`]: campaign, leader and observe for one election.

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{
    Candidate, ElectionName, LeaderElector, LeaderInfo, LeaderStream, Leadership, Result,
};
use tokio::time::Instant;

use crate::backend::Shared;
use crate::keys::Keys;
use crate::lease::{PendingAcquire, start_holding};
use crate::link::new_token;
use crate::ops::Ops;
use crate::scripts::{Acquired, Holder};

/// One node's elector for one election on a [`RedisBackend`](crate::RedisBackend).
pub(crate) struct RedisElector {
    ops: Ops,
    me: Candidate,
}

impl RedisElector {
    pub(crate) fn new(shared: Arc<Shared>, name: ElectionName, me: Candidate, keys: Keys) -> Self {
        RedisElector {
            ops: Ops {
                shared,
                name,
                keys: Arc::new(keys),
            },
            me,
        }
    }

    /// One acquisition attempt: the leadership, or the current holder.
    async fn attempt(&self) -> Result<Result<Leadership, Holder>> {
        let token = new_token(self.me.node());
        let pending = PendingAcquire::new(self.ops.clone(), token.clone());
        let started = Instant::now();
        // On error `pending` is dropped unsettled: a lease taken by a lost reply is released.
        let acquired = self.ops.acquire(&token, self.me.node()).await?;
        let token = pending.settle();
        Ok(match acquired {
            Acquired::Granted(info) => Ok(start_holding(self.ops.clone(), token, info, started)),
            Acquired::Busy(holder) => Err(holder),
        })
    }
}

#[async_trait]
impl LeaderElector for RedisElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            let mut changes = self.ops.shared.notifier.changes(&self.ops.name);
            changes.borrow_and_update();
            match self.attempt().await? {
                Ok(leadership) => return Ok(leadership),
                Err(holder) => {
                    // Pushes from here on; until the subscription is live this waiter
                    // polls, and going live wakes it to look again.
                    self.ops.shared.ensure_listening();
                    self.ops
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
        self.ops.leader().await
    }

    fn observe(&self) -> LeaderStream {
        struct State {
            ops: Ops,
            last: Option<Option<LeaderInfo>>,
            failing: bool,
        }
        let state = State {
            ops: self.ops.clone(),
            last: None,
            failing: false,
        };
        LeaderStream::new(futures_util::stream::unfold(state, |mut st| async move {
            st.ops.shared.ensure_listening();
            loop {
                let mut changes = st.ops.shared.notifier.changes(&st.ops.name);
                changes.borrow_and_update();
                match st.ops.read().await {
                    Ok(holder) => {
                        st.failing = false;
                        let ttl_left = holder.as_ref().and_then(|h| h.ttl_left);
                        let current = holder.map(|h| h.info);
                        if st.last.as_ref() != Some(&current) {
                            st.last = Some(current.clone());
                            return Some((Ok(current), st));
                        }
                        st.ops.wait_for_change(&mut changes, ttl_left).await;
                    }
                    Err(e) => {
                        // Report a failure once, then keep trying quietly.
                        let first = !st.failing;
                        st.failing = true;
                        if first {
                            return Some((Err(e), st));
                        }
                        tokio::time::sleep(st.ops.shared.timing.retry_interval).await;
                    }
                }
            }
        }))
    }

    fn name(&self) -> &ElectionName {
        &self.ops.name
    }
}
