//! [`Node`]: one member's Bully state for every election, driven by inputs and polled for
//! outputs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use election_core::{ElectionName, Error, LossReason, NodeId, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::election::{Election, Members, Role, bit};
use election_peer::CoreEvent;

use election_peer::Forget;

use super::{CoreStats, EpochNo, HardState, Message, NodeConfig, Transmit};

/// At most this many heartbeat rounds are remembered while waiting for acknowledgements.
const MAX_ROUNDS_KEPT: usize = 1024;

/// One member's Bully state for any number of elections (partitioned leadership).
///
/// Sans-IO: no clock, no sockets, no tasks, no RNG calls beyond a ChaCha RNG seeded from
/// [`NodeConfig::seed`]. Given the same config, persisted state and inputs it produces the
/// same outputs.
///
/// # Call order
///
/// After every input ([`handle_message`](Self::handle_message),
/// [`handle_timeout`](Self::handle_timeout), [`campaign`](Self::campaign),
/// [`withdraw`](Self::withdraw), [`resign`](Self::resign)) the driver must, in this order:
///
/// 1. drain [`poll_persist`](Self::poll_persist) and make every returned epoch durable
///    (write, fsync, rename) **before** sending anything: a VICTORY announces an epoch, and
///    an acknowledgement promises loyalty at an epoch, that must survive a crash;
/// 2. drain [`poll_event`](Self::poll_event) (leader changes, grants, lease extensions,
///    losses) and act on them — before sending, so that a lost leadership ends locally, and
///    observers see a new leader, before any peer can act on this step's messages;
/// 3. drain [`poll_transmit`](Self::poll_transmit) and send each batch to its peer (one
///    batch per peer per step: many elections share one packet);
/// 4. call [`poll_timeout`](Self::poll_timeout) and arrange for
///    [`handle_timeout`](Self::handle_timeout) to be called at that instant (or earlier;
///    spurious calls are harmless).
///
/// Inputs given while handling events (a resign, a new campaign) add to the same outputs;
/// drain `poll_persist` again before step 3.
///
/// Batching several inputs before one round of polling is allowed, as long as step 1
/// completes before step 2.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    rng: ChaCha8Rng,
    members: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    me: usize,
    quorum: usize,
    can_campaign: bool,
    booted: Instant,
    budget: Duration,
    margin: Duration,
    /// Election slots; forgotten ones are reused (`free`), so this never outgrows the
    /// most elections held at once.
    elections: Vec<Election>,
    by_name: HashMap<ElectionName, usize>,
    free: Vec<usize>,
    /// The highest epoch at which this node may have accepted a leader in an election it
    /// forgot (persisted): an election it does not hold starts at `floor + 1` (0 while the
    /// floor is 0), so it never accepts two leaders at one epoch.
    floor: EpochNo,
    /// Forgotten since the last `poll_forget`.
    forgotten: Vec<ElectionName>,
    /// When idle elections are looked for next.
    next_sweep: Option<Instant>,
    /// When each member last sent us anything.
    heard: Vec<Option<Instant>>,
    // --- Leader side, shared by every election this node leads. ---
    led: BTreeSet<usize>,
    round: u64,
    rounds: VecDeque<(u64, Instant)>,
    next_heartbeat: Option<Instant>,
    // --- Outputs. ---
    outbox: BTreeMap<usize, Vec<Message>>,
    events: VecDeque<CoreEvent>,
    dirty: BTreeSet<usize>,
    stats: CoreStats,
}

impl Node {
    /// A node starting at `now` from its persisted `state` (empty on first start).
    ///
    /// For one failure timeout after `now` the node acknowledges no new leader and does
    /// not campaign: it may have promised loyalty to a live leader just before it
    /// restarted, and that promise (the leader's lease) must outlive the restart.
    pub fn new(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
    ) -> Result<Node> {
        Node::restore(cfg, now, state, 0)
    }

