//! The flawed backend: `MemoryBackend` wrapped so that one deliberate [`Flaw`] breaks one
//! promise of the election contract, and the harness and helpers the tests run it with.
//!
//! Each flaw is a bug a real backend could have (the doc of each variant says which); the
//! wrapper changes only what that bug changes and passes everything else through, so that
//! with [`Flaw::None`] it is a correct backend and passes every property.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use election_core::{
    Backend, Candidate, ElectionName, Epoch, Error, LeaderElector, LeaderInfo, LeaderStream,
    Leadership, LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, MemoryBackend,
    MemoryServer, NodeId, Result,
};
use election_tests::conformance::{Bounds, Harness, Restart, TestNode};
use futures_util::StreamExt;
use tokio::sync::{Mutex, oneshot};
use tokio::time::Instant;

/// One deliberate bug of the wrapped backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// No bug: the control.
    None,
    /// Every leadership reports epoch 1 (an epoch taken from a counter that is never
    /// incremented).
    SameEpoch,
    /// `observe()` never reports "no leader" (a watch that only forwards puts, not deletes).
    HidesNoLeader,
    /// `resign()` (and so a drop) lets go only a TTL later (a resign that forgets to delete
    /// the key and lets it expire).
    ResignWaitsForTtl,
    /// `campaign` and `try_campaign` grant even while another node leads (an acquire
    /// without compare-and-set).
    NoMutualExclusion,
    /// The holder believes it leads a TTL longer than its lease, and is not told when the
    /// backend finds the lease gone (a deadline taken from the server's expiry plus a TTL).
    LateLoss,
    /// When the holder's deadline passes, the backend releases the lease by itself (a
    /// release that waits in a socket while the link is cut off or the server stalled, and
    /// lands when it wakes up): the kill grace is given away.
    ReleasesAtDeadline,
    /// The holder's deadline is computed without the kill grace
    /// (`renewal_started + ttl - clock_drift`), so the holder lets go a kill grace late and
    /// the server may grant the election while the old child is still in its grace.
    NoKillGrace,
    /// Renewals keep the server's lease but never extend the holder's deadline (a renewal
    /// loop that forgets to report success): an undisturbed leader loses at its first
    /// deadline while nobody else can be elected.
    NoRenewal,
    /// `campaign` tries only after it saw the leader change (a loop that waits before its
    /// first attempt): a candidate alone in a free election is never elected.
    NeverElects,
    /// Dropping a `campaign()` future leaves the candidacy behind: it runs on in a task and,
    /// once elected, holds the election with nobody to hand it to (a queued znode or lock
    /// request that is not removed on cancel).
    CampaignNotWithdrawn,
    /// Dropping a `Leadership` does not release it: the lease is left to run out on the
    /// server (a `Drop` that forgets the best-effort resign). The wrapper keeps the inner
    /// leadership for one TTL after the drop and then lets it go, which is the latest a
    /// lease left alone would expire (the server's TTL runs from the last renewal, before
    /// the drop).
    DropDoesNotRelease,
    /// The backend keys an election by the first [`KEY_BYTES`] bytes of its name (a
    /// fixed-width key field), so elections whose names share that prefix share one
    /// leader: cross-talk between elections.
    SharedKeyPrefix,
    /// The backend's key space is narrower than the election-name rules: it refuses, as a
    /// configuration error, names longer than [`NARROW_MAX`] bytes or with upper-case
    /// letters (a DNS-label key space, as a Kubernetes object name is), although
    /// `ElectionName` accepted them.
    NarrowKeySpace,
    /// The server does not keep its epoch counters across a restart that keeps its data
    /// (they live in memory only): epochs start again at 1 and a fence would admit the old
    /// leader's writes again.
    EpochLostOnRestart,
}

/// The key width of [`Flaw::SharedKeyPrefix`].
pub(crate) const KEY_BYTES: usize = 10;

/// The longest name [`Flaw::NarrowKeySpace`] accepts.
pub(crate) const NARROW_MAX: usize = 63;

/// Epochs of leaderships made up without a backend.
static FAKE_EPOCHS: AtomicU64 = AtomicU64::new(1_000_000);

