//! `elector agent`: hosts the backend (required for the peer backends raft and bully,
//! whose members live in this process) and serves a local HTTP API on 127.0.0.1.
//!
//! # API
//!
//! - `GET /health`: 200 `ok` while the agent runs.
//! - `GET /v1/status`: JSON, each known election's leader, epoch, since, whether this node
//!   leads it and the lease left.
//! - `GET /v1/leader/{election}`: 200 only where this node leads, else 503 (for load
//!   balancer health checks).
//! - `GET /metrics`: Prometheus text format.
//! - `GET /v1/elections/{election}`: `{"leader": ...}` as the backend knows it.
//! - The hold protocol, used by `elector run` on this host (see [`client`]):
//!   `POST /v1/elections/{election}/campaign?wait_ms=N` campaigns on the caller's behalf
//!   (N = 0: one attempt; the agent waits at most N ms, so a vanished caller's candidacy
//!   ends within N ms) and answers 200 `{"hold", "epoch", "node", "since",
//!   "lease_left_ms"}` or 409 `{"leader"}`; `POST /v1/holds/{id}/renew` answers 200
//!   `{"lease_left_ms"}` or 410 once the leadership ended or was revoked;
//!   `DELETE /v1/holds/{id}` resigns. Otherwise the agent resigns a hold only once the
//!   caller's deadline plus the kill grace and `timing.clock_drift` has passed without a
//!   renewal (the caller died or is stopped: its guard has killed the command by then on
//!   its own), also when the agent's own leadership was lost meanwhile: a lost leadership
//!   is never handed over early (the handover rule).
//!   `POST /v1/elections/{election}/resign` (`elector resign`) and stopping the agent
//!   *revoke* holds: the caller learns it at its next renewal, stops its command and
//!   resigns; the agent resigns by itself only once the caller's deadline and grace have
//!   passed, so no other node can start its command while this one's still runs.
//!
//! The caller applies the deadline rule itself: each answer's `lease_left_ms` counts from
//! the moment the caller *sent* the request, so a stuck or dead agent still makes the
//! caller's `lost()` fire in time.

//!
//! The wire types the agent and its client share are in [`api`]; the agent itself is in
//! `server` (its state), `hold` (one caller's leadership), `http` (routes) and `metrics`.

pub(crate) mod api;
pub(crate) mod client;
mod hold;
mod http;
mod metrics;
mod server;
mod session;
mod socket;

pub(crate) use server::serve;
