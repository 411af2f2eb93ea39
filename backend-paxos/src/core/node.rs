//! [`Node`]: one member's PaxosLease state (acceptor and proposer) for every election,
//! driven by inputs and polled for outputs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use election_core::{ElectionName, Error, LossReason, NodeId, Result};
use election_peer::{CoreEvent, Forget};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::election::{Accepted, Election, Lead, Members, Parked, Phase, Round, bit};
use super::{Ballot, CoreStats, EpochNo, HardState, LeaseSet, Message, NodeConfig, Open, Transmit};

/// Ballots are `counter * MEMBER_SLOTS + member index`.
const MEMBER_SLOTS: u64 = 64;

/// An [`Message::Extend`] holds entries up to about this many encoded bytes, so that it
/// fits the smallest frame the transport allows (1 KiB).
const EXTEND_BYTES: usize = 900;

/// One renewal tick's one-phase extensions of every lease this node leads (decision
/// record 131).
#[derive(Debug)]
struct Extension {
    /// The tick's number, echoed by the answers.
    round: u64,
    /// When the requests went out: the leases count from here.
    sent: Instant,
    /// Entries not accepted by a majority by then get a full round.
    deadline: Instant,
    /// `(election slot, ballot, epoch)`.
    entries: Vec<(usize, Ballot, EpochNo)>,
    /// Acceptances per entry, this node's own included.
    acks: Vec<u8>,
    /// Entries accepted by a majority.
    done: usize,
    /// Entries accepted by a majority whose extension is not applied and reported yet.
    unreported: Vec<usize>,
    /// Each request's `(first entry, entries, members that answered)`.
    chunks: Vec<(u32, u32, Members)>,
    /// Members that held exactly those leases and extended them all.
    matched: Members,
}

/// One member's PaxosLease state for any number of elections (partitioned leadership):
/// every member is an acceptor, and every member that is not voters-only a proposer.
///
/// Sans-IO: no clock, no sockets, no tasks, no RNG calls beyond a ChaCha RNG seeded from
/// [`NodeConfig::seed`]. Given the same config, persisted state and inputs it produces the
/// same outputs.
///
/// # Call order
///
/// After every input ([`handle_message`](Self::handle_message),
/// [`handle_timeout`](Self::handle_timeout), [`campaign`](Self::campaign),
/// [`withdraw`](Self::withdraw), [`resign`](Self::resign), [`expire`](Self::expire)) the
/// driver must, in this order:
///
/// 1. drain [`poll_persist`](Self::poll_persist) and [`poll_forget`](Self::poll_forget) and
///    make them durable **before** sending anything: an acceptance raises the acceptor's
///    fencing floor, which must survive a crash of every node at once;
/// 2. drain [`poll_event`](Self::poll_event) (leader changes, grants, lease extensions,
///    losses) and act on them, before sending, so that a lost leadership ends locally
///    before any peer can act on this step's messages;
/// 3. drain [`poll_transmit`](Self::poll_transmit) and send each batch to its peer (one
///    batch per peer per step: many elections share one packet);
/// 4. call [`poll_timeout`](Self::poll_timeout) and arrange for
///    [`handle_timeout`](Self::handle_timeout) to be called at that instant (or earlier;
///    spurious calls are harmless).
///
/// Inputs given while handling events add to the same outputs; drain `poll_persist` again
/// before step 3.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    rng: ChaCha8Rng,
    members: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    me: usize,
    /// Each member's run, as its last request carried it (0: none seen yet): a handoff
    /// promise names the run it is for.
    incarnations: Vec<u64>,
    quorum: usize,
    can_propose: bool,
    booted: Instant,
    budget: Duration,
    /// Election slots; forgotten ones are reused (`free`).
    elections: Vec<Election>,
    by_name: HashMap<ElectionName, usize>,
    free: Vec<usize>,
    /// The highest fencing floor of every election this node forgot (persisted): an
    /// election it does not hold starts with this floor.
    floor: EpochNo,
    /// Forgotten since the last `poll_forget`.
    forgotten: Vec<ElectionName>,
    /// When idle elections are looked for next.
    next_sweep: Option<Instant>,
    /// Elections this node leads (granted).
    led: BTreeSet<usize>,
    /// When the next renewal rounds of every led election start.
    next_renew: Option<Instant>,
    /// The renewal tick's extensions still collecting answers.
    extension: Option<Extension>,
    /// The number of the last renewal tick.
    ticks: u64,
    /// Peers the next tick sends [`Message::ExtendAll`] to instead of listing every lease
    /// (their last answer matched, or a listed extension was refused nothing there).
    in_sync: Members,
    /// The acceptor's digest of the proposals it holds of each member (open or lapsed and
    /// not yet dropped), kept as they change: compared with a leader's
    /// [`Message::ExtendAll`].
    owned: Vec<LeaseSet>,
    /// Until when each member's last matched [`Message::ExtendAll`] keeps its proposals
    /// open here: that request's arrival plus the lease time `T`.
    extended_until: Vec<Option<Instant>>,
    /// Led elections whose extension some acceptor refused: it promised a higher ballot
    /// (or does not know the election), so the next renewal is a full round, which brings
    /// it back (decision record 131).
    resync: BTreeSet<usize>,
    /// The timer table: each held election's next deadline (`armed`, by slot) and a heap of
    /// them, stale entries skipped (an entry counts only while it matches `armed`). Only
    /// the elections an input touched are looked at again, so a step costs the same with
    /// one election as with 20,000.
    armed: Vec<Option<Instant>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Per member, the elections whose only timer is the expiry of that member's accepted
    /// proposal, held open by its matched digest (`extended_until`): one timer for them
    /// all, since a matched `ExtendAll` moves them together. Entries whose `parked` flag
    /// is off are stale and skipped.
    parked: Vec<Vec<usize>>,
    /// The led elections whose only timer is their lease (or later), which every renewal
    /// moves together: looked at only once `leading_wake`, the earliest of their
    /// deadlines when last looked at, has passed (then their new earliest), instead of a
    /// heap entry each per lease time. Entries whose `parked` flag is off are stale.
    leading: Vec<usize>,
    leading_wake: Option<Instant>,
    // --- Outputs. ---
    outbox: BTreeMap<usize, Vec<Message>>,
    events: VecDeque<CoreEvent>,
    dirty: BTreeSet<usize>,
    stats: CoreStats,
}

impl Node {
    /// A node starting at `now` from its persisted `state` (empty on first start).
    ///
    /// For one lease time after `now` the node answers no prepare or propose request and
    /// proposes nothing: its acceptor may have accepted a proposal just before it
    /// restarted, and forgot it (PaxosLease's restart rule).
    pub fn new(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
    ) -> Result<Node> {
        Node::restore(cfg, now, state, 0)
    }

