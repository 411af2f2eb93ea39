//! The raft backend in the cli: its configuration and the demo cluster.
//! Compiled with the `raft` feature once election-raft exposes its API.
