//! Raft election (temporary doc).
mod codec;
mod config;
pub mod core;
mod driver;
mod node;
mod persist;

pub use codec::{DecodeError, WIRE_VERSION, decode, encode};
pub use config::{RaftConfig, TlsConfig};
pub use node::{RaftNode, RaftStats};
