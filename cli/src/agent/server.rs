//! The agent's state: the elections it knows, the holds it keeps for local callers, and
//! `elector agent` itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use election_core::{
    Backend, Candidate, ElectionName, LeaderElector, LeaderInfo, LeaseTiming, NodeId,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::{ElectionStatus, Granted, Status};
use super::hold::{Hold, keep};
use super::http;
use super::metrics::Metrics;
use crate::backend;
use crate::config::Loaded;
use crate::exit::{self, Failure};
use crate::signals::Stop;

/// One election the agent knows.
pub(super) struct Election {
    pub(super) elector: Arc<dyn LeaderElector>,
    pub(super) leader: watch::Receiver<Option<LeaderInfo>>,
    /// One local hold per election at a time.
    pub(super) local: Arc<tokio::sync::Mutex<()>>,
    pub(super) hold: Mutex<Option<u64>>,
}

/// The agent's state.
pub(crate) struct Agent {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) kind: &'static str,
    pub(super) node: NodeId,
    pub(super) timing: LeaseTiming,
    pub(super) elections: Mutex<BTreeMap<ElectionName, Arc<Election>>>,
    pub(super) holds: Mutex<HashMap<u64, Arc<Hold>>>,
    pub(super) next_hold: AtomicU64,
    pub(super) metrics: Metrics,
    /// Set when the agent stops: pending campaigns end at once.
    pub(super) closing: watch::Sender<bool>,
    /// The longest a caller may take to kill its command after its deadline: the agent
    /// never resigns on its own before a caller's deadline plus this.
    pub(super) kill_grace: Duration,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn left_ms(deadline: Instant) -> u64 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

