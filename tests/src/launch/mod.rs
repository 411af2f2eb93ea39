//! Launchers for the real servers the backend tests use: `redis-server`, `etcd` (one
//! member, or a cluster of n on loopback), ZooKeeper (standalone, or an ensemble of n on
//! loopback with a fault proxy on every quorum link) and PostgreSQL (a cluster, and a hot
//! standby of it).
//!
//! Each launcher picks a free loopback port, makes its own temporary directory, sends the
//! server's output to `server.log` there, and waits (with a deadline) until the server
//! answers a readiness check spoken over TCP from Rust (`PING`, `GET /health`, `srvr`). A
//! readiness timeout returns an error carrying the log's last lines. A missing binary
//! returns an [`std::io::ErrorKind::NotFound`] error naming the Debian package to install
//! and `scripts/install-deps.sh`: a test that needs a server fails without it, it never
//! skips.
//!
//! The controls are the faults the tests inject: [`pause`](RedisServer::pause) (SIGSTOP),
//! [`resume`](RedisServer::resume) (SIGCONT), [`kill`](RedisServer::kill) (SIGKILL, then
//! reaped), and [`restart`](RedisServer::restart) on the same port with the data kept or
//! emptied. Every control takes `&self`, so a server can be shared by a harness and a
//! test. Dropping a launcher kills its process (by pid, reaped: no zombie) and removes its
//! directory.
//!
//! The launchers are blocking (`std::process`); starting one inside a tokio test blocks
//! that worker thread for the start-up (10 ms for redis, about 1 s for the ZooKeeper JVM).
//! Servers die with the test process even when it is killed outright (they are spawned with
//! `PR_SET_PDEATHSIG`; see decision 010).

mod etcd;
mod instance;
mod postgres;
mod probe;
mod process;
mod redis;
mod zookeeper;

pub use etcd::{EtcdCluster, EtcdServer};
pub use postgres::{POSTGRES_BIN, POSTGRES_PASSWORD, POSTGRES_USER, PostgresServer, postgres_bin};
pub use process::{free_port, reserve_port, server_dir};
pub use redis::RedisServer;
pub use zookeeper::{
    ENSEMBLE_SYNC_LIMIT, ENSEMBLE_TICK, Mode, ZooKeeperEnsemble, ZooKeeperMember, ZooKeeperServer,
};

/// What [`restart`](RedisServer::restart) does with the server's data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// Stop cleanly (SIGTERM, SIGKILL after 10 s) and start on the same data.
    Keep,
    /// Kill, empty the data directory, and start fresh (a server that lost its disk).
    Empty,
}