/// How often the wrapper copies the inner leadership's deadline to the outer one.
const MIRROR_EVERY: Duration = Duration::from_millis(10);

/// How long a leaked candidacy ([`Flaw::CampaignNotWithdrawn`]) holds once elected: longer
/// than any property runs.
const LEAKED_HOLD: Duration = Duration::from_secs(3600);

struct FlawedElector {
    inner: Arc<dyn LeaderElector>,
    /// The name the caller asked for (the inner one may be a [`Flaw::SharedKeyPrefix`] key).
    name: ElectionName,
    conn: MemoryBackend,
    me: NodeId,
    flaw: Flaw,
    timing: LeaseTiming,
}

impl FlawedElector {
    fn wrap(&self, inner: Leadership) -> Leadership {
        wrap(inner, self.flaw, self.timing, &self.conn)
    }

    /// A leadership granted with no backend behind it (also not released).
    fn fake(&self) -> Leadership {
        let info = LeaderInfo {
            node: self.me.clone(),
            epoch: Epoch(FAKE_EPOCHS.fetch_add(1, Ordering::Relaxed)),
            since: SystemTime::now(),
        };
        let control = Arc::new(Wrapped {
            inner: Mutex::new(None),
            flaw: self.flaw,
            ttl: self.timing.ttl,
        });
        LeaseKeeper::grant(info, Instant::now() + Duration::from_secs(3600), control).1
    }

    /// [`Flaw::NeverElects`]: attempts only after a change of leader.
    async fn campaign_after_a_change(&self) -> Result<Leadership> {
        let mut changes = self.inner.observe();
        // The first item is the current state, not a change.
        let _ = changes.next().await;
        while changes.next().await.is_some() {
            if let Some(l) = self.inner.try_campaign().await? {
                return Ok(self.wrap(l));
            }
        }
        std::future::pending().await
    }

    /// [`Flaw::CampaignNotWithdrawn`]: the inner campaign runs in a task that outlives the
    /// caller's future.
    async fn campaign_in_a_task(&self) -> Result<Leadership> {
        let inner = self.inner.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let result = inner.campaign().await;
            if let Err(Ok(leaked)) = tx.send(result) {
                // The caller is gone: the candidacy was never withdrawn, and now it leads.
                tokio::time::sleep(LEAKED_HOLD).await;
                drop(leaked);
            }
        });
        let inner = rx.await.expect("the campaign task answers")?;
        Ok(self.wrap(inner))
    }
}

/// Wraps an inner leadership in one whose deadline, loss and release follow `flaw`.
fn wrap(inner: Leadership, flaw: Flaw, timing: LeaseTiming, conn: &MemoryBackend) -> Leadership {
    let mut info = inner.info().clone();
    if flaw == Flaw::SameEpoch {
        info.epoch = Epoch(1);
    }
    // How much later than the inner deadline the holder believes it leads.
    let extra = match flaw {
        Flaw::LateLoss => timing.ttl,
        Flaw::NoKillGrace => timing.kill_grace,
        _ => Duration::ZERO,
    };
    let watch = inner.loss_watch();
    let control = Arc::new(Wrapped {
        inner: Mutex::new(Some(inner)),
        flaw,
        ttl: timing.ttl,
    });
    let (keeper, outer) = LeaseKeeper::grant(info, watch.deadline() + extra, control.clone());
    let conn = conn.clone();
    tokio::spawn(async move {
        loop {
            if let Some(reason) = watch.loss() {
                let told = match flaw {
                    Flaw::LateLoss => false,
                    // The late deadline ends it; any other loss is passed on.
                    Flaw::NoKillGrace => reason != LossReason::Expired,
                    _ => true,
                };
                if told {
                    keeper.end(reason);
                }
                if flaw == Flaw::ReleasesAtDeadline && reason == LossReason::Expired {
                    release_when_delivered(&control, &conn).await;
                }
                return;
            }
            let extended = if flaw == Flaw::NoRenewal {
                keeper.is_held()
            } else {
                keeper.extend_to(watch.deadline() + extra)
            };
            if !extended {
                return;
            }
            tokio::time::sleep(MIRROR_EVERY).await;
        }
    });
    outer
}

