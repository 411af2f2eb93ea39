//! Test support (feature `test-support`): a simulated network for a sans-IO
//! [`ElectionCore`], in the style of etcd's `network` (raft_test.go) and quinn's `Pair`:
//! virtual time jumps to the earliest timeout or delivery; seeded drops, duplicates, delays
//! (hence reordering), messages held for longer than a lease and delivered late (on a
//! held link, or at random), symmetric and one-way partitions, crashes and restarts from
//! persisted state, per-node clocks that run at different rates and timers that fire late
//! (together within the configuration's `clock_drift`, see [`Clock`]). The lease
//! invariants are checked after every step, on the simulator's true time, never on the
//! nodes' drifting clocks; a [`SimBackend`] adds its own (persisted state, leaders per
//! epoch) and its trace wording.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use election_core::{ElectionName, LossReason, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::core::{CoreEvent, ElectionCore};

pub mod explore;

/// Node `i`'s id in the simulator (`n1`, `n2`, ...).
pub fn id(i: usize) -> NodeId {
    NodeId::new(format!("n{}", i + 1)).unwrap()
}

fn millis(v: u64) -> Duration {
    Duration::from_millis(v)
}

const BILLION: i128 = 1_000_000_000;

/// One node's clock: what it reads as `now` when the simulator's true time since the start
/// is `t`. It starts at `offset` and runs `ppb` parts per billion fast (slow if negative).
/// Nothing on the wire carries an instant, so the offset is invisible to a correct core;
/// the rates of two nodes differ by at most the simulator's spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// The reading at true time zero.
    pub offset: Duration,
    /// The rate error, in parts per billion.
    pub ppb: i64,
}

impl Clock {
    /// The reading (since the simulator's `t0`) at true time `t`.
    pub fn local(&self, t: Duration) -> Duration {
        let ns = t.as_nanos() as i128;
        let l = ns + ns * i128::from(self.ppb) / BILLION;
        self.offset + Duration::from_nanos(l.max(0) as u64)
    }

    /// The earliest true time at which the reading is at least `local` (since `t0`).
    pub fn true_time(&self, local: Duration) -> Duration {
        let l = local.saturating_sub(self.offset).as_nanos() as i128;
        let den = BILLION + i128::from(self.ppb);
        Duration::from_nanos(((l * BILLION + den - 1) / den) as u64)
    }

    /// How long, in true time, this clock takes to advance by `d`.
    pub fn true_span(&self, d: Duration) -> Duration {
        let den = BILLION + i128::from(self.ppb);
        Duration::from_nanos(((d.as_nanos() as i128 * BILLION + den - 1) / den) as u64)
    }
}

/// The timings a backend's safety argument rests on.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How long a node's promise to a leader lasts from when it heard it (Raft's
    /// `election_timeout_min`, Bully's `failure_timeout`): the span over which clock rates
    /// must agree to within `clock_drift`.
    pub promise: Duration,
    /// Bound on clock-rate difference and timer lateness over one promise.
    pub clock_drift: Duration,
    /// Time a guarded child gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

impl Timings {
    /// The lease one acknowledged round gives: `promise - clock_drift - kill_grace`.
    pub fn lease(&self) -> Duration {
        self.promise
            .saturating_sub(self.clock_drift + self.kill_grace)
    }
}

/// Election `i`'s name (`e1`, `e2`, ...).
pub fn election(i: usize) -> ElectionName {
    ElectionName::new(format!("e{}", i + 1)).unwrap()
}

/// What the simulator needs to know about one backend's core.
pub trait SimBackend: Sized + 'static {
    /// The core.
    type Node: ElectionCore<Message = Self::Message>;
    /// Its message type.
    type Message: Clone + Send;
    /// Its configuration.
    type Config: Clone;

    /// The configuration of node `me` among `members` with the crate's default timings.
    fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> Self::Config;
    /// Sets the voters-only members of `config`.
    fn set_voters_only(config: &mut Self::Config, voters_only: BTreeSet<NodeId>);
    /// The configuration a node restarts with: its incarnation and its seed change.
    fn restarted(config: &mut Self::Config, incarnation: u64, seed_add: u64);
    /// A node, from its persisted state and floor (the highest number of the elections it
    /// forgot).
    fn new_node(
        config: Self::Config,
        now: Instant,
        state: Vec<(ElectionName, <Self::Node as ElectionCore>::HardState)>,
        floor: u64,
    ) -> Self::Node;
    /// The timings the safety argument rests on (the gap between two leases not ended by
    /// a resign, the clock-drift bound the simulator keeps within, the lease length).
    fn timings(config: &Self::Config) -> Timings;
    /// Whether leases must not overlap (`false` for classic Bully).
    fn leases_exclusive(config: &Self::Config) -> bool {
        let _ = config;
        true
    }
    /// The node's lease deadline in `e`, if it leads.
    fn lease_until(node: &Self::Node, e: &ElectionName) -> Option<Instant>;
    /// The node's epoch (term) in `e`.
    fn epoch(node: &Self::Node, e: &ElectionName) -> u64;
    /// The leader the node knows in `e`.
    fn leader(node: &Self::Node, e: &ElectionName) -> Option<(NodeId, u64)>;
    /// One line of [`Sim::dump`] for a live node.
    fn dump_line(node: &Self::Node, e: &ElectionName, i: usize, now: Instant) -> String;
    /// Refuses a persisted change of node `n` that breaks a rule (persisted epochs never go
    /// back, ...).
    ///
    /// # Errors
    /// The rule broken, in words.
    fn check_persist(
        n: usize,
        e: &ElectionName,
        old: &<Self::Node as ElectionCore>::HardState,
        new: &<Self::Node as ElectionCore>::HardState,
    ) -> Result<(), String>;
    /// One line for a message in the golden trace ([`Sim::trace`]), if any.
    fn trace_message(m: &Self::Message) -> Option<String> {
        let _ = m;
        None
    }
    /// Logs an event of node `n` and checks the backend's own rules (one leader per
    /// epoch, ...), before the simulator tracks the leases.
    ///
    /// # Errors
    /// The rule broken, in words.
    fn on_event(sim: &mut Sim<Self>, n: usize, ev: &CoreEvent) -> Result<(), String>;
}

