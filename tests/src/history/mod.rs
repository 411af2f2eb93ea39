//! A recorder and checker for the history of one election as the nodes saw it.
//!
//! Tests record each grant, loss, resignation and fenced write as it happens, from any
//! task or thread; [`History::check`] then looks for the ways an election can go wrong:
//! an epoch granted twice, epochs not rising in grant order, two holders at once, a stale
//! fenced write accepted. Events keep the order in which they were recorded (one lock), and
//! each carries the monotonic instant of its recording.
//!
//! Record a loss or resignation *before* it can let another node in (call
//! [`resigned`](History::resigned) before `Leadership::resign`), and a grant right after
//! `campaign` returns, so that the recorded order is the real order.

mod check;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use election_core::{Epoch, NodeId};
use tokio::time::Instant;

pub use check::Violation;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The node was granted leadership with this epoch.
    Granted,
    /// The node's leadership with this epoch ended without it resigning (`lost()` fired).
    Lost,
    /// The node resigned (or dropped) its leadership with this epoch.
    Resigned,
    /// The node attempted a write fenced with this epoch; the resource accepted it or not.
    FencedWrite {
        /// Whether the resource accepted the write.
        accepted: bool,
    },
    /// A process pause (SIGSTOP, a frozen runtime) was injected: from here on two holders
    /// may overlap, which epochs and fences, not timing, must make harmless.
    PauseInjected,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it was recorded (tokio's monotonic clock).
    pub at: Instant,
    /// The node concerned (`None` for [`EventKind::PauseInjected`]).
    pub node: Option<NodeId>,
    /// The epoch concerned ([`Epoch::ZERO`] for [`EventKind::PauseInjected`]).
    pub epoch: Epoch,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.as_ref().map_or("-", NodeId::as_str);
        match &self.kind {
            EventKind::Granted => write!(f, "{node} granted epoch {}", self.epoch),
            EventKind::Lost => write!(f, "{node} lost epoch {}", self.epoch),
            EventKind::Resigned => write!(f, "{node} resigned epoch {}", self.epoch),
            EventKind::FencedWrite { accepted } => write!(
                f,
                "{node} fenced write at epoch {} {}",
                self.epoch,
                if *accepted { "accepted" } else { "refused" }
            ),
            EventKind::PauseInjected => f.write_str("pause injected"),
        }
    }
}

/// The shared, ordered record of one election's events. Cheap to clone; clones share the
/// record; thread-safe.
#[derive(Clone, Debug, Default)]
pub struct History {
    events: Arc<Mutex<Vec<Event>>>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    fn events_mut(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, node: Option<&NodeId>, epoch: Epoch, kind: EventKind) {
        let mut events = self.events_mut();
        // Read the clock under the lock so that recorded instants never go backwards.
        events.push(Event {
            at: Instant::now(),
            node: node.cloned(),
            epoch,
            kind,
        });
    }

    /// `node` was granted leadership with `epoch`.
    pub fn granted(&self, node: &NodeId, epoch: Epoch) {
        self.push(Some(node), epoch, EventKind::Granted);
    }

    /// `node`'s leadership with `epoch` ended without a resignation.
    pub fn lost(&self, node: &NodeId, epoch: Epoch) {
        self.push(Some(node), epoch, EventKind::Lost);
    }

    /// `node` resigned (or dropped) its leadership with `epoch`.
    pub fn resigned(&self, node: &NodeId, epoch: Epoch) {
        self.push(Some(node), epoch, EventKind::Resigned);
    }

    /// `node` attempted a write fenced with `epoch`, which the resource accepted or not.
    pub fn fenced_write(&self, node: &NodeId, epoch: Epoch, accepted: bool) {
        self.push(Some(node), epoch, EventKind::FencedWrite { accepted });
    }

    /// A process pause was injected: overlapping holders from here on are expected (the
    /// holder that was paused may still believe it leads).
    pub fn pause_injected(&self) {
        self.push(None, Epoch::ZERO, EventKind::PauseInjected);
    }

    /// A copy of the events so far, in recorded order.
    pub fn events(&self) -> Vec<Event> {
        self.events_mut().clone()
    }

    /// How many grants were recorded.
    pub fn grants(&self) -> usize {
        self.events_mut()
            .iter()
            .filter(|e| e.kind == EventKind::Granted)
            .count()
    }

    /// Checks the history; on failure returns every violation found, in order.
    pub fn check(&self) -> Result<(), Vec<Violation>> {
        check::check(&self.events())
    }
}

impl fmt::Display for History {
    /// One event a line, with the time since the first event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = self.events();
        let Some(start) = events.first().map(|e| e.at) else {
            return f.write_str("(no events)");
        };
        for e in &events {
            writeln!(f, "{:>10.3?}  {e}", e.at - start)?;
        }
        Ok(())
    }
}
