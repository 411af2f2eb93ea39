//! [`Node`]: one member's state for every election, driven by inputs and polled for outputs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use election_core::{ElectionName, Error, LossReason, NodeId, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::election::{Election, Role, bit};
use election_peer::CoreEvent;

use election_peer::Forget;

use super::{CoreStats, HardState, Message, NodeConfig, SetUpdate, Term, Transmit};

/// At most this many heartbeat rounds are remembered while waiting for acknowledgements.
const MAX_ROUNDS_KEPT: usize = 1024;
/// A peer that has not confirmed our set of led elections gets it again at most every
/// this many rounds (it may be down; the set can be large).
const FULL_SET_EVERY: u64 = 4;
/// Timers due this close after `now` fire together with those due at `now`.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Changes to the led set remembered for deltas; a peer further behind gets the full set.
const MAX_CHANGES: usize = 1 << 16;
/// A campaigning follower with a priority above 0 tells its leader again that it campaigns
/// every this many heartbeat rounds: a lost Candidacy would otherwise keep a preferred
/// member from ever being handed leadership. (A leader only steps down for a member of
/// higher priority than its own, so above 0: members at the default never repeat, and a
/// cluster without priorities sends nothing more.)
const CANDIDACY_EVERY: u64 = 32;

/// A heartbeat round this node sent as a leader.
#[derive(Clone, Copy, Debug)]
struct SentRound {
    round: u64,
    sent: Instant,
    version: u64,
}

/// What this node knows about one other member.
#[derive(Debug, Default)]
struct Peer {
    // --- The peer as a leader of elections this node follows. ---
    /// When its last heartbeat arrived.
    last_heard: Option<Instant>,
    /// The (incarnation, version) of its led set that `claimed` reflects.
    holds: Option<(u64, u64)>,
    /// Elections the peer claims to lead, with the claimed term.
    claimed: BTreeMap<usize, Term>,
    /// Claimed elections where this node's term is higher: refused in every ack.
    rejects: BTreeSet<usize>,
    /// Its set claims elections this node ignored (it held `max_elections`): acks to it
    /// promise leases this node cannot keep track of (see `Node::blind_until`).
    untracked: bool,
    // --- The peer as a follower of elections this node leads. ---
    /// The highest heartbeat round it acknowledged holding the right set.
    acked_round: u64,
    /// The version of our led set it says it holds.
    acked_version: Option<u64>,
    /// The version and round at which we last sent it the full set.
    full_sent: Option<(u64, u64)>,
    // --- The peer as a candidate where this node leads (preferred leaders). ---
    /// Its priority as a candidate, from its last Candidacy (0 until one arrives).
    priority: u32,
    /// When its last acknowledgement holding our led set arrived.
    last_ack: Option<Instant>,
    /// Since when it has acknowledged holding our led set with no gap longer than the
    /// minimum election timeout and no restart (`None`: it does not hold the set now).
    steady_since: Option<Instant>,
}

/// One member's Raft election state for any number of elections (partitioned leadership).
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
/// 1. drain [`poll_persist`](Self::poll_persist) and make every returned term and vote
///    durable (write, fsync, rename) **before** sending anything: the transmits that
///    follow may grant a vote or announce a term that must survive a crash;
/// 2. drain [`poll_transmit`](Self::poll_transmit) and send each batch to its peer (one
///    batch per peer per step: many elections share one packet);
/// 3. drain [`poll_event`](Self::poll_event) (leader changes, grants, lease extensions,
///    losses);
/// 4. call [`poll_timeout`](Self::poll_timeout) and arrange for
///    [`handle_timeout`](Self::handle_timeout) to be called at that instant (or earlier;
///    spurious calls are harmless).
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
    /// Election slots; forgotten ones are reused (`free`), so this never outgrows the
    /// most elections held at once.
    elections: Vec<Election>,
    by_name: HashMap<ElectionName, usize>,
    free: Vec<usize>,
    /// The highest term in which this node may have voted in an election it forgot
    /// (persisted): an election it does not hold starts at `floor + 1` (0 while the floor
    /// is 0), so it never votes twice in one term.
    floor: Term,
    /// Forgotten since the last `poll_forget`.
    forgotten: Vec<ElectionName>,
    /// When idle elections are looked for next.
    next_sweep: Option<Instant>,
    /// Until then an election created here refuses votes and does not campaign: this node
    /// acknowledged a peer's set with claims it ignored, so it may have promised a lease in
    /// an election it does not hold (the restart rule, for one election at a time).
    blind_until: Option<Instant>,
    peers: Vec<Peer>,
    // --- Leader side, shared by every election this node leads. ---
    version: u64,
    /// `(version, election, term)`: the change that made `version`; term 0 = given up.
    /// By name: the election may be forgotten (its slot reused) while the change is kept.
    changes: VecDeque<(u64, ElectionName, Term)>,
    led: BTreeSet<usize>,
    /// Led elections not granted yet (waiting for a quorum round).
    pending: BTreeSet<usize>,
    round: u64,
    rounds: VecDeque<SentRound>,
    next_heartbeat: Option<Instant>,
    quorum_round: u64,
    quorum_sent: Option<Instant>,
    // --- Outputs. ---
    outbox: BTreeMap<usize, Vec<Message>>,
    events: VecDeque<CoreEvent>,
    dirty: BTreeSet<usize>,
    /// Election timers (not the heartbeat). `None`: rescan every election. `Some(t)`: no
    /// election timer is due before `t` (a lower bound: timers only move later except in
    /// the transitions that call `touch`).
    timeout_cache: Option<Option<Instant>>,
    stats: CoreStats,
}

impl Node {
    /// A node starting at `now` from its persisted `state` (empty on first start).
    ///
    /// For one minimum election timeout after `now` the node refuses every (pre-)vote: it
    /// may have heard from a live leader just before it restarted, and that promise (the
    /// leader lease) must outlive the restart.
    pub fn new(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
    ) -> Result<Node> {
        Node::restore(cfg, now, state, 0)
    }

