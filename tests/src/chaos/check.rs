//! The history checker: judges the children's lives and writes recorded in a [`Record`].
//!
//! # The rules
//!
//! 1. **No two children alive at once.** A child lives from min(its own start stamp, the
//!    fence server's accept) to the EOF on its connection, on the one clock of the run.
//!    Two lives that intersect are an overlap.
//! 2. **No epoch given to two nodes.**
//! 3. **No epoch going back**: no child starts with an epoch below one an earlier-started
//!    child had.
//! 4. **No stale write accepted**: in the fence's admission order, no write is accepted at
//!    an epoch below one accepted before it (the [`Fence`](election_core::Fence) itself
//!    must hold this; the check guards the instrument).
//! 5. **No refused write**: a write the fence refused was made by an old leader still
//!    running after a newer one wrote.
//!
//! # The pause explanation
//!
//! DESIGN.md "Safety timing": with no process pauses *of the guarded child*, the old
//! leader's child is dead before another node can be elected. A SIGSTOP of a whole host
//! (runner, agent and child together) is the documented limit: nobody on that host can
//! stop the child in time, which is what epochs and the fence are for. So an overlap, an
//! epoch going back, or refused writes are *explained* (counted, not violations) when the
//! stale party's host was paused whole during a pause that intersects
//! [event start − lease, event end], where `lease` is [`Timings::lease`]: how long a
//! leader may go on believing it leads after it wakes. The stale party is the child with
//! the lower epoch: in an overlap normally the earlier-started child (the old leader); in
//! an epoch going back, the late child that brought the old epoch.
//!
//! One more fault explains the same events on *any* host: a restart of the server that
//! emptied its data (Redis `restart-server` with `Data::Empty`). A server that lost its
//! data forgot the lease, so it may grant the next candidate before the old holder learns
//! of the loss at its next renewal and uses its kill grace: election-redis documents this
//! limit ("What is not guaranteed"), since a single Redis server is not consensus. Its epochs
//! still rise (decision 040), so the fence refuses the old child's writes, and a stale
//! write *accepted* is never explained. No other fault explains anything: a stalled server,
//! runner, agent or network, or a restart that kept its data, must not let two children
//! run.
//!
//! [`Timings::lease`]: super::Timings::lease

use std::collections::BTreeMap;

use election_core::Epoch;

use super::journal::{Record, Target, host_of};
use super::schedule::Class;

/// A child as the checker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Child {
    /// Its node.
    pub(crate) node: String,
    /// Its host (from the node id), if it is one of the run's.
    pub(crate) host: Option<usize>,
    /// Its epoch.
    pub(crate) epoch: Epoch,
    /// Its pid.
    pub(crate) pid: u32,
    /// Its life.
    pub(crate) start_ns: u64,
    /// Its death (or the end of the record, if it was still alive).
    pub(crate) end_ns: u64,
}

/// Two children alive at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// The one that started first.
    pub(crate) first: Child,
    /// The one that started second.
    pub(crate) second: Child,
    /// From the second's start ...
    pub(crate) from_ns: u64,
    /// ... to the first death of the two.
    pub(crate) to_ns: u64,
    /// The whole-host pause that explains it (index into the faults), if any.
    pub(crate) explained_by: Option<usize>,
}

impl Overlap {
    /// How long it lasted, in nanoseconds.
    pub(crate) fn len_ns(&self) -> u64 {
        self.to_ns - self.from_ns
    }
}

/// A rule broken, with what the report needs to show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// Rule 1, unexplained.
    Overlap(Overlap),
    /// Rule 2.
    EpochTwice {
        /// The epoch.
        epoch: Epoch,
        /// Who had it first.
        first: Child,
        /// The other node that had it.
        second: Child,
    },
    /// Rule 3, unexplained.
    EpochBack {
        /// The child that started with the lower epoch.
        stale: Child,
        /// The earlier-started child with the higher epoch.
        newer: Child,
    },
    /// Rule 4.
    StaleAccepted {
        /// When.
        at_ns: u64,
        /// Who wrote.
        child: Child,
        /// The highest epoch accepted before it.
        highest: Epoch,
    },
    /// Rule 5, unexplained: all the refused writes of one child.
    Refused {
        /// Who wrote.
        child: Child,
        /// How many writes were refused.
        count: usize,
        /// The first refusal.
        first_ns: u64,
        /// The last refusal.
        last_ns: u64,
    },
    /// A child spoke a line outside the protocol (the instrument is broken).
    Garbled {
        /// Who, if it said hello.
        child: Option<Child>,
        /// The line.
        line: String,
    },
    /// After every fault had healed, no child ran within the wait.
    NoLeaderAfterHeal {
        /// When the wait began.
        from_ns: u64,
        /// When it gave up.
        to_ns: u64,
    },
}