/// One leadership as observed from the events, in simulated time since the start.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The node.
    pub node: usize,
    /// The epoch (term).
    pub term: u64,
    /// Granted at.
    pub start: Duration,
    /// Guaranteed until (or ended at).
    pub end: Duration,
    /// Why it ended, once it did.
    pub reason: Option<LossReason>,
}

struct InFlight<M> {
    from: usize,
    to: usize,
    messages: Vec<M>,
}

/// The harsher faults of [`Sim::chaos`], drawn once per schedule by [`Harshness::draw`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Harshness {
    /// The share of `clock_drift` the simulator uses (0: exact clocks, timers on time).
    pub drift_share: f64,
    /// Probability that a batch is held for longer than a lease before delivery.
    pub late_rate: f64,
    /// Probability that a batch is delivered twice.
    pub dup_rate: f64,
}

impl Harshness {
    /// One schedule's faults: a third each with exact clocks, half and nine tenths of the
    /// drift bound; late and duplicated batches in some.
    pub fn draw(rng: &mut ChaCha8Rng) -> Harshness {
        Harshness {
            drift_share: [0.0, 0.5, 0.9][rng.random_range(0..3)],
            late_rate: [0.0, 0.01, 0.05][rng.random_range(0..3)],
            dup_rate: [0.0, 0.0, 0.05][rng.random_range(0..3)],
        }
    }
}

/// The simulated cluster.
pub struct Sim<B: SimBackend> {
    /// The schedule's seed.
    pub seed: u64,
    /// The network's RNG.
    pub rng: ChaCha8Rng,
    t0: Instant,
    /// Virtual time since the start.
    pub now: Duration,
    /// Each node's configuration.
    pub configs: Vec<B::Config>,
    /// Each live node.
    pub nodes: Vec<Option<B::Node>>,
    /// Each node's persisted state.
    pub disk: Vec<BTreeMap<ElectionName, <B::Node as ElectionCore>::HardState>>,
    /// Each node's persisted floor (the highest number of the elections it forgot).
    pub floors: Vec<u64>,
    /// Each node's last persisted state of every election it forgot: what it persists for
    /// the same name later is checked against it ([`SimBackend::check_persist`]), so that
    /// forgetting cannot hide a second vote or a term going back.
    pub forgotten: Vec<BTreeMap<ElectionName, <B::Node as ElectionCore>::HardState>>,
    /// Elections forgotten, over all nodes.
    pub forgets: u64,
    restarts: Vec<u64>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    in_flight: HashMap<u64, InFlight<B::Message>>,
    seq: u64,
    /// Ordered pairs (from, to) whose messages are lost.
    pub cut: BTreeSet<(usize, usize)>,
    /// Probability that one batch is lost.
    pub drop_rate: f64,
    /// Delivery delay range.
    pub delay: (Duration, Duration),
    /// Probability that one batch is held for longer than a lease (between one lease and
    /// one lease plus one promise) before it is delivered.
    pub late_rate: f64,
    /// Probability that one batch is delivered twice (with independent delays).
    pub dup_rate: f64,
    /// Ordered pairs (from, to) whose messages are held, not lost: delivered, late, when
    /// the network heals.
    pub held: BTreeSet<(usize, usize)>,
    parked: Vec<InFlight<B::Message>>,
    /// Each node's clock ([`Sim::drift_clocks`] sets them; exact by default).
    pub clocks: Vec<Clock>,
    /// How late a node's timer may fire at most (zero by default).
    pub timer_late: Duration,
    late: Vec<Duration>,
    /// How long [`Sim::chaos`] injects faults (virtual).
    pub chaos_time: Duration,
    /// A network driven by hand (the explorer's): batches stay in flight until
    /// [`deliver`](Self::deliver)ed, in any order, any number of times or never; time moves
    /// only when a timer is [`fire`](Self::fire)d.
    pub manual: bool,
    /// Observed leaderships per election.
    pub leases: BTreeMap<ElectionName, Vec<Lease>>,
    /// Who led each (election, epoch).
    pub leaders: HashMap<(ElectionName, u64), usize>,
    /// Campaign again after losing (a supervise loop).
    pub recampaign: bool,
    /// Every event, for golden traces and failure reports.
    pub log: Vec<String>,
    /// Whether to fill `log`, `sent` and `trace`.
    pub keep_log: bool,
    /// Every message sent (from, to, message), in order, when `keep_log` is set.
    pub sent: Vec<(usize, usize, B::Message)>,
    /// A deterministic trace for golden tests (virtual time, commands, the messages
    /// [`SimBackend::trace_message`] describes, and what the backend adds), when
    /// `keep_log` is set.
    pub trace: Vec<String>,
    /// Steps run.
    pub steps: u64,
}

