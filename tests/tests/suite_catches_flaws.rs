//! The conformance suite catches broken backends: each test wraps `MemoryBackend` with one
//! deliberate flaw and checks that the property meant to catch it fails, naming the
//! backend. A correct wrapper (no flaw) passes, so the failures come from the flaws.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use election_core::{
    Backend, Candidate, ElectionName, Epoch, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, MemoryBackend, MemoryServer, NodeId,
    Result,
};
use election_tests::conformance::{self, Bounds, Harness, TestNode};
use futures_util::StreamExt;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    None,
    /// Every leadership reports epoch 1.
    SameEpoch,
    /// `observe()` never reports "no leader".
    HidesNoLeader,
    /// `resign()` lets go only a TTL later.
    ResignWaitsForTtl,
    /// `campaign` and `try_campaign` grant even while another node leads.
    NoMutualExclusion,
    /// The holder believes it leads a TTL longer than its lease.
    LateLoss,
    /// When the holder's deadline passes, the backend releases the lease by itself (a
    /// release that waits in a socket while the link is cut off or the server stalled, and
    /// lands when it wakes up): the kill grace is given away.
    ReleasesAtDeadline,
}

/// Epochs of leaderships made up without a backend.
static FAKE_EPOCHS: AtomicU64 = AtomicU64::new(1_000_000);

/// How often the wrapper copies the inner leadership's deadline to the outer one.
const MIRROR_EVERY: Duration = Duration::from_millis(10);

struct FlawedElector {
    inner: Arc<dyn LeaderElector>,
    conn: MemoryBackend,
    me: NodeId,
    flaw: Flaw,
    timing: LeaseTiming,
}

