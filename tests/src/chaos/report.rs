//! What a run found, for people: per fault class how many were injected and how many
//! violations had one nearby, the totals, the worst overlaps, every violation with stamps,
//! nodes and the faults around it, and the notes about the hosts themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::check::{self, Child, Findings, Overlap, Violation};
use super::clock::{Millis, Since};
use super::journal::Record;
use super::options::Backend;
use super::schedule::Class;

/// How many violations and notes the report prints (all are counted).
const SHOWN: usize = 40;

/// The outcome of a chaos run. [`is_clean`](Report::is_clean) is the verdict; `Display`
/// prints everything.
#[derive(Clone, Debug)]
pub struct Report {
    pub(crate) backend: Backend,
    pub(crate) seed: u64,
    pub(crate) origin_ns: u64,
    pub(crate) origin_wall: std::time::SystemTime,
    pub(crate) chaos: Duration,
    pub(crate) out: PathBuf,
    pub(crate) out_kept: bool,
    pub(crate) drawn: Vec<Class>,
    pub(crate) findings: Findings,
    pub(crate) record: Record,
    pub(crate) lease_ns: u64,
}

impl Report {
    /// No rule broken.
    pub fn is_clean(&self) -> bool {
        self.findings.violations.is_empty()
    }

    /// How many rules were broken.
    pub fn violations(&self) -> usize {
        self.findings.violations.len()
    }

    /// How many faults were injected in all.
    pub fn faults(&self) -> usize {
        self.record.faults.len()
    }

    /// How many faults of `class` were injected.
    pub fn injected(&self, class: Class) -> usize {
        self.record
            .faults
            .iter()
            .filter(|f| f.class == class)
            .count()
    }

    /// How many children started (leaderships that ran their command).
    pub fn leaderships(&self) -> usize {
        self.findings.leaderships
    }

    /// How many overlaps of two children no whole-host pause explains.
    pub fn unexplained_overlaps(&self) -> usize {
        self.findings
            .violations
            .iter()
            .filter(|v| matches!(v, Violation::Overlap(_)))
            .count()
    }

    /// The longest overlap of two children that no whole-host pause explains.
    pub fn worst_unexplained_overlap(&self) -> Option<Duration> {
        self.findings
            .worst_unexplained
            .as_ref()
            .map(|o| Duration::from_nanos(o.len_ns()))
    }

    /// Where the logs are (removed after a clean run into a temporary directory).
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    fn since(&self, at: u64) -> Since {
        Since {
            at,
            origin: self.origin_ns,
        }
    }

    fn child(&self, c: &Child) -> String {
        format!(
            "{} (epoch {}, pid {}, {}..{})",
            c.node,
            c.epoch,
            c.pid,
            self.since(c.start_ns),
            self.since(c.end_ns)
        )
    }

    fn overlap(&self, o: &Overlap) -> String {
        let by = o
            .explained_by
            .map(|i| format!("; explained by fault #{i}"))
            .unwrap_or_default();
        format!(
            "{} from {} to {}: {} and {}{by}",
            Millis(o.len_ns()),
            self.since(o.from_ns),
            self.since(o.to_ns),
            self.child(&o.first),
            self.child(&o.second)
        )
    }

    fn violation(&self, v: &Violation) -> String {
        match v {
            Violation::Overlap(o) => format!("two children at once for {}", self.overlap(o)),
            Violation::EpochTwice {
                epoch,
                first,
                second,
            } => format!(
                "epoch {epoch} given to two nodes: {} and {}",
                self.child(first),
                self.child(second)
            ),
            Violation::EpochBack { stale, newer } => format!(
                "epoch went back: {} started after {}",
                self.child(stale),
                self.child(newer)
            ),
            Violation::StaleAccepted {
                at_ns,
                child,
                highest,
            } => format!(
                "the fence accepted a stale write at {} from {} after epoch {highest}",
                self.since(*at_ns),
                self.child(child)
            ),
            Violation::Refused {
                child,
                count,
                first_ns,
                last_ns,
            } => format!(
                "{count} write(s) refused by the fence from {} to {}: an old leader still ran: {}",
                self.since(*first_ns),
                self.since(*last_ns),
                self.child(child)
            ),
            Violation::Garbled { child, line } => format!(
                "a child broke the protocol with {line:?}: {}",
                child
                    .as_ref()
                    .map_or("(before hello)".into(), |c| self.child(c))
            ),
            Violation::NoLeaderAfterHeal { from_ns, to_ns } => format!(
                "no child ran after every fault had healed, from {} to {}",
                self.since(*from_ns),
                self.since(*to_ns)
            ),
        }
    }

