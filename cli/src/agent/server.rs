//! The agent's state: the elections it knows, the holds it keeps for local callers, and
//! `elector agent` itself.
//!
//! State is bounded: an election exists here only once a local caller campaigns in it or
//! it is listed in `agent.elections` (reads never create one), at most
//! `agent.max_elections` of them, and one that nobody campaigns in, that is not listed and
//! that this node does not lead is forgotten after `agent.forget_after`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use election_core::{
    Backend, Candidate, ElectionName, LeaderElector, LeaderInfo, LeaseTiming, NodeId,
};
use election_peer::Membership;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::api::{ElectionStatus, MemberStatus, Status};
use super::deadline_page::{self, PageWriter};
use super::history::History;
use super::hold::{CALLER_TIMEOUT_MIN, Hold, keep};
use super::http;
use super::metrics::Metrics;
use super::socket;
use super::tcp;
use crate::backend;
use crate::config::Loaded;
use crate::exit::{self, Failure};
use crate::signals::Stop;

/// A hold's id: 128 random bits in hex, so that nobody can name another caller's hold.
pub(super) type HoldId = String;

/// One election the agent knows.
pub(super) struct Election {
    pub(super) elector: Arc<dyn LeaderElector>,
    pub(super) leader: watch::Receiver<Option<LeaderInfo>>,
    /// One local hold per election at a time.
    pub(super) local: Arc<tokio::sync::Mutex<()>>,
    pub(super) hold: Mutex<Option<HoldId>>,
    /// When a caller last campaigned or held it, for forgetting idle ones.
    pub(super) last_used: Mutex<Instant>,
    /// The task that follows its leader.
    follower: Mutex<Option<AbortHandle>>,
}

/// How much the agent keeps.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Most elections at once (`agent.max_elections`).
    pub(crate) max_elections: usize,
    /// Idle elections are forgotten after this long (`agent.forget_after`).
    pub(crate) forget_after: Duration,
    /// Never forgotten (`agent.elections`).
    pub(crate) configured: BTreeSet<ElectionName>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_elections: 20_000,
            forget_after: Duration::from_secs(600),
            configured: BTreeSet::new(),
        }
    }
}

/// The agent's state.
pub(crate) struct Agent {
    pub(super) backend: Arc<dyn Backend>,
    /// A peer backend's view of its members (`None` for a lease backend).
    pub(super) members: Option<Arc<dyn Membership>>,
    pub(super) kind: &'static str,
    pub(super) node: NodeId,
    pub(super) timing: LeaseTiming,
    pub(super) limits: Limits,
    pub(super) elections: Mutex<BTreeMap<ElectionName, Arc<Election>>>,
    pub(super) holds: Mutex<HashMap<HoldId, Arc<Hold>>>,
    /// The hold connections being served, ended when the agent's API stops.
    pub(super) sessions: Mutex<HashMap<HoldId, AbortHandle>>,
    pub(super) metrics: Metrics,
    /// The last leader changes, for the status page.
    pub(super) history: History,
    /// Set when the agent stops: pending campaigns end at once.
    pub(super) closing: watch::Sender<bool>,
    /// The longest a caller may take to kill its command after its deadline: the agent
    /// never resigns on its own before a caller's deadline plus this.
    pub(super) kill_grace: Duration,
    /// Where holds' deadline pages go (none: callers renew at a third of the lease).
    pub(super) pages: std::sync::OnceLock<PageDir>,
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

/// 128 random bits from the operating system, in hex.
fn new_hold_id() -> HoldId {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // No entropy at all is a broken host; the time is unique per process at least.
        tracing::error!(error = %e, "no random bytes for a hold id");
        bytes = crate::clock::boot_now_ns().to_le_bytes().repeat(2)[..16]
            .try_into()
            .unwrap_or_default();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hold just granted.
pub(super) struct Grant {
    pub(super) id: HoldId,
    pub(super) info: LeaderInfo,
    pub(super) deadline: Instant,
    /// Its deadline page, if the agent could make one.
    pub(super) page: Option<std::path::PathBuf>,
    /// How often the caller must `renew` to be counted alive: within this.
    pub(super) caller_timeout: Duration,
}

/// Where the agent makes its holds' deadline pages.
pub(super) struct PageDir {
    pub(super) dir: std::path::PathBuf,
    pub(super) group: Option<nix::unistd::Gid>,
}

impl Agent {
    /// An agent over `backend` (its kind names it in `/v1/status` and errors), with a
    /// peer backend's `members`.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        members: Option<Arc<dyn Membership>>,
        node: NodeId,
        timing: LeaseTiming,
        kill_grace: Duration,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Agent {
            kind: backend.kind(),
            backend,
            members,
            node,
            timing,
            limits,
            elections: Mutex::new(BTreeMap::new()),
            holds: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            metrics: Metrics::new(),
            history: History::default(),
            closing: watch::channel(false).0,
            kill_grace,
            pages: std::sync::OnceLock::new(),
        })
    }