impl<B: SimBackend> Sim<B> {
    /// `n` nodes with the default timings, `voters_only` of them never campaigning.
    pub fn new(seed: u64, n: usize, voters_only: &[usize]) -> Sim<B> {
        Self::new_configured(seed, n, voters_only, |_| {})
    }

    /// `n` nodes with the default timings changed by `adjust`.
    pub fn new_configured(
        seed: u64,
        n: usize,
        voters_only: &[usize],
        adjust: impl Fn(&mut B::Config),
    ) -> Sim<B> {
        let members: BTreeSet<NodeId> = (0..n).map(id).collect();
        let vo: BTreeSet<NodeId> = voters_only.iter().map(|&i| id(i)).collect();
        let configs: Vec<B::Config> = (0..n)
            .map(|i| {
                let mut c = B::default_config(
                    &id(i),
                    &members,
                    seed.wrapping_mul(31).wrapping_add(i as u64),
                );
                B::set_voters_only(&mut c, vo.clone());
                adjust(&mut c);
                c
            })
            .collect();
        Self::with_configs(seed, configs)
    }

    /// One node per configuration.
    pub fn with_configs(seed: u64, configs: Vec<B::Config>) -> Sim<B> {
        Self::with_configs_at(seed, configs, Instant::now())
    }

    /// One node per configuration, simulated time starting at `t0` (the explorer rebuilds
    /// states from one `t0`, so that equal states compare equal).
    pub fn with_configs_at(seed: u64, configs: Vec<B::Config>, t0: Instant) -> Sim<B> {
        let n = configs.len();
        let nodes = configs
            .iter()
            .map(|c| Some(B::new_node(c.clone(), t0, Vec::new(), 0)))
            .collect();
        Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            t0,
            now: Duration::ZERO,
            configs,
            nodes,
            disk: vec![BTreeMap::new(); n],
            floors: vec![0; n],
            forgotten: vec![BTreeMap::new(); n],
            forgets: 0,
            restarts: vec![0; n],
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            drop_rate: 0.0,
            delay: (Duration::from_micros(100), Duration::from_micros(500)),
            late_rate: 0.0,
            dup_rate: 0.0,
            held: BTreeSet::new(),
            parked: Vec::new(),
            clocks: vec![Clock::default(); n],
            timer_late: Duration::ZERO,
            late: vec![Duration::ZERO; n],
            chaos_time: millis(2000),
            manual: false,
            leases: BTreeMap::new(),
            leaders: HashMap::new(),
            recampaign: false,
            log: Vec::new(),
            keep_log: false,
            sent: Vec::new(),
            trace: Vec::new(),
            steps: 0,
        }
    }

    /// The number of nodes.
    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    /// The simulated (true) time as an `Instant`: what a node with an exact clock reads.
    pub fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    /// What node `n`'s clock reads now.
    pub fn node_now(&self, n: usize) -> Instant {
        self.t0 + self.clocks[n].local(self.now)
    }

    /// The true time (since the start) at which node `n`'s clock reads `t`.
    pub fn true_time(&self, n: usize, t: Instant) -> Duration {
        self.clocks[n].true_time(t.saturating_duration_since(self.t0))
    }

    /// The timings of the safety argument (node 1's configuration).
    pub fn timings(&self) -> Timings {
        B::timings(&self.configs[0])
    }

    /// Gives each node a clock of its own: a random origin and a rate such that the rates
    /// of any two nodes differ by at most `rate_share x clock_drift` over one promise (two
    /// random nodes at the extremes); timers fire up to `late_share x clock_drift` late.
    /// The shares must add up to at most 1: the bound the cores' safety argument assumes.
    pub fn drift_clocks(&mut self, rate_share: f64, late_share: f64) {
        assert!(
            rate_share >= 0.0 && late_share >= 0.0 && rate_share + late_share <= 1.0,
            "clock drift beyond the configured bound"
        );
        let t = self.timings();
        let spread = t.clock_drift.as_secs_f64() * rate_share / t.promise.as_secs_f64();
        let half = (spread / 2.0 * 1e9) as i64;
        let n = self.n();
        for i in 0..n {
            let ppb = if half > 0 {
                self.rng.random_range(-half..=half)
            } else {
                0
            };
            let offset = Duration::from_nanos(self.rng.random_range(0..1_000_000_000));
            self.clocks[i] = Clock { offset, ppb };
        }
        if n >= 2 && half > 0 {
            let a = self.rng.random_range(0..n);
            let b = (a + self.rng.random_range(1..n)) % n;
            self.clocks[a].ppb = -half;
            self.clocks[b].ppb = half;
        }
        self.timer_late = t.clock_drift.mul_f64(late_share);
        for i in 0..n {
            self.late[i] = self.draw_late();
        }
    }

    /// Applies a schedule's [`Harshness`]: drifting clocks and late timers (the share of
    /// the bound split between them at random), late and duplicated batches.
    pub fn harden(&mut self, h: Harshness) {
        if h.drift_share > 0.0 {
            let rate = h.drift_share * self.rng.random_range(0.2..0.8);
            self.drift_clocks(rate, h.drift_share - rate);
        }
        self.late_rate = h.late_rate;
        self.dup_rate = h.dup_rate;
    }

    /// The largest difference between two nodes' clock readings that one promise of true
    /// time can build up.
    pub fn rate_spread(&self) -> Duration {
        let lo = self.clocks.iter().map(|c| c.ppb).min().unwrap_or(0);
        let hi = self.clocks.iter().map(|c| c.ppb).max().unwrap_or(0);
        let promise = self.timings().promise.as_nanos() as i128;
        Duration::from_nanos((promise * i128::from(hi - lo) / BILLION) as u64)
    }

    fn draw_late(&mut self) -> Duration {
        if self.timer_late.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..=self.timer_late.as_nanos() as u64))
    }

    /// The start of simulated time.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Adds a line to the log (and, for commands, without `{`, to the trace).
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if self.keep_log {
            let text = line();
            if !text.contains('{') {
                // Commands (campaign, crash, partition...), not Debug-printed events.
                self.trace
                    .push(format!("{:>6}ms {text}", self.now.as_millis()));
            }
            let l = format!("{:>8.1}ms {}", self.now.as_secs_f64() * 1000.0, text);
            self.log.push(l);
        }
    }

    // ------------------------------------------------------------ inputs

    /// Node `n` campaigns in `e`.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn campaign(&mut self, n: usize, e: &ElectionName) -> Result<(), String> {
        let now = self.node_now(n);
        if let Some(node) = self.nodes[n].as_mut() {
            node.campaign(now, e);
            self.note(|| format!("n{} campaign {e}", n + 1));
            self.flush(n)?;
        }
        Ok(())
    }

    /// Node `n` withdraws from `e`.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn withdraw(&mut self, n: usize, e: &ElectionName) -> Result<(), String> {
        let now = self.node_now(n);
        if let Some(node) = self.nodes[n].as_mut() {
            node.withdraw(now, e);
            self.note(|| format!("n{} withdraw {e}", n + 1));
            self.flush(n)?;
        }
        Ok(())
    }

    /// Node `n` resigns `e`; whether it led.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn resign(&mut self, n: usize, e: &ElectionName) -> Result<bool, String> {
        let now = self.node_now(n);
        let Some(node) = self.nodes[n].as_mut() else {
            return Ok(false);
        };
        let r = node.resign(now, e);
        self.note(|| format!("n{} resign {e}", n + 1));
        self.flush(n)?;
        Ok(r)
    }

    /// kill -9: volatile state and in-flight messages to it are gone; the disk stays.
    pub fn crash(&mut self, n: usize) {
        if self.nodes[n].take().is_some() {
            self.note(|| format!("n{} crash", n + 1));
            // Its leases end at their deadline at the latest (nothing extends them).
            for leases in self.leases.values_mut() {
                for l in leases
                    .iter_mut()
                    .filter(|l| l.node == n && l.reason.is_none())
                {
                    l.reason = Some(LossReason::Shutdown);
                }
            }
        }
    }

    /// Starts node `n` again from its disk (a new incarnation and seed).
    pub fn restart(&mut self, n: usize) {
        if self.nodes[n].is_some() {
            return;
        }
        self.restarts[n] += 1;
        let mut cfg = self.configs[n].clone();
        B::restarted(&mut cfg, 1 + self.restarts[n], self.restarts[n] * 7919);
        let state: Vec<_> = self.disk[n]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.nodes[n] = Some(B::new_node(cfg, self.node_now(n), state, self.floors[n]));
        self.note(|| format!("n{} restart", n + 1));
    }

    /// Symmetric partition: `side` against everyone else.
    pub fn partition(&mut self, side: &[usize]) {
        for a in 0..self.n() {
            for b in 0..self.n() {
                if a != b && side.contains(&a) != side.contains(&b) {
                    self.cut.insert((a, b));
                }
            }
        }
        self.note(|| format!("partition {side:?}"));
    }

    /// Cuts `n` off from everyone, both ways.
    pub fn isolate(&mut self, n: usize) {
        self.partition(&[n]);
    }

    /// Holds every message from `a` to `b` (and those in flight) until the network heals;
    /// then they are delivered, late.
    pub fn hold(&mut self, a: usize, b: usize) {
        self.held.insert((a, b));
        self.note(|| format!("hold n{} -> n{}", a + 1, b + 1));
    }

    /// Removes every cut and every hold; the held messages are delivered (late) with the
    /// usual delays.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.held.clear();
        for f in std::mem::take(&mut self.parked) {
            let d = self.draw_delay();
            self.enqueue(d, f);
        }
        self.note(|| "heal".to_string());
    }

    /// The chaos phase of a random schedule: every candidate campaigns in every election,
    /// then for [`chaos_time`](Self::chaos_time) (virtual), every 20-300 ms, one random
    /// fault or command (partition, one-way cut, a link or a node's links held, heal,
    /// crash, restart, resign, withdraw, campaign), drawn from `rng`; then the network heals
    /// (no drops, duplicates or late batches, short delays; held messages delivered), every
    /// node is up, and every candidate campaigns again once the late messages have
    /// arrived.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn chaos(
        &mut self,
        rng: &mut ChaCha8Rng,
        elections: &[ElectionName],
        campaigners: &[usize],
    ) -> Result<(), String> {
        let n = self.n();
        for e in elections {
            for &c in campaigners {
                self.campaign(c, e)?;
            }
        }
        let chaos_end = self.chaos_time;
        while self.now < chaos_end {
            let next = self.now + millis(rng.random_range(20..300));
            self.run_until(next)?;
            let e = &elections[rng.random_range(0..elections.len())];
            match rng.random_range(0..11) {
                0 => {
                    let k = rng.random_range(1..=n / 2);
                    let mut side: Vec<usize> = (0..n).collect();
                    for i in (1..side.len()).rev() {
                        side.swap(i, rng.random_range(0..=i));
                    }
                    side.truncate(k);
                    self.partition(&side);
                }
                1 => {
                    let a = rng.random_range(0..n);
                    let b = (a + rng.random_range(1..n)) % n;
                    self.cut.insert((a, b));
                }
                2 | 3 => self.heal(),
                4 => {
                    let c = rng.random_range(0..n);
                    self.crash(c);
                }
                5 => {
                    let c = rng.random_range(0..n);
                    self.restart(c);
                    for e in elections {
                        if campaigners.contains(&c) {
                            self.campaign(c, e)?;
                        }
                    }
                }
                6 => {
                    if let Some(h) = self.lease_holder(e) {
                        self.resign(h, e)?;
                    }
                }
                7 => {
                    let c = campaigners[rng.random_range(0..campaigners.len())];
                    self.withdraw(c, e)?;
                }
                8 => {
                    let a = rng.random_range(0..n);
                    let b = (a + rng.random_range(1..n)) % n;
                    self.hold(a, b);
                }
                9 => {
                    let a = rng.random_range(0..n);
                    for b in (0..n).filter(|&b| b != a) {
                        self.hold(a, b);
                        self.hold(b, a);
                    }
                }
                _ => {
                    let c = campaigners[rng.random_range(0..campaigners.len())];
                    self.campaign(c, e)?;
                }
            }
        }
        // Heal: every node up, no faults, every candidate campaigning.
        self.heal();
        let late = self.late_rate > 0.0;
        self.drop_rate = 0.0;
        self.late_rate = 0.0;
        self.dup_rate = 0.0;
        self.delay = (Duration::from_micros(100), millis(2));
        if late {
            // Late batches sent before the heal arrive on the healed network.
            let t = self.timings();
            self.run_for(t.lease() + t.promise)?;
        }
        for i in 0..n {
            self.restart(i);
        }
        for e in elections {
            for &c in campaigners {
                self.campaign(c, e)?;
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------- stepping

    /// The earliest timer, in true time: when the node's clock reads its deadline, plus
    /// the node's current lateness.
    fn next_timer(&mut self) -> Option<(Duration, usize)> {
        let mut best: Option<(Duration, usize)> = None;
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(t) = node.as_mut().and_then(|n| n.poll_timeout()) {
                let d =
                    self.clocks[i].true_time(t.saturating_duration_since(self.t0)) + self.late[i];
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, i));
                }
            }
        }
        best
    }

    /// Runs one step (a delivery or a timer) no later than `limit`. Returns false if
    /// nothing was due by then (time then stands at `limit`).
    ///
    /// # Errors
    /// An invariant broke.
    pub fn step(&mut self, limit: Duration) -> Result<bool, String> {
        let timer = self.next_timer();
        let msg = self.queue.peek().map(|Reverse((t, s))| (*t, *s));
        let (at, deliver) = match (msg, timer) {
            (Some((tm, _)), Some((tt, _))) if tm <= tt => (tm, true),
            (Some((tm, _)), None) => (tm, true),
            (_, Some((tt, _))) => (tt, false),
            (None, None) => {
                self.now = self.now.max(limit);
                return Ok(false);
            }
        };
        if at > limit {
            self.now = self.now.max(limit);
            return Ok(false);
        }
        self.now = self.now.max(at);
        self.steps += 1;
        if deliver {
            let Some(Reverse((_, seq))) = self.queue.pop() else {
                return Ok(true);
            };
            let Some(f) = self.in_flight.remove(&seq) else {
                return Ok(true);
            };
            if self.cut.contains(&(f.from, f.to)) {
                return Ok(true);
            }
            if self.held.contains(&(f.from, f.to)) {
                self.parked.push(f);
                return Ok(true);
            }
            let now = self.node_now(f.to);
            let from = id(f.from);
            let Some(node) = self.nodes[f.to].as_mut() else {
                return Ok(true);
            };
            for m in f.messages {
                node.handle_message(now, &from, m);
            }
            self.flush(f.to)?;
        } else if let Some((_, n)) = timer {
            let now = self.node_now(n);
            if let Some(node) = self.nodes[n].as_mut() {
                node.handle_timeout(now);
            }
            self.late[n] = self.draw_late();
            self.flush(n)?;
        }
        Ok(true)
    }

    /// Runs until `until` (virtual).
    ///
    /// # Errors
    /// An invariant broke.
    pub fn run_until(&mut self, until: Duration) -> Result<(), String> {
        while self.step(until)? {}
        Ok(())
    }

    /// Runs for `d` (virtual).
    ///
    /// # Errors
    /// An invariant broke.
    pub fn run_for(&mut self, d: Duration) -> Result<(), String> {
        self.run_until(self.now + d)
    }

    /// Runs until `cond` holds, for at most `max`; whether it held.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn run_until_cond(
        &mut self,
        max: Duration,
        mut cond: impl FnMut(&Sim<B>) -> bool,
    ) -> Result<bool, String> {
        let until = self.now + max;
        loop {
            if cond(self) {
                return Ok(true);
            }
            if !self.step(until)? {
                return Ok(cond(self));
            }
        }
    }

    /// Drains node `n`'s outputs in the documented order, checking invariants.
    fn flush(&mut self, n: usize) -> Result<(), String> {
        let Some(node) = self.nodes[n].as_mut() else {
            return Ok(());
        };
        // 1. Persist before sending.
        let mut persisted = Vec::new();
        while let Some(batch) = node.poll_persist() {
            persisted.extend(batch);
        }
        let mut forgotten = Vec::new();
        while let Some(f) = node.poll_forget() {
            self.floors[n] = self.floors[n].max(f.floor);
            forgotten.extend(f.elections);
        }
        let mut transmits = Vec::new();
        while let Some(t) = node.poll_transmit() {
            transmits.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        // As the driver does: forgotten first, then the changes.
        for e in forgotten {
            self.forgets += 1;
            if let Some(old) = self.disk[n].remove(&e) {
                self.forgotten[n].insert(e, old);
            }
        }
        for (e, hs) in persisted {
            if let Some(old) = self.disk[n].get(&e) {
                B::check_persist(n, &e, old, &hs)?;
            } else if let Some(old) = self.forgotten[n].get(&e) {
                B::check_persist(n, &e, old, &hs)
                    .map_err(|why| format!("{why} (after forgetting {e})"))?;
            }
            self.disk[n].insert(e, hs);
        }
        for (to, messages) in transmits {
            let to = to.as_str()[1..].parse::<usize>().unwrap() - 1;
            if self.keep_log {
                for m in &messages {
                    self.sent.push((n, to, m.clone()));
                    if let Some(text) = B::trace_message(m) {
                        let line = format!(
                            "{:>6}ms n{} -> n{}: {text}",
                            self.now.as_millis(),
                            n + 1,
                            to + 1
                        );
                        self.trace.push(line);
                    }
                }
            }
            if self.drop_rate > 0.0 && self.rng.random_bool(self.drop_rate) {
                continue;
            }
            if self.dup_rate > 0.0 && self.rng.random_bool(self.dup_rate) {
                let d = self.draw_delay();
                self.enqueue(
                    d,
                    InFlight {
                        from: n,
                        to,
                        messages: messages.clone(),
                    },
                );
            }
            let d = self.draw_delay();
            self.enqueue(
                d,
                InFlight {
                    from: n,
                    to,
                    messages,
                },
            );
        }
        let mut lapsed = Vec::new();
        for ev in events {
            B::on_event(self, n, &ev)?;
            self.track(n, ev, &mut lapsed)?;
        }
        if !lapsed.is_empty() {
            // What the driver does with an extension that came after the holder saw its
            // deadline pass: step down quietly.
            let now = self.node_now(n);
            if let Some(node) = self.nodes[n].as_mut() {
                for e in &lapsed {
                    node.expire(now, e);
                }
            }
            self.note(|| format!("n{} expire {lapsed:?}", n + 1));
            self.flush(n)?;
        }
        Ok(())
    }

    /// One batch's delay: usually within [`delay`](Self::delay); with probability
    /// [`late_rate`](Self::late_rate) longer than a lease.
    fn draw_delay(&mut self) -> Duration {
        if self.late_rate > 0.0 && self.rng.random_bool(self.late_rate) {
            let t = self.timings();
            let extra = self.rng.random_range(0..=t.promise.as_nanos() as u64);
            return t.lease() + Duration::from_nanos(extra);
        }
        let (lo, hi) = self.delay;
        if hi > lo {
            lo + Duration::from_nanos(self.rng.random_range(0..(hi - lo).as_nanos() as u64))
        } else {
            lo
        }
    }

    fn enqueue(&mut self, d: Duration, f: InFlight<B::Message>) {
        self.seq += 1;
        if !self.manual {
            self.queue.push(Reverse((self.now + d, self.seq)));
        }
        self.in_flight.insert(self.seq, f);
    }

    // ------------------------------------------------------- manual network

    /// The batches in flight, as (sequence number, from, to), oldest first.
    pub fn in_flight(&self) -> Vec<(u64, usize, usize)> {
        let mut v: Vec<_> = self
            .in_flight
            .iter()
            .map(|(&s, f)| (s, f.from, f.to))
            .collect();
        v.sort_unstable();
        v
    }

    /// Delivers batch `seq` now; with `again`, a copy, and the batch stays in flight (a
    /// duplicate). A batch to a node that is down is lost.
    ///
    /// # Errors
    /// An invariant broke.
    pub fn deliver(&mut self, seq: u64, again: bool) -> Result<(), String> {
        let f = if again {
            let Some(f) = self.in_flight.get(&seq) else {
                return Ok(());
            };
            InFlight {
                from: f.from,
                to: f.to,
                messages: f.messages.clone(),
            }
        } else {
            let Some(f) = self.in_flight.remove(&seq) else {
                return Ok(());
            };
            f
        };
        self.steps += 1;
        let now = self.node_now(f.to);
        let from = id(f.from);
        if self.nodes[f.to].is_none() {
            return Ok(());
        }
        self.note(|| format!("deliver #{seq} n{} -> n{}", f.from + 1, f.to + 1));
        let Some(node) = self.nodes[f.to].as_mut() else {
            return Ok(());
        };
        for m in f.messages {
            node.handle_message(now, &from, m);
        }
        self.flush(f.to)
    }

    /// When node `n`'s next timer is due, in true time, if it runs.
    pub fn timer(&mut self, n: usize) -> Option<Duration> {
        let t = self.nodes[n].as_mut()?.poll_timeout()?;
        Some(self.true_time(n, t))
    }

    /// Fires node `n`'s next timer: time moves to it (if it is in the future).
    ///
    /// # Errors
    /// An invariant broke.
    pub fn fire(&mut self, n: usize) -> Result<(), String> {
        let Some(t) = self.timer(n) else {
            return Ok(());
        };
        self.now = self.now.max(t);
        self.steps += 1;
        self.note(|| format!("n{} timeout", n + 1));
        let now = self.node_now(n);
        if let Some(node) = self.nodes[n].as_mut() {
            node.handle_timeout(now);
        }
        self.flush(n)
    }

    /// Tracks the leases from node `n`'s event, in true time. An extension of a lease
    /// that already lapsed (possible only when timers fire late) ends it as `Expired` and
    /// adds the election to `lapsed`, for the driver's quiet step-down.
    fn track(
        &mut self,
        n: usize,
        ev: CoreEvent,
        lapsed: &mut Vec<ElectionName>,
    ) -> Result<(), String> {
        let late_timers = !self.timer_late.is_zero();
        match ev {
            CoreEvent::LeaderChanged { .. } => {}
            CoreEvent::Elected {
                election,
                epoch,
                lease_until,
            } => {
                let end = self.true_time(n, lease_until);
                if end <= self.now {
                    return Err(format!("n{} granted {election} with a lapsed lease", n + 1));
                }
                self.leases
                    .entry(election.clone())
                    .or_default()
                    .push(Lease {
                        node: n,
                        term: epoch,
                        start: self.now,
                        end,
                        reason: None,
                    });
                self.check_leases(&election)?;
            }
            CoreEvent::LeaseExtended {
                election,
                epoch,
                until,
            } => {
                let end = self.true_time(n, until);
                let now = self.now;
                if let Some(l) = self.leases.get_mut(&election).and_then(|ls| {
                    ls.iter_mut()
                        .find(|l| l.node == n && l.term == epoch && l.reason.is_none())
                }) && end > l.end
                {
                    if l.end <= now && late_timers {
                        l.reason = Some(LossReason::Expired);
                        lapsed.push(election);
                        return Ok(());
                    }
                    if l.end <= now {
                        return Err(format!(
                            "n{} extended its lapsed lease in {election} epoch {epoch}",
                            n + 1
                        ));
                    }
                    l.end = end;
                    self.check_leases(&election)?;
                }
            }
            CoreEvent::AllLeasesExtended { until, except } => {
                let end = self.true_time(n, until);
                let mut touched = Vec::new();
                for (e, leases) in self.leases.iter_mut() {
                    if except.contains(e) {
                        continue;
                    }
                    for l in leases
                        .iter_mut()
                        .filter(|l| l.node == n && l.reason.is_none())
                    {
                        if end > l.end {
                            if l.end <= self.now && late_timers {
                                l.reason = Some(LossReason::Expired);
                                lapsed.push(e.clone());
                                continue;
                            }
                            if l.end <= self.now {
                                return Err(format!(
                                    "n{} extended its lapsed lease in {e} term {}",
                                    n + 1,
                                    l.term
                                ));
                            }
                            l.end = end;
                            touched.push(e.clone());
                        }
                    }
                }
                for e in touched {
                    self.check_leases(&e)?;
                }
            }
            CoreEvent::Lost {
                election,
                epoch,
                reason,
            } => {
                let now = self.now;
                if let Some(l) = self.leases.get_mut(&election).and_then(|ls| {
                    ls.iter_mut()
                        .find(|l| l.node == n && l.term == epoch && l.reason.is_none())
                }) {
                    l.end = l.end.min(now);
                    l.reason = Some(reason);
                }
                let local = self.node_now(n);
                if self.recampaign
                    && let Some(node) = self.nodes[n].as_mut()
                {
                    node.campaign(local, &election);
                    // The campaign's own outputs go out with the next flush of this node.
                }
            }
        }
        Ok(())
    }

    /// No two leases of one election overlap in true (simulated) time; except after a
    /// resign, the old holder's child is dead before the new holder's starts: the new
    /// lease starts no earlier than the old holder's clock reads its deadline plus the
    /// kill grace, plus the part of `clock_drift` that the clock rates of this simulation
    /// do not use up (the guard's timer may be that late). With exact clocks that is the
    /// full margin, clock drift + kill grace.
    fn check_leases(&self, election: &ElectionName) -> Result<(), String> {
        if !B::leases_exclusive(&self.configs[0]) {
            return Ok(());
        }
        let Some(leases) = self.leases.get(election) else {
            return Ok(());
        };
        let t = self.timings();
        let guard_late = t.clock_drift.saturating_sub(self.rate_spread());
        for (i, a) in leases.iter().enumerate() {
            for b in &leases[i + 1..] {
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                let need = if first.reason == Some(LossReason::Resigned) {
                    Duration::ZERO
                } else {
                    self.clocks[first.node].true_span(t.kill_grace) + guard_late
                };
                if first.end + need > second.start {
                    return Err(format!(
                        "leases overlap in {election}: n{} epoch {} [{:?}, {:?}] ({:?}) and n{} epoch {} from {:?}; \
                         required gap {:?}",
                        first.node + 1,
                        first.term,
                        first.start,
                        first.end,
                        first.reason,
                        second.node + 1,
                        second.term,
                        second.start,
                        need
                    ));
                }
            }
        }
        Ok(())
    }

    /// The node holding a granted, unexpired lease in `e`, if any.
    pub fn lease_holder(&self, e: &ElectionName) -> Option<usize> {
        (0..self.n()).find(|&i| {
            self.nodes[i]
                .as_ref()
                .and_then(|n| B::lease_until(n, e))
                .is_some_and(|t| t > self.node_now(i))
        })
    }

    /// Each node's view of each election, for failure reports.
    pub fn dump(&self, elections: &[ElectionName]) -> String {
        let mut out = String::new();
        for e in elections {
            for (i, n) in self.nodes.iter().enumerate() {
                match n {
                    None => out += &format!("{e} n{}: down\n", i + 1),
                    Some(n) => out += &B::dump_line(n, e, i, self.node_now(i)),
                }
            }
        }
        out
    }

    /// Whether every election has a lease holder that every live node knows as leader.
    pub fn settled(&self, elections: &[ElectionName]) -> bool {
        elections.iter().all(|e| {
            let Some(h) = self.lease_holder(e) else {
                return false;
            };
            let Some(holder) = self.nodes[h].as_ref() else {
                return false;
            };
            let term = B::epoch(holder, e);
            self.nodes
                .iter()
                .flatten()
                .all(|n| B::leader(n, e) == Some((id(h), term)))
        })
    }
}

