//! [`PeerNode`]: the node handle every peer backend names (`RaftNode`, `BullyNode`): start
//! from a backend's [`PeerNodeConfig`], stop, stats, its [`Backend`] implementation, and
//! one elector per election.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use election_core::{
    Backend, Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, NodeId, Result,
};
use election_transport::{Transport, TransportStats};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::core::ElectionCore;
use crate::driver::{Command, Driver};
use crate::members::{Members, Membership};
use crate::persist::StateFile;
use crate::settings::PeerSettings;

/// Counters of a peer node, for metrics.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct PeerStats {
    /// Authenticated payloads that did not decode (another wire version, corruption).
    pub decode_errors: u64,
    /// Elections the core holds state for (at most `max_elections`, plus those loaded
    /// from the state file at start).
    pub elections: u64,
    /// Peer mentions of new elections ignored because the core held `max_elections`.
    pub ignored_elections: u64,
    /// The transport's counters (refused, oversized, unauthenticated frames, ...).
    pub transport: TransportStats,
}

/// A peer backend's configuration (`RaftConfig`, `BullyConfig`): how
/// [`PeerNode::start`] checks it and builds the driver's settings and the core from it.
pub trait PeerNodeConfig {
    /// The core it configures.
    type Core: ElectionCore;
    /// The core's own view of the settings.
    type CoreConfig;

    /// Checks the rules that make these settings safe and live.
    ///
    /// # Errors
    /// [`Error::Config`] naming the rule broken.
    fn validate(&self) -> Result<()>;
    /// The configured seed of the core's RNG; `None` draws one from the clock and the
    /// process id.
    fn rng_seed(&self) -> Option<u64>;
    /// The core's settings, with its RNG `seed` and an `incarnation` that differs between
    /// runs of this process.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    fn core_config(&self, seed: u64, incarnation: u64) -> Result<Self::CoreConfig>;
    /// The driver's settings.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    fn peer_settings(&self) -> Result<PeerSettings>;
    /// Builds the core at `now` from its settings, the persisted state and the persisted
    /// floor ([`StateFile::floor`]).
    ///
    /// # Errors
    /// [`Error::Config`] for what the core refuses.
    fn new_core(
        config: Self::CoreConfig,
        now: Instant,
        state: &BTreeMap<ElectionName, <Self::Core as ElectionCore>::HardState>,
        floor: u64,
    ) -> Result<Self::Core>;
}

/// A stalled driver ([`PeerNode::stall`]); dropping it resumes the driver.
#[derive(Debug)]
#[must_use = "dropping a Stall resumes the driver at once"]
pub struct Stall {
    _resume: oneshot::Sender<()>,
}

/// State shared by the handle, the electors and the driver task.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) kind: &'static str,
    me: NodeId,
    address: String,
    commands: mpsc::UnboundedSender<Command>,
    leaders: Mutex<HashMap<ElectionName, watch::Sender<Option<LeaderInfo>>>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    decode_errors: AtomicU64,
    elections: AtomicU64,
    ignored_elections: AtomicU64,
    /// How long `try_campaign` waits for an election to conclude.
    try_window: std::time::Duration,
}

