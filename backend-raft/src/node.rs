//! [`RaftNode`]: the public handle, [`Backend`] for it, and one elector per election.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use election_core::{
    Backend, Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, NodeId, Result,
};
use election_transport::{Auth, Secret, TlsFiles, Transport, TransportConfig, TransportStats};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::RaftConfig;
use crate::core::{Node, Term};
use crate::driver::{Command, Driver};
use crate::persist::StateFile;

pub(crate) const KIND: &str = "raft";

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct RaftStats {
    /// Authenticated payloads that did not decode (another wire version, corruption).
    pub decode_errors: u64,
    /// The transport's counters (refused, oversized, unauthenticated frames, ...).
    pub transport: TransportStats,
}

/// State shared by the handle, the electors and the driver task.
#[derive(Debug)]
pub(crate) struct Inner {
    me: NodeId,
    address: String,
    commands: mpsc::UnboundedSender<Command>,
    leaders: Mutex<HashMap<ElectionName, watch::Sender<Option<LeaderInfo>>>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    decode_errors: AtomicU64,
    /// How long `try_campaign` waits for an election to conclude.
    try_window: Duration,
}

impl Inner {
    pub(crate) fn set_leader(&self, election: &ElectionName, info: Option<LeaderInfo>) {
        let tx = self.leader_tx(election);
        tx.send_if_modified(|cur| {
            let same = match (cur.as_ref(), info.as_ref()) {
                (Some(a), Some(b)) => a.node == b.node && a.epoch == b.epoch,
                (None, None) => true,
                _ => false,
            };
            if !same {
                *cur = info;
            }
            !same
        });
    }

    fn leader_tx(&self, election: &ElectionName) -> watch::Sender<Option<LeaderInfo>> {
        let mut map = self.leaders.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(election.clone())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    pub(crate) fn count_decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn send(&self, cmd: Command, election: &ElectionName) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(self.closed_error(election));
        }
        self.commands
            .send(cmd)
            .map_err(|_| self.closed_error(election))
    }

    fn closed_error(&self, election: &ElectionName) -> Error {
        Error::Closed {
            backend: KIND,
            election: election.clone(),
        }
    }
}

/// One member of a Raft election cluster: elects among its peers, for any number of
/// elections over one authenticated connection per peer. See the crate documentation.
///
/// Dropping the handle stops the node abruptly, as [`crash`](Self::crash) does; call
/// [`shutdown`](Self::shutdown) to hand leaderships over first.
#[derive(Debug)]
pub struct RaftNode {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
    transport: Transport,
    local_addr: SocketAddr,
}

impl RaftNode {
    /// Validates `config`, reads the state file in `data_dir`, listens on `listen` and
    /// starts connecting to the peers.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, an unreadable secret or TLS file, or a
    /// corrupt state file; [`Error::Unavailable`] when the listen address cannot be bound.
    pub async fn start(config: RaftConfig) -> Result<RaftNode> {
        config.validate()?;
        let me = config.node_id.clone().expect("validated");
        let state = StateFile::open(&config.data_dir)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = config
            .rng_seed
            .unwrap_or(nanos ^ (u64::from(std::process::id()) << 32));
        let core_config = config.node_config(seed, nanos)?;
        let auth = auth(&config)?;
        let peers = config
            .peers
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, addr)| (id.clone(), addr.clone()))
            .collect();
        let mut tconfig = TransportConfig::new(me.clone(), config.listen, peers, auth);
        // A member that comes back must be reachable within an election or two, not after
        // the transport's default 2 s backoff: cap it at election_timeout_max.
        tconfig.reconnect_max = config.election_timeout_max.max(tconfig.reconnect_min);
        let max_payload = tconfig.max_payload_len();
        let (transport, inbox) = Transport::bind(tconfig).await.map_err(|e| match e {
            election_transport::Error::Bind { .. } => Error::unavailable(
                KIND,
                config.listen.to_string(),
                None,
                format!("cannot listen for peers: {e}"),
                Some(Box::new(e)),
            ),
            other => Error::config("raft", other.to_string()),
        })?;
        let local_addr = transport.local_addr();
        let core = Node::new(
            core_config,
            std::time::Instant::now(),
            state.state().iter().map(|(k, v)| (k.clone(), v.clone())),
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            me: me.clone(),
            address: local_addr.to_string(),
            commands: tx,
            leaders: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            decode_errors: AtomicU64::new(0),
            try_window: config.election_timeout_min * 2 + config.election_timeout_max * 3,
        });
        let driver = Driver::new(
            core,
            transport.clone(),
            inbox,
            state,
            inner.clone(),
            rx,
            max_payload,
        );
        let task = tokio::spawn(driver.run());
        tracing::info!(node = %me, addr = %local_addr, "raft node started");
        Ok(RaftNode {
            inner,
            task,
            transport,
            local_addr,
        })
    }

    /// The address peers connect to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.inner.me
    }

    /// Counters for metrics.
    pub fn stats(&self) -> RaftStats {
        RaftStats {
            decode_errors: self.inner.decode_errors.load(Ordering::Relaxed),
            transport: self.transport.stats(),
        }
    }

    /// Stops gracefully: every leadership this node holds ends (its `lost()` resolves
    /// with `Shutdown`) and is handed over to a campaigning peer with TimeoutNow, queued
    /// messages are flushed, then connections close. Pending campaigns fail with
    /// [`Error::Closed`].
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Shutdown { reply: tx })
            .is_ok()
        {
            let _ = rx.await;
        }
        self.inner.closed.store(true, Ordering::SeqCst);
        let _ = (&mut self.task).await;
    }

    /// Stops abruptly, as `kill -9` would: no resign, no further message. Leaderships
    /// this node held are not ended; they lapse at their lease deadline, as the other
    /// nodes assume. The state file is left as it was.
    pub fn crash(self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.task.abort();
        // The transport handle goes with `self`: the last handle closes every connection.
    }
}

