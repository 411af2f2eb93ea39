//! The tokio driver: the only place with tasks, sockets, clocks and files. It feeds the
//! core with transport messages, commands and timeouts, and carries out the core's outputs
//! in the order the core asks for (persist first; then events and messages in the order of
//! [`ElectionCore::EVENTS_BEFORE_SEND`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use election_core::{
    ElectionName, Epoch, Error, LeaderInfo, LeaseGroup, LeaseKeeper, LossReason, NodeId, Result,
};
use election_transport::{Inbox, Transport};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::core::{CoreEvent, ElectionCore};
use crate::node::{Control, Inner};
use crate::persist::StateFile;

/// A request from an elector or the node handle to the driver task.
pub(crate) enum Command {
    /// Campaign in `election`; the leadership is sent on `reply` when granted.
    Campaign {
        election: ElectionName,
        id: u64,
        reply: oneshot::Sender<Result<election_core::Leadership>>,
    },
    /// The campaign `id` was dropped.
    Withdraw { election: ElectionName, id: u64 },
    /// Resign the leadership of `election` at `epoch`.
    Resign {
        election: ElectionName,
        epoch: u64,
        reply: oneshot::Sender<()>,
    },
    /// Hand every leadership over and stop.
    Shutdown { reply: oneshot::Sender<()> },
    /// Stop handling anything (messages, timers, commands) until `resume` fires or is
    /// dropped, as if the process were stopped: the tests' stalled driver.
    Stall { resume: oneshot::Receiver<()> },
}

/// Most messages (or commands) handled between two flushes.
const MAX_BATCH: usize = 256;

type Waiter = (u64, oneshot::Sender<Result<election_core::Leadership>>);

/// How soon a failed save of the state file is tried again.
const SAVE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct Driver<C: ElectionCore> {
    core: C,
    transport: Transport,
    inbox: Inbox,
    state: StateFile<C::HardState>,
    inner: Arc<Inner>,
    commands: mpsc::UnboundedReceiver<Command>,
    max_payload: usize,
    waiters: HashMap<ElectionName, Vec<Waiter>>,
    keepers: HashMap<ElectionName, (u64, LeaseKeeper)>,
    /// The shared deadline of the keepers that [`CoreEvent::AllLeasesExtended`] renews:
    /// one store per round, and one timer for all their holders.
    group: LeaseGroup,
    /// Keepers granted since the last `AllLeasesExtended`: they join `group` at the next
    /// one, which is the first that covers them.
    unjoined: std::collections::HashSet<ElectionName>,
    /// A save failed (a full disk): retry it before anything that depends on it.
    unsaved: bool,
    /// Events of steps whose state is not durable yet, delivered once it is: a grant is
    /// never delivered at an epoch the disk does not hold.
    held_events: std::collections::VecDeque<CoreEvent>,
}

