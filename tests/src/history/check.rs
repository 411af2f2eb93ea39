//! The rules a history must keep.

use std::collections::HashMap;

use election_core::{Epoch, NodeId};

use super::{Event, EventKind};

/// A rule a history broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// One epoch was handed to two leaderships.
    #[error("epoch {epoch} was granted twice: to {first} and then to {second}")]
    EpochGrantedTwice {
        /// The epoch.
        epoch: Epoch,
        /// Who got it first.
        first: NodeId,
        /// Who got it again.
        second: NodeId,
    },
    /// A grant's epoch was not above every earlier grant's.
    #[error(
        "epochs did not rise: {node} was granted epoch {epoch} after epoch {previous} had \
         been granted"
    )]
    EpochNotRising {
        /// The node granted the low epoch.
        node: NodeId,
        /// The epoch it got.
        epoch: Epoch,
        /// The highest epoch granted before it.
        previous: Epoch,
    },
    /// A node was granted leadership while another still held it, with no pause injected
    /// to explain it.
    #[error(
        "two holders at once: {newcomer} was granted epoch {newcomer_epoch} while \
         {holder} still held epoch {holder_epoch} (it had reported neither loss nor \
         resignation)"
    )]
    Overlap {
        /// The earlier holder, still holding.
        holder: NodeId,
        /// Its epoch.
        holder_epoch: Epoch,
        /// The node granted meanwhile.
        newcomer: NodeId,
        /// The newcomer's epoch.
        newcomer_epoch: Epoch,
    },
    /// A fenced write was accepted with an epoch below one accepted earlier.
    #[error(
        "a stale fenced write was accepted: {node} wrote at epoch {epoch} after a write at \
         epoch {highest} had been accepted"
    )]
    StaleWriteAccepted {
        /// The writer.
        node: NodeId,
        /// Its (stale) epoch.
        epoch: Epoch,
        /// The highest epoch accepted before.
        highest: Epoch,
    },
}

/// A leadership that has not ended yet, and whether a pause was injected while it held.
struct Holding {
    node: NodeId,
    epoch: Epoch,
    paused: bool,
}

pub(super) fn check(events: &[Event]) -> Result<(), Vec<Violation>> {
    let mut violations = Vec::new();
    let mut granted: HashMap<Epoch, NodeId> = HashMap::new();
    let mut highest_granted: Option<Epoch> = None;
    let mut highest_accepted: Option<Epoch> = None;
    let mut holding: Vec<Holding> = Vec::new();

    for event in events {
        let epoch = event.epoch;
        let node = event.node.clone();
        match (&event.kind, node) {
            (EventKind::PauseInjected, _) => {
                for h in &mut holding {
                    h.paused = true;
                }
            }
            (EventKind::Granted, Some(node)) => {
                if let Some(first) = granted.get(&epoch) {
                    violations.push(Violation::EpochGrantedTwice {
                        epoch,
                        first: first.clone(),
                        second: node.clone(),
                    });
                } else {
                    granted.insert(epoch, node.clone());
                }
                if let Some(previous) = highest_granted.filter(|p| *p >= epoch) {
                    violations.push(Violation::EpochNotRising {
                        node: node.clone(),
                        epoch,
                        previous,
                    });
                }
                highest_granted = highest_granted.max(Some(epoch));
                for h in holding.iter().filter(|h| !h.paused) {
                    violations.push(Violation::Overlap {
                        holder: h.node.clone(),
                        holder_epoch: h.epoch,
                        newcomer: node.clone(),
                        newcomer_epoch: epoch,
                    });
                }
                holding.push(Holding {
                    node,
                    epoch,
                    paused: false,
                });
            }
            (EventKind::Lost | EventKind::Resigned, Some(node)) => {
                holding.retain(|h| !(h.node == node && h.epoch == epoch));
            }
            (EventKind::FencedWrite { accepted: true }, Some(node)) => {
                if let Some(highest) = highest_accepted.filter(|h| *h > epoch) {
                    violations.push(Violation::StaleWriteAccepted {
                        node,
                        epoch,
                        highest,
                    });
                }
                highest_accepted = highest_accepted.max(Some(epoch));
            }
            // Refused writes are what a fence is for; events without a node are not
            // produced by `History`.
            _ => {}
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}
