//! What the demo needs of its nodes, whichever backend they run.

use std::sync::Arc;

use election_core::{LeaderElector, NodeId};

/// The demo's nodes and a way to crash one.
pub(crate) struct Cluster {
    /// What the nodes are, for the narration.
    pub(crate) description: String,
    /// The backend kind, for `ELECTOR_BACKEND`.
    pub(crate) kind: &'static str,
    /// Each node's id and elector for the demo election.
    pub(crate) nodes: Vec<(NodeId, Arc<dyn LeaderElector>)>,
    /// Crashes node `i`: no resign, no goodbye.
    pub(crate) crash: Box<dyn FnMut(usize) + Send>,
    /// Keeps temporary directories and servers alive.
    pub(crate) _keep: Box<dyn Send>,
}