    /// As [`new`](Self::new), with the persisted `floor`: the highest term of every
    /// election this node forgot ([`poll_forget`](Self::poll_forget)).
    pub fn restore(
        cfg: NodeConfig,
        now: Instant,
        state: impl IntoIterator<Item = (ElectionName, HardState)>,
        floor: Term,
    ) -> Result<Node> {
        if cfg.max_elections == 0 {
            return Err(Error::config(
                "raft.max_elections",
                "must be greater than zero",
            ));
        }
        if !cfg.members.contains(&cfg.me) {
            return Err(Error::config(
                "peers",
                format!("this node ({}) must be listed among the members", cfg.me),
            ));
        }
        if cfg.members.len() > 64 {
            return Err(Error::config(
                "peers",
                format!("{} members; at most 64 are supported", cfg.members.len()),
            ));
        }
        let members: Vec<NodeId> = cfg.members.iter().cloned().collect();
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
            peers: members.iter().map(|_| Peer::default()).collect(),
            members,
            index,
            me,
            elections: Vec::new(),
            by_name: HashMap::new(),
            free: Vec::new(),
            floor,
            forgotten: Vec::new(),
            next_sweep: None,
            blind_until: None,
            version: 0,
            changes: VecDeque::new(),
            led: BTreeSet::new(),
            pending: BTreeSet::new(),
            round: 0,
            rounds: VecDeque::new(),
            next_heartbeat: None,
            quorum_round: 0,
            quorum_sent: None,
            outbox: BTreeMap::new(),
            events: VecDeque::new(),
            dirty: BTreeSet::new(),
            timeout_cache: None,
            stats: CoreStats::default(),
            cfg,
        };
        // Held elections are all loaded, even beyond `max_elections` (a lowered setting):
        // the idle ones are forgotten at the first sweeps.
        for (name, hard) in state {
            let i = node.create(&name, now);
            let e = &mut node.elections[i];
            e.term = hard.term;
            e.vote = hard.vote;
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

    // ------------------------------------------------------------------ inputs

    /// Starts campaigning in `election`: when no live leader is known, a pre-vote begins
    /// soon (after a short random delay); otherwise this node waits for the leader to fail
    /// (or to hand over). Returns `false` if this node is a voter that never campaigns, or
    /// if `election` is new and this node already holds `max_elections`
    /// ([`refuses_new`](Self::refuses_new) tells which).
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
        self.elections[i].campaigning = true;
        match self.elections[i].leader {
            None => {
                let quick = self.cfg.election_timeout_min / 2;
                let jitter = self.random_below(quick);
                let e = &mut self.elections[i];
                // Jitter from the end of the start-up quiet time, or every campaign begun
                // during it would fire at the same instant (split votes everywhere).
                e.timer_base = now.max(self.booted + self.cfg.election_timeout_min);
                e.timeout = jitter;
            }
            Some((l, term)) if l != self.me => {
                self.send(
                    l,
                    Message::Candidacy {
                        election: election.clone(),
                        term,
                        campaigning: true,
                        priority: self.cfg.priority,
                    },
                );
            }
            Some(_) => {}
        }
        self.touch(i);
        true
    }