    fn near(&self, v: &Violation) -> String {
        let near = check::faults_near(&self.record, v, self.lease_ns);
        if near.is_empty() {
            return "no fault on these hosts or the server around it".into();
        }
        near.iter()
            .map(|&i| {
                let f = &self.record.faults[i];
                format!(
                    "#{i} {} {}..{} {}",
                    f.class,
                    self.since(f.start_ns),
                    f.end_ns
                        .map_or("open".into(), |e| self.since(e).to_string()),
                    f.what
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Every injected fault, one per line, for the run's `faults.log`.
    pub(crate) fn fault_lines(&self) -> String {
        self.record
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                format!(
                    "#{i} {} {}..{} {}\n",
                    f.class,
                    self.since(f.start_ns),
                    f.end_ns
                        .map_or("open".into(), |e| self.since(e).to_string()),
                    f.what
                )
            })
            .collect()
    }

    /// Every child, one per line, for the run's `children.log`.
    pub(crate) fn child_lines(&self) -> String {
        self.record
            .lives
            .iter()
            .map(|l| {
                let (start, end) = l.span();
                let end = end.map_or("alive".into(), |e| self.since(e).to_string());
                let who = l.hello.as_ref().map_or("(no hello)".into(), |h| {
                    format!("{} epoch {} pid {}", h.node, h.epoch, h.pid)
                });
                let term = l
                    .term_ns
                    .map_or(String::new(), |t| format!(" term {}", self.since(t)));
                format!(
                    "{who} {}..{end}{term} writes ok {} refused {}\n",
                    self.since(start),
                    l.accepted,
                    l.refused.len()
                )
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.findings;
        writeln!(
            f,
            "chaos run: backend {}, seed {}, {:.1} s of chaos, {} faults injected",
            self.backend,
            self.seed,
            self.chaos.as_secs_f64(),
            self.faults()
        )?;
        writeln!(
            f,
            "+0.000s is {} (the logs' wall clock, UTC)",
            humantime::format_rfc3339_millis(self.origin_wall)
        )?;
        writeln!(
            f,
            "logs: {}{}",
            self.out.display(),
            if self.out_kept {
                ""
            } else {
                " (removed: clean run)"
            }
        )?;
        let near = check::by_class(&self.record, &r.violations, self.lease_ns);
        writeln!(
            f,
            "\n{:<16} {:>8} {:>9}  what",
            "fault class", "injected", "near viol"
        )?;
        for c in Class::ALL {
            match c.applies(self.backend) {
                Ok(()) if self.drawn.contains(&c) => writeln!(
                    f,
                    "{:<16} {:>8} {:>9}  {}",
                    c.name(),
                    self.injected(c),
                    near.get(&c).copied().unwrap_or(0),
                    c.describe()
                )?,
                Ok(()) => writeln!(
                    f,
                    "{:<16} {:>8} {:>9}  not drawn (--classes)",
                    c.name(),
                    "-",
                    "-"
                )?,
                Err(why) => writeln!(
                    f,
                    "{:<16} {:>8} {:>9}  does not apply to {}: {why}",
                    c.name(),
                    "-",
                    "-",
                    self.backend
                )?,
            }
        }
        writeln!(
            f,
            "\nleaderships (children started): {}; connections without hello: {}",
            r.leaderships, r.silent
        )?;
        writeln!(
            f,
            "writes accepted: {}, refused: {} ({} explained by a whole-host pause or a server that lost its data)",
            r.accepted, r.refused, r.refused_explained
        )?;
        let worst = |o: &Option<Overlap>| o.as_ref().map_or("none".into(), |o| self.overlap(o));
        writeln!(
            f,
            "overlaps explained by a whole-host pause or a server that lost its data: {}; worst: {}",
            r.overlaps_explained,
            worst(&r.worst_explained)
        )?;
        writeln!(
            f,
            "unexplained overlaps: {}; worst: {}",
            self.unexplained_overlaps(),
            worst(&r.worst_unexplained)
        )?;
        writeln!(
            f,
            "epochs going back explained by a whole-host pause or a server that lost its data: {}",
            r.epoch_back_explained
        )?;
        writeln!(f, "\nviolations: {}", r.violations.len())?;
        for (i, v) in r.violations.iter().enumerate().take(SHOWN) {
            writeln!(f, "  {}. {}", i + 1, self.violation(v))?;
            writeln!(f, "     around it: {}", self.near(v))?;
        }
        if r.violations.len() > SHOWN {
            writeln!(f, "  ... and {} more", r.violations.len() - SHOWN)?;
        }
        let notes = &self.record.notes;
        if !notes.is_empty() {
            writeln!(f, "\nnotes about the hosts: {}", notes.len())?;
            for n in notes.iter().take(SHOWN) {
                writeln!(f, "  {} {}", self.since(n.at_ns), n.text)?;
            }
            if notes.len() > SHOWN {
                writeln!(f, "  ... and {} more", notes.len() - SHOWN)?;
            }
        }
        let by_class: BTreeMap<Class, usize> = near;
        let classes: Vec<String> = by_class.iter().map(|(c, n)| format!("{c} {n}")).collect();
        if self.is_clean() {
            writeln!(f, "\nRESULT: clean, 0 violations")
        } else {
            writeln!(
                f,
                "\nRESULT: {} violation(s); fault classes around them: {}",
                r.violations.len(),
                classes.join(", ")
            )
        }
    }
}
