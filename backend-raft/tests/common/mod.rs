//! A simulated network for the sans-IO core, in the style of etcd's `network` (raft_test.go)
//! and quinn's `Pair`: virtual time jumps to the earliest timeout or delivery; seeded
//! drops, delays (hence reordering), symmetric and one-way partitions, crashes and
//! restarts from persisted state. Invariants are checked after every step.
#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use election_core::{ElectionName, LossReason, NodeId};
use election_raft::core::{Event, HardState, Message, Node, NodeConfig, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The timings the simulator runs with: the crate's defaults.
pub fn default_config(me: &NodeId, members: &BTreeSet<NodeId>, seed: u64) -> NodeConfig {
    let d = election_raft::RaftConfig::default();
    NodeConfig {
        me: me.clone(),
        members: members.clone(),
        voters_only: BTreeSet::new(),
        heartbeat: d.heartbeat,
        election_timeout_min: d.election_timeout_min,
        election_timeout_max: d.election_timeout_max,
        clock_drift: d.clock_drift,
        kill_grace: d.kill_grace,
        seed,
        incarnation: 1,
    }
}

pub fn id(i: usize) -> NodeId {
    NodeId::new(format!("n{}", i + 1)).unwrap()
}

pub fn election(i: usize) -> ElectionName {
    ElectionName::new(format!("e{}", i + 1)).unwrap()
}

/// One leadership as observed from the events, in simulated time since the start.
#[derive(Clone, Debug)]
pub struct Lease {
    pub node: usize,
    pub term: Term,
    pub start: Duration,
    pub end: Duration,
    pub reason: Option<LossReason>,
}

struct InFlight {
    from: usize,
    to: usize,
    messages: Vec<Message>,
}

/// The simulated cluster.
pub struct Sim {
    pub seed: u64,
    pub rng: ChaCha8Rng,
    t0: Instant,
    pub now: Duration,
    pub configs: Vec<NodeConfig>,
    pub nodes: Vec<Option<Node>>,
    pub disk: Vec<BTreeMap<ElectionName, HardState>>,
    restarts: Vec<u64>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    in_flight: HashMap<u64, InFlight>,
    seq: u64,
    /// Ordered pairs (from, to) whose messages are lost.
    pub cut: BTreeSet<(usize, usize)>,
    /// Probability that one batch is lost.
    pub drop_rate: f64,
    /// Delivery delay range.
    pub delay: (Duration, Duration),
    /// Observed leaderships per election.
    pub leases: BTreeMap<ElectionName, Vec<Lease>>,
    /// Who led each (election, term).
    pub leaders: HashMap<(ElectionName, Term), usize>,
    /// Node → elections it should campaign in again after losing (a supervise loop).
    pub recampaign: bool,
    /// Every event, for golden traces and failure reports.
    pub log: Vec<String>,
    pub keep_log: bool,
    pub steps: u64,
}

impl Sim {
    /// `n` nodes with the default timings, `voters_only` of them never campaigning.
    pub fn new(seed: u64, n: usize, voters_only: &[usize]) -> Sim {
        let members: BTreeSet<NodeId> = (0..n).map(id).collect();
        let vo: BTreeSet<NodeId> = voters_only.iter().map(|&i| id(i)).collect();
        let configs: Vec<NodeConfig> = (0..n)
            .map(|i| {
                let mut c = default_config(
                    &id(i),
                    &members,
                    seed.wrapping_mul(31).wrapping_add(i as u64),
                );
                c.voters_only = vo.clone();
                c
            })
            .collect();
        Self::with_configs(seed, configs)
    }

    pub fn with_configs(seed: u64, configs: Vec<NodeConfig>) -> Sim {
        let t0 = Instant::now();
        let n = configs.len();
        let nodes = configs
            .iter()
            .map(|c| Some(Node::new(c.clone(), t0, []).unwrap()))
            .collect();
        Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            t0,
            now: Duration::ZERO,
            configs,
            nodes,
            disk: vec![BTreeMap::new(); n],
            restarts: vec![0; n],
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            drop_rate: 0.0,
            delay: (Duration::from_micros(100), Duration::from_micros(500)),
            leases: BTreeMap::new(),
            leaders: HashMap::new(),
            recampaign: false,
            log: Vec::new(),
            keep_log: false,
            steps: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    pub fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.keep_log {
            let l = format!("{:>8.1}ms {}", self.now.as_secs_f64() * 1000.0, line());
            self.log.push(l);
        }
    }

    // ------------------------------------------------------------ inputs

    pub fn campaign(&mut self, n: usize, e: &ElectionName) -> Result<(), String> {
        let now = self.instant();
        if let Some(node) = self.nodes[n].as_mut() {
            node.campaign(now, e);
            self.note(|| format!("n{} campaign {e}", n + 1));
            self.flush(n)?;
        }
        Ok(())
    }

    pub fn withdraw(&mut self, n: usize, e: &ElectionName) -> Result<(), String> {
        let now = self.instant();
        if let Some(node) = self.nodes[n].as_mut() {
            node.withdraw(now, e);
            self.note(|| format!("n{} withdraw {e}", n + 1));
            self.flush(n)?;
        }
        Ok(())
    }

    pub fn resign(&mut self, n: usize, e: &ElectionName) -> Result<bool, String> {
        let now = self.instant();
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
            let now = self.now;
            // Its leases end at their deadline at the latest (nothing extends them).
            for leases in self.leases.values_mut() {
                for l in leases
                    .iter_mut()
                    .filter(|l| l.node == n && l.reason.is_none())
                {
                    l.reason = Some(LossReason::Shutdown);
                    let _ = now;
                }
            }
        }
    }

    pub fn restart(&mut self, n: usize) {
        if self.nodes[n].is_some() {
            return;
        }
        self.restarts[n] += 1;
        let mut cfg = self.configs[n].clone();
        cfg.incarnation = 1 + self.restarts[n];
        cfg.seed = cfg.seed.wrapping_add(self.restarts[n] * 7919);
        let state: Vec<_> = self.disk[n]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.nodes[n] = Some(Node::new(cfg, self.instant(), state).unwrap());
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

    pub fn heal(&mut self) {
        self.cut.clear();
        self.note(|| "heal".to_string());
    }

    // ------------------------------------------------------------- stepping

    fn next_timer(&mut self) -> Option<(Duration, usize)> {
        let mut best: Option<(Duration, usize)> = None;
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(t) = node.as_mut().and_then(|n| n.poll_timeout()) {
                let d = t.saturating_duration_since(self.t0);
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, i));
                }
            }
        }
        best
    }

    /// Runs one step (a delivery or a timer) no later than `limit`. Returns false if
    /// nothing was due by then (time then stands at `limit`).
    pub fn step(&mut self, limit: Duration) -> Result<bool, String> {
        let timer = self.next_timer();
        let msg = self.queue.peek().map(|Reverse((t, s))| (*t, *s));
        let deliver_first = match (msg, timer) {
            (Some((tm, _)), Some((tt, _))) => tm <= tt,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => {
                self.now = self.now.max(limit);
                return Ok(false);
            }
        };
        let at = if deliver_first {
            msg.unwrap().0
        } else {
            timer.unwrap().0
        };
        if at > limit {
            self.now = self.now.max(limit);
            return Ok(false);
        }
        self.now = self.now.max(at);
        self.steps += 1;
        if deliver_first {
            let Reverse((_, seq)) = self.queue.pop().unwrap();
            let f = self.in_flight.remove(&seq).unwrap();
            if self.cut.contains(&(f.from, f.to)) {
                return Ok(true);
            }
            let now = self.instant();
            let from = id(f.from);
            let Some(node) = self.nodes[f.to].as_mut() else {
                return Ok(true);
            };
            for m in f.messages {
                node.handle_message(now, &from, m);
            }
            self.flush(f.to)?;
        } else {
            let n = timer.unwrap().1;
            let now = self.instant();
            self.nodes[n].as_mut().unwrap().handle_timeout(now);
            self.flush(n)?;
        }
        Ok(true)
    }

    /// Runs until `until` (virtual).
    pub fn run_until(&mut self, until: Duration) -> Result<(), String> {
        while self.step(until)? {}
        Ok(())
    }

    pub fn run_for(&mut self, d: Duration) -> Result<(), String> {
        self.run_until(self.now + d)
    }

    /// Delivers everything in flight and every timer up to `d` from now.
    pub fn run_until_cond(
        &mut self,
        max: Duration,
        mut cond: impl FnMut(&Sim) -> bool,
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
        let node = self.nodes[n].as_mut().unwrap();
        // 1. Persist before sending.
        let mut persisted = Vec::new();
        while let Some(batch) = node.poll_persist() {
            persisted.extend(batch);
        }
        let mut transmits = Vec::new();
        while let Some(t) = node.poll_transmit() {
            transmits.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        for (e, hs) in persisted {
            if let Some(old) = self.disk[n].get(&e) {
                if hs.term < old.term {
                    return Err(format!(
                        "n{} persisted term {} for {e} after term {}: persisted terms went back",
                        n + 1,
                        hs.term,
                        old.term
                    ));
                }
                if hs.term == old.term && old.vote.is_some() && hs.vote != old.vote {
                    return Err(format!(
                        "n{} changed its vote in {e} term {} from {:?} to {:?}",
                        n + 1,
                        hs.term,
                        old.vote,
                        hs.vote
                    ));
                }
            }
            self.disk[n].insert(e, hs);
        }
        for t in transmits {
            let to = t.to.as_str()[1..].parse::<usize>().unwrap() - 1;
            if self.drop_rate > 0.0 && self.rng.random_bool(self.drop_rate) {
                continue;
            }
            let (lo, hi) = self.delay;
            let d = if hi > lo {
                lo + Duration::from_nanos(self.rng.random_range(0..(hi - lo).as_nanos() as u64))
            } else {
                lo
            };
            self.seq += 1;
            self.queue.push(Reverse((self.now + d, self.seq)));
            self.in_flight.insert(
                self.seq,
                InFlight {
                    from: n,
                    to,
                    messages: t.messages,
                },
            );
        }
        for ev in events {
            self.on_event(n, ev)?;
        }
        Ok(())
    }

    fn margin(&self) -> Duration {
        self.configs[0].clock_drift + self.configs[0].kill_grace
    }

    fn on_event(&mut self, n: usize, ev: Event) -> Result<(), String> {
        if self.keep_log {
            let text = self.describe(&ev);
            self.note(|| format!("n{} {text}", n + 1));
        }
        match ev {
            Event::LeaderChanged { election, leader } => {
                if let Some((l, term)) = leader
                    && l == id(n)
                {
                    // Election safety (§5.2): at most one leader per term.
                    if let Some(&other) = self.leaders.get(&(election.clone(), term))
                        && other != n
                    {
                        return Err(format!(
                            "two leaders in {election} term {term}: n{} and n{}",
                            other + 1,
                            n + 1
                        ));
                    }
                    self.leaders.insert((election, term), n);
                }
            }
            Event::Elected {
                election,
                term,
                lease_until,
            } => {
                let end = lease_until.saturating_duration_since(self.t0);
                if end <= self.now {
                    return Err(format!("n{} granted {election} with a lapsed lease", n + 1));
                }
                self.leases
                    .entry(election.clone())
                    .or_default()
                    .push(Lease {
                        node: n,
                        term,
                        start: self.now,
                        end,
                        reason: None,
                    });
                self.check_leases(&election)?;
            }
            Event::LeaseExtended { until } => {
                let end = until.saturating_duration_since(self.t0);
                let mut touched = Vec::new();
                for (e, leases) in self.leases.iter_mut() {
                    for l in leases
                        .iter_mut()
                        .filter(|l| l.node == n && l.reason.is_none())
                    {
                        if end > l.end {
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
            Event::Lost {
                election,
                term,
                reason,
            } => {
                let now = self.now;
                if let Some(l) = self.leases.get_mut(&election).and_then(|ls| {
                    ls.iter_mut()
                        .find(|l| l.node == n && l.term == term && l.reason.is_none())
                }) {
                    l.end = l.end.min(now);
                    l.reason = Some(reason);
                }
                if self.recampaign {
                    let node = self.nodes[n].as_mut().unwrap();
                    node.campaign(self.t0 + now, &election);
                    // The campaign's own outputs go out with the next flush of this node.
                }
            }
        }
        Ok(())
    }

    /// No two leases of one election overlap in simulated time; except after a resign,
    /// they are separated by at least the safety margin (clock drift + kill grace), so the
    /// old leader's child is dead before the new leader's starts.
    fn check_leases(&self, election: &ElectionName) -> Result<(), String> {
        let Some(leases) = self.leases.get(election) else {
            return Ok(());
        };
        let margin = self.margin();
        for (i, a) in leases.iter().enumerate() {
            for b in &leases[i + 1..] {
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                let need = if first.reason == Some(LossReason::Resigned) {
                    Duration::ZERO
                } else {
                    margin
                };
                if first.end + need > second.start {
                    return Err(format!(
                        "leases overlap in {election}: n{} term {} [{:?}, {:?}] ({:?}) and n{} term {} from {:?}; \
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
        let now = self.instant();
        (0..self.n()).find(|&i| {
            self.nodes[i]
                .as_ref()
                .and_then(|n| n.lease_until(e))
                .is_some_and(|t| t > now)
        })
    }

    /// Each node's view of each election, for failure reports.
    pub fn dump(&self, elections: &[ElectionName]) -> String {
        let now = self.instant();
        let mut out = String::new();
        for e in elections {
            for (i, n) in self.nodes.iter().enumerate() {
                match n {
                    None => out += &format!("{e} n{}: down\n", i + 1),
                    Some(n) => {
                        out += &format!(
                            "{e} n{}: term {} leader {:?} lease {:?} campaigning {}\n",
                            i + 1,
                            n.term(e),
                            n.leader(e),
                            n.lease_until(e).map(|t| t.saturating_duration_since(now)),
                            n.is_campaigning(e)
                        )
                    }
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
            let term = self.nodes[h].as_ref().unwrap().term(e);
            self.nodes
                .iter()
                .flatten()
                .all(|n| n.leader(e) == Some((id(h), term)))
        })
    }
}

impl Sim {
    /// An event in words, with instants as simulated milliseconds (deterministic).
    fn describe(&self, ev: &Event) -> String {
        let at = |t: &Instant| {
            format!(
                "{:.1}ms",
                t.saturating_duration_since(self.t0).as_secs_f64() * 1000.0
            )
        };
        match ev {
            Event::LeaderChanged { election, leader } => match leader {
                Some((l, t)) => format!("{election}: leader {l} at term {t}"),
                None => format!("{election}: no leader"),
            },
            Event::Elected {
                election,
                term,
                lease_until,
            } => format!(
                "{election}: elected at term {term}, lease until {}",
                at(lease_until)
            ),
            Event::LeaseExtended { until } => format!("lease extended until {}", at(until)),
            Event::Lost {
                election,
                term,
                reason,
            } => format!("{election}: lost term {term} ({reason:?})"),
        }
    }
}
