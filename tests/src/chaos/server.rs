//! The real server of a lease backend, one type over the four launchers.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::{Error, Result};
use super::options::Backend;
use crate::launch::{Data, EtcdServer, PostgresServer, RedisServer, ZooKeeperServer};

/// One launched server (the launchers reap it on drop).
#[derive(Debug)]
pub(crate) enum Server {
    /// `redis-server`.
    Redis(RedisServer),
    /// A single-member etcd.
    Etcd(EtcdServer),
    /// A standalone ZooKeeper.
    ZooKeeper(ZooKeeperServer),
    /// A PostgreSQL cluster (pause, restart and kill act on every backend process).
    Postgres(PostgresServer),
}

impl Server {
    /// Starts the server of `backend` and waits until it is ready. A missing binary fails
    /// (naming the Debian package), never skips.
    pub(crate) fn start(backend: Backend) -> Result<Server> {
        let what = format!("starting the {backend} server");
        match backend {
            Backend::Redis => RedisServer::start().map(Server::Redis),
            Backend::Etcd => EtcdServer::start().map(Server::Etcd),
            Backend::ZooKeeper => ZooKeeperServer::start().map(Server::ZooKeeper),
            Backend::Postgres => PostgresServer::start().map(Server::Postgres),
            Backend::Raft | Backend::Bully => {
                return Err(Error::Usage(format!("{backend} has no server")));
            }
        }
        .map_err(Error::io(what))
    }

    /// Its address.
    pub(crate) fn addr(&self) -> SocketAddr {
        match self {
            Server::Redis(s) => s.addr(),
            Server::Etcd(s) => s.addr(),
            Server::ZooKeeper(s) => s.addr(),
            Server::Postgres(s) => s.addr(),
        }
    }

    /// SIGSTOP, once every thread is stopped.
    pub(crate) fn pause(&self) -> io::Result<()> {
        match self {
            Server::Redis(s) => s.pause(),
            Server::Etcd(s) => s.pause(),
            Server::ZooKeeper(s) => s.pause(),
            Server::Postgres(s) => s.pause(),
        }
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) -> io::Result<()> {
        match self {
            Server::Redis(s) => s.resume(),
            Server::Etcd(s) => s.resume(),
            Server::ZooKeeper(s) => s.resume(),
            Server::Postgres(s) => s.resume(),
        }
    }

    /// Stops and starts it on the same port, its data kept or emptied, and waits until it
    /// is ready.
    pub(crate) fn restart(&self, data: Data) -> io::Result<()> {
        match self {
            Server::Redis(s) => s.restart(data),
            Server::Etcd(s) => s.restart(data),
            Server::ZooKeeper(s) => s.restart(data),
            Server::Postgres(s) => s.restart(data),
        }
    }

    /// Its log file (in the launcher's directory, removed with the server).
    pub(crate) fn log_path(&self) -> PathBuf {
        match self {
            Server::Redis(s) => s.log_path(),
            Server::Etcd(s) => s.log_path(),
            Server::ZooKeeper(s) => s.log_path(),
            Server::Postgres(s) => s.log_path(),
        }
    }
}
