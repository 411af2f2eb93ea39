//! [`Members`]: a peer node's view of its cluster, for status pages and operators.

use std::time::Duration;

use election_core::NodeId;
use election_transport::PeerLink;

pub use election_transport::{KEEPALIVE_INTERVAL, REACHABLE_WITHIN};

/// One member of a peer cluster as this node sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// Its `host:port` for peers: as configured for the other members; for this node, its
    /// own entry in `peers` if it has one, else the address it listens on.
    pub address: String,
    /// Whether this is the node the view is from.
    pub is_me: bool,
    /// Whether it is reachable now: always for this node; for a peer, an authenticated
    /// connection from it is open and it was heard from within [`REACHABLE_WITHIN`] (3 s;
    /// every running peer sends at least a keepalive every [`KEEPALIVE_INTERVAL`], 1 s).
    /// See [`PeerLink::reachable`].
    pub reachable: bool,
    /// How long ago it was last heard from (its last authenticated frame or handshake);
    /// `None` for this node and for a peer not heard from since this node started.
    pub last_heard: Option<Duration>,
    /// Whether this node's own connection to it is up (messages to it go over that one);
    /// `true` for this node.
    pub connected_out: bool,
}

impl Member {
    fn me(id: NodeId, address: String) -> Self {
        Member {
            id,
            address,
            is_me: true,
            reachable: true,
            last_heard: None,
            connected_out: true,
        }
    }

    fn peer(link: PeerLink) -> Self {
        Member {
            id: link.id,
            address: link.addr,
            is_me: false,
            reachable: link.reachable,
            last_heard: link.last_heard,
            connected_out: link.connected_out,
        }
    }
}

/// Every configured member of a peer cluster, this node included, ordered by id, as this
/// node sees them now ([`Membership::members`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Members {
    /// The members, ordered by id; exactly one has [`Member::is_me`].
    pub members: Vec<Member>,
}

impl Members {
    pub(crate) fn new(me: &NodeId, my_address: String, peers: Vec<PeerLink>) -> Self {
        let mut members: Vec<Member> = peers.into_iter().map(Member::peer).collect();
        members.push(Member::me(me.clone(), my_address));
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Members { members }
    }

    /// How many members are reachable now, this node included.
    pub fn reachable(&self) -> usize {
        self.members.iter().filter(|m| m.reachable).count()
    }

    /// The member `id`, if configured.
    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }
}

/// A node that knows its cluster's members: every peer backend's node
/// ([`PeerNode`](crate::PeerNode), so `RaftNode`, `BullyNode`, `PaxosNode`). Lease
/// backends have no members and do not implement it. Object safe, so that a host of any
/// peer backend (the cli's agent) can keep one `Arc<dyn Membership>` beside its
/// `Arc<dyn Backend>`.
pub trait Membership: Send + Sync {
    /// The members as this node sees them now. Cheap (a few atomic loads per peer): fine
    /// to call on every status request.
    fn members(&self) -> Members;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_lists_this_node_among_its_peers_by_id() {
        let id = |s: &str| NodeId::new(s).unwrap();
        let members = Members::new(&id("b"), "127.0.0.1:2".into(), Vec::new());
        assert_eq!(members.members.len(), 1);
        let me = members.get(&id("b")).unwrap();
        assert!(me.is_me && me.reachable && me.last_heard.is_none());
        assert_eq!(members.reachable(), 1);
    }
}