impl Violation {
    /// The hosts of the children it concerns.
    fn hosts(&self) -> Vec<Option<usize>> {
        match self {
            Violation::Overlap(o) => vec![o.first.host, o.second.host],
            Violation::EpochTwice { first, second, .. } => vec![first.host, second.host],
            Violation::EpochBack { stale, newer } => vec![stale.host, newer.host],
            Violation::StaleAccepted { child, .. } | Violation::Refused { child, .. } => {
                vec![child.host]
            }
            Violation::Garbled { child, .. } => vec![child.as_ref().and_then(|c| c.host)],
            Violation::NoLeaderAfterHeal { .. } => (0..super::cluster::HOSTS).map(Some).collect(),
        }
    }

    /// The span it concerns, for finding the faults around it.
    pub(crate) fn span(&self) -> (u64, u64) {
        match self {
            Violation::Overlap(o) => (o.from_ns, o.to_ns),
            Violation::EpochTwice { second, .. } => (second.start_ns, second.start_ns),
            Violation::EpochBack { stale, .. } => (stale.start_ns, stale.start_ns),
            Violation::StaleAccepted { at_ns, .. } => (*at_ns, *at_ns),
            Violation::Refused {
                first_ns, last_ns, ..
            } => (*first_ns, *last_ns),
            Violation::Garbled { child, .. } => {
                child.as_ref().map_or((0, 0), |c| (c.start_ns, c.end_ns))
            }
            Violation::NoLeaderAfterHeal { from_ns, to_ns } => (*from_ns, *to_ns),
        }
    }
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Children that said hello.
    pub(crate) leaderships: usize,
    /// Connections that never said hello (a child killed before it could).
    pub(crate) silent: usize,
    /// Writes accepted.
    pub(crate) accepted: u64,
    /// Writes refused.
    pub(crate) refused: u64,
    /// Refused writes a whole-host pause explains.
    pub(crate) refused_explained: u64,
    /// Overlaps a whole-host pause explains.
    pub(crate) overlaps_explained: usize,
    /// Epochs going back that a whole-host pause explains.
    pub(crate) epoch_back_explained: usize,
    /// The longest explained overlap.
    pub(crate) worst_explained: Option<Overlap>,
    /// The longest unexplained overlap.
    pub(crate) worst_unexplained: Option<Overlap>,
    /// Every rule broken.
    pub(crate) violations: Vec<Violation>,
}

/// The faults that explain events: (host, or `None` for every host; start; end; fault
/// index). Whole-host pauses, and server restarts that lost the data.
struct Pauses(Vec<(Option<usize>, u64, u64, usize)>);

impl Pauses {
    fn of(record: &Record, now_ns: u64) -> Pauses {
        Pauses(
            record
                .faults
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let end = f.end_ns.unwrap_or(now_ns);
                    match f.target {
                        Target::Host(h) if f.class.excuses_overlap() => {
                            Some((Some(h), f.start_ns, end, i))
                        }
                        Target::Server if f.lost_data => Some((None, f.start_ns, end, i)),
                        _ => None,
                    }
                })
                .collect(),
        )
    }

    /// The pause of `host` (or data loss of the server) that intersects
    /// [from − lease, to], if any.
    fn explain(&self, host: Option<usize>, from: u64, to: u64, lease: u64) -> Option<usize> {
        self.0
            .iter()
            .find(|&&(h, start, end, _)| {
                (h.is_none() || (host.is_some() && h == host))
                    && start <= to
                    && end.saturating_add(lease) >= from
            })
            .map(|&(_, _, _, i)| i)
    }
}

/// Judges `record`; `lease` is the explanation window in nanoseconds, `now_ns` closes the
/// lives and faults still open.
pub(crate) fn check(record: &Record, lease: u64, now_ns: u64) -> Findings {
    let mut f = Findings::default();
    let pauses = Pauses::of(record, now_ns);
    let mut children: Vec<(usize, Child)> = Vec::new();
    for (i, life) in record.lives.iter().enumerate() {
        if let Some(line) = &life.garbled {
            f.violations.push(Violation::Garbled {
                child: child_of(record, i, now_ns),
                line: line.clone(),
            });
        }
        f.accepted += life.accepted;
        f.refused += life.refused.len() as u64;
        match child_of(record, i, now_ns) {
            Some(c) => children.push((i, c)),
            None => f.silent += 1,
        }
    }
    f.leaderships = children.len();
    children.sort_by_key(|(_, c)| c.start_ns);
    overlaps(&children, &pauses, lease, &mut f);
    epochs(&children, &pauses, lease, &mut f);
    stale_writes(record, now_ns, &mut f);
    for (i, c) in &children {
        let refused = &record.lives[*i].refused;
        let (Some(&first), Some(&last)) = (refused.first(), refused.last()) else {
            continue;
        };
        if pauses.explain(c.host, first, last, lease).is_some() {
            f.refused_explained += refused.len() as u64;
        } else {
            f.violations.push(Violation::Refused {
                child: c.clone(),
                count: refused.len(),
                first_ns: first,
                last_ns: last,
            });
        }
    }
    f
}