impl<C: ElectionCore> Driver<C> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        core: C,
        transport: Transport,
        inbox: Inbox,
        state: StateFile<C::HardState>,
        inner: Arc<Inner>,
        commands: mpsc::UnboundedReceiver<Command>,
        max_payload: usize,
    ) -> Self {
        Driver {
            core,
            transport,
            inbox,
            state,
            inner,
            commands,
            max_payload,
            waiters: HashMap::new(),
            keepers: HashMap::new(),
            group: LeaseGroup::new(),
            unjoined: std::collections::HashSet::new(),
            unsaved: false,
            held_events: std::collections::VecDeque::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let mut deadline = self.core.poll_timeout().map(Instant::from_std);
            if self.unsaved {
                // Retry the failed save soon, even if the core has nothing to time.
                let retry = Instant::now() + SAVE_RETRY;
                deadline = Some(deadline.map_or(retry, |d| d.min(retry)));
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Stall { resume }) => {
                        let _ = resume.await;
                    }
                    Some(cmd) => {
                        self.on_command(cmd);
                        // Campaigns for thousands of elections arrive together: one flush.
                        for _ in 1..MAX_BATCH {
                            match self.commands.try_recv() {
                                Ok(Command::Shutdown { reply }) => {
                                    self.shutdown().await;
                                    let _ = reply.send(());
                                    return;
                                }
                                Ok(Command::Stall { resume }) => {
                                    self.flush();
                                    let _ = resume.await;
                                    break;
                                }
                                Ok(cmd) => self.on_command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return,
                },
                msg = self.inbox.recv() => match msg {
                    Some((from, payload)) => {
                        self.on_payload(&from, &payload);
                        // Take whatever else has arrived, so that one state-file write and
                        // one batch per peer cover all of it.
                        for _ in 1..MAX_BATCH {
                            match self.inbox.recv().now_or_never() {
                                Some(Some((from, payload))) => self.on_payload(&from, &payload),
                                Some(None) => return,
                                None => break,
                            }
                        }
                    }
                    None => return,
                },
                () = sleep => self.core.handle_timeout(std::time::Instant::now()),
            }
            self.flush();
        }
    }

    fn on_payload(&mut self, from: &NodeId, payload: &[u8]) {
        match C::decode(payload) {
            Ok(messages) => {
                let now = std::time::Instant::now();
                for m in messages {
                    self.core.handle_message(now, from, m);
                }
            }
            Err(e) => {
                self.inner.count_decode_error();
                tracing::warn!(backend = C::KIND, peer = %from, error = %e, "dropped an undecodable payload");
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = std::time::Instant::now();
        match cmd {
            Command::Campaign {
                election,
                id,
                reply,
            } => {
                if let Some(limit) = self.core.refuses_new(&election) {
                    let _ = reply.send(Err(Error::TooManyElections {
                        backend: C::KIND,
                        election,
                        limit,
                    }));
                    return;
                }
                if !self.core.campaign(now, &election) {
                    let _ = reply.send(Err(Error::config(
                        format!("{}.voters_only", C::KIND),
                        format!(
                            "node {} is a voter only and never campaigns (election {election})",
                            self.core.id()
                        ),
                    )));
                    return;
                }
                self.waiters.entry(election).or_default().push((id, reply));
            }
            Command::Withdraw { election, id } => {
                if let Some(ws) = self.waiters.get_mut(&election) {
                    ws.retain(|(w, _)| *w != id);
                    if ws.is_empty() {
                        self.waiters.remove(&election);
                        self.core.withdraw(now, &election);
                    }
                }
            }
            Command::Resign {
                election,
                epoch,
                reply,
            } => {
                if self
                    .keepers
                    .get(&election)
                    .is_some_and(|(t, _)| *t == epoch)
                {
                    if let Some((_, k)) = self.keepers.remove(&election) {
                        k.end(LossReason::Resigned);
                    }
                    self.resign(now, &election);
                }
                let _ = reply.send(());
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; never reaches here. Answer anyway rather than panic.
                let _ = reply.send(());
            }
            Command::Stall { .. } => {
                // Handled in `run`; never reaches here.
            }
        }
    }

    /// Resigns in the core; campaigns of this process that are still waiting (a new
    /// `campaign` may have started before the old leadership's resign arrived) keep the
    /// node campaigning. The core does not let it win the election straight back.
    fn resign(&mut self, now: std::time::Instant, election: &ElectionName) {
        self.core.resign(now, election);
        if self.waiters.contains_key(election) {
            self.core.campaign(now, election);
        }
    }

    /// A leadership whose deadline passed before the core extended it (this task was
    /// late: a stalled or starved process): the holder has seen it end, but its work may
    /// still be in its kill grace, so the core steps down without handing over (the
    /// handover rule) and the followers' promises expire on their own.
    fn expire(&mut self, now: std::time::Instant, election: &ElectionName) {
        tracing::warn!(backend = C::KIND, %election, "the leadership's deadline passed before it could be extended; stepping down without handing over");
        self.expire_quietly(now, election);
    }

    /// [`expire`](Self::expire), logged by the caller (once for many).
    fn expire_quietly(&mut self, now: std::time::Instant, election: &ElectionName) {
        tracing::debug!(backend = C::KIND, %election, "stepping down without handing over: the deadline passed");
        self.core.expire(now, election);
        if self.waiters.contains_key(election) {
            self.core.campaign(now, election);
        }
    }

    /// Graceful stop: every leadership ends (is_held turns false first) and is handed
    /// over, the handovers are sent, then the transport drains its queues.
    async fn shutdown(&mut self) {
        let now = std::time::Instant::now();
        for (e, (_, k)) in std::mem::take(&mut self.keepers) {
            k.end(LossReason::Shutdown);
            self.core.resign(now, &e);
        }
        for e in self.waiters.keys().cloned().collect::<Vec<_>>() {
            self.core.withdraw(now, &e);
        }
        self.waiters.clear();
        self.flush();
        self.transport.clone().shutdown().await;
    }

    /// Drains the core's outputs: persist, then events and messages in the core's order.
    /// With events first, a loss ends the local `Leadership`, and observers see a new
    /// leader, before any peer can act on this step's messages; anything to persist from
    /// handling the events goes to disk before the messages too.
    fn flush(&mut self) {
        let mut persisted = self.persist();
        if C::EVENTS_BEFORE_SEND {
            self.events(persisted);
            persisted &= self.persist();
        }
        while let Some((to, messages)) = self.core.poll_transmit() {
            if !persisted {
                continue;
            }
            for payload in C::encode(&messages, self.max_payload) {
                self.transport.send(&to, payload);
            }
        }
        if !C::EVENTS_BEFORE_SEND {
            self.events(persisted);
        }
        self.inner
            .note_core_stats(self.core.tracked(), self.core.ignored());
    }

    /// Delivers the core's events, once every state change so far is durable; until
    /// then they wait, in order.
    fn events(&mut self, persisted: bool) {
        while let Some(ev) = self.core.poll_event() {
            self.held_events.push_back(ev);
        }
        if !persisted {
            return;
        }
        while let Some(ev) = self.held_events.pop_front() {
            self.on_event(ev);
        }
    }

    /// Makes the core's state changes durable; `false` if that failed (the messages that
    /// depend on them must then be dropped).
    fn persist(&mut self) -> bool {
        let mut changes = Vec::new();
        while let Some(batch) = self.core.poll_persist() {
            changes.extend(batch);
        }
        let mut forget: Vec<ElectionName> = Vec::new();
        let mut floor = 0;
        while let Some(f) = self.core.poll_forget() {
            floor = floor.max(f.floor);
            forget.extend(f.elections);
        }
        for e in &forget {
            // The core knew no leader there: an unobserved entry goes with it.
            self.inner.release_leader(e, 0);
        }
        if changes.is_empty() && forget.is_empty() && floor <= self.state.floor() && !self.unsaved {
            return true;
        }
        let state = &mut self.state;
        // Forgotten first, then the changes: a name forgotten and created again since the
        // last flush keeps its new state.
        let save = move || state.save_and_forget(changes, &forget, floor);
        // fsync blocks: on a multi-threaded runtime, let other tasks move meanwhile.
        let result = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(save),
            _ => save(),
        };
        match result {
            Ok(()) => {
                if self.unsaved {
                    tracing::info!(backend = C::KIND, "the election state is durable again");
                }
                self.unsaved = false;
                true
            }
            Err(e) => {
                if !self.unsaved {
                    tracing::error!(backend = C::KIND, error = %e, "cannot persist the election state; dropping the messages that depend on it, holding back grants, retrying");
                }
                self.unsaved = true;
                false
            }
        }
    }

    fn on_event(&mut self, ev: CoreEvent) {
        match ev {
            CoreEvent::LeaderChanged { election, leader } => {
                let info = leader.map(|(node, epoch)| LeaderInfo {
                    node,
                    epoch: Epoch(epoch),
                    since: SystemTime::now(),
                });
                self.inner.set_leader(&election, info);
            }
            CoreEvent::Elected {
                election,
                epoch,
                lease_until,
            } => self.grant(election, epoch, Instant::from_std(lease_until)),
            CoreEvent::LeaseExtended {
                election,
                epoch,
                until,
            } => {
                let lapsed = self
                    .keepers
                    .get(&election)
                    .is_some_and(|(t, k)| *t == epoch && !k.extend_to(Instant::from_std(until)));
                if lapsed {
                    // The holder already saw it end (deadline passed): step down quietly.
                    self.keepers.remove(&election);
                    self.expire(std::time::Instant::now(), &election);
                }
            }
            CoreEvent::AllLeasesExtended { until, except } => {
                self.extend_all(Instant::from_std(until), &except);
            }
            CoreEvent::Lost {
                election,
                epoch,
                reason,
            } => {
                if self
                    .keepers
                    .get(&election)
                    .is_some_and(|(t, _)| *t == epoch)
                    && let Some((_, k)) = self.keepers.remove(&election)
                {
                    k.end(reason);
                }
            }
        }
    }

    /// Every leadership but those in `except` is renewed until `until`: one store in the
    /// group. Those in `except` leave it first (keeping the deadline it gave them), are
    /// extended one by one meanwhile, and join again at a later round that covers them.
    fn extend_all(&mut self, until: Instant, except: &[ElectionName]) {
        let now = std::time::Instant::now();
        let except: std::collections::HashSet<&ElectionName> = except.iter().collect();
        for e in &except {
            if let Some((_, k)) = self.keepers.get(*e)
                && self.group.leave(k)
            {
                self.unjoined.insert((*e).clone());
            }
        }
        let mut lapsed = Vec::new();
        if !self.group.extend_to(until) {
            // The group's deadline had passed (this task was late): the holders of its
            // leaderships have seen them end; step those down quietly. Any still held
            // (by a later deadline of their own) join the group's new era.
            for (e, (_, k)) in &self.keepers {
                if except.contains(e) {
                    continue;
                }
                if k.is_held() && k.extend_to(until) {
                    self.group.join(k);
                } else {
                    lapsed.push(e.clone());
                }
            }
            for e in &lapsed {
                self.keepers.remove(e);
            }
        }
        // Keepers granted (or excepted) since an earlier round join the group now, with
        // the deadline this round gave them: the group's later extensions cover them.
        for e in std::mem::take(&mut self.unjoined) {
            let Some((_, k)) = self.keepers.get(&e) else {
                continue;
            };
            if except.contains(&e) {
                self.unjoined.insert(e);
            } else if k.extend_to(until) {
                // Refused only if the keeper's own deadline is later (a per-election
                // extension): it then keeps that one, and the next round tries again.
                if !self.group.join(k) {
                    self.unjoined.insert(e);
                }
            } else {
                self.keepers.remove(&e);
                lapsed.push(e);
            }
        }
        if !lapsed.is_empty() {
            tracing::warn!(
                backend = C::KIND,
                count = lapsed.len(),
                "leaderships' deadlines passed before they could be extended (this node was late); stepping them down without handing over"
            );
            for e in lapsed {
                self.expire_quietly(now, &e);
            }
        }
    }

    /// Hands a granted leadership to the oldest live campaign, or resigns it if none is
    /// left (the campaign was dropped meanwhile).
    fn grant(&mut self, election: ElectionName, epoch: u64, lease_until: Instant) {
        let info = LeaderInfo {
            node: self.core.id().clone(),
            epoch: Epoch(epoch),
            since: SystemTime::now(),
        };
        let control = Arc::new(Control {
            inner: self.inner.clone(),
            election: election.clone(),
            epoch,
        });
        let (keeper, leadership) = LeaseKeeper::grant(info, lease_until, control);
        let waiters = self.waiters.remove(&election).unwrap_or_default();
        let mut rest = waiters.into_iter();
        let mut pending = Some(leadership);
        for (_, reply) in rest.by_ref() {
            let Some(leadership) = pending.take() else {
                break;
            };
            match reply.send(Ok(leadership)) {
                Ok(()) => break,
                Err(back) => pending = back.ok(),
            }
        }
        let delivered = pending.is_none();
        let rest: Vec<Waiter> = rest.collect();
        if !rest.is_empty() {
            // Other local campaigns for the same election keep waiting for the next epoch.
            self.waiters.insert(election.clone(), rest);
            self.core.campaign(std::time::Instant::now(), &election);
        }
        if delivered {
            self.unjoined.insert(election.clone());
            self.keepers.insert(election, (epoch, keeper));
        } else {
            keeper.end(LossReason::Resigned);
            self.resign(std::time::Instant::now(), &election);
            tracing::debug!(backend = C::KIND, %election, epoch, "elected after the campaign was dropped; resigned");
        }
    }
}