/// The `ReleasesAtDeadline` flaw: the inner leadership is resigned as soon as the link
/// carries it again (a stalled server handles it when it resumes).
async fn release_when_delivered(wrapped: &Wrapped, conn: &MemoryBackend) {
    let Some(inner) = wrapped.inner.lock().await.take() else {
        return;
    };
    while conn.is_cut_off() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = inner.resign().await;
}

struct Wrapped {
    inner: Mutex<Option<Leadership>>,
    flaw: Flaw,
    ttl: Duration,
}

impl Wrapped {
    /// Lets the inner leadership go a TTL from now instead of at once.
    async fn release_a_ttl_later(&self) {
        let Some(inner) = self.inner.lock().await.take() else {
            return;
        };
        let ttl = self.ttl;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            drop(inner);
        });
    }
}

#[async_trait]
impl LeadershipControl for Wrapped {
    async fn resign(&self) -> Result<()> {
        if self.flaw == Flaw::ResignWaitsForTtl {
            self.release_a_ttl_later().await;
            return Ok(());
        }
        let Some(inner) = self.inner.lock().await.take() else {
            return Ok(());
        };
        inner.resign().await
    }

    fn abandon(self: Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if self.flaw == Flaw::DropDoesNotRelease {
                self.release_a_ttl_later().await;
            } else if let Err(e) = self.resign().await {
                tracing::debug!(error = %e, "best-effort resign on drop failed");
            }
        });
    }
}

#[async_trait]
impl LeaderElector for FlawedElector {
    async fn campaign(&self) -> Result<Leadership> {
        match self.flaw {
            Flaw::NoMutualExclusion => {
                if let Some(l) = self.inner.try_campaign().await? {
                    return Ok(self.wrap(l));
                }
                Ok(self.fake())
            }
            Flaw::NeverElects => self.campaign_after_a_change().await,
            Flaw::CampaignNotWithdrawn => self.campaign_in_a_task().await,
            _ => Ok(self.wrap(self.inner.campaign().await?)),
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        match self.inner.try_campaign().await? {
            Some(l) => Ok(Some(self.wrap(l))),
            None if self.flaw == Flaw::NoMutualExclusion => Ok(Some(self.fake())),
            None => Ok(None),
        }
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let mut info = self.inner.leader().await?;
        if let (Some(i), Flaw::SameEpoch) = (info.as_mut(), self.flaw) {
            i.epoch = Epoch(1);
        }
        Ok(info)
    }

    fn observe(&self) -> LeaderStream {
        let flaw = self.flaw;
        LeaderStream::new(self.inner.observe().filter_map(move |item| async move {
            match item {
                Ok(None) if flaw == Flaw::HidesNoLeader => None,
                Ok(Some(mut i)) if flaw == Flaw::SameEpoch => {
                    i.epoch = Epoch(1);
                    Some(Ok(Some(i)))
                }
                other => Some(other),
            }
        }))
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}

struct FlawedBackend {
    conn: MemoryBackend,
    flaw: Flaw,
}

impl Backend for FlawedBackend {
    fn kind(&self) -> &'static str {
        "flawed"
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        let key = match self.flaw {
            Flaw::SharedKeyPrefix => {
                ElectionName::new(&name.as_str()[..name.as_str().len().min(KEY_BYTES)])?
            }
            Flaw::NarrowKeySpace
                if name.as_str().len() > NARROW_MAX
                    || name.as_str().bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                return Err(Error::config(
                    "election",
                    format!(
                        "{name} is not a key of this backend: at most {NARROW_MAX} bytes of \
                         lower-case letters, digits, '.', '_' and '-'"
                    ),
                ));
            }
            _ => name.clone(),
        };
        Ok(Arc::new(FlawedElector {
            inner: self.conn.election(&key, me.clone())?,
            name: name.clone(),
            conn: self.conn.clone(),
            me: me.node().clone(),
            flaw: self.flaw,
            timing: *self.conn.server().timing(),
        }))
    }
}

struct FlawedNode {
    id: NodeId,
    conn: MemoryBackend,
    flaw: Flaw,
}

