//! `elector agent`: hosts the backend (required for the peer backends raft, bully and paxos,
//! whose members live in this process) and serves its HTTP API in two places: everything
//! on its Unix socket (`agent.socket`, mode 0600 in a 0700 directory, or 0660/0750 for
//! `agent.socket_group`: the kernel decides who may connect), and only what cannot change
//! leadership on TCP (`agent.listen`, 127.0.0.1:7207).
//!
//! # API
//!
//! Everywhere:
//! - `GET /health`: 200 `ok` while the agent runs.
//! - `GET /v1/status`: JSON, each known election's leader, epoch, since, whether this node
//!   leads it and the lease left.
//! - `GET /v1/leader/{election}`: 200 only where this node leads, else 503 (for load
//!   balancer health checks).
//! - `GET /metrics`: Prometheus text format.
//! - `GET /v1/elections/{election}`: `{"leader": ...}` as the backend knows it; 404 for an
//!   election the agent does not keep (reads never create one).
//!
//! On the socket only:
//! - `POST /v1/elections/{election}/campaign?wait_ms=N` with `Upgrade: elector-hold/1`:
//!   campaigns on the caller's behalf (N = 0: one attempt; at most 30 s, so a vanished
//!   caller's candidacy ends soon) and answers 409 `{"leader"}`, or 101 and the hold on
//!   that connection ([`api::HOLD_PROTOCOL`]). The agent resigns a hold by itself only
//!   once the caller's last deadline plus the kill grace and `timing.clock_drift` has
//!   passed (the caller died or is stopped: its guard has killed the command by then),
//!   also when the agent's own leadership was lost meanwhile: a lost leadership is never
//!   handed over early (the handover rule).
//! - `POST /v1/elections/{election}/resign` (`elector resign`), like stopping the agent,
//!   *revokes* the hold: the caller is told at once, stops its command and resigns; the
//!   agent resigns by itself only once the caller's deadline and grace have passed, so no
//!   other node can start its command while this one's still runs.
//!
//! On TCP, `POST /v1/elections/{election}/resign` needs `Authorization: Bearer TOKEN`
//! with the token of `agent.token_file` (compared in constant time; without the file,
//! 403); holds are refused there (403): their deadlines are on this host's boot clock.
//!
//! State stays bounded: an election exists in the agent only once a local caller
//! campaigns in it or it is in `agent.elections`, at most `agent.max_elections`, and an
//! idle one is forgotten after `agent.forget_after`.
//!
//! The wire types the agent and its client share are in [`api`]; the agent itself is in
//! `server` (its state), `hold` (one caller's leadership), `session` (a hold's
//! connection), `http` (routes), `socket` (the socket's permissions), `tcp` (the TCP
//! listener's bounds) and `metrics`.

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod deadline_page;
mod history;
mod hold;
mod http;
mod metrics;
mod server;
mod session;
mod socket;
mod tcp;

pub(crate) use server::serve;
