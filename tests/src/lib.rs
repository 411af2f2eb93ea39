//! Test support for elector backends: the conformance suite every backend passes,
//! launchers for the real servers (redis, etcd, ZooKeeper), a fault-injecting TCP proxy and
//! a history checker.
//!
//! (Crate documentation is completed below as the modules land.)

pub mod conformance;
pub mod history;
pub mod launch;
pub mod proxy;
mod wait;

pub use wait::{init_tracing, wait_until};