impl FlawedElector {
    fn wrap(&self, inner: Leadership) -> Leadership {
        let mut info = inner.info().clone();
        if self.flaw == Flaw::SameEpoch {
            info.epoch = Epoch(1);
        }
        let extra = if self.flaw == Flaw::LateLoss {
            self.timing.ttl
        } else {
            Duration::ZERO
        };
        let watch = inner.loss_watch();
        let control = Arc::new(Wrapped {
            inner: Mutex::new(Some(inner)),
            flaw: self.flaw,
            ttl: self.timing.ttl,
        });
        let (keeper, outer) = LeaseKeeper::grant(info, watch.deadline() + extra, control.clone());
        let late = self.flaw == Flaw::LateLoss;
        let releases = self.flaw == Flaw::ReleasesAtDeadline;
        let conn = self.conn.clone();
        let wrapped = control.clone();
        tokio::spawn(async move {
            loop {
                if let Some(reason) = watch.loss() {
                    if !late {
                        keeper.end(reason);
                    }
                    if releases && reason == LossReason::Expired {
                        release_when_delivered(&wrapped, &conn).await;
                    }
                    return;
                }
                if !keeper.extend_to(watch.deadline() + extra) {
                    return;
                }
                tokio::time::sleep(MIRROR_EVERY).await;
            }
        });
        outer
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

#[async_trait]
impl LeadershipControl for Wrapped {
    async fn resign(&self) -> Result<()> {
        let Some(inner) = self.inner.lock().await.take() else {
            return Ok(());
        };
        if self.flaw == Flaw::ResignWaitsForTtl {
            let ttl = self.ttl;
            tokio::spawn(async move {
                tokio::time::sleep(ttl).await;
                drop(inner);
            });
            return Ok(());
        }
        inner.resign().await
    }
}

#[async_trait]
impl LeaderElector for FlawedElector {
    async fn campaign(&self) -> Result<Leadership> {
        if self.flaw == Flaw::NoMutualExclusion {
            if let Some(l) = self.inner.try_campaign().await? {
                return Ok(self.wrap(l));
            }
            return Ok(self.fake());
        }
        Ok(self.wrap(self.inner.campaign().await?))
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
        self.inner.name()
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
        Ok(Arc::new(FlawedElector {
            inner: self.conn.election(name, me.clone())?,
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
        self.cut_off().await;
    }

    async fn thaw(&self) {
        self.heal().await;
    }
}

struct FlawedHarness {
    nodes: Vec<Arc<FlawedNode>>,
    timing: LeaseTiming,
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
}

fn harness(flaw: Flaw) -> Arc<dyn Harness> {
    let timing = LeaseTiming::fast_for_tests();
    let server = MemoryServer::new(timing).unwrap();
    let nodes = (1..=3)
        .map(|i| {
            Arc::new(FlawedNode {
                id: NodeId::new(format!("node-{i}")).unwrap(),
                conn: server.connect(),
                flaw,
            })
        })
        .collect();
    Arc::new(FlawedHarness { nodes, timing })
}

/// Runs `property` against a harness with `flaw`; returns the panic message, if any.
async fn run<F, Fut>(flaw: Flaw, property: F) -> Option<String>
where
    F: FnOnce(Arc<dyn Harness>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    election_tests::init_tracing();
    match tokio::spawn(property(harness(flaw))).await {
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

#[track_caller]
fn assert_caught(message: Option<String>, property: &str, needle: &str) {
    let message = message.unwrap_or_else(|| panic!("`{property}` did not catch the flaw"));
    assert!(
        message.contains("backend `flawed-memory` broke") && message.contains(property),
        "the failure must name the backend and the property: {message}"
    );
    assert!(
        message.contains(needle),
        "expected {needle:?} in: {message}"
    );
}

macro_rules! property {
    ($name:ident) => {
        |h: Arc<dyn Harness>| async move { conformance::$name(&*h).await }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrapper_without_a_flaw_passes() {
    assert_eq!(
        run(
            Flaw::None,
            property!(resign_hands_over_without_waiting_for_ttl)
        )
        .await,
        None
    );
    assert_eq!(run(Flaw::None, property!(at_most_one_holder)).await, None);
    assert_eq!(
        run(
            Flaw::None,
            property!(takeover_only_after_the_cut_off_holder_lost)
        )
        .await,
        None
    );
    assert_eq!(
        run(Flaw::None, property!(second_candidate_waits)).await,
        None
    );
    assert_eq!(
        run(Flaw::None, property!(a_paused_leader_is_fenced_off)).await,
        None
    );
    assert_eq!(
        run(
            Flaw::None,
            property!(no_takeover_inside_the_kill_grace_after_a_cut_off)
        )
        .await,
        None
    );
    assert_eq!(
        run(
            Flaw::None,
            property!(no_takeover_inside_the_kill_grace_after_a_stall)
        )
        .await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_at_the_deadline_after_a_cut_off_is_caught() {
    let m = run(
        Flaw::ReleasesAtDeadline,
        property!(no_takeover_inside_the_kill_grace_after_a_cut_off),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_cut_off",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_at_the_deadline_after_a_stall_is_caught() {
    let m = run(
        Flaw::ReleasesAtDeadline,
        property!(no_takeover_inside_the_kill_grace_after_a_stall),
    )
    .await;
    assert_caught(
        m,
        "no_takeover_inside_the_kill_grace_after_a_stall",
        "could still be in its kill grace",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_the_fence() {
    let m = run(Flaw::SameEpoch, property!(a_paused_leader_is_fenced_off)).await;
    assert_caught(
        m,
        "a_paused_leader_is_fenced_off",
        "not above the paused leader's",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_epochs_rise_across_handoffs() {
    let m = run(Flaw::SameEpoch, property!(epochs_rise_across_handoffs)).await;
    assert_caught(m, "epochs_rise_across_handoffs", "is not above epoch 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_epoch_is_caught_by_the_history_of_at_most_one_holder() {
    let m = run(Flaw::SameEpoch, property!(at_most_one_holder)).await;
    assert_caught(m, "at_most_one_holder", "was granted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mutual_exclusion_is_caught_by_second_candidate_waits() {
    let m = run(Flaw::NoMutualExclusion, property!(second_candidate_waits)).await;
    assert_caught(
        m,
        "second_candidate_waits",
        "try_campaign on node node-2 returned",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mutual_exclusion_is_caught_by_at_most_one_holder() {
    let m = run(Flaw::NoMutualExclusion, property!(at_most_one_holder)).await;
    assert_caught(m, "at_most_one_holder", "two holders at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resign_that_waits_for_the_ttl_is_caught() {
    let m = run(
        Flaw::ResignWaitsForTtl,
        property!(resign_hands_over_without_waiting_for_ttl),
    )
    .await;
    assert_caught(
        m,
        "resign_hands_over_without_waiting_for_ttl",
        "waited for the lease to run out",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_learns_of_its_loss_late_is_caught_by_the_takeover_ordering() {
    let m = run(
        Flaw::LateLoss,
        property!(takeover_only_after_the_cut_off_holder_lost),
    )
    .await;
    assert_caught(
        m,
        "takeover_only_after_the_cut_off_holder_lost",
        "still held epoch",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_hides_no_leader_is_caught() {
    let m = run(Flaw::HidesNoLeader, property!(observe_reports_every_change)).await;
    assert_caught(
        m,
        "observe_reports_every_change",
        "observe() reported no change",
    );
}