#[async_trait]
impl TestNode for FlawedNode {
    fn id(&self) -> NodeId {
        self.id.clone()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(FlawedBackend {
            conn: self.conn.clone(),
            flaw: self.flaw,
        })
    }

    async fn cut_off(&self) {
        self.conn.cut_off();
    }

    async fn heal(&self) {
        self.conn.heal();
    }

    async fn stall(&self) {
        self.conn.server().stall();
    }

    async fn resume(&self) {
        self.conn.server().resume();
    }

    async fn freeze(&self) {
        self.conn.cut_off();
    }

    async fn thaw(&self) {
        self.conn.heal();
    }
}

struct FlawedHarness {
    nodes: Vec<Arc<FlawedNode>>,
    timing: LeaseTiming,
    server: MemoryServer,
    flaw: Flaw,
}

#[async_trait]
impl Harness for FlawedHarness {
    fn name(&self) -> &str {
        "flawed-memory"
    }

    fn max_nodes(&self) -> usize {
        self.nodes.len()
    }

    async fn node(&self, index: usize) -> Result<Arc<dyn TestNode>> {
        Ok(self.nodes[index].clone())
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            loss_within: self.timing.hold_budget(),
            takeover_within: self.timing.ttl + self.timing.retry_interval,
            kill_grace: self.timing.kill_grace,
        }
    }

    fn restarts(&self) -> &'static [Restart] {
        &[Restart::KeepData]
    }

    async fn restart(&self, _: Restart) {
        if self.flaw == Flaw::EpochLostOnRestart {
            self.server.wipe();
        }
    }
}

/// The timings a flawed harness runs with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timing {
    /// [`LeaseTiming::fast_for_tests`] (kill grace 100 ms).
    Fast,
    /// As `Fast` with a 300 ms kill grace, so that a flaw worth one kill grace
    /// ([`Flaw::NoKillGrace`]) misses the window by 250 ms, not by 50 ms that a late
    /// scheduler could eat.
    WideGrace,
}

impl Timing {
    fn lease(self) -> LeaseTiming {
        match self {
            Timing::Fast => LeaseTiming::fast_for_tests(),
            Timing::WideGrace => LeaseTiming {
                kill_grace: Duration::from_millis(300),
                ..LeaseTiming::fast_for_tests()
            },
        }
    }
}

fn harness(flaw: Flaw, timing: Timing) -> Arc<dyn Harness> {
    let timing = timing.lease();
    let server = MemoryServer::new(timing).expect("valid timing");
    let nodes = (1..=3)
        .map(|i| {
            Arc::new(FlawedNode {
                id: NodeId::new(format!("node-{i}")).unwrap(),
                conn: server.connect(),
                flaw,
            })
        })
        .collect();
    Arc::new(FlawedHarness {
        nodes,
        timing,
        server,
        flaw,
    })
}

/// Runs `property` against a harness with `flaw` and `timing`; returns the panic message,
/// if any.
pub(crate) async fn run<F, Fut>(flaw: Flaw, timing: Timing, property: F) -> Option<String>
where
    F: FnOnce(Arc<dyn Harness>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    election_tests::init_tracing();
    match tokio::spawn(property(harness(flaw, timing))).await {
        Ok(()) => None,
        Err(e) => {
            let panic = e.into_panic();
            Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            )
        }
    }
}

/// Asserts that `message` is `property`'s failure, naming the backend and the property,
/// and that it says `needle`.
#[track_caller]
pub(crate) fn assert_caught(message: Option<String>, property: &str, needle: &str) {
    let message = message.unwrap_or_else(|| panic!("`{property}` did not catch the flaw"));
    assert!(
        message.contains(&format!("backend `flawed-memory` broke `{property}`")),
        "the failure must name the backend and the property: {message}"
    );
    assert!(
        message.contains(needle),
        "expected {needle:?} in: {message}"
    );
}

/// A property of the suite as a closure over a harness.
macro_rules! property {
    ($name:ident) => {
        |h: std::sync::Arc<dyn election_tests::conformance::Harness>| async move {
            election_tests::conformance::$name(&*h).await
        }
    };
}
pub(crate) use property;
