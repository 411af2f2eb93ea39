//! Leader election by the Bully algorithm (highest id wins), with persisted epochs and an
//! optional majority rule.
//!
//! Not built yet: this crate is a workspace member so that the layout of DESIGN.md holds.
//! It exposes nothing until the backend lands; there is no stand-in implementation.