    /// As [`new`](Self::new), with the persisted `floor`: the highest fencing floor of
    /// every election this node forgot ([`poll_forget`](Self::poll_forget)).
    pub fn restore(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
        floor: EpochNo,
    ) -> Result<Node> {
        if cfg.max_elections == 0 {
            return Err(Error::config(
                "paxos.max_elections",
                "must be greater than zero",
            ));
        }
        if !cfg.members.contains(&cfg.me) {
            return Err(Error::config(
                "paxos.peers",
                format!("this node ({}) must be listed among the members", cfg.me),
            ));
        }
        if cfg.members.len() as u64 > MEMBER_SLOTS {
            return Err(Error::config(
                "paxos.peers",
                format!(
                    "{} members; at most {MEMBER_SLOTS} are supported",
                    cfg.members.len()
                ),
            ));
        }
        let members: Vec<NodeId> = cfg.members.iter().cloned().collect();
        let index: HashMap<NodeId, usize> = members
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let me = index[&cfg.me];
        let n = members.len();
        let mut node = Node {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            quorum: members.len() / 2 + 1,
            incarnations: vec![0; members.len()],
            can_propose: !cfg.voters_only.contains(&cfg.me),
            booted: now,
            budget: cfg.lease_budget(),
            members,
            index,
            me,
            elections: Vec::new(),
            by_name: HashMap::new(),
            free: Vec::new(),
            floor,
            forgotten: Vec::new(),
            next_sweep: None,
            led: BTreeSet::new(),
            next_renew: None,
            extension: None,
            ticks: 0,
            in_sync: Members::MAX,
            owned: vec![LeaseSet::default(); n],
            extended_until: vec![None; n],
            resync: BTreeSet::new(),
            armed: Vec::new(),
            timers: BinaryHeap::new(),
            parked: vec![Vec::new(); n],
            leading: Vec::new(),
            leading_wake: None,
            outbox: BTreeMap::new(),
            events: VecDeque::new(),
            dirty: BTreeSet::new(),
            stats: CoreStats::default(),
            cfg,
        };
        for (name, hard) in state {
            let i = node.create(&name, now);
            let e = &mut node.elections[i];
            e.floor = e.floor.max(hard.epoch);
            e.floor_owner = hard.leader;
            e.seen = e.seen.max(e.floor);
        }
        for i in 0..node.elections.len() {
            node.reschedule(i);
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

    /// The epoch of the leadership this node knows in `election` (its own, or the one its
    /// acceptor holds open), else its fencing floor there.
    pub fn epoch(&self, election: &ElectionName) -> EpochNo {
        let Some(&i) = self.by_name.get(election) else {
            return self.floor;
        };
        let e = &self.elections[i];
        e.known.map_or(e.floor, |(_, epoch)| epoch)
    }

    /// The highest ballot this node has seen in `election`.
    pub fn ballot(&self, election: &ElectionName) -> Ballot {
        self.by_name
            .get(election)
            .map_or(0, |&i| self.elections[i].seen)
    }

    /// The leader of `election` as this node knows it: itself while it leads, else the
    /// proposer of the proposal its acceptor holds open.
    pub fn leader(&self, election: &ElectionName) -> Option<(NodeId, EpochNo)> {
        let i = *self.by_name.get(election)?;
        self.elections[i]
            .known
            .map(|(l, e)| (self.members[l].clone(), e))
    }

    /// The lease deadline of this node's granted leadership of `election`, if it leads.
    pub fn lease_until(&self, election: &ElectionName) -> Option<Instant> {
        let i = *self.by_name.get(election)?;
        self.elections[i].lead.map(|l| l.lease)
    }

    /// Whether this node campaigns in `election`.
    pub fn is_campaigning(&self, election: &ElectionName) -> bool {
        self.by_name
            .get(election)
            .is_some_and(|&i| self.elections[i].campaigning)
    }

    // ------------------------------------------------------------------ inputs

    /// Starts campaigning in `election`: a round starts soon (after a short random delay,
    /// and not before one lease time after this node started). A round that finds another
    /// proposer's lease open at a majority waits until enough of them run out. Returns
    /// `false` if this node is voters-only, or if `election` is new and this node already
    /// holds `max_elections` ([`refuses_new`](Self::refuses_new) tells which).
    pub fn campaign(&mut self, now: Instant, election: &ElectionName) -> bool {
        let r = self.campaign_inner(now, election);
        self.reschedule_name(election);
        r
    }

    fn campaign_inner(&mut self, now: Instant, election: &ElectionName) -> bool {
        if !self.can_propose {
            return false;
        }
        let Some(i) = self.election(election, now) else {
            return false;
        };
        if self.elections[i].campaigning {
            return true;
        }
        let jitter = self.random_below(self.cfg.backoff / 2);
        let e = &mut self.elections[i];
        e.campaigning = true;
        if e.lead.is_none() && e.round.is_none() {
            e.next_round = now + jitter;
        }
        true
    }

    /// Stops campaigning in `election`. A round not yet granted is abandoned (and its
    /// proposal released); a granted leadership is unaffected (use
    /// [`resign`](Self::resign)).
    pub fn withdraw(&mut self, now: Instant, election: &ElectionName) {
        self.withdraw_inner(now, election);
        self.reschedule_name(election);
    }

    fn withdraw_inner(&mut self, now: Instant, election: &ElectionName) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        if !self.elections[i].campaigning {
            return;
        }
        self.elections[i].campaigning = false;
        if self.elections[i].lead.is_none() {
            self.abandon(i, now);
        }
    }

    /// Resigns the leadership of `election`: steps down at once (reporting
    /// [`CoreEvent::Lost`] with `Resigned`), stops campaigning there and sends RELEASE to
    /// every acceptor, which drop the lease at once; campaigning peers then start a round
    /// after a short random delay, so the next proposer wins within about one round trip.
    /// This node does not propose there for one lease time. Returns whether this node led.
    pub fn resign(&mut self, now: Instant, election: &ElectionName) -> bool {
        let r = self.resign_inner(now, election);
        self.reschedule_name(election);
        r
    }

    fn resign_inner(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        let Some(lead) = self.elections[i].lead else {
            return false;
        };
        self.elections[i].campaigning = false;
        self.step_down(i, now, LossReason::Resigned);
        self.elections[i].quiet_until = Some(now + self.cfg.lease);
        tracing::debug!(node = %self.cfg.me, %election, epoch = lead.epoch, "resigned; releasing");
        let to = self.successor(i);
        self.release_to(i, now, lead.epoch, to);
        true
    }

    /// The holder's deadline for `election` passed before the core extended it (the driver
    /// could not keep up): steps down *without* RELEASE. The acceptors keep the lease open
    /// until it runs out on their own clocks, one kill grace and the drift bound after the
    /// holder's deadline, and this node cannot win it back meanwhile (its own lease, open
    /// at the acceptors, blocks it like anyone else's): the handover rule. Returns whether
    /// this node led.
    pub fn expire(&mut self, now: Instant, election: &ElectionName) -> bool {
        let r = self.expire_inner(now, election);
        self.reschedule_name(election);
        r
    }

    fn expire_inner(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        if self.elections[i].lead.is_none() {
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
        let name = match &msg {
            Message::Prepare { election, .. }
            | Message::PrepareAck { election, .. }
            | Message::Propose { election, .. }
            | Message::ProposeAck { election, .. }
            | Message::Release { election, .. }
            | Message::Handoff { election, .. } => Some(election.clone()),
            // Re-arm the elections they touch themselves.
            Message::Extend { .. }
            | Message::ExtendAck { .. }
            | Message::ExtendAll { .. }
            | Message::ExtendAllAck { .. } => None,
        };
        self.dispatch(now, p, msg);
        if let Some(name) = name {
            self.reschedule_name(&name);
        }
        true
    }

    fn dispatch(&mut self, now: Instant, p: usize, msg: Message) {
        match msg {
            Message::Prepare {
                election,
                ballot,
                incarnation,
            } => {
                self.incarnations[p] = incarnation;
                let Some(i) = self.election(&election, now) else {
                    self.stats.ignored_elections += 1;
                    return;
                };
                if let Some(ack) = self.on_prepare(i, now, p, ballot, incarnation) {
                    self.send(p, ack);
                }
            }
            Message::Propose {
                election,
                ballot,
                epoch,
                incarnation,
            } => {
                let Some(i) = self.election(&election, now) else {
                    self.stats.ignored_elections += 1;
                    return;
                };
                if let Some(ack) = self.on_propose(i, now, p, ballot, epoch, incarnation) {
                    self.send(p, ack);
                }
            }
            Message::PrepareAck {
                election,
                ballot,
                incarnation,
                promised,
                seen,
                open,
            } => {
                if incarnation != self.cfg.incarnation {
                    return;
                }
                if let Some(&i) = self.by_name.get(&election) {
                    self.on_prepare_ack(i, now, p, ballot, promised, seen, open);
                }
            }
            Message::ProposeAck {
                election,
                ballot,
                incarnation,
                accepted,
                seen,
            } => {
                if incarnation != self.cfg.incarnation {
                    return;
                }
                if let Some(&i) = self.by_name.get(&election) {
                    self.on_propose_ack(i, now, p, ballot, accepted, seen);
                }
            }
            Message::Release {
                election,
                epoch,
                incarnation,
            } => {
                if let Some(&i) = self.by_name.get(&election) {
                    self.on_release(i, now, p, epoch, incarnation);
                }
            }
            Message::Handoff {
                election,
                epoch,
                incarnation,
                ballot,
                candidate,
            } => {
                if let Some(&i) = self.by_name.get(&election) {
                    self.on_handoff(i, now, p, epoch, incarnation, ballot, candidate);
                }
            }
            Message::Extend {
                incarnation,
                round,
                first,
                entries,
            } => {
                self.incarnations[p] = incarnation;
                self.on_extend(now, p, incarnation, round, first, entries);
            }
            Message::ExtendAck {
                incarnation,
                round,
                first,
                count,
                refused,
            } => {
                if incarnation == self.cfg.incarnation {
                    self.on_extend_ack(now, p, round, first, count, &refused);
                }
            }
            Message::ExtendAll {
                incarnation,
                round,
                leases,
            } => {
                self.incarnations[p] = incarnation;
                self.on_extend_all(now, p, incarnation, round, leases);
            }
            Message::ExtendAllAck {
                incarnation,
                round,
                matched,
            } => {
                if incarnation == self.cfg.incarnation {
                    self.on_extend_all_ack(now, p, round, matched);
                }
            }
        }
    }

    /// Fires every timer due at `now`: renewal rounds, round deadlines, acceptors' lease
    /// expiry, the leader's own deadline, retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
        }
        let mut due = Vec::new();
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(i) == Some(&Some(t)) && self.is_live(i) {
                self.armed[i] = None;
                due.push(i);
            }
        }
        for p in 0..self.parked.len() {
            if self.parked[p].is_empty() || self.extended_until[p].is_some_and(|t| t > now) {
                continue;
            }
            for i in std::mem::take(&mut self.parked[p]) {
                if self.is_live(i) && self.elections[i].parked == Some(Parked::Accepted(p)) {
                    self.elections[i].parked = None;
                    due.push(i);
                }
            }
        }
        if self.leading_wake.is_some_and(|t| t <= now) {
            self.wake_leading(now, &mut due);
        }
        for i in due {
            // The leader's own deadline first: nothing after it may extend the lease.
            if self.elections[i].lead.is_some_and(|l| l.lease <= now) {
                self.step_down(i, now, LossReason::QuorumLost);
            }
            if self.elections[i]
                .accepted
                .is_some_and(|a| self.open_until(&a) <= now)
            {
                self.set_accepted(i, None);
                self.refresh_view(i);
            }
            if self.elections[i]
                .round
                .as_ref()
                .is_some_and(|r| r.deadline <= now)
            {
                self.fail_round(i, now);
            }
            if self.start_due(i).is_some_and(|t| t <= now) {
                self.start_round(i, now, false);
            }
            self.reschedule(i);
        }
        if self.extension.as_ref().is_some_and(|x| x.deadline <= now) {
            self.finish_extension(now);
        }
        if self.next_renew.is_some_and(|t| t <= now) {
            self.renew_all(now);
        }
    }

    // ----------------------------------------------------------------- outputs

    /// Fencing floors to make durable before sending the next transmits; `None` when
    /// nothing changed.
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<Vec<(ElectionName, HardState)>> {
        if self.dirty.is_empty() {
            return None;
        }
        let dirty = std::mem::take(&mut self.dirty);
        Some(
            dirty
                .into_iter()
                .filter(|&i| self.is_live(i))
                .map(|i| {
                    let e = &self.elections[i];
                    (
                        e.name.clone(),
                        HardState {
                            epoch: e.floor,
                            leader: e.floor_owner.clone(),
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

    /// The highest fencing floor of every election this node forgot.
    pub fn floor(&self) -> EpochNo {
        self.floor
    }

    /// The elections this node holds state for.
    pub fn elections(&self) -> impl Iterator<Item = &ElectionName> {
        self.live().map(|i| &self.elections[i].name)
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

    /// The next event. Epochs are the ballots of the rounds that started each leadership.
    /// [`CoreEvent::Elected`] comes once per leadership and clears this node's candidacy
    /// there; extensions come per election ([`CoreEvent::LeaseExtended`]);
    /// [`CoreEvent::Lost`] says `QuorumLost` (the lease ran out unrenewed), `Expired`
    /// ([`expire`](Self::expire)) or `Resigned`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if self.armed.get(i) == Some(&Some(t)) && self.is_live(i) {
                break;
            }
            self.timers.pop();
        }
        let election = self.timers.peek().map(|Reverse((t, _))| *t);
        let extension = self.extension.as_ref().map(|x| x.deadline);
        let parked = (0..self.parked.len())
            .filter(|&p| !self.parked[p].is_empty())
            .filter_map(|p| self.extended_until[p])
            .min();
        [
            self.next_renew,
            self.next_sweep,
            election,
            extension,
            parked,
            self.leading_wake,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Re-arms election `i`'s entry in the timer table after a change.
    fn reschedule(&mut self, i: usize) {
        if i >= self.armed.len() {
            self.armed.resize(self.elections.len(), None);
        }
        if let Some(park) = self.parks(i) {
            // One timer for many (see `parked` and `leading`); `armed` off, so a heap
            // entry left from before is stale.
            self.armed[i] = None;
            let again = self.elections[i].parked.replace(park) == Some(park);
            match park {
                Parked::Accepted(owner) if !again => self.parked[owner].push(i),
                Parked::Accepted(_) => {}
                Parked::Leading => {
                    if !again {
                        self.leading.push(i);
                    }
                    // Its deadline may be earlier than the others' (a new leadership).
                    if let Some(d) = self.deadline(i) {
                        self.leading_wake = Some(self.leading_wake.map_or(d, |w| w.min(d)));
                    }
                }
            }
            return;
        }
        if let Some(e) = self.elections.get_mut(i) {
            e.parked = None;
        }
        let d = if self.is_live(i) {
            self.deadline(i)
        } else {
            None
        };
        if let (Some(armed), Some(d)) = (self.armed[i], d)
            && armed <= d
        {
            // A deadline that moved later (a renewed lease, most often) keeps its earlier
            // entry: it fires early, finds nothing due and re-arms. One heap entry per
            // election per lease time instead of one per renewal.
            return;
        }
        if self.armed[i] != d {
            self.armed[i] = d;
            if let Some(t) = d {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    fn reschedule_name(&mut self, election: &ElectionName) {
        if let Some(&i) = self.by_name.get(election) {
            self.reschedule(i);
        }
    }

    // ------------------------------------------------------------ the acceptor

    fn restarting(&self, now: Instant) -> bool {
        now < self.booted + self.cfg.lease
    }

    /// Drops the accepted proposal of election `i` if its lease time has passed.
    fn expire_accepted(&mut self, i: usize, now: Instant) {
        if self.elections[i]
            .accepted
            .is_some_and(|a| self.open_until(&a) <= now)
        {
            self.set_accepted(i, None);
            self.refresh_view(i);
        }
    }

    /// Until when the accepted proposal `a` stays open here: one lease time after it was
    /// accepted, or after its proposer's last matched [`Message::ExtendAll`], whichever is
    /// later. Such a request matched only while every proposal of that proposer held here
    /// was one of its leases, so it extended `a` if `a` was held then; a proposal accepted
    /// later expires later anyway.
    fn open_until(&self, a: &Accepted) -> Instant {
        match self.extended_until[a.owner] {
            Some(t) if t > a.expires => t,
            _ => a.expires,
        }
    }

    /// Replaces election `i`'s accepted proposal, keeping the per-proposer digests
    /// ([`Node::owned`]) in step: every change to `accepted` goes through here.
    fn set_accepted(&mut self, i: usize, accepted: Option<Accepted>) {
        let e = &mut self.elections[i];
        if let Some(old) = e.accepted {
            self.owned[old.owner].remove(e.prefix, old.ballot, old.epoch);
        }
        if let Some(new) = accepted {
            self.owned[new.owner].add(e.prefix, new.ballot, new.epoch);
        }
        e.accepted = accepted;
    }

    /// A prepare request of `p` at `ballot`: PaxosLease's acceptor, phase 1. No answer at
    /// all for one lease time after a restart. A proposal of another proposer held open is
    /// reported, without promising (so that probing candidates do not disturb a live
    /// lease's renewals); otherwise `ballot` is promised if it is at least the highest
    /// promise and above the fencing floor.
    fn on_prepare(
        &mut self,
        i: usize,
        now: Instant,
        p: usize,
        ballot: Ballot,
        incarnation: u64,
    ) -> Option<Message> {
        if self.restarting(now) {
            self.stats.ignored_restarting += 1;
            return None;
        }
        self.expire_accepted(i, now);
        let open_until = self.elections[i].accepted.map(|a| self.open_until(&a));
        let e = &mut self.elections[i];
        let open = match (e.accepted, open_until) {
            (Some(a), Some(until)) => {
                let left = until.saturating_duration_since(now).as_micros() as u64;
                if a.owner == p {
                    Open::Yours(left)
                } else {
                    Open::Other(left)
                }
            }
            _ => Open::None,
        };
        if matches!(open, Open::Other(_)) && p != self.me {
            e.waiting |= bit(p);
            // A handoff's ballot must be above the candidates' own (decision record 130).
            e.asked = e.asked.max(ballot);
        }
        let promised = !matches!(open, Open::Other(_)) && ballot >= e.promised && ballot > e.floor;
        if promised {
            e.promised = ballot;
        } else if !matches!(open, Open::Other(_)) {
            self.stats.rejected += 1;
        }
        let e = &self.elections[i];
        Some(Message::PrepareAck {
            election: e.name.clone(),
            ballot,
            incarnation,
            promised,
            seen: e.promised.max(e.floor),
            open,
        })
    }

    /// A propose request of `p` at `ballot` for its leadership `epoch`: PaxosLease's
    /// acceptor, phase 2. Accepted if `ballot` is at least the highest promise and `epoch`
    /// is not below the fencing floor; the proposal stays open for one lease time from now.
    /// A new leadership's epoch raises the floor, made durable before the answer leaves.
    fn on_propose(
        &mut self,
        i: usize,
        now: Instant,
        p: usize,
        ballot: Ballot,
        epoch: EpochNo,
        incarnation: u64,
    ) -> Option<Message> {
        if self.restarting(now) {
            self.stats.ignored_restarting += 1;
            return None;
        }
        self.expire_accepted(i, now);
        let lease = self.cfg.lease;
        let e = &mut self.elections[i];
        let accepted = ballot >= e.promised
            && epoch <= ballot
            && epoch > 0
            && e.released != Some((p, epoch, incarnation));
        if accepted {
            e.promised = ballot;
            e.waiting &= !bit(p);
            self.set_accepted(
                i,
                Some(Accepted {
                    owner: p,
                    ballot,
                    epoch,
                    incarnation,
                    expires: now + lease,
                }),
            );
            let e = &mut self.elections[i];
            if epoch > e.floor {
                e.floor = epoch;
                e.floor_owner = Some(self.members[p].clone());
                self.dirty.insert(i);
            }
            self.refresh_view(i);
        } else {
            self.stats.rejected += 1;
        }
        let e = &self.elections[i];
        Some(Message::ProposeAck {
            election: e.name.clone(),
            ballot,
            incarnation,
            accepted,
            seen: e.promised.max(e.floor),
        })
    }

    /// RELEASE from `p`: drop its proposal at `epoch` (of that run of `p`) if it is the one
    /// held open; a
    /// campaigning node then starts a round after a short random delay.
    fn on_release(&mut self, i: usize, now: Instant, p: usize, epoch: EpochNo, incarnation: u64) {
        self.drop_released(i, p, epoch, incarnation);
        // The members after the releasing one take turns, a quarter of the back-off apart,
        // so that the next one usually wins in one round instead of colliding with the rest;
        // the first starts in this step (no timer between the release and its round).
        let n = self.members.len();
        let slot = ((self.me + n - p - 1) % n) as u32;
        let delay = if slot == 0 {
            Duration::ZERO
        } else {
            self.cfg.backoff / 4 * slot + self.random_below(self.cfg.backoff / 64)
        };
        let e = &mut self.elections[i];
        if e.campaigning && e.lead.is_none() {
            // A probe still preparing was answered (or will be) with the released lease
            // open: start over rather than wait for that lease to run out. Nothing was
            // proposed yet, so nothing needs releasing.
            if e.round
                .as_ref()
                .is_some_and(|r| !r.renewal && matches!(r.phase, Phase::Prepare { .. }))
            {
                e.round = None;
            }
            if e.round.is_none() {
                e.next_round = now + delay;
            }
        }
        if self.start_due(i).is_some_and(|t| t <= now) {
            self.start_round(i, now, false);
        }
    }

    /// The acceptor's part of RELEASE from `p`: drop its proposal at `epoch` (of that run
    /// of `p`) if it is the one held open, and refuse it from now on.
    fn drop_released(&mut self, i: usize, p: usize, epoch: EpochNo, incarnation: u64) {
        let e = &mut self.elections[i];
        e.released = Some((p, epoch, incarnation));
        e.waiting &= !bit(p);
        if e.accepted
            .is_some_and(|a| a.owner == p && a.epoch == epoch && a.incarnation == incarnation)
        {
            self.set_accepted(i, None);
            self.refresh_view(i);
        }
    }

    /// HANDOFF from `p`: its RELEASE, and its acceptor's promise of `ballot` to this node's
    /// run `candidate`. A campaigning node starts its round at `ballot` at once, counting
    /// the promise as `p`'s answer (nothing open), so that with a majority of promises it
    /// proposes in this very step. Anything else (not campaigning, another run, a ballot
    /// that is not this node's or not above what it has seen) takes it as a plain RELEASE.
    #[allow(clippy::too_many_arguments)]
    fn on_handoff(
        &mut self,
        i: usize,
        now: Instant,
        p: usize,
        epoch: EpochNo,
        incarnation: u64,
        ballot: Ballot,
        candidate: u64,
    ) {
        let e = &self.elections[i];
        let above = e.seen.max(e.promised).max(e.floor);
        let usable = candidate == self.cfg.incarnation
            && ballot % MEMBER_SLOTS == self.me as u64
            && ballot > above
            && e.campaigning
            && e.lead.is_none()
            && !e
                .round
                .as_ref()
                .is_some_and(|r| r.renewal || matches!(r.phase, Phase::Propose { .. }))
            && self.can_propose
            && !self.restarting(now)
            && e.quiet_until.is_none_or(|q| q <= now);
        if !usable {
            self.on_release(i, now, p, epoch, incarnation);
            return;
        }
        self.drop_released(i, p, epoch, incarnation);
        // A probe still preparing is started over at the promised ballot.
        self.elections[i].round = None;
        self.start_round_at(i, now, false, ballot);
        self.on_prepare_ack(i, now, p, ballot, true, ballot, Open::None);
    }

    // ------------------------------------------------------------ the proposer

    /// When a campaigning node with no round and no leadership starts its next round.
    fn start_due(&self, i: usize) -> Option<Instant> {
        let e = &self.elections[i];
        if !e.campaigning || !self.can_propose || e.lead.is_some() || e.round.is_some() {
            return None;
        }
        let mut t = e.next_round.max(self.booted + self.cfg.lease);
        if let Some(q) = e.quiet_until {
            t = t.max(q);
        }
        Some(t)
    }

    /// The smallest ballot of this node above `above`.
    fn next_ballot(&self, above: Ballot) -> Option<Ballot> {
        ballot_of(self.me, above)
    }

    /// Starts a round in election `i`: a ballot above every ballot and floor seen, prepare
    /// requests to every acceptor (this node's own answers at once).
    fn start_round(&mut self, i: usize, now: Instant, renewal: bool) {
        let e = &self.elections[i];
        let above = e.seen.max(e.promised).max(e.floor);
        let Some(ballot) = self.next_ballot(above) else {
            // Only a peer announcing an absurd ballot can get us here: refuse to propose
            // rather than wrap around.
            tracing::error!(node = %self.cfg.me, election = %e.name, above, "no ballot left; not proposing");
            let e = &mut self.elections[i];
            e.campaigning = false;
            return;
        };
        self.start_round_at(i, now, renewal, ballot);
    }

    /// Starts a round in election `i` at `ballot`, one of this node's, above every ballot
    /// it has seen.
    fn start_round_at(&mut self, i: usize, now: Instant, renewal: bool, ballot: Ballot) {
        self.stats.rounds += 1;
        let deadline = now + self.phase_timeout(renewal);
        let e = &mut self.elections[i];
        e.seen = ballot;
        e.round = Some(Round {
            ballot,
            renewal,
            phase: Phase::Prepare {
                answered: 0,
                free: 0,
                blocked: Vec::new(),
                collided: false,
            },
            deadline,
        });
        let msg = Message::Prepare {
            election: e.name.clone(),
            ballot,
            incarnation: self.cfg.incarnation,
        };
        self.broadcast(&msg);
        if let Some(Message::PrepareAck {
            promised,
            seen,
            open,
            ..
        }) = self.on_prepare(i, now, self.me, ballot, self.cfg.incarnation)
        {
            self.on_prepare_ack(i, now, self.me, ballot, promised, seen, open);
        }
    }

    /// How long one phase waits for a majority: `round_timeout`, and for a renewal at most
    /// until the next renewal tick, so that a lost renewal is retried while the lease runs.
    fn phase_timeout(&self, renewal: bool) -> Duration {
        if renewal {
            self.cfg.round_timeout.min(self.cfg.renew)
        } else {
            self.cfg.round_timeout
        }
    }

    /// Renews every led election without a round running: one-phase extensions, in one
    /// batch per peer (decision record 131). The previous tick's extensions that no
    /// majority accepted get full rounds.
    fn renew_all(&mut self, now: Instant) {
        self.next_renew = (!self.led.is_empty()).then(|| now + self.cfg.renew);
        if self.extension.as_ref().is_some_and(|x| x.deadline > now) {
            // The last tick's extensions are still collecting answers (a slow peer, a
            // busy node): let them finish rather than pile a second batch, and full
            // rounds, onto an overloaded peer. They are due before the leases run out.
            return;
        }
        self.finish_extension(now);
        for i in std::mem::take(&mut self.resync) {
            let e = &self.elections[i];
            if self.is_live(i) && e.lead.is_some() && e.round.is_none() {
                self.start_round(i, now, true);
                self.reschedule(i);
            }
        }
        let entries: Vec<(usize, Ballot, EpochNo)> = self
            .led
            .iter()
            .filter_map(|&i| {
                let e = &self.elections[i];
                match (e.round.is_none(), e.lead) {
                    (true, Some(l)) => Some((i, l.ballot, l.epoch)),
                    _ => None,
                }
            })
            .collect();
        if !entries.is_empty() {
            self.start_extension(now, entries);
        }
    }

    /// Sends this tick's extensions, and accepts them at this node's own acceptor: to a
    /// peer in sync, one [`Message::ExtendAll`] naming every lease by its digest; to any
    /// other, the leases listed in [`Message::Extend`] requests (decision records 131 and
    /// 142). This node's own acceptor extends them all at once when it holds exactly them.
    fn start_extension(&mut self, now: Instant, entries: Vec<(usize, Ballot, EpochNo)>) {
        self.ticks += 1;
        let round = self.ticks;
        let inc = self.cfg.incarnation;
        let mut leases = LeaseSet::default();
        for &(i, ballot, epoch) in &entries {
            leases.add(self.elections[i].prefix, ballot, epoch);
        }
        let mut acks = vec![0u8; entries.len()];
        if self.restarting(now) {
            self.stats.ignored_restarting += 1;
        } else if self.owned[self.me] == leases {
            self.extended_until[self.me] = Some(now + self.cfg.lease);
            acks.fill(1);
        } else {
            for (k, &(i, ballot, epoch)) in entries.iter().enumerate() {
                let ok = matches!(
                    self.on_propose(i, now, self.me, ballot, epoch, inc),
                    Some(Message::ProposeAck { accepted: true, .. })
                );
                acks[k] = u8::from(ok);
                self.reschedule(i);
            }
        }
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len() && (end == start || bytes < EXTEND_BYTES) {
                bytes += 17 + self.elections[entries[end].0].name.as_str().len();
                end += 1;
            }
            chunks.push((start as u32, (end - start) as u32, 0));
            start = end;
        }
        let done = acks.iter().filter(|&&a| a as usize >= self.quorum).count();
        // 37.5 ms by default: past the next tick, yet leaving a full round time before
        // the leases (extended at least one tick ago) run out.
        let deadline = now + self.cfg.round_timeout.min(self.budget / 2);
        self.extension = Some(Extension {
            round,
            sent: now,
            deadline,
            entries,
            acks,
            done,
            unreported: Vec::new(),
            chunks,
            matched: 0,
        });
        for p in 0..self.members.len() {
            if p == self.me {
                continue;
            }
            if self.in_sync & bit(p) != 0 {
                self.send(
                    p,
                    Message::ExtendAll {
                        incarnation: inc,
                        round,
                        leases,
                    },
                );
            } else {
                self.send_listed(p);
            }
        }
        if self.quorum == 1 {
            // A one-member cluster: its own acceptance is the majority.
            let n = self.extension.as_ref().map_or(0, |x| x.entries.len());
            for k in 0..n {
                self.extended(k);
            }
            self.report_extensions(now, true);
        }
    }

    /// Sends the extension out to `p` as [`Message::Extend`] requests listing its leases.
    fn send_listed(&mut self, p: usize) {
        let Some(x) = self.extension.as_ref() else {
            return;
        };
        let messages: Vec<Message> = x
            .chunks
            .iter()
            .map(|&(first, count, _)| Message::Extend {
                incarnation: self.cfg.incarnation,
                round: x.round,
                first,
                entries: x.entries[first as usize..(first + count) as usize]
                    .iter()
                    .map(|&(i, b, ep)| (self.elections[i].name.clone(), b, ep))
                    .collect(),
            })
            .collect();
        for m in messages {
            self.send(p, m);
        }
    }

    /// The acceptor's side of [`Message::ExtendAll`]: if the proposals of `p` held here
    /// are exactly the leases the digest names, all of them stay open for one lease time
    /// from now; else none is extended, and the answer says so. No answer at all for one
    /// lease time after a restart.
    ///
    /// A match applies PaxosLease's propose rule to every lease at once: each is the
    /// proposal accepted here (so its ballot was at least the promise then), no other
    /// proposer's proposal is open in those elections (each holds `p`'s), and a higher
    /// promise made since can only be `p`'s own (a prepare of anyone else finds the lease
    /// open and is not promised).
    fn on_extend_all(
        &mut self,
        now: Instant,
        p: usize,
        incarnation: u64,
        round: u64,
        leases: LeaseSet,
    ) {
        if self.restarting(now) {
            self.stats.ignored_restarting += 1;
            return;
        }
        let matched = self.owned[p] == leases;
        if matched {
            self.extended_until[p] = Some(now + self.cfg.lease);
        }
        self.send(
            p,
            Message::ExtendAllAck {
                incarnation,
                round,
                matched,
            },
        );
    }

    /// An answer to this node's [`Message::ExtendAll`]: a match is an acceptance of every
    /// entry; a mismatch sends `p` the same tick's leases listed, at once (they count from
    /// the tick's send time, which is earlier: the safe side).
    fn on_extend_all_ack(&mut self, now: Instant, p: usize, round: u64, matched: bool) {
        // Even the answer to an earlier tick says whether to list the leases to `p` next:
        // an answer that always arrived a tick late would otherwise never be acted on.
        if matched {
            self.in_sync |= bit(p);
        } else {
            self.in_sync &= !bit(p);
        }
        let Some(x) = self.extension.as_mut() else {
            return;
        };
        if !matched {
            // List the leases of the extension now out (this tick's, or a later one's if
            // the answer came late) unless `p` answered it already.
            let answered = x.matched & bit(p) != 0 || x.chunks.iter().any(|c| c.2 & bit(p) != 0);
            if !answered {
                self.send_listed(p);
            }
            return;
        }
        if x.round != round || x.matched & bit(p) != 0 {
            return;
        }
        x.matched |= bit(p);
        let all = 0..x.entries.len();
        self.count_acceptances(now, all, &BTreeSet::new());
    }

    /// The acceptor's side of [`Message::Extend`]: PaxosLease's propose rule for each
    /// entry, one answer listing the refusals. No answer at all for one lease time after
    /// a restart.
    fn on_extend(
        &mut self,
        now: Instant,
        p: usize,
        incarnation: u64,
        round: u64,
        first: u32,
        entries: Vec<(ElectionName, Ballot, EpochNo)>,
    ) {
        if self.restarting(now) {
            self.stats.ignored_restarting += 1;
            return;
        }
        let count = entries.len() as u32;
        let mut refused = Vec::new();
        for (name, ballot, epoch) in entries {
            let Some(&i) = self.by_name.get(&name) else {
                // Unknown here (a full round will bring it in).
                refused.push(name);
                continue;
            };
            self.elections[i].last_active = now;
            // Never over another proposer's open lease: a prepare would have found it
            // (the propose rule alone would let a late extension at an old ballot replace
            // a lease granted meanwhile by acceptors that restarted).
            self.expire_accepted(i, now);
            if self.elections[i].accepted.is_some_and(|a| a.owner != p) {
                self.stats.rejected += 1;
                refused.push(name);
                continue;
            }
            let ok = matches!(
                self.on_propose(i, now, p, ballot, epoch, incarnation),
                Some(Message::ProposeAck { accepted: true, .. })
            );
            self.reschedule(i);
            if !ok {
                refused.push(name);
            }
        }
        self.send(
            p,
            Message::ExtendAck {
                incarnation,
                round,
                first,
                count,
                refused,
            },
        );
    }

    /// An answer to this node's extensions: every entry of the request but the refused
    /// ones gains an acceptance; those reaching a majority are extended.
    fn on_extend_ack(
        &mut self,
        now: Instant,
        p: usize,
        round: u64,
        first: u32,
        count: u32,
        refused: &[ElectionName],
    ) {
        let current = self
            .extension
            .as_ref()
            .is_some_and(|x| x.round == round && x.matched & bit(p) == 0);
        if !current {
            // A late answer (the listing followed a mismatched digest, a round trip after
            // the tick): its acceptances are too old to count, but its refusals still call
            // for full rounds, and whether it refused anything for the next tick's form.
            let late: Vec<usize> = refused
                .iter()
                .filter_map(|n| self.by_name.get(n).copied())
                .filter(|&i| self.elections[i].lead.is_some())
                .collect();
            if late.is_empty() {
                self.in_sync |= bit(p);
            } else {
                self.in_sync &= !bit(p);
                self.resync.extend(late);
            }
            return;
        }
        let Some(x) = self.extension.as_mut() else {
            return;
        };
        let Some(chunk) = x
            .chunks
            .iter_mut()
            .find(|(f, c, _)| *f == first && *c == count)
        else {
            return;
        };
        if chunk.2 & bit(p) != 0 {
            return;
        }
        chunk.2 |= bit(p);
        let refused: BTreeSet<usize> = refused
            .iter()
            .filter_map(|n| self.by_name.get(n).copied())
            .collect();
        // Refused nothing: the next tick tries the digest again.
        if refused.is_empty() {
            self.in_sync |= bit(p);
        } else {
            self.in_sync &= !bit(p);
        }
        let chunk = first as usize..first as usize + count as usize;
        self.count_acceptances(now, chunk, &refused);
    }

    /// One acceptor accepted the extension's entries in `range` but `refused` (which get
    /// full rounds at the next tick): those reaching a majority are extended, and what is
    /// done is reported.
    fn count_acceptances(
        &mut self,
        now: Instant,
        range: std::ops::Range<usize>,
        refused: &BTreeSet<usize>,
    ) {
        let Some(x) = self.extension.as_mut() else {
            return;
        };
        let mut reached = Vec::new();
        for k in range.start..range.end.min(x.entries.len()) {
            if refused.contains(&x.entries[k].0) {
                self.resync.insert(x.entries[k].0);
                continue;
            }
            x.acks[k] = x.acks[k].saturating_add(1);
            if x.acks[k] as usize == self.quorum {
                reached.push(k);
            }
        }
        for k in reached {
            self.extended(k);
        }
        self.report_extensions(now, false);
    }

    /// Entry `k` of the extension was accepted by a majority: its lease may run from the
    /// extension's send time, once applied ([`report_extensions`](Self::report_extensions)).
    fn extended(&mut self, k: usize) {
        let Some(x) = self.extension.as_mut() else {
            return;
        };
        x.done += 1;
        x.unreported.push(k);
    }

    /// Applies and reports the extensions accepted so far, once every entry is done (or
    /// when `finish`, at the next tick): as one [`CoreEvent::AllLeasesExtended`] naming
    /// the led elections it did not renew if those are at most as many as it did (one
    /// election's round no longer costs an event for every other), else one
    /// [`CoreEvent::LeaseExtended`] each. The
    /// core's deadline moves only when the driver is told, so the two never disagree;
    /// waiting for the batch only shortens the leases meanwhile. A lease that ran out
    /// before is not extended (its step-down is due).
    fn report_extensions(&mut self, now: Instant, finish: bool) {
        let Some(x) = self.extension.as_mut() else {
            return;
        };
        let complete = x.done >= x.entries.len();
        if !complete && !finish {
            return;
        }
        let until = x.sent + self.budget;
        let unreported = std::mem::take(&mut x.unreported);
        let entries = std::mem::take(&mut x.entries);
        let mut applied = Vec::with_capacity(unreported.len());
        for k in unreported {
            let (i, _, epoch) = entries[k];
            if let Some(l) = &mut self.elections[i].lead
                && l.epoch == epoch
                && l.lease > now
                && until > l.lease
            {
                l.lease = until;
                applied.push(i);
            }
        }
        if let Some(x) = self.extension.as_mut() {
            x.entries = entries;
        }
        // The led elections this extension did not renew (their own round is running,
        // or no majority accepted them): few, in steady state.
        let missed = self.led.len().saturating_sub(applied.len());
        if !applied.is_empty() && missed <= applied.len() {
            let mut except = Vec::with_capacity(missed);
            if missed > 0 {
                applied.sort_unstable();
                let mut renewed = applied.iter().peekable();
                for &i in &self.led {
                    if renewed.next_if_eq(&&i).is_none() {
                        except.push(self.elections[i].name.clone());
                    }
                }
            }
            self.events
                .push_back(CoreEvent::AllLeasesExtended { until, except });
        } else {
            for i in applied {
                if let Some(l) = self.elections[i].lead {
                    self.events.push_back(CoreEvent::LeaseExtended {
                        election: self.elections[i].name.clone(),
                        epoch: l.epoch,
                        until: l.lease,
                    });
                }
            }
        }
        if complete {
            self.extension = None;
        }
    }

    /// Ends the extension still out: what was extended is reported, and every led
    /// election whose extension no majority accepted gets a full round (which also brings
    /// acceptors that promised a higher ballot meanwhile back: decision record 131).
    fn finish_extension(&mut self, now: Instant) {
        if self.extension.is_none() {
            return;
        }
        self.report_extensions(now, true);
        let Some(x) = self.extension.take() else {
            return;
        };
        for (k, &(i, _, epoch)) in x.entries.iter().enumerate() {
            let e = &self.elections[i];
            if (x.acks[k] as usize) < self.quorum
                && e.round.is_none()
                && e.lead.is_some_and(|l| l.epoch == epoch)
            {
                self.start_round(i, now, true);
                self.reschedule(i);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_prepare_ack(
        &mut self,
        i: usize,
        now: Instant,
        p: usize,
        ballot: Ballot,
        promised: bool,
        seen: Ballot,
        open: Open,
    ) {
        let leading = self.elections[i].lead.is_some();
        let e = &mut self.elections[i];
        e.seen = e.seen.max(seen);
        let Some(Round {
            ballot: b,
            phase:
                Phase::Prepare {
                    answered,
                    free,
                    blocked,
                    collided,
                },
            ..
        }) = &mut e.round
        else {
            return;
        };
        if *b != ballot || *answered & bit(p) != 0 {
            return;
        }
        *answered |= bit(p);
        match open {
            // PaxosLease: a proposer may propose itself only if a majority hold nothing
            // open; a lease owner extending its lease may ignore its own open proposal.
            Open::None if promised => *free |= bit(p),
            Open::Yours(_) if promised && leading => *free |= bit(p),
            Open::Yours(left) | Open::Other(left) => {
                blocked.push(Duration::from_micros(left));
            }
            Open::None => *collided = true,
        }
        self.check_prepare(i, now);
    }

    /// Moves a round on once a majority is free (propose), or fails it once that can no
    /// longer happen.
    fn check_prepare(&mut self, i: usize, now: Instant) {
        let n = self.members.len();
        let Some(Round {
            ballot,
            renewal,
            phase: Phase::Prepare { answered, free, .. },
            ..
        }) = &self.elections[i].round
        else {
            return;
        };
        let (ballot, renewal) = (*ballot, *renewal);
        let free_n = free.count_ones() as usize;
        let unanswered = n - answered.count_ones() as usize;
        if free_n >= self.quorum {
            let epoch = match (renewal, self.elections[i].lead) {
                (true, Some(l)) => l.epoch,
                (true, None) => {
                    // The leadership ended while its renewal was preparing.
                    self.elections[i].round = None;
                    return;
                }
                (false, _) => ballot,
            };
            let deadline = now + self.phase_timeout(renewal).min(self.budget);
            let e = &mut self.elections[i];
            e.round = Some(Round {
                ballot,
                renewal,
                phase: Phase::Propose {
                    epoch,
                    sent: now,
                    answered: 0,
                    accepted: 0,
                },
                deadline,
            });
            let msg = Message::Propose {
                election: e.name.clone(),
                ballot,
                epoch,
                incarnation: self.cfg.incarnation,
            };
            self.broadcast(&msg);
            if let Some(Message::ProposeAck { accepted, seen, .. }) =
                self.on_propose(i, now, self.me, ballot, epoch, self.cfg.incarnation)
            {
                self.on_propose_ack(i, now, self.me, ballot, accepted, seen);
            }
        } else if free_n + unanswered < self.quorum {
            self.fail_round(i, now);
        }
    }

    fn on_propose_ack(
        &mut self,
        i: usize,
        now: Instant,
        p: usize,
        ballot: Ballot,
        ok: bool,
        seen: Ballot,
    ) {
        let e = &mut self.elections[i];
        e.seen = e.seen.max(seen);
        let Some(Round {
            ballot: b,
            phase: Phase::Propose {
                answered, accepted, ..
            },
            ..
        }) = &mut e.round
        else {
            return;
        };
        if *b != ballot || *answered & bit(p) != 0 {
            return;
        }
        *answered |= bit(p);
        if ok {
            *accepted |= bit(p);
        }
        self.check_propose(i, now);
    }

    /// Grants or extends the lease once a majority accepted; fails the round once that can
    /// no longer happen.
    fn check_propose(&mut self, i: usize, now: Instant) {
        let n = self.members.len();
        let Some(Round {
            ballot,
            renewal,
            phase:
                Phase::Propose {
                    epoch,
                    sent,
                    answered,
                    accepted,
                },
            ..
        }) = &self.elections[i].round
        else {
            return;
        };
        let (ballot, renewal, epoch, sent) = (*ballot, *renewal, *epoch, *sent);
        let acc = accepted.count_ones() as usize;
        let unanswered = n - answered.count_ones() as usize;
        if acc >= self.quorum {
            // The lease counts from the send time of the propose requests: every acceptor
            // of the majority accepted later, and keeps the proposal open for one lease
            // time on its own clock.
            let until = sent + self.budget;
            self.elections[i].round = None;
            if until <= now {
                // Accepted too late to be of use; the next round (or renewal) retries.
                self.retry_later(i, now);
                return;
            }
            if renewal {
                if let Some(l) = &mut self.elections[i].lead
                    && l.epoch == epoch
                {
                    l.ballot = l.ballot.max(ballot);
                }
                if let Some(l) = &mut self.elections[i].lead
                    && l.epoch == epoch
                    && until > l.lease
                {
                    l.lease = until;
                    self.events.push_back(CoreEvent::LeaseExtended {
                        election: self.elections[i].name.clone(),
                        epoch,
                        until,
                    });
                }
            } else {
                self.become_leader(i, now, epoch, until);
            }
        } else if acc + unanswered < self.quorum {
            self.fail_round(i, now);
        }
    }

    /// A round failed (a majority refused, or did not answer in time). A new leadership's
    /// proposal is released (nobody was granted it); the proposer retries after a random
    /// back-off, or once the leases that blocked it have run out.
    fn fail_round(&mut self, i: usize, now: Instant) {
        let Some(round) = self.elections[i].round.take() else {
            return;
        };
        let mut wait = Duration::ZERO;
        match round.phase {
            Phase::Prepare {
                free, mut blocked, ..
            } => {
                let need = self.quorum.saturating_sub(free.count_ones() as usize);
                blocked.sort_unstable();
                if need > 0 && blocked.len() >= need {
                    wait = blocked[need - 1];
                }
            }
            Phase::Propose { epoch, .. } => {
                if !round.renewal {
                    self.release(i, now, epoch);
                }
            }
        }
        tracing::trace!(node = %self.cfg.me, election = %self.elections[i].name, ballot = round.ballot, "round failed");
        if round.renewal {
            if self.elections[i].lead.is_some() {
                // Retry soon: the lease is still running.
                let jitter = self.random_below(self.cfg.backoff / 4);
                let t = now + jitter;
                self.renew_at(i, t);
            }
        } else {
            let jitter = self.random_below(self.cfg.backoff);
            self.elections[i].next_round = now + wait + jitter;
        }
    }

    /// Schedules the next ordinary round after a random back-off.
    fn retry_later(&mut self, i: usize, now: Instant) {
        let jitter = self.random_below(self.cfg.backoff);
        self.elections[i].next_round = now + jitter;
    }

    /// Starts a renewal of election `i` at `t` at the latest (the node-wide renewal tick
    /// moves earlier if needed).
    fn renew_at(&mut self, _i: usize, t: Instant) {
        self.next_renew = Some(self.next_renew.map_or(t, |r| r.min(t)));
    }

    /// Abandons the round of election `i` (a withdrawal): a proposal of a new leadership
    /// that may have been accepted is released.
    fn abandon(&mut self, i: usize, now: Instant) {
        if let Some(round) = self.elections[i].round.take()
            && let Phase::Propose { epoch, .. } = round.phase
            && !round.renewal
        {
            self.release(i, now, epoch);
        }
    }

    /// RELEASE of this node's proposal at `epoch` to every acceptor, this node's own
    /// included.
    fn release(&mut self, i: usize, now: Instant, epoch: EpochNo) {
        self.release_to(i, now, epoch, None);
    }

    /// The candidate a resigning owner of election `i` hands over to: the first member
    /// after this one, in member order (the order RELEASE's turns follow), that this
    /// acceptor saw waiting for the lease, with a known run.
    fn successor(&self, i: usize) -> Option<usize> {
        let n = self.members.len();
        let waiting = self.elections[i].waiting;
        (1..n)
            .map(|k| (self.me + k) % n)
            .find(|&s| waiting & bit(s) != 0 && self.incarnations[s] != 0)
    }

    /// RELEASE of this node's proposal at `epoch` to every acceptor, this node's own
    /// included; to the candidate `to`, a HANDOFF instead: the release with this
    /// acceptor's promise of the candidate's next ballot, so that its round can propose
    /// at once (decision record 130). The promise follows the acceptor's rules: nothing
    /// is open here any more, and the ballot is above every promise and the floor.
    fn release_to(&mut self, i: usize, now: Instant, epoch: EpochNo, to: Option<usize>) {
        let inc = self.cfg.incarnation;
        let e = &mut self.elections[i];
        e.released = Some((self.me, epoch, inc));
        if e.accepted
            .is_some_and(|a| a.owner == self.me && a.epoch == epoch && a.incarnation == inc)
        {
            self.set_accepted(i, None);
        }
        let e = &mut self.elections[i];
        let above = e.seen.max(e.promised).max(e.floor).max(e.asked);
        let handoff = match to {
            Some(s) if e.accepted.is_none() => ballot_of(s, above).map(|b| (s, b)),
            _ => None,
        };
        if let Some((s, ballot)) = handoff {
            e.promised = ballot;
            e.seen = ballot;
            e.waiting &= !bit(s);
        }
        let release = Message::Release {
            election: e.name.clone(),
            epoch,
            incarnation: inc,
        };
        let handoff = handoff.map(|(s, ballot)| {
            (
                s,
                Message::Handoff {
                    election: e.name.clone(),
                    epoch,
                    incarnation: inc,
                    ballot,
                    candidate: self.incarnations[s],
                },
            )
        });
        for p in 0..self.members.len() {
            if p == self.me {
                continue;
            }
            match &handoff {
                Some((s, h)) if *s == p => self.send(p, h.clone()),
                _ => self.send(p, release.clone()),
            }
        }
        self.refresh_view(i);
        let _ = now;
    }

    // ------------------------------------------------------------ transitions

    /// This node leads election `i` at `epoch`, guaranteed until `lease`.
    fn become_leader(&mut self, i: usize, now: Instant, epoch: EpochNo, lease: Instant) {
        let e = &mut self.elections[i];
        e.lead = Some(Lead {
            epoch,
            lease,
            ballot: epoch,
        });
        e.campaigning = false;
        self.led.insert(i);
        tracing::info!(node = %self.cfg.me, election = %e.name, epoch, "became leader");
        self.events.push_back(CoreEvent::Elected {
            election: e.name.clone(),
            epoch,
            lease_until: lease,
        });
        self.refresh_view(i);
        let t = now + self.cfg.renew;
        self.renew_at(i, t);
    }

    /// Ends this node's leadership of election `i`, reporting [`CoreEvent::Lost`]. A
    /// renewal running is abandoned; nothing is released (only a resign releases).
    fn step_down(&mut self, i: usize, now: Instant, reason: LossReason) {
        let e = &mut self.elections[i];
        let Some(lead) = e.lead.take() else {
            return;
        };
        if e.round.as_ref().is_some_and(|r| r.renewal) {
            e.round = None;
        }
        e.next_round = now + self.cfg.backoff;
        self.led.remove(&i);
        if self.led.is_empty() {
            self.next_renew = None;
        }
        tracing::info!(node = %self.cfg.me, election = %e.name, epoch = lead.epoch, ?reason, "stepped down");
        self.events.push_back(CoreEvent::Lost {
            election: e.name.clone(),
            epoch: lead.epoch,
            reason,
        });
        self.refresh_view(i);
    }

    /// Reports a change of the leader this node knows in election `i`: itself while it
    /// leads, else the proposer of the proposal its acceptor holds open.
    fn refresh_view(&mut self, i: usize) {
        let e = &mut self.elections[i];
        let view = match (e.lead, e.accepted) {
            (Some(l), _) => Some((self.me, l.epoch)),
            (None, Some(a)) => Some((a.owner, a.epoch)),
            (None, None) => None,
        };
        if e.known == view {
            return;
        }
        e.known = view;
        self.events.push_back(CoreEvent::LeaderChanged {
            election: e.name.clone(),
            leader: view.map(|(l, t)| (self.members[l].clone(), t)),
        });
    }

    // ------------------------------------------------------------- helpers

    /// Where election `i` waits instead of in the timer heap, if it does: with no round or
    /// campaign running, [`Parked::Leading`] if this node leads it and its lease is its
    /// first deadline; else [`Parked::Accepted`] by the proposer whose matched digest alone
    /// keeps its accepted proposal open past its own expiry.
    fn parks(&self, i: usize) -> Option<Parked> {
        let e = self.elections.get(i).filter(|e| e.live)?;
        if e.round.is_some() || self.start_due(i).is_some() {
            return None;
        }
        if let Some(l) = e.lead {
            // Led: parked while the lease is the first timer (this node's acceptor holds
            // the proposal open at least as long).
            return e
                .accepted
                .is_none_or(|a| self.open_until(&a) >= l.lease)
                .then_some(Parked::Leading);
        }
        let a = e.accepted?;
        self.extended_until[a.owner]
            .is_some_and(|t| t > a.expires)
            .then_some(Parked::Accepted(a.owner))
    }

    /// `leading_wake` passed: the parked led elections whose deadline is due are handled
    /// (`due`); the others stay, and the earliest of their deadlines is the next wake.
    fn wake_leading(&mut self, now: Instant, due: &mut Vec<usize>) {
        let mut wake: Option<Instant> = None;
        let mut kept = Vec::with_capacity(self.leading.len());
        for i in std::mem::take(&mut self.leading) {
            if !self.is_live(i) || self.elections[i].parked != Some(Parked::Leading) {
                continue;
            }
            match self.deadline(i) {
                Some(d) if d > now => {
                    wake = Some(wake.map_or(d, |w| w.min(d)));
                    kept.push(i);
                }
                _ => {
                    self.elections[i].parked = None;
                    due.push(i);
                }
            }
        }
        self.leading = kept;
        self.leading_wake = wake;
    }

    /// When election `i`'s next timer fires, if one runs.
    fn deadline(&self, i: usize) -> Option<Instant> {
        let e = &self.elections[i];
        [
            e.lead.map(|l| l.lease),
            e.accepted.map(|a| self.open_until(&a)),
            e.round.as_ref().map(|r| r.deadline),
            self.start_due(i),
        ]
        .into_iter()
        .flatten()
        .min()
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

    /// Creates election `name` whatever the limit, with the node's floor as its fencing
    /// floor: no ballot at or below the floor of a forgotten election is promised there.
    fn create(&mut self, name: &ElectionName, now: Instant) -> usize {
        let e = Election::new(name.clone(), now, self.floor);
        let i = match self.free.pop() {
            Some(i) => {
                self.elections[i] = e;
                i
            }
            None => {
                self.elections.push(e);
                self.armed.push(None);
                self.elections.len() - 1
            }
        };
        self.armed[i] = None;
        self.by_name.insert(name.clone(), i);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_every());
        }
        i
    }

    fn is_live(&self, i: usize) -> bool {
        self.elections.get(i).is_some_and(|e| e.live)
    }

    /// The slots of held elections, in slot order.
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.elections.len()).filter(|&i| self.is_live(i))
    }

    /// How often idle elections are looked for: an eighth of `forget_after`.
    fn sweep_every(&self) -> Duration {
        (self.cfg.forget_after / 8).max(Duration::from_millis(1))
    }

    /// Whether election `i` must be kept whatever its age.
    fn busy(&self, i: usize, now: Instant) -> bool {
        let e = &self.elections[i];
        e.campaigning
            || e.lead.is_some()
            || e.round.is_some()
            || e.accepted.is_some()
            || e.known.is_some()
            || e.quiet_until.is_some_and(|q| now < q)
            || self.dirty.contains(&i)
    }

    /// Forgets every election idle for `forget_after`; its fencing floor raises the node's.
    fn sweep(&mut self, now: Instant) {
        let every = self.sweep_every();
        let live: Vec<usize> = self.live().collect();
        for i in live {
            if self.busy(i, now) {
                self.elections[i].last_active = now;
                continue;
            }
            if now < self.elections[i].last_active + self.cfg.forget_after + every {
                continue;
            }
            let e = &self.elections[i];
            // The promise is volatile anyway; the floor is what must survive forgetting.
            self.floor = self.floor.max(e.floor).max(e.promised);
            let name = e.name.clone();
            self.by_name.remove(&name);
            self.elections[i].live = false;
            self.free.push(i);
            self.forgotten.push(name);
            self.stats.forgotten += 1;
        }
        if self.by_name.is_empty() {
            self.elections.clear();
            self.free.clear();
            self.armed.clear();
            self.timers.clear();
            self.parked.iter_mut().for_each(Vec::clear);
            self.leading.clear();
            self.leading_wake = None;
        }
        self.next_sweep = (!self.by_name.is_empty()).then(|| now + every);
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

/// The smallest ballot of `member` above `above`.
fn ballot_of(member: usize, above: Ballot) -> Option<Ballot> {
    let member = member as u64;
    let base = above - above % MEMBER_SLOTS;
    let b = base.checked_add(member)?;
    if b > above {
        Some(b)
    } else {
        b.checked_add(MEMBER_SLOTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(me: usize, n: usize) -> NodeConfig {
        NodeConfig {
            me: NodeId::new(format!("n{}", me + 1)).unwrap(),
            members: (0..n)
                .map(|i| NodeId::new(format!("n{}", i + 1)).unwrap())
                .collect(),
            voters_only: BTreeSet::new(),
            lease: Duration::from_millis(150),
            renew: Duration::from_millis(25),
            round_timeout: Duration::from_millis(50),
            backoff: Duration::from_millis(20),
            clock_drift: Duration::from_millis(25),
            kill_grace: Duration::from_millis(50),
            seed: 1,
            incarnation: 1,
            max_elections: 10,
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn ballots_are_unique_per_member_and_above_what_was_seen() {
        let t = Instant::now();
        let a = Node::new(cfg(0, 3), t, []).unwrap();
        let b = Node::new(cfg(2, 3), t, []).unwrap();
        assert_eq!(a.next_ballot(0), Some(64));
        assert_eq!(b.next_ballot(0), Some(2));
        assert_eq!(b.next_ballot(2), Some(66));
        assert_eq!(a.next_ballot(66), Some(128));
        assert_eq!(a.next_ballot(u64::MAX - 3), None);
        for x in [0, 1, 63, 64, 65, 1000] {
            let ba = a.next_ballot(x).unwrap();
            let bb = b.next_ballot(x).unwrap();
            assert!(ba > x && bb > x && ba != bb);
            assert_eq!(ba % 64, 0);
            assert_eq!(bb % 64, 2);
        }
    }
}