impl<B: SimBackend> Sim<B>
where
    B::Node: Debug,
    B::Message: Debug,
    <B::Node as ElectionCore>::HardState: Debug,
{
    /// A hash of everything that decides what can happen next and what the checks judge:
    /// the time, each node's whole state (its `Debug` form, without the maps from ids and
    /// names to indices, whose order is random), the disks, the batches in flight (as a
    /// multiset), the leases and leaders seen so far and the restart counts. The RNGs show
    /// only their position within a block, so two states whose cores differ only in
    /// random numbers not drawn yet hash alike.
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.now.hash(&mut h);
        for n in &self.nodes {
            match n {
                None => "down".hash(&mut h),
                Some(n) => canonical(&format!("{n:?}")).hash(&mut h),
            }
        }
        format!("{:?}", self.disk).hash(&mut h);
        let mut flying: Vec<String> = self
            .in_flight
            .values()
            .map(|f| format!("{} {} {:?}", f.from, f.to, f.messages))
            .collect();
        flying.sort_unstable();
        flying.hash(&mut h);
        format!("{:?}", self.leases).hash(&mut h);
        let mut leaders: Vec<_> = self
            .leaders
            .iter()
            .map(|((e, t), n)| (e.to_string(), *t, *n))
            .collect();
        leaders.sort_unstable();
        leaders.hash(&mut h);
        self.restarts.hash(&mut h);
        h.finish()
    }
}