impl Agent {
    /// An agent over `backend` (its kind names it in `/v1/status` and errors).
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        node: NodeId,
        timing: LeaseTiming,
        kill_grace: Duration,
    ) -> Arc<Self> {
        Arc::new(Agent {
            kind: backend.kind(),
            backend,
            node,
            timing,
            elections: Mutex::new(BTreeMap::new()),
            holds: Mutex::new(HashMap::new()),
            next_hold: AtomicU64::new(1),
            metrics: Metrics::new(),
            closing: watch::channel(false).0,
            kill_grace,
        })
    }

    /// The election `name`, created (with a task following its leader) on first use.
    pub(super) fn election(
        self: &Arc<Self>,
        name: &ElectionName,
    ) -> election_core::Result<Arc<Election>> {
        if let Some(e) = lock(&self.elections).get(name) {
            return Ok(e.clone());
        }
        let elector = self
            .backend
            .election(name, Candidate::new(self.node.clone()))?;
        let (tx, rx) = watch::channel(None);
        let election = Arc::new(Election {
            elector: elector.clone(),
            leader: rx,
            local: Arc::new(tokio::sync::Mutex::new(())),
            hold: Mutex::new(None),
        });
        let mut map = lock(&self.elections);
        if let Some(e) = map.get(name) {
            return Ok(e.clone());
        }
        map.insert(name.clone(), election.clone());
        drop(map);
        tokio::spawn(follow(self.clone(), name.clone(), elector, tx));
        Ok(election)
    }

    /// Status of every known election.
    pub(crate) fn status(&self) -> Status {
        let elections = lock(&self.elections)
            .iter()
            .map(|(name, e)| {
                let hold = (*lock(&e.hold)).and_then(|id| lock(&self.holds).get(&id).cloned());
                let held = hold.as_ref().filter(|h| h.watch.is_held());
                ElectionStatus {
                    election: name.to_string(),
                    leader: e.leader.borrow().clone(),
                    is_leader: held.is_some(),
                    lease_left_ms: held.map(|h| left_ms(h.watch.deadline())),
                }
            })
            .collect();
        Status {
            node: self.node.to_string(),
            backend: self.kind.to_owned(),
            elections,
        }
    }

    /// Whether this node holds `name` now.
    pub(super) fn leads(&self, name: &ElectionName) -> Option<LeaderInfo> {
        let e = lock(&self.elections).get(name).cloned()?;
        let id = (*lock(&e.hold))?;
        let hold = lock(&self.holds).get(&id).cloned()?;
        let l = lock(&hold.leadership);
        l.as_ref().filter(|l| l.is_held()).map(|l| l.info().clone())
    }

    /// Campaigns on a caller's behalf; `None` if another node leads after `wait`.
    pub(super) async fn campaign(
        self: &Arc<Self>,
        name: &ElectionName,
        wait: Duration,
    ) -> election_core::Result<Option<Granted>> {
        let election = self.election(name)?;
        let attempt = async {
            let local = election.local.clone().lock_owned().await;
            let leadership = if wait.is_zero() {
                election.elector.try_campaign().await?
            } else {
                Some(election.elector.campaign().await?)
            };
            Ok::<_, election_core::Error>(leadership.map(|l| (l, local)))
        };
        if *self.closing.borrow() {
            return Err(election_core::Error::Closed {
                backend: self.kind,
                election: name.clone(),
            });
        }
        let mut closing = self.closing.subscribe();
        let attempt = async move {
            tokio::select! {
                r = attempt => r,
                _ = closing.wait_for(|c| *c) => Err(election_core::Error::Closed {
                    backend: self.kind,
                    election: name.clone(),
                }),
            }
        };
        let won = if wait.is_zero() {
            match election.local.clone().try_lock_owned() {
                Ok(local) => election.elector.try_campaign().await?.map(|l| (l, local)),
                Err(_) => None,
            }
        } else {
            match tokio::time::timeout(wait, attempt).await {
                Ok(r) => r?,
                Err(_) => None,
            }
        };
        let Some((leadership, local)) = won else {
            return Ok(None);
        };
        let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
        let info = leadership.info().clone();
        let granted_at = Instant::now();
        let watch = leadership.loss_watch();
        let lease_left_ms = left_ms(watch.deadline());
        let hold = Arc::new(Hold {
            election: name.clone(),
            watch,
            leadership: Mutex::new(Some(leadership)),
            last_renewed: Mutex::new((granted_at, Duration::from_millis(lease_left_ms))),
            revoked: watch::channel(false).0,
            released: watch::channel(false).0,
            _local: local,
        });
        lock(&self.holds).insert(id, hold.clone());
        *lock(&election.hold) = Some(id);
        let labels = Metrics::labels(name.as_str());
        self.metrics.is_leader.get_or_create(&labels).set(1);
        tracing::info!(election = %name, epoch = %info.epoch, hold = id, "elected on behalf of a local caller");
        tokio::spawn(keep(self.clone(), id, hold));
        Ok(Some(Granted {
            hold: id,
            info,
            lease_left_ms,
        }))
    }

    /// Renews hold `id`: the lease left, or `None` once it ended.
    pub(super) fn renew(&self, id: u64, rtt: Option<Duration>) -> Option<u64> {
        let hold = lock(&self.holds).get(&id).cloned()?;
        if !hold.watch.is_held() || *hold.revoked.borrow() {
            return None;
        }
        let now = Instant::now();
        let left = hold.watch.deadline().saturating_duration_since(now);
        *lock(&hold.last_renewed) = (now, left);
        if let Some(rtt) = rtt {
            self.metrics
                .renew_latency
                .get_or_create(&Metrics::labels(hold.election.as_str()))
                .observe(rtt.as_secs_f64());
        }
        Some(left.as_millis().try_into().unwrap_or(u64::MAX))
    }

    /// Resigns hold `id`; whether it existed.
    pub(super) async fn resign_hold(&self, id: u64) -> bool {
        let Some(hold) = lock(&self.holds).get(&id).cloned() else {
            return false;
        };
        let leadership = lock(&hold.leadership).take();
        if let Some(l) = leadership {
            if let Err(e) = l.resign().await {
                tracing::warn!(election = %hold.election, error = %e, "resigning failed; the lease will expire");
            }
        }
        true
    }

    /// The caller resigns hold `id` (its command is gone); whether it existed.
    pub(super) async fn release_hold(&self, id: u64) -> bool {
        if let Some(hold) = lock(&self.holds).get(&id).cloned() {
            hold.released.send_replace(true);
        }
        self.resign_hold(id).await
    }

    /// Ends this node's hold on `name` safely; whether there was one. The caller is told at
    /// its next renewal (410), stops its command and resigns; the agent resigns itself once
    /// the caller's deadline has passed if the caller does not. Resigning at once would let
    /// another node start its command while this one's still runs.
    pub(super) fn revoke_election(&self, name: &ElectionName) -> bool {
        let id = lock(&self.elections).get(name).and_then(|e| *lock(&e.hold));
        let hold = id.and_then(|id| lock(&self.holds).get(&id).cloned());
        match hold {
            Some(h) => {
                h.revoked.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// Revokes every hold and waits until all have ended.
    async fn drain(&self) {
        let holds: Vec<Arc<Hold>> = lock(&self.holds).values().cloned().collect();
        tracing::info!(holds = holds.len(), "draining local holds");
        for h in &holds {
            h.revoked.send_replace(true);
        }
        while !lock(&self.holds).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Follows an election's leader for status and metrics.
async fn follow(
    agent: Arc<Agent>,
    name: ElectionName,
    elector: Arc<dyn LeaderElector>,
    tx: watch::Sender<Option<LeaderInfo>>,
) {
    let labels = Metrics::labels(name.as_str());
    loop {
        let mut stream = elector.observe();
        while let Some(item) = stream.next().await {
            match item {
                Ok(leader) => {
                    if let Some(l) = &leader {
                        agent
                            .metrics
                            .epoch
                            .get_or_create(&labels)
                            .set(l.epoch.get() as i64);
                    }
                    if tx.borrow().as_ref().map(|l| (&l.node, l.epoch))
                        != leader.as_ref().map(|l| (&l.node, l.epoch))
                    {
                        agent.metrics.transitions.get_or_create(&labels).inc();
                    }
                    tx.send_replace(leader);
                }
                Err(e) => {
                    tracing::debug!(election = %name, error = %e, "observing the leader failed");
                    break;
                }
            }
        }
        tokio::time::sleep(agent.timing.retry_interval).await;
    }
}

/// Serves `agent`'s API on `listener` until `shutdown` resolves.
pub(crate) async fn serve_on(
    agent: Arc<Agent>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, http::router(agent))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `elector agent`: serves until SIGTERM/SIGINT, then resigns every hold.
pub(crate) async fn serve(loaded: &Loaded, mut stop: Stop) -> Result<u8, Failure> {
    let config = backend::checked(loaded)?;
    let node = loaded.node_id()?;
    let (kill_grace, _) = config.kill_grace_limit(loaded);
    let backend = config.open(loaded).await?;
    let kind = backend.kind();
    let agent = Agent::new(backend, node, loaded.settings.timing, kill_grace);
    for name in &loaded.settings.agent.elections {
        let name =
            ElectionName::new(name.clone()).map_err(|e| loaded.invalid("agent.elections", e))?;
        agent.election(&name)?;
    }
    let addr = loaded.settings.agent.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the agent's HTTP API to {addr} (agent.listen)"))
        .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
    tracing::info!(%local, backend = kind, "agent listening");
    let draining = agent.clone();
    serve_on(agent.clone(), listener, async move {
        let _ = stop.wait_for(Option::is_some).await;
        // Local callers stop their commands first; then the leaderships are handed over.
        tracing::info!("stopping: revoking local holds");
        draining.closing.send_replace(true);
        draining.drain().await;
    })
    .await
    .map_err(|e| Failure::new(exit::SOFTWARE, anyhow!(e).context("serving the agent API")))?;
    tracing::info!("agent stopped");
    Ok(0)
}

#[cfg(test)]
mod tests;