    /// As [`new`](Self::new), with the persisted `floor`: the highest epoch of every
    /// election this node forgot ([`poll_forget`](Self::poll_forget)).
    pub fn restore(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
        floor: EpochNo,
    ) -> Result<Node> {
        if cfg.max_elections == 0 {
            return Err(Error::config(
                "bully.max_elections",
                "must be greater than zero",
            ));
        }
        if !cfg.members.contains(&cfg.me) {
            return Err(Error::config(
                "bully.peers",
                format!("this node ({}) must be listed among the members", cfg.me),
            ));
        }
        if cfg.members.len() > 64 {
            return Err(Error::config(
                "bully.peers",
                format!("{} members; at most 64 are supported", cfg.members.len()),
            ));
        }
        // The Bully order: member indices ascend by (priority, id).
        let mut members: Vec<NodeId> = cfg.members.iter().cloned().collect();
        members.sort_by_key(|m| (cfg.priorities.get(m).copied().unwrap_or(0), m.clone()));
        let index: HashMap<NodeId, usize> = members
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let me = index[&cfg.me];
        let mut node = Node {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            quorum: members.len() / 2 + 1,
            can_campaign: !cfg.voters_only.contains(&cfg.me),
            booted: now,
            budget: cfg.lease_budget(),
            margin: cfg.clock_drift + cfg.kill_grace,
            members,
            index,
            me,
            elections: Vec::new(),
            by_name: HashMap::new(),
            free: Vec::new(),
            floor,
            forgotten: Vec::new(),
            next_sweep: None,
            heard: vec![None; cfg.members.len()],
            led: BTreeSet::new(),
            round: 0,
            rounds: VecDeque::new(),
            next_heartbeat: None,
            outbox: BTreeMap::new(),
            events: VecDeque::new(),
            dirty: BTreeSet::new(),
            stats: CoreStats::default(),
            cfg,
        };
        // Held elections are all loaded, even beyond `max_elections` (a lowered setting):
        // the idle ones are forgotten at the first sweeps.
        for (name, hard) in state {
            let i = node.create(&name, now);
            let e = &mut node.elections[i];
            e.epoch = hard.epoch;
            e.accepted = hard.leader;
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.cfg.me
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// Counters of refused input.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// The highest epoch this node has seen in `election`.
    pub fn epoch(&self, election: &ElectionName) -> EpochNo {
        self.by_name
            .get(election)
            .map_or(0, |&i| self.elections[i].epoch)
    }

    /// The leader of `election` as this node knows it.
    pub fn leader(&self, election: &ElectionName) -> Option<(NodeId, EpochNo)> {
        let i = *self.by_name.get(election)?;
        self.elections[i]
            .leader
            .map(|(l, e)| (self.members[l].clone(), e))
    }

    /// The lease deadline of this node's granted leadership of `election`, if it leads.
    pub fn lease_until(&self, election: &ElectionName) -> Option<Instant> {
        let i = *self.by_name.get(election)?;
        match self.elections[i].role {
            Role::Leader {
                granted: true,
                lease,
                ..
            } => Some(lease),
            _ => None,
        }
    }

    /// Whether this node campaigns in `election`.
    pub fn is_campaigning(&self, election: &ElectionName) -> bool {
        self.by_name
            .get(election)
            .is_some_and(|&i| self.elections[i].campaigning)
    }

    // ------------------------------------------------------------------ inputs

    /// Starts campaigning in `election`. With no live leader known, an election is held
    /// soon (after a short random delay); otherwise this node waits for the leader to fail
    /// or to resign: a higher node never preempts a live leader. Returns `false` if this
    /// node is a voter that never campaigns, or if `election` is new and this node already
    /// holds `max_elections` ([`refuses_new`](Self::refuses_new) tells which).
    pub fn campaign(&mut self, now: Instant, election: &ElectionName) -> bool {
        if !self.can_campaign {
            return false;
        }
        let Some(i) = self.election(election, now) else {
            return false;
        };
        if self.elections[i].campaigning {
            return true;
        }
        let jitter = self.random_below(self.cfg.answer_timeout / 2);
        let e = &mut self.elections[i];
        e.campaigning = true;
        if matches!(e.role, Role::Follower) && e.leader.is_none() {
            e.next_election = now + jitter;
        }
        true
    }

    /// Stops campaigning in `election`. A leadership not yet granted is given up (and
    /// abdicated); a granted one is unaffected (use [`resign`](Self::resign)).
    pub fn withdraw(&mut self, now: Instant, election: &ElectionName) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &mut self.elections[i];
        if !e.campaigning {
            return;
        }
        e.campaigning = false;
        match e.role {
            Role::Electing { .. } => e.role = Role::Follower,
            Role::Leader {
                granted: false,
                epoch,
                ..
            } => {
                self.step_down(i, now, LossReason::Resigned);
                self.broadcast(&Message::Abdicate {
                    election: election.clone(),
                    epoch,
                });
            }
            Role::Leader { granted: true, .. } | Role::Follower => {}
        }
    }

    /// Resigns the leadership of `election`: steps down at once (reporting
    /// [`CoreEvent::Lost`] with `Resigned`), stops campaigning there and sends ABDICATE to
    /// every peer, whose campaigning members then hold an election at once (the highest
    /// wins). This node neither campaigns nor answers ALIVE there for one failure timeout,
    /// so it does not win the election straight back. Returns whether this node led.
    pub fn resign(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        let Role::Leader { epoch, .. } = self.elections[i].role else {
            return false;
        };
        self.elections[i].campaigning = false;
        self.step_down(i, now, LossReason::Resigned);
        self.elections[i].quiet_until = Some(now + self.cfg.failure_timeout);
        tracing::debug!(node = %self.cfg.me, %election, epoch, "resigned; abdicating");
        self.broadcast(&Message::Abdicate {
            election: election.clone(),
            epoch,
        });
        true
    }

    /// The holder's deadline for `election` passed before this node's lease did (the driver
    /// could not extend it in time): steps down *without* ABDICATE, as after a lost quorum.
    /// Followers stay loyal until they have not heard of the leadership for a failure
    /// timeout, and this node follows no one until its lease plus the margin has passed, so
    /// the old holder's child keeps its kill grace (the handover rule). Returns whether
    /// this node led.
    pub fn expire(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        if !matches!(self.elections[i].role, Role::Leader { .. }) {
            return false;
        }
        self.elections[i].campaigning = false;
        self.step_down(i, now, LossReason::Expired);
        true
    }

    /// Handles one message from `from`. Returns `false` (and counts it) when `from` is not
    /// a member; such messages change nothing.
    pub fn handle_message(&mut self, now: Instant, from: &NodeId, msg: Message) -> bool {
        let Some(&p) = self.index.get(from) else {
            self.stats.unknown_sender += 1;
            return false;
        };
        if p == self.me {
            self.stats.unknown_sender += 1;
            return false;
        }
        self.heard[p] = Some(now);
        match msg {
            Message::Election { election, epoch } => self.on_election(now, p, election, epoch),
            Message::Alive { election } => self.on_alive(now, p, &election),
            Message::ElectionAck {
                election,
                epoch,
                granted,
            } => self.on_election_ack(now, p, &election, epoch, granted),
            Message::Victory { election, epoch } => {
                let Some(i) = self.election(&election, now) else {
                    self.stats.ignored_elections += 1;
                    return true;
                };
                if self.accept(i, p, epoch, now).is_err() {
                    self.stats.refused_victories += 1;
                }
            }
            Message::Heartbeat {
                round,
                incarnation,
                leads,
            } => self.on_heartbeat(now, p, round, incarnation, leads),
            Message::Ack {
                round,
                incarnation,
                rejects,
            } => self.on_ack(now, p, round, incarnation, rejects),
            Message::Abdicate { election, epoch } => self.on_abdicate(now, p, &election, epoch),
        }
        true
    }

    /// Fires every timer due at `now`: heartbeat rounds, failure detection, election
    /// rounds, lease expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.send_round(now);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
        }
        for i in 0..self.elections.len() {
            if self.deadline(i).is_none_or(|d| d > now) {
                continue;
            }
            match self.elections[i].role {
                Role::Leader {
                    granted: false,
                    patient: ref mut patient @ true,
                    ..
                } => {
                    *patient = false;
                    self.update_lease(i, now);
                }
                Role::Leader { .. } => self.step_down(i, now, LossReason::QuorumLost),
                Role::Electing { .. } => self.check_election(i, now),
                Role::Follower => {
                    let e = &mut self.elections[i];
                    if let (Some((l, _)), Some(h)) = (e.leader, e.last_heard)
                        && l != self.me
                        && h + self.cfg.failure_timeout <= now
                    {
                        e.last_heard = None;
                        tracing::debug!(node = %self.cfg.me, election = %e.name, leader = %self.members[l], "leader presumed failed");
                        self.set_leader(i, None);
                        self.release_refused(i, now);
                    }
                    if self.elections[i].campaigning
                        && self.can_campaign
                        && self.deadline(i).is_some_and(|d| d <= now)
                    {
                        self.start_election(i, now);
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------------- outputs

    /// Epochs to make durable before sending the next transmits; `None` when nothing
    /// changed.
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<Vec<(ElectionName, HardState)>> {
        if self.dirty.is_empty() {
            return None;
        }
        let dirty = std::mem::take(&mut self.dirty);
        Some(
            dirty
                .into_iter()
                .map(|i| {
                    let e = &self.elections[i];
                    (
                        e.name.clone(),
                        HardState {
                            epoch: e.epoch,
                            leader: e.accepted.clone(),
                        },
                    )
                })
                .collect(),
        )
    }

    /// Elections forgotten since the last call, with the floor to persist: remove them from
    /// the state file and record the floor, atomically, before sending the next transmits.
    #[must_use]
    pub fn poll_forget(&mut self) -> Option<Forget> {
        if self.forgotten.is_empty() {
            return None;
        }
        Some(Forget {
            floor: self.floor,
            elections: std::mem::take(&mut self.forgotten),
        })
    }

    /// How many elections this node holds state for.
    pub fn tracked(&self) -> usize {
        self.by_name.len()
    }

    /// `Some(max_elections)` when `election` is not held and this node already holds
    /// `max_elections` elections: a campaign there is refused.
    pub fn refuses_new(&self, election: &ElectionName) -> Option<usize> {
        (!self.by_name.contains_key(election) && self.by_name.len() >= self.cfg.max_elections)
            .then_some(self.cfg.max_elections)
    }

    /// The highest epoch of every election this node forgot.
    pub fn floor(&self) -> EpochNo {
        self.floor
    }

    /// The elections this node holds state for.
    pub fn elections(&self) -> impl Iterator<Item = &ElectionName> {
        self.live().map(|i| &self.elections[i].name)
    }

    /// The slots of held elections, in slot order.
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.elections
            .iter()
            .enumerate()
            .filter(|(i, e)| self.by_name.get(&e.name) == Some(i))
            .map(|(i, _)| i)
    }

    /// The next batch of messages for one peer.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (p, messages) = self.outbox.pop_first()?;
        Some(Transmit {
            to: self.members[p].clone(),
            messages,
        })
    }

    /// The next event. Epochs are Bully epochs. [`CoreEvent::Elected`] comes once per
    /// leadership and clears this node's candidacy there; extensions come per election
    /// ([`CoreEvent::LeaseExtended`], never `AllLeasesExtended`); [`CoreEvent::Lost`]
    /// says `QuorumLost` (lease lapsed), `Revoked` (higher epoch seen) or `Resigned`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = match (self.next_heartbeat, self.next_sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for i in 0..self.elections.len() {
            if let Some(d) = self.deadline(i) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        next
    }

    // ------------------------------------------------------------ messages

    /// ELECTION from `p`: a higher campaigning node answers ALIVE and holds its own
    /// election (unless it is loyal to a live leader); a leader answers with its VICTORY;
    /// everyone else acknowledges, saying whether it would follow a new leader now.
    fn on_election(&mut self, now: Instant, p: usize, election: ElectionName, _epoch: EpochNo) {
        let Some(i) = self.election(&election, now) else {
            // Full: no answer (the candidate retries; with the quorum rule it needs others).
            self.stats.ignored_elections += 1;
            return;
        };
        if let Role::Leader { epoch, .. } = self.elections[i].role {
            self.send(p, Message::Victory { election, epoch });
            return;
        }
        let e = &self.elections[i];
        let quiet = e.quiet_until.is_some_and(|q| now < q);
        if self.me > p && e.campaigning && self.can_campaign && !quiet {
            self.send(
                p,
                Message::Alive {
                    election: election.clone(),
                },
            );
            if matches!(self.elections[i].role, Role::Follower) && !self.loyal(i, None, now) {
                self.start_election(i, now);
            }
            return;
        }
        let granted = !self.loyal(i, Some(p), now);
        if !granted {
            self.elections[i].refused |= bit(p);
        }
        let epoch = self.elections[i].epoch;
        self.send(
            p,
            Message::ElectionAck {
                election,
                epoch,
                granted,
            },
        );
    }

    /// ALIVE from a higher node: stop electing and wait for its VICTORY (for one failure
    /// timeout, then hold an election again).
    fn on_alive(&mut self, now: Instant, p: usize, election: &ElectionName) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        if p < self.me {
            return;
        }
        let e = &mut self.elections[i];
        if matches!(e.role, Role::Electing { .. }) {
            e.role = Role::Follower;
            e.next_election = now + self.cfg.failure_timeout;
            tracing::debug!(node = %self.cfg.me, election = %e.name, higher = %self.members[p], "ALIVE from a higher node; waiting for its VICTORY");
        }
    }