impl Inner {
    /// Publishes the leader of `election` to its electors and observers. Entries exist for
    /// every election whose leader the core knows (bounded by `max_elections`) and for
    /// observed ones: "no leader" needs no entry, so an unobserved one is dropped then.
    pub(crate) fn set_leader(&self, election: &ElectionName, info: Option<LeaderInfo>) {
        let tx = {
            let mut map = self.leaders.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(election) {
                Some(tx) if info.is_none() && tx.receiver_count() == 0 => {
                    map.remove(election);
                    return;
                }
                Some(tx) => tx.clone(),
                None if info.is_none() => return,
                None => {
                    drop(map);
                    self.leader_tx(election)
                }
            }
        };
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

    /// Drops the entry of `election` if it says "no leader" (what a missing entry says)
    /// and no elector or stream observes it any more (`keep` receivers are about to be
    /// dropped by the caller).
    pub(crate) fn release_leader(&self, election: &ElectionName, keep: usize) {
        let mut map = self.leaders.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(election)
            .is_some_and(|tx| tx.receiver_count() <= keep && tx.borrow().is_none())
        {
            map.remove(election);
        }
    }

    /// The number of elections with a live elector or observer.
    fn observed(&self) -> usize {
        self.leaders.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn note_core_stats(&self, tracked: usize, ignored: u64) {
        self.elections.store(tracked as u64, Ordering::Relaxed);
        self.ignored_elections.store(ignored, Ordering::Relaxed);
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
            backend: self.kind,
            election: election.clone(),
        }
    }
}

/// One member of a peer election cluster running the core `C`: elects among its peers,
/// for any number of elections over one authenticated connection per peer. Each backend
/// names it for its core (`pub type RaftNode = PeerNode<raft::core::Node>`).
///
/// Dropping the handle stops the node abruptly, as [`crash`](Self::crash) does; call
/// [`shutdown`](Self::shutdown) to hand leaderships over first.
pub struct PeerNode<C: ElectionCore> {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
    transport: Transport,
    local_addr: SocketAddr,
    /// This node's address in [`Members`]: its own `peers` entry, else `local_addr`.
    my_address: String,
    _core: std::marker::PhantomData<fn() -> C>,
}

impl<C: ElectionCore> std::fmt::Debug for PeerNode<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNode")
            .field("inner", &self.inner)
            .field("transport", &self.transport)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl<C: ElectionCore> PeerNode<C> {
    /// Validates `config`, reads the state file in its `data_dir`, listens on its `listen`
    /// address and starts connecting to the peers.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, an unreadable secret or TLS file, or a
    /// corrupt state file; [`Error::Unavailable`] when the listen address cannot be bound.
    pub async fn start<K: PeerNodeConfig<Core = C>>(config: K) -> Result<PeerNode<C>> {
        config.validate()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = config
            .rng_seed()
            .unwrap_or(nanos ^ (u64::from(std::process::id()) << 32));
        let core_config = config.core_config(seed, nanos)?;
        PeerNode::start_with(config.peer_settings()?, |state, floor| {
            K::new_core(core_config, Instant::now(), state, floor)
        })
        .await
    }

    /// Reads the state file in `settings.data_dir`, listens on `settings.listen`, builds
    /// the core with `make_core` from the persisted state and floor, and starts the driver.
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable secret or TLS file, a corrupt state file, or
    /// what `make_core` refuses; [`Error::Unavailable`] when the listen address cannot be
    /// bound.
    pub async fn start_with(
        settings: PeerSettings,
        make_core: impl FnOnce(&BTreeMap<ElectionName, C::HardState>, u64) -> Result<C>,
    ) -> Result<PeerNode<C>> {
        let kind = C::KIND;
        let me = settings.me.clone();
        let state = StateFile::<C::HardState>::open(&settings.data_dir)?;
        let tconfig = settings.transport_config(kind)?;
        let max_payload = tconfig.max_payload_len();
        let listen = settings.listen;
        let (transport, inbox) = Transport::bind(tconfig).await.map_err(|e| match e {
            election_transport::Error::Bind { .. } => Error::unavailable(
                kind,
                listen.to_string(),
                None,
                format!("cannot listen for peers: {e}"),
                Some(Box::new(e)),
            ),
            other => Error::config(kind, format!("{other} (listen {listen})")),
        })?;
        let local_addr = transport.local_addr();
        let my_address = settings
            .peers
            .get(&me)
            .cloned()
            .unwrap_or_else(|| local_addr.to_string());
        let core = make_core(state.state(), state.floor())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            kind,
            me: me.clone(),
            address: local_addr.to_string(),
            commands: tx,
            leaders: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            decode_errors: AtomicU64::new(0),
            elections: AtomicU64::new(0),
            ignored_elections: AtomicU64::new(0),
            try_window: settings.try_window,
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
        tracing::info!(node = %me, addr = %local_addr, "{kind} node started");
        Ok(PeerNode {
            inner,
            task,
            transport,
            local_addr,
            my_address,
            _core: std::marker::PhantomData,
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
    pub fn stats(&self) -> PeerStats {
        PeerStats {
            decode_errors: self.inner.decode_errors.load(Ordering::Relaxed),
            elections: self.inner.elections.load(Ordering::Relaxed),
            ignored_elections: self.inner.ignored_elections.load(Ordering::Relaxed),
            transport: self.transport.stats(),
        }
    }

    /// How many elections have a live elector or observer on this handle (the entries
    /// that publish leader changes; others keep none).
    pub fn observed_elections(&self) -> usize {
        self.inner.observed()
    }

    /// Stops gracefully: every leadership this node holds ends (its `lost()` resolves
    /// with `Shutdown`) and is resigned in the core (which hands it over), queued messages
    /// are flushed, then connections close. Pending campaigns fail with [`Error::Closed`].
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

    /// Fault injection: stalls the driver as if the process were stopped, until the
    /// returned [`Stall`] is dropped. Meanwhile no message, timer or command is handled (the
    /// transport keeps queueing what arrives), while leaderships' `lost()` still fire at
    /// their deadlines, as for a holder whose backend task stalled.
    pub fn stall(&self) -> Stall {
        let (tx, rx) = oneshot::channel();
        let _ = self.inner.commands.send(Command::Stall { resume: rx });
        Stall { _resume: tx }
    }
}

impl<C: ElectionCore> Drop for PeerNode<C> {
    fn drop(&mut self) {
        // After shutdown or crash the task has ended and this does nothing.
        self.inner.closed.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

impl<C: ElectionCore> Membership for PeerNode<C> {
    /// Every configured member, this node included, from the transport's view of each
    /// peer ([`Transport::peers`]).
    fn members(&self) -> Members {
        Members::new(
            &self.inner.me,
            self.my_address.clone(),
            self.transport.peers(),
        )
    }
}

impl<C: ElectionCore> Backend for PeerNode<C> {
    fn kind(&self) -> &'static str {
        C::KIND
    }

    /// An elector for `name`. Members campaign only as themselves: `me` must be this
    /// node's id.
    ///
    /// # Errors
    /// [`Error::Config`] naming `node_id` when `me` is another node.
    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        if me.node() != &self.inner.me {
            return Err(Error::config(
                "node_id",
                format!(
                    "{} node {} cannot campaign as {}: each member campaigns as itself",
                    self.inner.kind,
                    self.inner.me,
                    me.node()
                ),
            ));
        }
        let rx = self.inner.leader_tx(name).subscribe();
        Ok(Arc::new(PeerElector {
            inner: self.inner.clone(),
            name: name.clone(),
            leader: rx,
        }))
    }
}

struct PeerElector {
    inner: Arc<Inner>,
    name: ElectionName,
    leader: watch::Receiver<Option<LeaderInfo>>,
}

impl Drop for PeerElector {
    fn drop(&mut self) {
        // Our own receiver is still alive here: keep the entry only for other observers.
        self.inner.release_leader(&self.name, 1);
    }
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
impl LeaderElector for PeerElector {
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
    pub(crate) epoch: u64,
}

#[async_trait]
impl LeadershipControl for Control {
    async fn resign(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            Command::Resign {
                election: self.election.clone(),
                epoch: self.epoch,
                reply: tx,
            },
            &self.election,
        )?;
        rx.await.map_err(|_| {
            Error::unavailable(
                self.inner.kind,
                self.inner.address.clone(),
                Some(&self.election),
                format!(
                    "the {} node stopped before the resign was sent",
                    self.inner.kind
                ),
                None,
            )
        })
    }
}