/// A core's `Debug` form without its `index` and `by_name` fields (hash maps, printed in a
/// random order, and fixed by the configuration anyway).
fn canonical(debug: &str) -> String {
    let mut out = debug.to_string();
    for field in ["index: {", "by_name: {"] {
        let Some(start) = out.find(field) else {
            continue;
        };
        let mut depth = 0;
        let mut end = out.len();
        for (k, c) in out[start + field.len() - 1..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + field.len() - 1 + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(start..end, "");
    }
    out
}

/// One random schedule of a backend: `Ok` with the finished simulation, or `Err` with it
/// and the violated invariant. Its argument is the seed and whether to keep a log.
pub type Schedule<B> = fn(u64, bool) -> Result<Sim<B>, (Sim<B>, String)>;

/// How a backend's random schedules are run and replayed, with environment variables
/// `<PREFIX>_SIM_SCHEDULES` (how many), `<PREFIX>_SIM_BASE` (first seed) and
/// `<PREFIX>_SEED` (the seed to replay).
pub struct Schedules<B: SimBackend> {
    /// The environment variables' prefix (`"RAFT"`).
    pub prefix: &'static str,
    /// The package, for the replay command (`"election-raft"`).
    pub package: &'static str,
    /// How many schedules a normal run checks.
    pub default_total: u64,
    /// One schedule.
    pub run: Schedule<B>,
}

impl<B: SimBackend> Schedules<B> {
    fn env_u64(&self, name: &str) -> Option<u64> {
        std::env::var(format!("{}_{name}", self.prefix))
            .ok()
            .and_then(|v| v.parse().ok())
    }

    /// The command that replays `seed` with a trace.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "{}_SEED={seed} cargo test -p {} --test sim sim_replay -- --nocapture",
            self.prefix, self.package
        )
    }

    /// Runs schedule `k` for every `k` in `part..total` stepping by `parts`.
    ///
    /// # Panics
    /// A schedule failed: the message names its seed and the replay command.
    pub fn run_range(&self, part: u64, parts: u64) {
        let total = self.env_u64("SIM_SCHEDULES").unwrap_or(self.default_total);
        let base = self.env_u64("SIM_BASE").unwrap_or(0);
        let mut steps = 0;
        let mut count = 0;
        for k in (part..total).step_by(parts as usize) {
            let seed = base + k;
            match (self.run)(seed, false) {
                Ok(sim) => steps += sim.steps,
                Err((_, why)) => panic!(
                    "schedule with seed {seed} failed: {why}\nreplay: {}",
                    self.replay_command(seed)
                ),
            }
            count += 1;
        }
        eprintln!("part {part}: {count} schedules, {steps} steps, all invariants held");
    }

    /// Replays one schedule with a trace: `<PREFIX>_SEED=<seed>` (default 1).
    ///
    /// # Panics
    /// The schedule failed; the end of its log is printed first.
    pub fn replay(&self) {
        let seed = self.env_u64("SEED").unwrap_or(1);
        match (self.run)(seed, true) {
            Ok(sim) => {
                if std::env::var(format!("{}_SEED", self.prefix)).is_ok() {
                    for l in &sim.log {
                        eprintln!("{l}");
                    }
                }
                eprintln!("seed {seed}: ok, {} steps", sim.steps);
            }
            Err((sim, why)) => {
                let skip = sim.log.len().saturating_sub(400);
                for l in &sim.log[skip..] {
                    eprintln!("{l}");
                }
                panic!(
                    "seed {seed} failed: {why}\nreplay: {}",
                    self.replay_command(seed)
                );
            }
        }
    }
}
