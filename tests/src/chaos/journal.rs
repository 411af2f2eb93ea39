//! The record of a run: every child's life as the fence server saw it, every fenced write
//! in the order the fence admitted or refused it, and every injected fault. Shared by the
//! fence server (which writes the children's part), the injector (faults) and the
//! checker (which reads a snapshot). All stamps are [`now_ns`](super::clock::now_ns).

use std::sync::{Mutex, MutexGuard};

use election_core::{Epoch, Fence};

use super::schedule::Class;

/// What a child said when it connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    /// `ELECTOR_NODE_ID`.
    pub(crate) node: String,
    /// `ELECTOR_EPOCH`.
    pub(crate) epoch: Epoch,
    /// The child's pid.
    pub(crate) pid: u32,
    /// The first thing it read: `CLOCK_MONOTONIC` at its start.
    pub(crate) start_ns: u64,
}

/// One child, from its connection to the fence server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Life {
    /// When the fence server accepted the connection.
    pub(crate) accepted_ns: u64,
    /// The hello line, once read.
    pub(crate) hello: Option<Hello>,
    /// When it reported SIGTERM (its own stamp).
    pub(crate) term_ns: Option<u64>,
    /// When it said goodbye (its own stamp).
    pub(crate) bye_ns: Option<u64>,
    /// When the fence server read EOF (or an error): its death, as the kernel closes the
    /// socket of a dead process.
    pub(crate) eof_ns: Option<u64>,
    /// Writes the fence accepted.
    pub(crate) accepted: u64,
    /// Writes the fence refused, with their stamps.
    pub(crate) refused: Vec<u64>,
    /// A line the server could not understand, if any (the connection was then closed).
    pub(crate) garbled: Option<String>,
}

impl Life {
    /// The child's life on the runner's clock: [min(start, accept), EOF], the end `None`
    /// while it lives.
    pub(crate) fn span(&self) -> (u64, Option<u64>) {
        let start = self
            .hello
            .as_ref()
            .map_or(self.accepted_ns, |h| h.start_ns.min(self.accepted_ns));
        (start, self.eof_ns)
    }
}

/// One fenced write, in admission order.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    /// When the fence judged it.
    pub(crate) at_ns: u64,
    /// The child (index into [`Record::lives`]).
    pub(crate) child: usize,
    /// Its epoch.
    pub(crate) epoch: Epoch,
    /// Whether the fence admitted it.
    pub(crate) accepted: bool,
}

/// What a fault hit, once resolved.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Host `i` (0-based; node `n{i+1}`).
    Host(usize),
    /// The server.
    Server,
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FaultRecord {
    /// Its class.
    pub(crate) class: Class,
    /// What it hit.
    pub(crate) target: Target,
    /// What exactly was done, for the report (`SIGSTOP of n2's elector run for 2.31 s`).
    pub(crate) what: String,
    /// Just before the first signal or proxy change.
    pub(crate) start_ns: u64,
    /// Just after it was undone; `None` while it lasts.
    pub(crate) end_ns: Option<u64>,
    /// A server restart that emptied the server's data (the server forgot every lease).
    pub(crate) lost_data: bool,
}

/// Something that went wrong with the hosts themselves (not a finding about the election,
/// but worth reading next to one): a process that exited on its own, a signal that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Note {
    /// When.
    pub(crate) at_ns: u64,
    /// What.
    pub(crate) text: String,
}

/// Everything recorded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    /// Children, by connection.
    pub(crate) lives: Vec<Life>,
    /// Writes, in admission order.
    pub(crate) writes: Vec<Write>,
    /// Faults, in injection order.
    pub(crate) faults: Vec<FaultRecord>,
    /// Notes, in order.
    pub(crate) notes: Vec<Note>,
}

/// The shared record and the one [`Fence`] every child writes through.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    record: Mutex<Record>,
    fence: Fence,
}

impl Journal {
    /// Locks the record, surviving a poisoned lock (a panicking task).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of everything recorded so far.
    pub(crate) fn snapshot(&self) -> Record {
        self.lock().clone()
    }

    /// Judges a write of `child` at `epoch` with the fence and records it, under one lock so
    /// that the recorded order is the admission order. Returns whether it was admitted.
    pub(crate) fn write(&self, child: usize, epoch: Epoch, at_ns: u64) -> bool {
        let mut r = self.lock();
        let accepted = self.fence.admit(epoch).is_ok();
        r.writes.push(Write {
            at_ns,
            child,
            epoch,
            accepted,
        });
        if let Some(life) = r.lives.get_mut(child) {
            if accepted {
                life.accepted += 1;
            } else {
                life.refused.push(at_ns);
            }
        }
        accepted
    }

    /// Records a note.
    pub(crate) fn note(&self, at_ns: u64, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!("chaos: {text}");
        self.lock().notes.push(Note { at_ns, text });
    }

    /// The host of the most recently started child still alive (the leader as the children
    /// see it), if any.
    pub(crate) fn leader_host(&self) -> Option<usize> {
        let r = self.lock();
        r.lives
            .iter()
            .filter(|l| l.eof_ns.is_none() && l.term_ns.is_none())
            .filter_map(|l| l.hello.as_ref())
            .max_by_key(|h| h.start_ns)
            .and_then(|h| host_of(&h.node))
    }

    /// How many children are alive (connected and not yet gone).
    pub(crate) fn alive(&self) -> usize {
        self.lock()
            .lives
            .iter()
            .filter(|l| l.eof_ns.is_none())
            .count()
    }

    /// How many children have said hello so far.
    pub(crate) fn started(&self) -> usize {
        self.lock()
            .lives
            .iter()
            .filter(|l| l.hello.is_some())
            .count()
    }
}

/// The node id of host `i`: `n1`, `n2`, `n3`.
pub(crate) fn node_of(host: usize) -> String {
    format!("n{}", host + 1)
}

/// The host of node `n{i+1}`.
pub(crate) fn host_of(node: &str) -> Option<usize> {
    node.strip_prefix('n')?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_recorded_in_admission_order() {
        let j = Journal::default();
        j.lock().lives.push(Life {
            accepted_ns: 1,
            hello: None,
            term_ns: None,
            bye_ns: None,
            eof_ns: None,
            accepted: 0,
            refused: Vec::new(),
            garbled: None,
        });
        assert!(j.write(0, Epoch(5), 10));
        assert!(!j.write(0, Epoch(4), 11));
        assert!(j.write(0, Epoch(5), 12));
        let r = j.snapshot();
        assert_eq!(r.writes.len(), 3);
        assert_eq!(r.lives[0].accepted, 2);
        assert_eq!(r.lives[0].refused, [11]);
    }

    #[test]
    fn node_ids_map_to_hosts() {
        assert_eq!(node_of(0), "n1");
        assert_eq!(host_of("n3"), Some(2));
        assert_eq!(host_of("n0"), None);
        assert_eq!(host_of("x1"), None);
    }
}
