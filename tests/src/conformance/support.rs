//! What the properties share: unique election names, electors, waits with deadlines and
//! failure messages that name the backend.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use election_core::{
    Candidate, ElectionName, Epoch, LeaderElector, LeaderInfo, LeaderStream, Leadership, NodeId,
};
use tokio::time::Instant;

use super::{Bounds, Harness, TestNode};

/// Added to every timing bound the suite checks, for a busy machine (see decision 013).
pub(crate) const SLACK: Duration = Duration::from_secs(2);

/// How late a timer may fire on a loaded 2-core machine: the slack of bounds that are one
/// timer away from the event, such as `lost()` resolving at the holder's deadline (see
/// decision 013).
pub(crate) const SCHEDULING_SLACK: Duration = Duration::from_millis(250);

/// How often an election attempt that failed with a retryable error is retried.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// One property's run against one harness.
pub(crate) struct Ctx<'h> {
    pub(crate) h: &'h dyn Harness,
    pub(crate) property: &'static str,
    pub(crate) bounds: Bounds,
}

impl<'h> Ctx<'h> {
    pub(crate) fn new(h: &'h dyn Harness, property: &'static str) -> Ctx<'h> {
        tracing::info!(backend = h.name(), property, "conformance property starts");
        Ctx {
            h,
            property,
            bounds: h.bounds(),
        }
    }

    /// Fails the property with a message naming the backend and the property.
    #[track_caller]
    pub(crate) fn fail(&self, what: impl Display) -> ! {
        panic!(
            "conformance: backend `{}` broke `{}`: {what}",
            self.h.name(),
            self.property
        )
    }

    /// Unwraps `result`, failing with `doing` and the error.
    #[track_caller]
    pub(crate) fn ok<T, E: Display>(&self, doing: &str, result: Result<T, E>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => self.fail(format!("{doing} failed: {e}")),
        }
    }

    /// A generous deadline for things that must happen eventually (an election with no
    /// one in the way, a stream's next change).
    pub(crate) fn liveness(&self) -> Duration {
        self.bounds.takeover_within * 2 + Duration::from_secs(10)
    }

    /// A fresh election name, unique in this process and across runs against a
    /// long-lived server.
    pub(crate) fn election(&self, tag: &str) -> ElectionName {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "conf-{tag}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.ok("making an election name", ElectionName::new(name))
    }

    /// Node `index` of the harness.
    pub(crate) async fn node(&self, index: usize) -> Arc<dyn TestNode> {
        if index >= self.h.max_nodes() {
            self.fail(format!(
                "the harness offers {} nodes; the property needs node {index}",
                self.h.max_nodes()
            ));
        }
        self.ok(&format!("getting node {index}"), self.h.node(index).await)
    }

    /// Node `index`'s elector for `name`, campaigning as that node.
    pub(crate) async fn elector(&self, index: usize, name: &ElectionName) -> Member {
        let node = self.node(index).await;
        let id = node.id();
        let elector = self.ok(
            &format!("opening election {name} on node {id}"),
            node.backend().election(name, Candidate::new(id.clone())),
        );
        Member { node, id, elector }
    }

    /// Awaits `fut`, failing the property if it takes longer than `within`.
    pub(crate) async fn within<T>(
        &self,
        within: Duration,
        what: &str,
        fut: impl Future<Output = T>,
    ) -> T {
        match tokio::time::timeout(within, fut).await {
            Ok(v) => v,
            Err(_) => self.fail(format!("{what} did not happen within {within:?}")),
        }
    }

    /// Campaigns until elected, retrying retryable errors; fails after `within`.
    pub(crate) async fn campaign(&self, m: &Member, within: Duration) -> Leadership {
        let what = format!("node {} being elected in {}", m.id, m.elector.name());
        let leadership = self.within(within, &what, campaign_retrying(m)).await;
        match leadership {
            Ok(l) => self.check_grant(m, l),
            Err(e) => self.fail(format!("{what}: campaign failed: {e}")),
        }
    }

    /// The checks every grant must pass.
    pub(crate) fn check_grant(&self, m: &Member, l: Leadership) -> Leadership {
        if l.info().node != m.id {
            self.fail(format!(
                "node {} was granted a leadership naming node {}",
                m.id,
                l.info().node
            ));
        }
        if l.epoch() == Epoch::ZERO {
            self.fail(format!(
                "node {} was granted epoch 0, which is never valid",
                m.id
            ));
        }
        l
    }

    /// Waits until `m.elector.leader()` reports `expected` (node and epoch).
    pub(crate) async fn wait_leader(&self, m: &Member, expected: Option<(&NodeId, Epoch)>) {
        let deadline = Instant::now() + self.liveness();
        loop {
            let last = match m.elector.leader().await {
                Ok(info) => {
                    let got = info.as_ref().map(|i| (&i.node, i.epoch));
                    if got == expected {
                        return;
                    }
                    describe(&info)
                }
                Err(e) if e.is_retryable() => format!("error {e}"),
                Err(e) => self.fail(format!("leader() on node {} failed: {e}", m.id)),
            };
            if Instant::now() >= deadline {
                self.fail(format!(
                    "leader() on node {} never reported {} (last: {})",
                    m.id,
                    describe_pair(expected),
                    last
                ));
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

/// One node's handle on one election.
pub(crate) struct Member {
    pub(crate) node: Arc<dyn TestNode>,
    pub(crate) id: NodeId,
    pub(crate) elector: Arc<dyn LeaderElector>,
}

/// Campaigns until elected, retrying errors that say "try again later".
pub(crate) async fn campaign_retrying(m: &Member) -> election_core::Result<Leadership> {
    loop {
        match m.elector.campaign().await {
            Err(e) if e.is_retryable() => {
                tracing::debug!(node = %m.id, error = %e, "campaign failed; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
            other => return other,
        }
    }
}

/// A campaign running in its own task, reporting when it was elected (the instant
/// `campaign` returned: the grant happened no later).
pub(crate) fn spawn_campaign(
    m: Member,
) -> tokio::task::JoinHandle<(Member, election_core::Result<(Instant, Leadership)>)> {
    tokio::spawn(async move {
        let result = campaign_retrying(&m).await.map(|l| (Instant::now(), l));
        (m, result)
    })
}

/// A leader as `node@epoch`, or `no leader`.
pub(crate) fn describe(info: &Option<LeaderInfo>) -> String {
    describe_pair(info.as_ref().map(|i| (&i.node, i.epoch)))
}

fn describe_pair(info: Option<(&NodeId, Epoch)>) -> String {
    match info {
        Some((node, epoch)) => format!("{node}@{epoch}"),
        None => "no leader".into(),
    }
}

/// Reads leader changes from a stream, skipping repeats of the same node and epoch.
pub(crate) struct Changes {
    stream: LeaderStream,
    last: Option<Option<(NodeId, Epoch)>>,
    /// Every distinct change seen, for messages.
    pub(crate) seen: Vec<Option<(NodeId, Epoch)>>,
}

impl Changes {
    pub(crate) fn new(stream: LeaderStream) -> Changes {
        Changes {
            stream,
            last: None,
            seen: Vec::new(),
        }
    }

    /// The next distinct change within `within`.
    pub(crate) async fn next(
        &mut self,
        ctx: &Ctx<'_>,
        within: Duration,
    ) -> Option<(NodeId, Epoch)> {
        let deadline = Instant::now() + within;
        loop {
            let item = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(item)) => item,
                Ok(None) => ctx.fail(format!(
                    "observe() ended while the election went on (seen so far: {})",
                    self.seen_text()
                )),
                Err(_) => ctx.fail(format!(
                    "observe() reported no change within {within:?} (seen so far: {})",
                    self.seen_text()
                )),
            };
            let change = match item {
                Ok(info) => info.map(|i| (i.node, i.epoch)),
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "observe() reported a retryable error");
                    continue;
                }
                Err(e) => ctx.fail(format!("observe() failed: {e}")),
            };
            if self.last.as_ref() != Some(&change) {
                self.last = Some(change.clone());
                self.seen.push(change.clone());
                return change;
            }
        }
    }

    /// Every change seen so far, for messages.
    pub(crate) fn seen_text(&self) -> String {
        let items: Vec<String> = self
            .seen
            .iter()
            .map(|c| describe_pair(c.as_ref().map(|(n, e)| (n, *e))))
            .collect();
        format!("[{}]", items.join(", "))
    }
}