impl Drop for RaftNode {
    fn drop(&mut self) {
        // After shutdown or crash the task has ended and this does nothing.
        self.inner.closed.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

fn auth(config: &RaftConfig) -> Result<Auth> {
    let te = |e: election_transport::Error| Error::config("raft.secret", e.to_string());
    if let Some(s) = &config.secret {
        return Ok(Auth::SharedSecret(
            Secret::new(s.as_bytes().to_vec()).map_err(te)?,
        ));
    }
    if let Some(path) = &config.secret_file {
        return Ok(Auth::SharedSecret(Secret::from_file(path).map_err(te)?));
    }
    let tls = config
        .tls
        .as_ref()
        .expect("validated: one auth method is set");
    Ok(Auth::MutualTls(TlsFiles {
        ca: tls.ca.clone(),
        cert: tls.cert.clone(),
        key: tls.key.clone(),
    }))
}

impl Backend for RaftNode {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// An elector for `name`. Raft members campaign only as themselves: `me` must be this
    /// node's id.
    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        if me.node() != &self.inner.me {
            return Err(Error::config(
                "node_id",
                format!(
                    "raft node {} cannot campaign as {}: each member campaigns as itself",
                    self.inner.me,
                    me.node()
                ),
            ));
        }
        let rx = self.inner.leader_tx(name).subscribe();
        Ok(Arc::new(RaftElector {
            inner: self.inner.clone(),
            name: name.clone(),
            leader: rx,
        }))
    }
}

struct RaftElector {
    inner: Arc<Inner>,
    name: ElectionName,
    leader: watch::Receiver<Option<LeaderInfo>>,
}

/// Withdraws a campaign when its future is dropped before it completes.
struct WithdrawOnDrop<'a> {
    inner: &'a Inner,
    name: &'a ElectionName,
    id: u64,
    armed: bool,
}

impl Drop for WithdrawOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.inner.commands.send(Command::Withdraw {
                election: self.name.clone(),
                id: self.id,
            });
        }
    }
}

#[async_trait]
impl LeaderElector for RaftElector {
    async fn campaign(&self) -> Result<Leadership> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            Command::Campaign {
                election: self.name.clone(),
                id,
                reply: tx,
            },
            &self.name,
        )?;
        let mut guard = WithdrawOnDrop {
            inner: &self.inner,
            name: &self.name,
            id,
            armed: true,
        };
        let result = rx.await;
        guard.armed = false;
        match result {
            Ok(r) => r,
            Err(_) => Err(self.inner.closed_error(&self.name)),
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        let other_leads =
            |l: &Option<LeaderInfo>| l.as_ref().is_some_and(|i| i.node != self.inner.me);
        if other_leads(&self.leader.borrow()) {
            return Ok(None);
        }
        let mut rx = self.leader.clone();
        tokio::select! {
            r = self.campaign() => r.map(Some),
            _ = rx.wait_for(|l| other_leads(l)) => Ok(None),
            () = tokio::time::sleep(self.inner.try_window) => Ok(None),
        }
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(self.inner.closed_error(&self.name));
        }
        Ok(self.leader.borrow().clone())
    }

    fn observe(&self) -> LeaderStream {
        LeaderStream::from_watch(self.leader.clone())
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}

/// Resigns one granted leadership through the driver.
pub(crate) struct Control {
    pub(crate) inner: Arc<Inner>,
    pub(crate) election: ElectionName,
    pub(crate) term: Term,
}

#[async_trait]
impl LeadershipControl for Control {
    async fn resign(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            Command::Resign {
                election: self.election.clone(),
                term: self.term,
                reply: tx,
            },
            &self.election,
        )?;
        rx.await.map_err(|_| {
            Error::unavailable(
                KIND,
                self.inner.address.clone(),
                Some(&self.election),
                "the raft node stopped before the resign was sent",
                None,
            )
        })
    }
}
