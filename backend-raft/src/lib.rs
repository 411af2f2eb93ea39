//! Raft election (temporary doc).
pub mod core;
mod config;
pub use config::{RaftConfig, TlsConfig};