    /// Stops campaigning in `election`. A leadership not yet granted is given up; a
    /// granted one is unaffected (use [`resign`](Self::resign)).
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
            Role::PreCandidate { .. } | Role::Candidate { .. } => {
                e.role = Role::Follower;
                e.timer_base = now;
            }
            Role::Leader { granted: false, .. } => {
                self.step_down(i, now, LossReason::Resigned);
            }
            Role::Leader { granted: true, .. } | Role::Follower => {}
        }
        if let Some((l, term)) = self.elections[i].leader
            && l != self.me
        {
            self.send(
                l,
                Message::Candidacy {
                    election: election.clone(),
                    term,
                    campaigning: false,
                    priority: self.cfg.priority,
                },
            );
        }
    }

    /// Resigns the leadership of `election`: steps down at once (reporting
    /// [`CoreEvent::Lost`] with `Resigned`), stops campaigning there, and sends TimeoutNow to
    /// the campaigning follower that acknowledged the most recent heartbeat round, which
    /// then campaigns without waiting and without pre-vote (§3.10). This node does not
    /// campaign there again for one maximum election timeout, so it does not win the
    /// next election back. Returns whether this node was leader.
    pub fn resign(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        let Role::Leader { candidates, .. } = self.elections[i].role else {
            return false;
        };
        let term = self.elections[i].term;
        let target = (0..self.members.len())
            .filter(|&p| p != self.me && candidates & bit(p) != 0)
            .max_by_key(|&p| (self.peers[p].acked_round, std::cmp::Reverse(p)));
        self.elections[i].campaigning = false;
        self.step_down(i, now, LossReason::Resigned);
        self.elections[i].quiet_until = Some(now + self.cfg.election_timeout_max);
        if let Some(p) = target {
            tracing::debug!(node = %self.cfg.me, %election, term, to = %self.members[p], "transferring leadership");
            self.send(
                p,
                Message::TimeoutNow {
                    election: election.clone(),
                    term,
                },
            );
        }
        true
    }

    /// The holder's deadline for `election` passed before this node's lease did (the driver
    /// could not extend it in time): leaves the leader role *without* a TimeoutNow, as after
    /// a lost quorum. This node and its followers keep refusing other candidates until the
    /// lease plus `clock_drift + kill_grace` has passed, so the old holder's child keeps its
    /// kill grace (the handover rule). Returns whether this node was leader.
    pub fn expire(&mut self, now: Instant, election: &ElectionName) -> bool {
        let Some(&i) = self.by_name.get(election) else {
            return false;
        };
        if !self.elections[i].is_leader() {
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
        match msg {
            Message::Heartbeat {
                round,
                incarnation,
                version,
                update,
            } => self.on_heartbeat(now, p, round, incarnation, version, update),
            Message::HeartbeatAck {
                round,
                incarnation,
                version,
                need_full,
                rejects,
            } => self.on_heartbeat_ack(now, p, round, incarnation, version, need_full, rejects),
            Message::PreVote {
                election,
                term,
                force,
            } => self.on_pre_vote(now, p, election, term, force),
            Message::PreVoteResp {
                election,
                term,
                granted,
            } => self.on_pre_vote_resp(now, p, &election, term, granted),
            Message::Vote {
                election,
                term,
                force,
            } => self.on_vote(now, p, election, term, force),
            Message::VoteResp {
                election,
                term,
                granted,
            } => self.on_vote_resp(now, p, &election, term, granted),
            Message::TimeoutNow { election, term } => self.on_timeout_now(now, &election, term),
            Message::Candidacy {
                election,
                term,
                campaigning,
                priority,
            } => self.on_candidacy(p, &election, term, campaigning, priority),
            Message::Prefer { election, term } => self.on_prefer(&election, term),
        }
        true
    }

    /// Fires every timer due at `now` (or within [`TIMER_SLACK`] after it, so that
    /// thousands of elections started together share wake-ups): heartbeat rounds,
    /// election timeouts, lease expiry. Early by at most the slack is harmless: a leader
    /// steps down early; a follower still bound by a lease waits until it ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = now + TIMER_SLACK;
        if self.next_heartbeat.is_some_and(|t| t <= due) {
            self.yield_to_preferred(now);
            self.send_round(now);
        }
        if self.next_sweep.is_some_and(|t| t <= due) {
            self.sweep(now);
        }
        // Election timers only move later between the transitions that `touch` them, so
        // the cached lower bound tells whether any can be due.
        if self
            .timeout_cache
            .is_some_and(|t| t.is_none_or(|t| t > due))
        {
            return;
        }
        let mut next: Option<Instant> = None;
        for i in 0..self.elections.len() {
            if self.deadline(i).is_some_and(|d| d <= due) {
                match self.elections[i].role {
                    Role::Leader { .. } => self.step_down(i, now, LossReason::QuorumLost),
                    Role::Follower if self.in_lease(i, now) => {}
                    Role::Follower | Role::PreCandidate { .. } | Role::Candidate { .. } => {
                        self.start_pre_vote(i, now)
                    }
                }
            }
            if let Some(d) = self.deadline(i) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        self.timeout_cache = Some(next);
    }

    // ----------------------------------------------------------------- outputs

    /// Terms and votes to make durable before sending the next transmits; `None` when
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
                .map(|i| {
                    let e = &self.elections[i];
                    (
                        e.name.clone(),
                        HardState {
                            term: e.term,
                            vote: e.vote.clone(),
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

    /// The next batch of messages for one peer.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (p, messages) = self.outbox.pop_first()?;
        Some(Transmit {
            to: self.members[p].clone(),
            messages,
        })
    }

    /// The next event. Epochs are terms. [`CoreEvent::Elected`] comes once per leadership,
    /// when the first heartbeat round of the term is acknowledged by a quorum, and clears
    /// this node's candidacy there; extensions cover every leadership at once
    /// ([`CoreEvent::AllLeasesExtended`], never `LeaseExtended`); [`CoreEvent::Lost`] says
    /// `QuorumLost` (lease lapsed), `Revoked` (higher term seen), `Resigned`, `Expired`
    /// (see [`expire`](Self::expire)) or `Yielded` (stepped down for a campaigning member of
    /// higher priority, decision record 134).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let elections = match self.timeout_cache {
            Some(t) => t,
            None => {
                let next = self.scan_deadlines();
                self.timeout_cache = Some(next);
                next
            }
        };
        [elections, self.next_heartbeat, self.next_sweep]
            .into_iter()
            .flatten()
            .min()
    }

    /// The earliest election timer.
    fn scan_deadlines(&self) -> Option<Instant> {
        (0..self.elections.len())
            .filter_map(|i| self.deadline(i))
            .min()
    }

    // ----------------------------------------------------------------- queries

    /// Who leads `election` as this node knows it.
    pub fn leader(&self, election: &ElectionName) -> Option<(NodeId, Term)> {
        let e = &self.elections[*self.by_name.get(election)?];
        e.leader.map(|(l, t)| (self.members[l].clone(), t))
    }

    /// This node's term in `election` (0 if it never heard of it).
    pub fn term(&self, election: &ElectionName) -> Term {
        self.by_name
            .get(election)
            .map_or(0, |&i| self.elections[i].term)
    }

    /// The lease deadline if this node leads `election` and the leadership was granted.
    pub fn lease_until(&self, election: &ElectionName) -> Option<Instant> {
        let e = &self.elections[*self.by_name.get(election)?];
        match e.role {
            Role::Leader {
                first_round,
                since,
                granted: true,
                ..
            } => Some(self.lease_end(first_round, since)),
            _ => None,
        }
    }

    /// Whether this node campaigns in `election`.
    pub fn is_campaigning(&self, election: &ElectionName) -> bool {
        self.by_name
            .get(election)
            .is_some_and(|&i| self.elections[i].campaigning)
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

    /// The highest term of every election this node forgot.
    pub fn floor(&self) -> Term {
        self.floor
    }

    /// Counters of refused input.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    // ---------------------------------------------------------- transitions

    /// Starts (or restarts) a pre-vote round for `term + 1` (§9.6): a node that cannot win
    /// does not disturb the others' terms.
    fn start_pre_vote(&mut self, i: usize, now: Instant) {
        if !self.can_campaign || !self.elections[i].campaigning {
            self.elections[i].role = Role::Follower;
            return;
        }
        self.clear_leader(i);
        let timeout = self.random_timeout();
        let e = &mut self.elections[i];
        e.preferred = false;
        e.role = Role::PreCandidate {
            granted: bit(self.me),
            deadline: now + timeout,
        };
        if self.quorum == 1 {
            self.become_candidate(i, now, false);
            return;
        }
        let msg = Message::PreVote {
            election: e.name.clone(),
            term: e.term + 1,
            force: false,
        };
        self.broadcast(&msg);
        self.touch(i);
    }

    /// §5.2: "To begin an election, a follower increments its current term and
    /// transitions to candidate state. It then votes for itself."
    fn become_candidate(&mut self, i: usize, now: Instant, force: bool) {
        self.clear_leader(i);
        let timeout = self.random_timeout();
        let e = &mut self.elections[i];
        e.term += 1;
        e.vote = Some(self.cfg.me.clone());
        e.role = Role::Candidate {
            granted: bit(self.me),
            deadline: now + timeout,
            started: now,
        };
        self.dirty.insert(i);
        let term = e.term;
        tracing::debug!(node = %self.cfg.me, election = %e.name, term, force, "became candidate");
        self.touch(i);
        self.note_term_raised(i);
        if self.quorum == 1 {
            self.become_leader(i, now, now);
            return;
        }
        let msg = Message::Vote {
            election: self.elections[i].name.clone(),
            term,
            force,
        };
        self.broadcast(&msg);
    }

    /// §5.2: "A candidate wins an election if it receives votes from a majority of the
    /// servers in the full cluster for the same term." Every granting voter refuses
    /// other candidates for `election_timeout_min` after it received the request sent at
    /// `since`, so the leadership is granted at once with a lease from `since`; it
    /// announces itself with a heartbeat round, whose acknowledgements extend the lease.
    fn become_leader(&mut self, i: usize, now: Instant, since: Instant) {
        let lease_until = since + self.budget;
        let granted = lease_until > now;
        let e = &mut self.elections[i];
        e.role = Role::Leader {
            first_round: self.round + 1,
            since,
            granted,
            candidates: 0,
        };
        e.hold_until = None;
        let term = e.term;
        tracing::debug!(node = %self.cfg.me, election = %e.name, term, "became leader");
        if granted {
            e.campaigning = false;
            self.events.push_back(CoreEvent::Elected {
                election: e.name.clone(),
                epoch: term,
                lease_until,
            });
        }
        self.set_leader(i, Some((self.me, term)));
        self.led.insert(i);
        if !granted {
            self.pending.insert(i);
        }
        self.record_change(i, term);
        // Announce it with a round at once, but only one round for every election won in
        // this step (10,000 elections starting together must not cost 10,000 rounds).
        self.next_heartbeat = Some(now);
        self.touch(i);
    }

    /// Leaves the leader role (check-quorum, a higher term, or resign). Until the lease
    /// could have ended at the followers (the acknowledged round's send time plus the
    /// minimum election timeout) this node still refuses votes.
    fn step_down(&mut self, i: usize, now: Instant, reason: LossReason) {
        let Role::Leader {
            first_round,
            since,
            granted,
            ..
        } = self.elections[i].role
        else {
            return;
        };
        let lease_end = self.lease_end(first_round, since);
        let hold = lease_end + self.cfg.clock_drift + self.cfg.kill_grace;
        let timeout = self.random_timeout();
        let e = &mut self.elections[i];
        e.role = Role::Follower;
        e.hold_until = Some(hold);
        // Not even this node may lead again before the old lease's margin has passed: the
        // guarded child of the old leadership may still be in its kill grace.
        e.quiet_until = Some(e.quiet_until.map_or(hold, |q| q.max(hold)));
        e.timer_base = now;
        e.timeout = timeout;
        let term = e.term;
        tracing::debug!(node = %self.cfg.me, election = %e.name, term, ?reason, "stepped down");
        if granted {
            self.events.push_back(CoreEvent::Lost {
                election: e.name.clone(),
                epoch: term,
                reason,
            });
        }
        self.clear_leader(i);
        self.led.remove(&i);
        self.pending.remove(&i);
        self.record_change(i, 0);
        if self.next_heartbeat.is_none() {
            self.next_heartbeat = Some(now);
        }
        self.touch(i);
    }

    /// §5.1: "If a server receives a request with a higher term, it updates its current
    /// term to the new value"; "if a candidate or leader discovers that its term is out of
    /// date, it immediately reverts to follower state."
    fn adopt_term(&mut self, i: usize, term: Term, now: Instant) {
        if term <= self.elections[i].term {
            return;
        }
        if self.elections[i].is_leader() {
            self.step_down(i, now, LossReason::Revoked);
        }
        let timeout = self.random_timeout();
        let e = &mut self.elections[i];
        e.term = term;
        e.vote = None;
        e.preferred = false;
        e.role = Role::Follower;
        e.timer_base = now;
        e.timeout = timeout;
        self.dirty.insert(i);
        if self.elections[i].leader.is_some_and(|(_, t)| t < term) {
            self.set_leader(i, None);
        }
        self.note_term_raised(i);
        self.touch(i);
    }

    /// After this node's term in election `i` rose, every peer claiming to lead it at a
    /// lower term is refused in the next acknowledgements.
    fn note_term_raised(&mut self, i: usize) {
        let term = self.elections[i].term;
        for &(p, claimed) in &self.elections[i].claims {
            if claimed < term {
                self.peers[p].rejects.insert(i);
            }
        }
    }

    // ------------------------------------------------------------ messages

    #[allow(clippy::too_many_arguments)]
    fn on_heartbeat(
        &mut self,
        now: Instant,
        p: usize,
        round: u64,
        incarnation: u64,
        version: u64,
        update: Option<SetUpdate>,
    ) {
        let peer = &mut self.peers[p];
        let prev_heard = peer.last_heard;
        peer.last_heard = Some(prev_heard.map_or(now, |h| h.max(now)));
        let need_full = !self.apply_update(now, p, incarnation, version, update, prev_heard);
        if !need_full && self.peers[p].untracked {
            // This ack promises the peer's leases in elections this node ignored.
            let blind = now + self.cfg.election_timeout_min;
            self.blind_until = Some(self.blind_until.map_or(blind, |b| b.max(blind)));
        }
        if !need_full && self.cfg.priority != 0 && round % CANDIDACY_EVERY == 0 {
            self.repeat_candidacy(p);
        }
        let rejects = if need_full {
            Vec::new()
        } else {
            self.peers[p]
                .rejects
                .iter()
                .map(|&i| (self.elections[i].name.clone(), self.elections[i].term))
                .collect()
        };
        self.send(
            p,
            Message::HeartbeatAck {
                round,
                incarnation,
                version,
                need_full,
                rejects,
            },
        );
    }

    /// Tells peer `p` again that this node campaigns (with its priority) in every election
    /// `p` leads here.
    fn repeat_candidacy(&mut self, p: usize) {
        let claimed: Vec<(usize, Term)> = self.peers[p]
            .claimed
            .iter()
            .map(|(&i, &t)| (i, t))
            .collect();
        for (i, t) in claimed {
            let e = &self.elections[i];
            if e.campaigning && e.leader == Some((p, t)) {
                let msg = Message::Candidacy {
                    election: e.name.clone(),
                    term: t,
                    campaigning: true,
                    priority: self.cfg.priority,
                };
                self.send(p, msg);
            }
        }
    }

    /// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from
    /// another server claiming to be leader. If the leader's term is at least as large as
    /// the candidate's current term, then the candidate recognizes the leader as
    /// legitimate and returns to follower state."
    /// Applies a heartbeat's set update from peer `p`. Returns `false` when this node
    /// does not hold a version the update can apply to (it needs the full set).
    fn apply_update(
        &mut self,
        now: Instant,
        p: usize,
        incarnation: u64,
        version: u64,
        update: Option<SetUpdate>,
        prev_heard: Option<Instant>,
    ) -> bool {
        let held = match self.peers[p].holds {
            Some((inc, v)) if inc == incarnation => Some(v),
            _ => None,
        };
        match update {
            // A stale heartbeat (reordered) changes nothing we hold.
            _ if held.is_some_and(|v| v >= version) => true,
            None => false,
            Some(SetUpdate::Full(set)) => {
                let mut ignored = false;
                let mut new: BTreeMap<usize, Term> = BTreeMap::new();
                for (name, t) in &set {
                    match self.election(name, now) {
                        Some(i) => {
                            new.insert(i, *t);
                        }
                        None => {
                            self.stats.ignored_elections += 1;
                            ignored = true;
                        }
                    }
                }
                self.peers[p].untracked = ignored;
                let old: Vec<usize> = self.peers[p].claimed.keys().copied().collect();
                for i in old {
                    if !new.contains_key(&i) {
                        self.drop_claim(now, p, i, prev_heard);
                    }
                }
                for (i, t) in new {
                    self.apply_claim(now, p, i, t, prev_heard);
                }
                self.peers[p].holds = Some((incarnation, version));
                true
            }
            Some(SetUpdate::Delta { base, changes }) => {
                if held.is_none_or(|v| base > v) {
                    return false;
                }
                for (name, t) in changes {
                    if t == 0 {
                        if let Some(&i) = self.by_name.get(&name) {
                            self.drop_claim(now, p, i, prev_heard);
                        }
                    } else if let Some(i) = self.election(&name, now) {
                        self.apply_claim(now, p, i, t, prev_heard);
                    } else {
                        self.stats.ignored_elections += 1;
                        self.peers[p].untracked = true;
                    }
                }
                self.peers[p].holds = Some((incarnation, version));
                true
            }
        }
    }

    /// Peer `p` no longer claims election `i`. If it was our leader there, the lease this
    /// node promised it with its last acknowledgement still stands: the old leader's
    /// guarded child may be in its kill grace until then.
    fn drop_claim(&mut self, now: Instant, p: usize, i: usize, prev_heard: Option<Instant>) {
        if self.peers[p].claimed.remove(&i).is_none() {
            return;
        }
        self.peers[p].rejects.remove(&i);
        self.elections[i].claims.retain(|&(q, _)| q != p);
        if self.elections[i].leader.is_some_and(|(l, _)| l == p) {
            self.set_leader(i, None);
            let e = &mut self.elections[i];
            e.timer_base = now;
            if let Some(h) = prev_heard {
                let hold = h + self.cfg.election_timeout_min;
                e.hold_until = Some(e.hold_until.map_or(hold, |x| x.max(hold)));
            }
        }
        self.touch(i);
    }

    /// Peer `p` claims to lead election `i` at term `t`: follow it, or refuse the claim
    /// in the next acknowledgements if our term is higher.
    fn apply_claim(
        &mut self,
        now: Instant,
        p: usize,
        i: usize,
        t: Term,
        prev_heard: Option<Instant>,
    ) {
        if self.peers[p].claimed.get(&i) == Some(&t) {
            return;
        }
        if self.peers[p].claimed.contains_key(&i) {
            self.drop_claim(now, p, i, prev_heard);
        }
        self.peers[p].claimed.insert(i, t);
        self.elections[i].claims.push((p, t));
        self.adopt_term(i, t, now);
        let e = &mut self.elections[i];
        if t < e.term {
            self.peers[p].rejects.insert(i);
            return;
        }
        match e.role {
            Role::Leader { .. } => {
                // Two leaders in one term would break election safety: refuse.
                tracing::error!(node = %self.cfg.me, election = %e.name, term = t,
                    peer = %self.members[p], "a peer claims leadership in this node's own term");
                self.peers[p].rejects.insert(i);
                return;
            }
            Role::PreCandidate { .. } | Role::Candidate { .. } => e.role = Role::Follower,
            Role::Follower => {}
        }
        if e.leader != Some((p, t)) {
            e.preferred = false;
            e.timer_base = now;
            let timeout = self.random_timeout();
            self.elections[i].timeout = timeout;
            self.set_leader(i, Some((p, t)));
            let e = &self.elections[i];
            if e.campaigning {
                let msg = Message::Candidacy {
                    election: e.name.clone(),
                    term: t,
                    campaigning: true,
                    priority: self.cfg.priority,
                };
                self.send(p, msg);
            }
        }
        self.touch(i);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_heartbeat_ack(
        &mut self,
        now: Instant,
        p: usize,
        round: u64,
        incarnation: u64,
        version: u64,
        need_full: bool,
        rejects: Vec<(ElectionName, Term)>,
    ) {
        if incarnation != self.cfg.incarnation {
            return;
        }
        for (name, t) in rejects {
            if let Some(&i) = self.by_name.get(&name) {
                self.adopt_term(i, t, now);
            }
        }
        let gap = self.cfg.election_timeout_min;
        let peer = &mut self.peers[p];
        if need_full {
            // It does not hold our set: restarted, or too far behind.
            peer.steady_since = None;
            peer.last_ack = None;
        } else {
            if peer.steady_since.is_none() || peer.last_ack.is_none_or(|t| now > t + gap) {
                peer.steady_since = Some(now);
            }
            peer.last_ack = Some(peer.last_ack.map_or(now, |t| t.max(now)));
        }
        if need_full {
            peer.acked_version = None;
            peer.full_sent = None;
        } else {
            peer.acked_version = Some(version);
            if self
                .rounds
                .iter()
                .any(|r| r.round == round && r.version == version)
            {
                peer.acked_round = peer.acked_round.max(round);
            }
        }
        self.update_quorum(now);
    }

    /// §9.6 (pre-vote) and §6 (leader lease, "disruptive servers"): a node that heard from a
    /// live leader within the minimum election timeout does not answer.
    fn on_pre_vote(
        &mut self,
        now: Instant,
        p: usize,
        election: ElectionName,
        term: Term,
        force: bool,
    ) {
        let Some(i) = self.election(&election, now) else {
            // Full: answer without keeping state, as a new election would (a pre-vote
            // changes nothing here).
            let quiet = now < self.booted + self.cfg.election_timeout_min
                || self.blind_until.is_some_and(|b| now < b);
            if !force && quiet {
                return;
            }
            let mine = self.new_term();
            let granted = term > mine;
            self.send(
                p,
                Message::PreVoteResp {
                    election,
                    term: if granted { term } else { mine },
                    granted,
                },
            );
            return;
        };
        if !force && self.in_lease(i, now) {
            return;
        }
        let mine = self.elections[i].term;
        let granted = term > mine;
        self.send(
            p,
            Message::PreVoteResp {
                election,
                term: if granted { term } else { mine },
                granted,
            },
        );
    }

    fn on_pre_vote_resp(
        &mut self,
        now: Instant,
        p: usize,
        election: &ElectionName,
        term: Term,
        granted: bool,
    ) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &mut self.elections[i];
        if !granted {
            if term > e.term {
                self.adopt_term(i, term, now);
            }
            return;
        }
        if let Role::PreCandidate { granted: g, .. } = &mut e.role
            && term == e.term + 1
        {
            *g |= bit(p);
            if g.count_ones() as usize >= self.quorum {
                self.become_candidate(i, now, false);
            }
        }
    }

    /// §5.2: "Each server will vote for at most one candidate in a given term, on a
    /// first-come-first-served basis." §5.4.1's up-to-date check has no log to compare
    /// here; the leader lease takes its place (see the crate documentation).
    fn on_vote(&mut self, now: Instant, p: usize, election: ElectionName, term: Term, force: bool) {
        let Some(i) = self.election(&election, now) else {
            // Full: no vote without a durable record of it.
            self.stats.ignored_elections += 1;
            return;
        };
        if !force && self.in_lease(i, now) {
            return;
        }
        self.adopt_term(i, term, now);
        let candidate = &self.members[p];
        let e = &mut self.elections[i];
        let granted =
            term == e.term && !e.is_leader() && e.vote.as_ref().is_none_or(|v| v == candidate);
        if granted && e.vote.is_none() {
            e.vote = Some(candidate.clone());
            self.dirty.insert(i);
        }
        if granted {
            // The candidate's lease starts from its request: refuse every other candidate
            // for election_timeout_min, as for a leader we heard from.
            e.timer_base = now;
            let hold = now + self.cfg.election_timeout_min;
            e.hold_until = Some(e.hold_until.map_or(hold, |h| h.max(hold)));
        }
        let mine = e.term;
        self.send(
            p,
            Message::VoteResp {
                election,
                term: mine,
                granted,
            },
        );
    }

    fn on_vote_resp(
        &mut self,
        now: Instant,
        p: usize,
        election: &ElectionName,
        term: Term,
        granted: bool,
    ) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        if term > self.elections[i].term {
            self.adopt_term(i, term, now);
            return;
        }
        let e = &mut self.elections[i];
        if let Role::Candidate {
            granted: g,
            started,
            ..
        } = &mut e.role
            && granted
            && term == e.term
        {
            *g |= bit(p);
            if g.count_ones() as usize >= self.quorum {
                let since = *started;
                self.become_leader(i, now, since);
            }
        }
    }

    /// §3.10: "the target server ... starts a new election" on TimeoutNow, without
    /// waiting for its election timeout.
    fn on_timeout_now(&mut self, now: Instant, election: &ElectionName, term: Term) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &self.elections[i];
        if e.term == term && e.campaigning && self.can_campaign && !e.is_leader() {
            self.become_candidate(i, now, true);
        }
    }

    /// The leader at `term` stepped down for this node (a candidate of higher priority):
    /// campaign as soon as the promises this node and the others made to it have run out,
    /// instead of after a random election timeout. Nothing is bypassed: pre-vote and the
    /// leader lease apply as after any leader's departure.
    fn on_prefer(&mut self, election: &ElectionName, term: Term) {
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &mut self.elections[i];
        if e.term == term && e.campaigning && self.can_campaign && !e.is_leader() {
            tracing::debug!(node = %self.cfg.me, %election, term, "preferred by the leader: campaigning once its lease ends");
            e.preferred = true;
            self.touch(i);
        }
    }

    fn on_candidacy(
        &mut self,
        p: usize,
        election: &ElectionName,
        term: Term,
        campaigning: bool,
        priority: u32,
    ) {
        self.peers[p].priority = priority;
        let Some(&i) = self.by_name.get(election) else {
            return;
        };
        let e = &mut self.elections[i];
        if let Role::Leader { candidates, .. } = &mut e.role
            && e.term == term
        {
            if campaigning {
                *candidates |= bit(p);
            } else {
                *candidates &= !bit(p);
            }
        }
    }

    // ----------------------------------------------------------- leader side

    /// Steps down, just before a heartbeat round, in every granted leadership where a
    /// campaigning follower of higher priority is ready: it acknowledged the last round
    /// holding the current led set (caught up), and has done so with no gap longer than the
    /// minimum election timeout and no restart for `priority_stable` (healthy, so a
    /// flapping node never qualifies). The round that follows tells every follower the
    /// leadership is given up, and the target gets [`Message::Prefer`].
    ///
    /// This is not a resign: the holder's child has not stopped yet. So, as after
    /// [`expire`](Self::expire), nothing is handed over early: no TimeoutNow, and this node
    /// and its followers refuse other candidates until the lease plus `clock_drift +
    /// kill_grace` has passed (the handover rule). The holder sees
    /// [`LossReason::Yielded`] at once, so its child is dead before the target can win.
    /// This node then keeps quiet for `election_timeout_min + election_timeout_max`, so
    /// the target's campaign, which starts as soon as the promises allow, comes first.
    fn yield_to_preferred(&mut self, now: Instant) {
        if self.led.is_empty() {
            return;
        }
        let gap = self.cfg.election_timeout_min;
        let mut ready: super::election::Members = 0;
        for (p, peer) in self.peers.iter().enumerate() {
            if p != self.me
                && peer.priority > self.cfg.priority
                && peer.acked_version == Some(self.version)
                && peer.acked_round + 1 >= self.round
                && peer.last_ack.is_some_and(|t| now < t + gap)
                && peer
                    .steady_since
                    .is_some_and(|s| now >= s + self.cfg.priority_stable)
            {
                ready |= bit(p);
            }
        }
        if ready == 0 {
            return;
        }
        let led: Vec<usize> = self.led.iter().copied().collect();
        for i in led {
            let Role::Leader {
                granted: true,
                candidates,
                ..
            } = self.elections[i].role
            else {
                continue;
            };
            let Some(p) = (0..self.members.len())
                .filter(|&p| ready & candidates & bit(p) != 0)
                .max_by_key(|&p| {
                    (
                        self.peers[p].priority,
                        self.peers[p].acked_round,
                        std::cmp::Reverse(p),
                    )
                })
            else {
                continue;
            };
            let term = self.elections[i].term;
            tracing::info!(node = %self.cfg.me, election = %self.elections[i].name, term,
                to = %self.members[p], priority = self.peers[p].priority,
                "stepping down for a candidate of higher priority");
            self.step_down(i, now, LossReason::Yielded);
            let quiet = now + self.cfg.election_timeout_min + self.cfg.election_timeout_max;
            let e = &mut self.elections[i];
            e.quiet_until = Some(e.quiet_until.map_or(quiet, |q| q.max(quiet)));
            let msg = Message::Prefer {
                election: e.name.clone(),
                term,
            };
            self.send(p, msg);
        }
    }

    /// Sends one heartbeat round to every peer; the full led set goes to peers that may
    /// not hold its current version.
    fn send_round(&mut self, now: Instant) {
        self.round += 1;
        let round = self.round;
        self.rounds.push_back(SentRound {
            round,
            sent: now,
            version: self.version,
        });
        while self.rounds.len() > MAX_ROUNDS_KEPT
            || self
                .rounds
                .front()
                .is_some_and(|r| r.round < round && r.sent + self.budget <= now)
        {
            self.rounds.pop_front();
        }
        let mut full: Option<Vec<(ElectionName, Term)>> = None;
        let mut unconfirmed = false;
        let oldest_change = self.changes.front().map_or(self.version + 1, |c| c.0);
        for p in 0..self.members.len() {
            if p == self.me {
                continue;
            }
            let peer = &mut self.peers[p];
            let update = match peer.acked_version {
                Some(v) if v == self.version => None,
                // The changes since the version it holds, if we still remember them all.
                Some(v) if v < self.version && v + 1 >= oldest_change => {
                    let from = self.changes.len() - (self.version - v) as usize;
                    Some(SetUpdate::Delta {
                        base: v,
                        changes: self
                            .changes
                            .range(from..)
                            .map(|(_, name, t)| (name.clone(), *t))
                            .collect(),
                    })
                }
                _ if peer
                    .full_sent
                    .is_none_or(|(_, r)| round >= r + FULL_SET_EVERY) =>
                {
                    peer.full_sent = Some((self.version, round));
                    Some(SetUpdate::Full(
                        full.get_or_insert_with(|| {
                            self.led
                                .iter()
                                .map(|&i| (self.elections[i].name.clone(), self.elections[i].term))
                                .collect()
                        })
                        .clone(),
                    ))
                }
                _ => None,
            };
            unconfirmed |= peer.acked_version != Some(self.version);
            self.send(
                p,
                Message::Heartbeat {
                    round,
                    incarnation: self.cfg.incarnation,
                    version: self.version,
                    update,
                },
            );
        }
        self.next_heartbeat =
            (!self.led.is_empty() || unconfirmed).then(|| now + self.cfg.heartbeat);

        self.update_quorum(now);
    }

    /// Recomputes the highest round a quorum acknowledged (this node counts with its
    /// latest round) and grants or extends leases from its send time.
    fn update_quorum(&mut self, now: Instant) {
        let mut acks: Vec<u64> = (0..self.members.len())
            .map(|p| {
                if p == self.me {
                    self.round
                } else {
                    self.peers[p].acked_round
                }
            })
            .collect();
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let q = acks[self.quorum - 1];
        if q <= self.quorum_round {
            return;
        }
        let Some(sent) = self.rounds.iter().find(|r| r.round == q).map(|r| r.sent) else {
            return;
        };
        self.quorum_round = q;
        self.quorum_sent = Some(sent);
        while self.rounds.front().is_some_and(|r| r.round < q) {
            self.rounds.pop_front();
        }
        let until = sent + self.budget;
        if until <= now {
            return;
        }
        let extended = self.led.len() > self.pending.len();
        let due: Vec<usize> = self
            .pending
            .iter()
            .copied()
            .filter(|&i| {
                matches!(self.elections[i].role, Role::Leader { first_round, .. } if first_round <= q)
            })
            .collect();
        for i in due {
            self.pending.remove(&i);
            let e = &mut self.elections[i];
            if let Role::Leader { granted, .. } = &mut e.role {
                *granted = true;
                e.campaigning = false;
                tracing::debug!(node = %self.cfg.me, election = %e.name, term = e.term, "leadership granted");
                self.events.push_back(CoreEvent::Elected {
                    election: e.name.clone(),
                    epoch: e.term,
                    lease_until: until,
                });
            }
        }
        if extended {
            self.events.push_back(CoreEvent::AllLeasesExtended {
                until,
                except: Vec::new(),
            });
        }
    }

    /// Bumps the led set's version for one change: election `i` now led at `term`, or
    /// given up (`term` 0).
    fn record_change(&mut self, i: usize, term: Term) {
        self.version += 1;
        let name = self.elections[i].name.clone();
        self.changes.push_back((self.version, name, term));
        while self.changes.len() > MAX_CHANGES {
            self.changes.pop_front();
        }
    }

    /// When the lease of a leadership that began with `first_round` at `since` ends.
    fn lease_end(&self, first_round: u64, since: Instant) -> Instant {
        match self.quorum_sent {
            Some(sent) if self.quorum_round >= first_round => sent + self.budget,
            _ => since + self.budget,
        }
    }

    // ------------------------------------------------------------- helpers

    /// Whether this node must not answer (pre-)votes in election `i` now: it leads, or it
    /// heard from a live leader within the minimum election timeout, or it led until
    /// recently, or it started less than one minimum election timeout ago.
    fn in_lease(&self, i: usize, now: Instant) -> bool {
        let e = &self.elections[i];
        now < self.booted + self.cfg.election_timeout_min
            || e.is_leader()
            || e.hold_until.is_some_and(|h| now < h)
            || e.leader.is_some_and(|(l, _)| {
                l != self.me
                    && self.peers[l]
                        .last_heard
                        .is_some_and(|h| now < h + self.cfg.election_timeout_min)
            })
    }

    /// When election `i`'s timer fires, if it runs.
    fn deadline(&self, i: usize) -> Option<Instant> {
        let e = &self.elections[i];
        match e.role {
            Role::Follower if e.campaigning && self.can_campaign => {
                let mut base = e.timer_base;
                if let Some((l, _)) = e.leader
                    && let Some(h) = self.peers[l].last_heard
                {
                    base = base.max(h);
                }
                // A restarted node does not lead before a lease its previous run may have
                // held could have ended (with its margin): boot + election_timeout_min.
                // Nor does any node campaign (vote for itself) while it would refuse to vote
                // for another.
                // Preferred by the old leader: as soon as the promises allow, with the drift
                // bound as margin for the other voters' promises to end too.
                let wait = if e.preferred && e.leader.is_none() {
                    e.hold_until
                        .map_or(base, |h| (h + self.cfg.clock_drift).max(base))
                } else {
                    base + e.timeout
                };
                let d = wait
                    .max(self.booted + self.cfg.election_timeout_min)
                    .max(e.hold_until.unwrap_or(base))
                    .max(e.quiet_until.unwrap_or(base));
                Some(d)
            }
            Role::Follower => None,
            Role::PreCandidate { deadline, .. } | Role::Candidate { deadline, .. } => {
                Some(deadline)
            }
            Role::Leader {
                first_round, since, ..
            } => Some(self.lease_end(first_round, since)),
        }
    }

    /// Notes that election `i`'s timer may have moved earlier.
    fn touch(&mut self, i: usize) {
        if let Some(d) = self.deadline(i) {
            self.note(d);
        }
    }

    /// Notes a timer due at `d`.
    fn note(&mut self, d: Instant) {
        if let Some(c) = &mut self.timeout_cache {
            *c = Some(c.map_or(d, |c| c.min(d)));
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

    /// The term a new election starts at: above every term of the elections this node
    /// forgot, so that no term in which it may have voted comes back without its vote.
    fn new_term(&self) -> Term {
        if self.floor == 0 { 0 } else { self.floor + 1 }
    }

    /// Creates election `name` (not held yet), whatever the limit.
    fn create(&mut self, name: &ElectionName, now: Instant) -> usize {
        let timeout = self.random_timeout();
        let mut e = Election::new(name.clone(), now, timeout, self.new_term());
        if let Some(b) = self.blind_until.filter(|&b| now < b) {
            // This node may have promised a lease here without holding the election.
            e.hold_until = Some(b);
            e.quiet_until = Some(b);
        }
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
        self.relearn_untracked();
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_every());
        }
        i
    }

    /// Peers whose claims this node ignored send their whole set again (their next
    /// heartbeat is answered "need full"), so that claims on elections it now holds are
    /// learnt, and no further ack promises a lease it does not know about.
    fn relearn_untracked(&mut self) {
        for peer in &mut self.peers {
            if peer.untracked {
                peer.holds = None;
            }
        }
    }

    /// How often idle elections are looked for: an eighth of `forget_after`.
    fn sweep_every(&self) -> Duration {
        (self.cfg.forget_after / 8).max(Duration::from_millis(1))
    }

    /// Whether election `i` must be kept whatever its age: a local candidate, a role, a
    /// leader or a claim of a peer heard within `forget_after`, a promise (hold or quiet
    /// time) still running, or state not yet persisted. (A peer silent for `forget_after`
    /// holds no lease anyone still honours; when it comes back its set is asked for
    /// again.)
    fn busy(&self, i: usize, now: Instant) -> bool {
        let e = &self.elections[i];
        let live = |p: usize| {
            p == self.me
                || self.peers[p]
                    .last_heard
                    .is_some_and(|h| now < h + self.cfg.forget_after)
        };
        e.campaigning
            || !matches!(e.role, Role::Follower)
            || e.leader.is_some_and(|(l, _)| live(l))
            || e.claims.iter().any(|&(p, _)| live(p))
            || e.hold_until.is_some_and(|h| now < h)
            || e.quiet_until.is_some_and(|q| now < q)
            || self.dirty.contains(&i)
            || self.led.contains(&i)
            || self.pending.contains(&i)
    }

    /// Forgets every election idle for `forget_after` (checked every [`sweep_every`]: an
    /// election seen busy at a sweep is idle from then at the earliest, so it goes once it
    /// has been idle for `forget_after` to `forget_after` plus two sweep intervals). Its
    /// term raises the floor; the driver removes it from the state file.
    ///
    /// [`sweep_every`]: Self::sweep_every
    fn sweep(&mut self, now: Instant) {
        let every = self.sweep_every();
        let mut freed = false;
        let live: Vec<usize> = self.live().collect();
        for i in live {
            if self.busy(i, now) {
                self.elections[i].last_active = now;
                continue;
            }
            if now < self.elections[i].last_active + self.cfg.forget_after + every {
                continue;
            }
            // Claims of peers long silent: their sets are asked for again when they speak.
            for (p, _) in std::mem::take(&mut self.elections[i].claims) {
                let peer = &mut self.peers[p];
                peer.claimed.remove(&i);
                peer.rejects.remove(&i);
                peer.holds = None;
            }
            self.set_leader(i, None);
            let e = &mut self.elections[i];
            // The floor covers every term this node may have voted in there: the current
            // one if it voted in it, the ones before otherwise. (An election created at
            // `floor + 1` and forgotten unchanged leaves the floor where it was.)
            let voted_up_to = if e.vote.is_some() {
                e.term
            } else {
                e.term.saturating_sub(1)
            };
            self.floor = self.floor.max(voted_up_to);
            let name = e.name.clone();
            e.vote = None;
            self.by_name.remove(&name);
            self.free.push(i);
            self.forgotten.push(name);
            self.stats.forgotten += 1;
            freed = true;
        }
        if freed {
            tracing::debug!(node = %self.cfg.me, held = self.by_name.len(), floor = self.floor, "forgot idle elections");
            self.relearn_untracked();
        }
        if self.by_name.is_empty() {
            // Shrink the slots too: nothing refers to them any more.
            self.elections.clear();
            self.free.clear();
        }
        self.next_sweep = (!self.by_name.is_empty()).then(|| now + every);
    }

    fn set_leader(&mut self, i: usize, leader: Option<(usize, Term)>) {
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

    /// Forgets the leader of election `i` on this node's own initiative (it campaigns). If
    /// that leader still claims the election, its set must be sent again so this node can
    /// learn it back: heartbeats carry only the set's version.
    fn clear_leader(&mut self, i: usize) {
        if let Some((l, _)) = self.elections[i].leader
            && l != self.me
        {
            self.peers[l].holds = None;
            self.peers[l].claimed.remove(&i);
            self.peers[l].rejects.remove(&i);
            self.elections[i].claims.retain(|&(q, _)| q != l);
        }
        self.set_leader(i, None);
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

    /// A fresh election timeout, uniform in `[election_timeout_min, election_timeout_max)`.
    fn random_timeout(&mut self) -> Duration {
        let span = self
            .cfg
            .election_timeout_max
            .saturating_sub(self.cfg.election_timeout_min);
        self.cfg.election_timeout_min + self.random_below(span)
    }

    fn random_below(&mut self, d: Duration) -> Duration {
        let nanos = d.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..nanos))
    }
}
