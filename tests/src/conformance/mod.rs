//! The conformance suite: the properties every backend must have, as async functions that
//! panic with a clear message naming the backend and what went wrong.

mod harness;

pub use harness::{Bounds, Harness, TestNode};