fn child_of(record: &Record, i: usize, now_ns: u64) -> Option<Child> {
    let life = &record.lives[i];
    let hello = life.hello.as_ref()?;
    let (start_ns, end) = life.span();
    Some(Child {
        node: hello.node.clone(),
        host: host_of(&hello.node),
        epoch: hello.epoch,
        pid: hello.pid,
        start_ns,
        end_ns: end.unwrap_or(now_ns),
    })
}

/// Rule 1 over children sorted by start.
fn overlaps(children: &[(usize, Child)], pauses: &Pauses, lease: u64, f: &mut Findings) {
    for (i, (_, a)) in children.iter().enumerate() {
        for (_, b) in &children[i + 1..] {
            if b.start_ns >= a.end_ns {
                // Sorted by start: later ones start later still, but a long life may
                // still reach them, so only this pair is done.
                continue;
            }
            let stale = if b.epoch < a.epoch { b } else { a };
            let from_ns = b.start_ns;
            let to_ns = a.end_ns.min(b.end_ns);
            let o = Overlap {
                first: a.clone(),
                second: b.clone(),
                from_ns,
                to_ns,
                explained_by: pauses.explain(stale.host, from_ns, to_ns, lease),
            };
            let worst = if o.explained_by.is_some() {
                f.overlaps_explained += 1;
                &mut f.worst_explained
            } else {
                &mut f.worst_unexplained
            };
            if worst.as_ref().is_none_or(|w| o.len_ns() > w.len_ns()) {
                *worst = Some(o.clone());
            }
            if o.explained_by.is_none() {
                f.violations.push(Violation::Overlap(o));
            }
        }
    }
}

/// Rules 2 and 3 over children sorted by start.
fn epochs(children: &[(usize, Child)], pauses: &Pauses, lease: u64, f: &mut Findings) {
    let mut first_of: BTreeMap<Epoch, &Child> = BTreeMap::new();
    let mut highest: Option<&Child> = None;
    for (_, c) in children {
        match first_of.get(&c.epoch) {
            Some(first) if first.node != c.node => f.violations.push(Violation::EpochTwice {
                epoch: c.epoch,
                first: (*first).clone(),
                second: c.clone(),
            }),
            Some(_) => {}
            None => {
                first_of.insert(c.epoch, c);
            }
        }
        match highest {
            Some(h) if c.epoch < h.epoch => {
                if pauses
                    .explain(c.host, c.start_ns, c.start_ns, lease)
                    .is_some()
                {
                    f.epoch_back_explained += 1;
                } else {
                    f.violations.push(Violation::EpochBack {
                        stale: c.clone(),
                        newer: h.clone(),
                    });
                }
            }
            Some(h) if c.epoch == h.epoch => {}
            _ => highest = Some(c),
        }
    }
}

/// Rule 4 in admission order.
fn stale_writes(record: &Record, now_ns: u64, f: &mut Findings) {
    let mut highest = Epoch::ZERO;
    for w in &record.writes {
        if !w.accepted {
            continue;
        }
        if w.epoch < highest {
            if let Some(child) = child_of(record, w.child, now_ns) {
                f.violations.push(Violation::StaleAccepted {
                    at_ns: w.at_ns,
                    child,
                    highest,
                });
            }
        }
        highest = highest.max(w.epoch);
    }
}

/// The faults around a violation, by index: active at some time within
/// [from − lease, to], and aimed at the server or at a host of a child it concerns.
pub(crate) fn faults_near(record: &Record, v: &Violation, lease: u64) -> Vec<usize> {
    let (from, to) = v.span();
    let hosts = v.hosts();
    record
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.start_ns <= to && f.end_ns.map_or(u64::MAX, |e| e.saturating_add(lease)) >= from
        })
        .filter(|(_, f)| match f.target {
            Target::Server => true,
            Target::Host(h) => hosts.contains(&Some(h)),
        })
        .map(|(i, _)| i)
        .collect()
}

/// How many violations had a fault of each class near them.
pub(crate) fn by_class(
    record: &Record,
    violations: &[Violation],
    lease: u64,
) -> BTreeMap<Class, usize> {
    let mut out = BTreeMap::new();
    for v in violations {
        let mut classes: Vec<Class> = faults_near(record, v, lease)
            .into_iter()
            .map(|i| record.faults[i].class)
            .collect();
        classes.sort();
        classes.dedup();
        for c in classes {
            *out.entry(c).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