    fn on_election_ack(
        &mut self,
        now: Instant,
        p: usize,
        election: &ElectionName,
        epoch: EpochNo,
        granted: bool,
    ) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        if let Role::Electing {
            answered,
            granted: g,
            ..
        } = &mut self.elections[i].role
        {
            *answered |= bit(p);
            if granted {
                *g |= bit(p);
            }
            self.see_epoch(i, epoch);
            self.check_election(i, now);
        }
    }

    fn on_heartbeat(
        &mut self,
        now: Instant,
        p: usize,
        round: u64,
        incarnation: u64,
        leads: Vec<(ElectionName, EpochNo)>,
    ) {
        let mut rejects = Vec::new();
        for (name, epoch) in leads {
            let Some(i) = self.election(&name, now) else {
                // Full: refuse without a promise. Epoch 0 is below every leader's, so the
                // leader only stops counting this node there; it does not step down.
                self.stats.ignored_elections += 1;
                rejects.push((name, 0));
                continue;
            };
            if let Err(mine) = self.accept(i, p, epoch, now) {
                self.stats.refused_victories += 1;
                rejects.push((name, mine));
            }
        }
        self.send(
            p,
            Message::Ack {
                round,
                incarnation,
                rejects,
            },
        );
    }

    fn on_ack(
        &mut self,
        now: Instant,
        p: usize,
        round: u64,
        incarnation: u64,
        rejects: Vec<(ElectionName, EpochNo)>,
    ) {
        if incarnation != self.cfg.incarnation || round > self.round {
            return;
        }
        let mut refused: Vec<usize> = Vec::new();
        for (name, epoch) in rejects {
            let Some(&i) = self.by_name.get(&name) else {
                continue;
            };
            refused.push(i);
            if let Role::Leader { epoch: mine, .. } = self.elections[i].role
                && epoch > mine
            {
                // A newer leadership was accepted there: ours is over.
                self.see_epoch(i, epoch);
                self.step_down(i, now, LossReason::Revoked);
            }
        }
        let led: Vec<usize> = self.led.iter().copied().collect();
        for i in led {
            if refused.contains(&i) {
                continue;
            }
            if let Role::Leader {
                first_round, acked, ..
            } = &mut self.elections[i].role
                && round >= *first_round
            {
                acked[p] = acked[p].max(round);
                self.update_lease(i, now);
            }
        }
    }

    /// ABDICATE: the leader we follow resigned; forget it at once and, if campaigning,
    /// hold an election now.
    fn on_abdicate(&mut self, now: Instant, p: usize, election: &ElectionName, epoch: EpochNo) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &mut self.elections[i];
        if e.leader == Some((p, epoch)) {
            e.last_heard = None;
            e.next_election = now;
            self.set_leader(i, None);
            self.release_refused(i, now);
        }
    }

    /// Loyalty to a leader ended: candidates refused because of it get a granting
    /// acknowledgement now, so an election held a moment before this node noticed the
    /// failure does not have to wait for its next round.
    fn release_refused(&mut self, i: usize, now: Instant) {
        let refused = std::mem::take(&mut self.elections[i].refused);
        for p in (0..self.members.len()).filter(|&p| refused & bit(p) != 0) {
            if !self.loyal(i, Some(p), now) {
                let e = &self.elections[i];
                let msg = Message::ElectionAck {
                    election: e.name.clone(),
                    epoch: e.epoch,
                    granted: true,
                };
                self.send(p, msg);
            }
        }
    }

    // ------------------------------------------------------------- the rules

    /// VICTORY (or a heartbeat entry) from `p` at `epoch` in election `i`: accept it, or
    /// refuse with this node's highest epoch seen.
    ///
    /// Refused: an epoch below the highest seen (or equal to it when another leader was
    /// accepted at it); any leader other than the one this node is loyal to (heard within the
    /// failure timeout, or this node's own recent leadership); any new leader during the
    /// failure timeout after a restart. Accepting makes the epoch durable and renews
    /// loyalty to `p`.
    fn accept(&mut self, i: usize, p: usize, epoch: EpochNo, now: Instant) -> Result<(), EpochNo> {
        if let Role::Leader { epoch: mine, .. } = self.elections[i].role {
            if epoch <= mine {
                return Err(self.elections[i].epoch);
            }
            self.see_epoch(i, epoch);
            self.step_down(i, now, LossReason::Revoked);
        }
        let pid = &self.members[p];
        let e = &self.elections[i];
        let known = e.epoch == epoch && e.accepted.as_ref() == Some(pid);
        if !known {
            let quiet = now < self.booted + self.cfg.failure_timeout;
            // At most one leader accepted per epoch: an epoch equal to the highest seen is
            // accepted only if no leader was accepted at it yet.
            let stale = epoch < e.epoch || (epoch == e.epoch && e.accepted.is_some());
            if quiet || stale || self.loyal(i, Some(p), now) {
                // Learn who leads (for observers, and to stay loyal), promise nothing.
                let other_live = matches!((e.leader, e.last_heard), (Some((l, _)), Some(h))
                    if l != p && now < h + self.cfg.failure_timeout);
                if epoch >= e.epoch && !other_live && !e.is_leader() {
                    let e = &mut self.elections[i];
                    e.last_heard = Some(now);
                    if matches!(e.role, Role::Electing { .. }) {
                        e.role = Role::Follower;
                    }
                    self.set_leader(i, Some((p, epoch)));
                }
                return Err(self.elections[i].epoch);
            }
            let e = &mut self.elections[i];
            e.epoch = epoch;
            e.accepted = Some(pid.clone());
            self.dirty.insert(i);
            tracing::debug!(node = %self.cfg.me, election = %e.name, leader = %pid, epoch, "accepted VICTORY");
        }
        let e = &mut self.elections[i];
        e.last_heard = Some(now);
        e.refused = 0;
        if matches!(e.role, Role::Electing { .. }) {
            e.role = Role::Follower;
        }
        self.set_leader(i, Some((p, epoch)));
        Ok(())
    }

    /// Whether this node must not help any node other than `p` (any node at all, itself
    /// included, when `p` is `None`) lead election `i` now: it restarted less than a
    /// failure timeout ago, or it led until recently, or it heard from another live leader
    /// within the failure timeout.
    fn loyal(&self, i: usize, p: Option<usize>, now: Instant) -> bool {
        let e = &self.elections[i];
        now < self.booted + self.cfg.failure_timeout
            || e.hold_until.is_some_and(|h| now < h)
            || matches!(e.role, Role::Leader { .. })
            || matches!((e.leader, e.last_heard), (Some((l, _)), Some(h))
                if Some(l) != p && l != self.me && now < h + self.cfg.failure_timeout)
    }

    /// Completes an election round when every higher node answered without ALIVE (or
    /// the answer timeout passed) and enough members granted: a majority with the quorum
    /// rule, this node alone without it.
    fn check_election(&mut self, i: usize, now: Instant) {
        let Role::Electing {
            answered,
            granted,
            deadline,
        } = self.elections[i].role
        else {
            return;
        };
        let higher: Members = (self.me + 1..self.members.len()).fold(0, |m, q| m | bit(q));
        let all_higher = answered & higher == higher;
        let need = if self.cfg.quorum { self.quorum } else { 1 };
        let enough = granted.count_ones() as usize >= need;
        if enough && (all_higher || now >= deadline) {
            self.become_leader(i, now);
        } else if now >= deadline {
            let backoff =
                self.cfg.failure_timeout / 2 + self.random_below(self.cfg.failure_timeout / 2);
            let e = &mut self.elections[i];
            e.role = Role::Follower;
            e.next_election = now + backoff;
            tracing::debug!(node = %self.cfg.me, election = %e.name, granted = granted.count_ones(), "election round failed; retrying later");
        }
    }

    // ------------------------------------------------------------ transitions

    /// Holds an election: ELECTION to every peer.
    fn start_election(&mut self, i: usize, now: Instant) {
        if self.loyal(i, None, now) {
            // Never lead while loyal to a live leader: that would break our promise to it.
            let e = &mut self.elections[i];
            e.next_election = e.next_election.max(now + self.cfg.answer_timeout);
            return;
        }
        let e = &mut self.elections[i];
        e.role = Role::Electing {
            answered: bit(self.me),
            granted: bit(self.me),
            deadline: now + self.cfg.answer_timeout,
        };
        tracing::debug!(node = %self.cfg.me, election = %e.name, epoch = e.epoch, "holding an election");
        let msg = Message::Election {
            election: e.name.clone(),
            epoch: e.epoch,
        };
        self.broadcast(&msg);
        self.check_election(i, now);
    }

    /// Declares victory: a new epoch above every epoch seen, made durable before the
    /// VICTORY and the first heartbeat round go out. Granted once enough members accept.
    fn become_leader(&mut self, i: usize, now: Instant) {
        let Some(epoch) = self.next_epoch(self.elections[i].epoch) else {
            // Only a peer announcing an absurd epoch can get us here: refuse to lead rather
            // than wrap around.
            let e = &mut self.elections[i];
            tracing::error!(node = %self.cfg.me, election = %e.name, epoch = e.epoch, "no epoch left above the highest seen; not leading");
            e.role = Role::Follower;
            e.next_election = now + self.cfg.failure_timeout;
            return;
        };
        let n = self.members.len();
        let me = self.cfg.me.clone();
        let e = &mut self.elections[i];
        e.epoch = epoch;
        e.accepted = Some(me);
        e.hold_until = None;
        e.role = Role::Leader {
            epoch,
            first_round: self.round + 1,
            since: now,
            granted: false,
            patient: true,
            lease: now,
            acked: vec![0; n],
        };
        self.dirty.insert(i);
        self.led.insert(i);
        tracing::info!(node = %self.cfg.me, election = %e.name, epoch, "became leader");
        let msg = Message::Victory {
            election: e.name.clone(),
            epoch,
        };
        self.set_leader(i, Some((self.me, epoch)));
        self.broadcast(&msg);
        self.send_round(now);
    }

    /// Ends this node's leadership of election `i` (reporting [`CoreEvent::Lost`] if it was
    /// granted). Unless it resigned, it follows no other leader until its lease plus the
    /// safety margin has passed.
    fn step_down(&mut self, i: usize, now: Instant, reason: LossReason) {
        let e = &mut self.elections[i];
        let Role::Leader {
            epoch,
            granted,
            lease,
            ..
        } = e.role
        else {
            return;
        };
        e.role = Role::Follower;
        e.next_election = now + self.cfg.failure_timeout;
        if granted && reason != LossReason::Resigned {
            e.hold_until = Some(lease.max(now) + self.margin);
        }
        self.led.remove(&i);
        if self.led.is_empty() {
            self.next_heartbeat = None;
        }
        tracing::info!(node = %self.cfg.me, election = %e.name, epoch, ?reason, "stepped down");
        if granted {
            self.events.push_back(CoreEvent::Lost {
                election: e.name.clone(),
                epoch,
                reason,
            });
        }
        if self.elections[i].leader.is_some_and(|(l, _)| l == self.me) {
            self.set_leader(i, None);
        }
    }

    /// Sends one heartbeat round (every led election, with its epoch) to every peer.
    fn send_round(&mut self, now: Instant) {
        self.round += 1;
        let round = self.round;
        self.rounds.push_back((round, now));
        while self.rounds.len() > MAX_ROUNDS_KEPT
            || self
                .rounds
                .front()
                .is_some_and(|&(r, sent)| r < round && sent + self.budget <= now)
        {
            self.rounds.pop_front();
        }
        let leads: Vec<(ElectionName, EpochNo)> = self
            .led
            .iter()
            .filter_map(|&i| match self.elections[i].role {
                Role::Leader { epoch, .. } => Some((self.elections[i].name.clone(), epoch)),
                _ => None,
            })
            .collect();
        for p in 0..self.members.len() {
            if p != self.me {
                self.send(
                    p,
                    Message::Heartbeat {
                        round,
                        incarnation: self.cfg.incarnation,
                        leads: leads.clone(),
                    },
                );
            }
        }
        self.next_heartbeat = (!self.led.is_empty()).then(|| now + self.cfg.heartbeat);
        let led: Vec<usize> = self.led.iter().copied().collect();
        for i in led {
            self.update_lease(i, now);
        }
    }

    /// Grants or extends the lease of led election `i`: from the send time of the latest
    /// round a majority acknowledged (with the quorum rule) or of the latest round sent
    /// (without it), plus the lease budget.
    fn update_lease(&mut self, i: usize, now: Instant) {
        let quorum = self.quorum;
        let name = self.elections[i].name.clone();
        let ft = self.cfg.failure_timeout;
        let heard = &self.heard;
        let Role::Leader {
            epoch,
            first_round,
            granted,
            patient,
            lease,
            acked,
            ..
        } = &mut self.elections[i].role
        else {
            return;
        };
        if !*granted && *patient && self.cfg.quorum {
            let waiting = (0..acked.len()).any(|p| {
                p != self.me && acked[p] < *first_round && heard[p].is_some_and(|h| now < h + ft)
            });
            if waiting {
                return;
            }
        }
        let q = if self.cfg.quorum {
            let mut acks: Vec<u64> = acked
                .iter()
                .enumerate()
                .map(|(p, &a)| if p == self.me { self.round } else { a })
                .collect();
            acks.sort_unstable_by(|a, b| b.cmp(a));
            acks[quorum - 1]
        } else {
            self.round
        };
        if q < *first_round {
            return;
        }
        let Some(&(_, sent)) = self.rounds.iter().find(|(r, _)| *r == q) else {
            return;
        };
        let until = sent + self.budget;
        if until <= now {
            return;
        }
        let (epoch, granted_now) = (*epoch, !*granted);
        if granted_now {
            *granted = true;
            *lease = until;
            tracing::debug!(node = %self.cfg.me, election = %name, epoch, "leadership granted");
            self.elections[i].campaigning = false;
            self.events.push_back(CoreEvent::Elected {
                election: name,
                epoch,
                lease_until: until,
            });
        } else if until > *lease {
            *lease = until;
            self.events.push_back(CoreEvent::LeaseExtended {
                election: name,
                epoch,
                until,
            });
        }
    }

    // ------------------------------------------------------------- helpers

    /// When election `i`'s timer fires, if it runs.
    fn deadline(&self, i: usize) -> Option<Instant> {
        let e = &self.elections[i];
        match e.role {
            Role::Leader {
                granted,
                patient,
                lease,
                since,
                ..
            } => Some(if granted {
                lease
            } else if patient {
                since + self.cfg.answer_timeout
            } else {
                since + self.budget
            }),
            Role::Electing { deadline, .. } => Some(deadline),
            Role::Follower => {
                let expiry = match (e.leader, e.last_heard) {
                    (Some((l, _)), Some(h)) if l != self.me => Some(h + self.cfg.failure_timeout),
                    _ => None,
                };
                let start = (e.campaigning && self.can_campaign).then(|| {
                    let mut d = e.next_election.max(self.booted + self.cfg.failure_timeout);
                    for x in [expiry, e.hold_until, e.quiet_until].into_iter().flatten() {
                        d = d.max(x);
                    }
                    d
                });
                match (expiry, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// The epoch of a new leadership: above every epoch seen. With the quorum rule, simply
    /// the next number (majorities intersect, so no two leaders get the same one); without
    /// it, the next number that is this node's own modulo the membership size, so that two
    /// leaders on two sides of a partition never share an epoch.
    /// `None` if no such epoch fits in a `u64`.
    fn next_epoch(&self, seen: EpochNo) -> Option<EpochNo> {
        let e = seen.checked_add(1)?;
        if self.cfg.quorum {
            return Some(e);
        }
        let n = self.members.len() as u64;
        let me = self.me as u64;
        e.checked_add((me + n - e % n) % n)
    }

    /// Raises the highest epoch seen in election `i` to `epoch`.
    fn see_epoch(&mut self, i: usize, epoch: EpochNo) {
        let e = &mut self.elections[i];
        if epoch > e.epoch {
            e.epoch = epoch;
            e.accepted = None;
            self.dirty.insert(i);
        }
    }

    /// The slot of `name`, created if new and fewer than `max_elections` are held; `None`
    /// when full. A mention counts as activity.
    fn election(&mut self, name: &ElectionName, now: Instant) -> Option<usize> {
        if let Some(&i) = self.by_name.get(name) {
            self.elections[i].last_active = now;
            return Some(i);
        }
        if self.by_name.len() >= self.cfg.max_elections {
            return None;
        }
        Some(self.create(name, now))
    }

    /// Creates election `name` (not held yet), whatever the limit, at an epoch above every
    /// epoch of the elections this node forgot: nothing at or below the floor is accepted
    /// there again (at most one leader accepted per epoch survives forgetting).
    fn create(&mut self, name: &ElectionName, now: Instant) -> usize {
        let epoch = if self.floor == 0 { 0 } else { self.floor + 1 };
        let e = Election::new(name.clone(), now, epoch);
        let i = match self.free.pop() {
            Some(i) => {
                self.elections[i] = e;
                i
            }
            None => {
                self.elections.push(e);
                self.elections.len() - 1
            }
        };
        self.by_name.insert(name.clone(), i);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_every());
        }
        i
    }

    /// How often idle elections are looked for: an eighth of `forget_after`.
    fn sweep_every(&self) -> Duration {
        (self.cfg.forget_after / 8).max(Duration::from_millis(1))
    }

    /// Whether election `i` must be kept whatever its age: a local candidate, a role, a
    /// known or recently heard leader, a promise (hold or quiet time) still running, or
    /// state not yet persisted. (Candidates refused out of loyalty are not a reason: their
    /// early re-acknowledgement is only an optimisation, they retry anyway.)
    fn busy(&self, i: usize, now: Instant) -> bool {
        let e = &self.elections[i];
        e.campaigning
            || !matches!(e.role, Role::Follower)
            || e.leader.is_some()
            || e.last_heard.is_some()
            || e.hold_until.is_some_and(|h| now < h)
            || e.quiet_until.is_some_and(|q| now < q)
            || self.dirty.contains(&i)
            || self.led.contains(&i)
    }

    /// Forgets every election idle for `forget_after` (checked every `sweep_every`: it goes
    /// once idle for `forget_after` to `forget_after` plus two sweep intervals). Its epoch
    /// raises the floor; the driver removes it from the state file.
    fn sweep(&mut self, now: Instant) {
        let every = self.sweep_every();
        let live: Vec<usize> = self.live().collect();
        let mut forgot = false;
        for i in live {
            if self.busy(i, now) {
                self.elections[i].last_active = now;
                continue;
            }
            if now < self.elections[i].last_active + self.cfg.forget_after + every {
                continue;
            }
            let e = &mut self.elections[i];
            // The floor covers every epoch at which this node may have accepted a leader
            // there: the current one if it accepted one at it, the ones below otherwise.
            // (An election created at `floor + 1` and forgotten unchanged leaves the floor
            // where it was.)
            let accepted_up_to = if e.accepted.is_some() {
                e.epoch
            } else {
                e.epoch.saturating_sub(1)
            };
            self.floor = self.floor.max(accepted_up_to);
            let name = e.name.clone();
            e.accepted = None;
            self.by_name.remove(&name);
            self.free.push(i);
            self.forgotten.push(name);
            self.stats.forgotten += 1;
            forgot = true;
        }
        if forgot {
            tracing::debug!(node = %self.cfg.me, held = self.by_name.len(), floor = self.floor, "forgot idle elections");
        }
        if self.by_name.is_empty() {
            self.elections.clear();
            self.free.clear();
        }
        self.next_sweep = (!self.by_name.is_empty()).then(|| now + every);
    }

    fn set_leader(&mut self, i: usize, leader: Option<(usize, EpochNo)>) {
        let e = &mut self.elections[i];
        if e.leader == leader {
            return;
        }
        e.leader = leader;
        self.events.push_back(CoreEvent::LeaderChanged {
            election: e.name.clone(),
            leader: leader.map(|(l, t)| (self.members[l].clone(), t)),
        });
    }

    fn send(&mut self, p: usize, msg: Message) {
        self.outbox.entry(p).or_default().push(msg);
    }

    fn broadcast(&mut self, msg: &Message) {
        for p in 0..self.members.len() {
            if p != self.me {
                self.send(p, msg.clone());
            }
        }
    }

    fn random_below(&mut self, d: Duration) -> Duration {
        let nanos = d.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..nanos))
    }
}
