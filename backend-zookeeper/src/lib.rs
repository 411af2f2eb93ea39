//! Leader election on ZooKeeper: ephemeral sequential znodes, the lowest sequence leads,
//! each waiter watches its predecessor; the epoch is the leader znode's czxid.
//!
//! Not built yet: this crate is a workspace member so that the layout of DESIGN.md holds.
//! It exposes nothing until the backend lands; there is no stand-in implementation.