    /// The election `name` if the agent knows it (no side effects).
    pub(super) fn known(&self, name: &ElectionName) -> Option<Arc<Election>> {
        lock(&self.elections).get(name).cloned()
    }

    /// The election `name`, created (with a task following its leader) on first use, up
    /// to `agent.max_elections`.
    pub(super) fn election(
        self: &Arc<Self>,
        name: &ElectionName,
    ) -> election_core::Result<Arc<Election>> {
        if let Some(e) = self.known(name) {
            *lock(&e.last_used) = Instant::now();
            return Ok(e);
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
            last_used: Mutex::new(Instant::now()),
            follower: Mutex::new(None),
        });
        let mut map = lock(&self.elections);
        if let Some(e) = map.get(name) {
            return Ok(e.clone());
        }
        if map.len() >= self.limits.max_elections {
            return Err(election_core::Error::unavailable(
                self.kind,
                "local agent",
                Some(name),
                format!(
                    "the agent already keeps agent.max_elections = {} elections; raise it, or \
                     let idle ones be forgotten (agent.forget_after)",
                    self.limits.max_elections
                ),
                None,
            ));
        }
        map.insert(name.clone(), election.clone());
        drop(map);
        let task = tokio::spawn(follow(self.clone(), name.clone(), elector, tx));
        *lock(&election.follower) = Some(task.abort_handle());
        Ok(election)
    }

    /// Forgets elections nobody campaigns in, that are not configured and that this node
    /// does not hold, idle for `agent.forget_after`; how many.
    pub(super) fn forget_idle(&self) -> usize {
        let now = Instant::now();
        let mut map = lock(&self.elections);
        let before = map.len();
        map.retain(|name, e| {
            let idle =
                now.saturating_duration_since(*lock(&e.last_used)) >= self.limits.forget_after;
            let unused = lock(&e.hold).is_none() && e.local.try_lock().is_ok();
            let keep = self.limits.configured.contains(name) || !idle || !unused;
            if !keep {
                if let Some(task) = lock(&e.follower).take() {
                    task.abort();
                }
                self.metrics.forget(name.as_str());
                self.history.forget(name.as_str());
            }
            keep
        });
        before - map.len()
    }

    /// Status of every known election.
    pub(crate) fn status(&self) -> Status {
        let elections = lock(&self.elections)
            .iter()
            .map(|(name, e)| {
                let hold = lock(&e.hold)
                    .clone()
                    .and_then(|id| lock(&self.holds).get(&id).cloned());
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
            history: self.history.changes(),
            members: self
                .members
                .as_ref()
                .map(|m| m.members().members.iter().map(MemberStatus::from).collect()),
        }
    }

    /// [`Status::summary`], for systemd's status line.
    pub(crate) fn status_line(&self) -> String {
        self.status().summary()
    }

    /// Whether this node holds `name` now.
    pub(super) fn leads(&self, name: &ElectionName) -> Option<LeaderInfo> {
        let e = self.known(name)?;
        let id = lock(&e.hold).clone()?;
        let hold = lock(&self.holds).get(&id).cloned()?;
        let l = lock(&hold.leadership);
        l.as_ref().filter(|l| l.is_held()).map(|l| l.info().clone())
    }

    /// Campaigns on a caller's behalf; `None` if another node leads after `wait`.
    pub(super) async fn campaign(
        self: &Arc<Self>,
        name: &ElectionName,
        wait: Duration,
    ) -> election_core::Result<Option<Grant>> {
        if *self.closing.borrow() {
            return Err(election_core::Error::Closed {
                backend: self.kind,
                election: name.clone(),
            });
        }
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
        *lock(&election.last_used) = Instant::now();
        let Some((leadership, local)) = won else {
            return Ok(None);
        };
        let id = new_hold_id();
        let info = leadership.info().clone();
        let watch = leadership.loss_watch();
        let deadline = watch.deadline();
        let now = Instant::now();
        let lease = deadline.saturating_duration_since(now);
        let page = self.pages.get().and_then(|p| {
            PageWriter::create(&p.dir, &id, p.group, deadline)
                .inspect_err(|e| {
                    tracing::warn!(election = %name, dir = %p.dir.display(), error = %e, "no deadline page for this hold (its caller renews at a third of the lease instead)");
                })
                .ok()
        });
        let hold = Arc::new(Hold {
            election: name.clone(),
            watch,
            leadership: Mutex::new(Some(leadership)),
            last_renewed: Mutex::new((now, lease)),
            revoked: watch::channel(false).0,
            released: watch::channel(false).0,
            page,
            alive_at: Mutex::new(now),
            caller_timeout: lease.max(CALLER_TIMEOUT_MIN),
            _local: local,
        });
        let page = hold.page.as_ref().map(|p| p.path().to_owned());
        let caller_timeout = hold.caller_timeout;
        lock(&self.holds).insert(id.clone(), hold.clone());
        *lock(&election.hold) = Some(id.clone());
        let labels = Metrics::labels(name.as_str());
        self.metrics.is_leader.get_or_create(&labels).set(1);
        tracing::info!(election = %name, epoch = %info.epoch, hold = %id, "elected on behalf of a local caller");
        tokio::spawn(keep(self.clone(), id.clone(), hold));
        Ok(Some(Grant {
            id,
            info,
            deadline,
            page,
            caller_timeout,
        }))
    }

    /// The hold `id`, if it exists.
    pub(super) fn hold(&self, id: &str) -> Option<Arc<Hold>> {
        lock(&self.holds).get(id).cloned()
    }

    /// Renews hold `id` for its caller: its deadline now, or `None` once it ended or was
    /// revoked. The caller's deadline becomes that deadline.
    pub(super) fn renew(&self, id: &str, rtt: Option<Duration>) -> Option<Instant> {
        let hold = self.hold(id)?;
        *lock(&hold.alive_at) = Instant::now();
        let deadline = hold.pass_on()?;
        if let Some(rtt) = rtt {
            self.metrics
                .renew_latency
                .get_or_create(&Metrics::labels(hold.election.as_str()))
                .observe(rtt.as_secs_f64());
        }
        Some(deadline)
    }

    /// Resigns hold `id`; whether it existed.
    pub(super) async fn resign_hold(&self, id: &str) -> bool {
        let Some(hold) = self.hold(id) else {
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
    pub(super) async fn release_hold(&self, id: &str) -> bool {
        if let Some(hold) = self.hold(id) {
            hold.released.send_replace(true);
        }
        self.resign_hold(id).await
    }

    /// Ends this node's hold on `name` safely; whether there was one. The caller is told
    /// at once on its hold connection, stops its command and resigns; the agent resigns
    /// itself once the caller's deadline has passed if the caller does not. Resigning at
    /// once would let another node start its command while this one's still runs.
    pub(super) fn revoke_election(&self, name: &ElectionName) -> bool {
        let id = self.known(name).and_then(|e| lock(&e.hold).clone());
        match id.and_then(|id| self.hold(&id)) {
            Some(h) => {
                h.revoked.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// Revokes every hold and waits until all have ended.
    pub(super) async fn drain(&self) {
        let holds: Vec<Arc<Hold>> = lock(&self.holds).values().cloned().collect();
        tracing::info!(holds = holds.len(), "draining local holds");
        for h in &holds {
            h.revoked.send_replace(true);
        }
        while !lock(&self.holds).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ends every hold connection (the holds themselves stay, until their callers'
    /// deadlines and grace have passed).
    fn end_sessions(&self) {
        for (_, task) in lock(&self.sessions).drain() {
            task.abort();
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
                        agent.history.leader(&name, leader.as_ref());
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

/// Ends the agent's hold connections when dropped: when the API stops serving, also by
/// an abort.
struct EndSessions(Arc<Agent>);

impl Drop for EndSessions {
    fn drop(&mut self) {
        self.0.end_sessions();
    }
}

/// Serves `agent`'s whole API on the Unix socket `control`, and its read-only routes (and
/// the token-gated resign) on `listener`, until `shutdown` resolves.
pub(crate) async fn serve_on(
    agent: Arc<Agent>,
    control: tokio::net::UnixListener,
    listener: Option<tokio::net::TcpListener>,
    token: Option<http::Token>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _end = EndSessions(agent.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let on_socket = axum::serve(control, http::socket_router(agent.clone()))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let on_tcp = async {
        match listener {
            Some(l) => {
                axum::serve(tcp::Bounded::new(l), http::tcp_router(agent.clone(), token))
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .await
            }
            None => Ok(()),
        }
    };
    let trigger = async move {
        shutdown.await;
        stop_tx.send_replace(true);
    };
    let (socket, tcp, ()) = tokio::join!(on_socket, on_tcp, trigger);
    socket.and(tcp)
}

/// Forgets idle elections now and then, for as long as the agent runs.
async fn forget_idle(agent: Arc<Agent>) {
    let every = (agent.limits.forget_after / 4).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let forgotten = agent.forget_idle();
        if forgotten > 0 {
            tracing::debug!(forgotten, "forgot idle elections");
        }
    }
}

/// `elector agent`: serves until SIGTERM/SIGINT, then resigns every hold.
pub(crate) async fn serve(loaded: &Loaded, mut stop: Stop) -> Result<u8, Failure> {
    let config = backend::checked(loaded)?;
    let node = loaded.node_id()?;
    let agent_settings = &loaded.settings.agent;
    let mut configured = BTreeSet::new();
    for name in &agent_settings.elections {
        configured.insert(
            ElectionName::new(name.clone()).map_err(|e| loaded.invalid("agent.elections", e))?,
        );
    }
    let token =
        match &agent_settings.token_file {
            Some(path) => Some(http::Token::read(path).map_err(|e| {
                loaded.invalid("agent.token_file", format!("{}: {e}", path.display()))
            })?),
            None => None,
        };
    let socket_path = loaded.agent_socket();
    let group = match &agent_settings.socket_group {
        Some(name) => {
            Some(socket::group(name).map_err(|e| loaded.invalid("agent.socket_group", e))?)
        }
        None => None,
    };
    let (kill_grace, _) = config.kill_grace_limit(loaded);
    let limits = Limits {
        max_elections: agent_settings.max_elections,
        forget_after: agent_settings.forget_after,
        configured: configured.clone(),
    };
    let addr = agent_settings.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the agent's HTTP API to {addr} (agent.listen)"))
        .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
    let control = socket::bind(&socket_path, group)
        .with_context(|| {
            format!(
                "binding the agent's socket {} (agent.socket)",
                socket_path.display()
            )
        })
        .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
    let _socket_file = socket::Removed(socket_path.clone());
    let opened = config.open_hosted(loaded).await?;
    let kind = opened.backend.kind();
    let agent = Agent::new(
        opened.backend,
        opened.members,
        node,
        loaded.settings.timing,
        kill_grace,
        limits,
    );
    let pages = deadline_page::dir_for(&socket_path);
    match deadline_page::prepare_dir(&pages, group) {
        Ok(()) => {
            let _ = agent.pages.set(PageDir { dir: pages, group });
        }
        Err(e) => {
            tracing::warn!(dir = %pages.display(), error = %e, "no deadline pages: local callers renew at a third of the lease");
        }
    }
    for name in &configured {
        agent.election(name)?;
    }
    let local = listener
        .local_addr()
        .map_err(|e| Failure::new(exit::SOFTWARE, e.into()))?;
    tracing::info!(%local, socket = %socket_path.display(), backend = kind, remote_resign = token.is_some(), "agent listening");
    let forgetting = tokio::spawn(forget_idle(agent.clone()));
    // Under systemd (`Type=notify`): ready once both listeners are bound and the backend
    // is open (a peer backend's member listens and dials its peers; a quorum is not
    // awaited, so that the first host of a cluster starts on its own); then a status line
    // as leaderships change, and watchdog pings from this runtime.
    let notifier = crate::notify::notifier();
    notifier.ready(&agent.status_line());
    notifier.watchdog();
    let reporting = notifier
        .is_active()
        .then(|| tokio::spawn(report_status(agent.clone())));
    let draining = agent.clone();
    let served = serve_on(agent.clone(), control, Some(listener), token, async move {
        let _ = stop.wait_for(Option::is_some).await;
        crate::notify::notifier().stopping("stopping: revoking local holds");
        // Local callers stop their commands first; then the leaderships are handed over.
        tracing::info!("stopping: revoking local holds");
        draining.closing.send_replace(true);
        draining.drain().await;
    })
    .await;
    forgetting.abort();
    if let Some(r) = reporting {
        r.abort();
    }
    served
        .map_err(|e| Failure::new(exit::SOFTWARE, anyhow!(e).context("serving the agent API")))?;
    tracing::info!("agent stopped");
    Ok(0)
}

/// Sends the agent's status line to systemd whenever it changes (checked every second).
async fn report_status(agent: Arc<Agent>) {
    let mut last = agent.status_line();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let line = agent.status_line();
        if line != last {
            crate::notify::notifier().status(&line);
            last = line;
        }
    }
}

#[cfg(test)]
mod tests;
