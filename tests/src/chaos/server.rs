//! The real server of a lease backend, one type over the four launchers.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::{Error, Result};
use super::options::Backend;
use crate::launch::{
    Data, EtcdServer, PostgresServer, RedisServer, ZooKeeperEnsemble, ZooKeeperServer,
};

/// One launched server (the launchers reap it on drop).
#[derive(Debug)]
pub(crate) enum Server {
    /// `redis-server`.
    Redis(RedisServer),
    /// A single-member etcd.
    Etcd(EtcdServer),
    /// A standalone ZooKeeper.
    ZooKeeper(ZooKeeperServer),
    /// A 3-member ZooKeeper ensemble: host `i` talks to member `i`; pausing pauses every
    /// member, a restart is a rolling restart with the data.
    ZooKeeperEnsemble(ZooKeeperEnsemble),
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
            Backend::ZooKeeperEnsemble => {
                ZooKeeperEnsemble::start(3).map(Server::ZooKeeperEnsemble)
            }
            Backend::Postgres => PostgresServer::start().map(Server::Postgres),
            Backend::Raft | Backend::Bully | Backend::Paxos => {
                return Err(Error::Usage(format!("{backend} has no server")));
            }
        }
        .map_err(Error::io(what))
    }

    /// The address host `host` talks to.
    pub(crate) fn addr_for(&self, host: usize) -> SocketAddr {
        match self {
            Server::Redis(s) => s.addr(),
            Server::Etcd(s) => s.addr(),
            Server::ZooKeeper(s) => s.addr(),
            Server::ZooKeeperEnsemble(e) => e.member(host % e.len()).addr(),
            Server::Postgres(s) => s.addr(),
        }
    }

    /// SIGSTOP, once every thread is stopped.
    pub(crate) fn pause(&self) -> io::Result<()> {
        match self {
            Server::Redis(s) => s.pause(),
            Server::Etcd(s) => s.pause(),
            Server::ZooKeeper(s) => s.pause(),
            Server::ZooKeeperEnsemble(e) => e.members().iter().try_for_each(|m| m.pause()),
            Server::Postgres(s) => s.pause(),
        }
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) -> io::Result<()> {
        match self {
            Server::Redis(s) => s.resume(),
            Server::Etcd(s) => s.resume(),
            Server::ZooKeeper(s) => s.resume(),
            // Every member, even if one fails: none may be left stopped.
            Server::ZooKeeperEnsemble(e) => {
                let mut result = Ok(());
                for m in e.members() {
                    let r = m.resume();
                    if result.is_ok() {
                        result = r;
                    }
                }
                result
            }
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
            Server::ZooKeeperEnsemble(e) => match data {
                Data::Keep => e.rolling_restart(),
                Data::Empty => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a ZooKeeper ensemble is not restarted empty",
                )),
            },
        }
    }

    /// Blackholes (`true`) or heals every quorum link of the ensemble member host `host`
    /// talks to; nothing for a single server.
    pub(crate) fn isolate_member(&self, host: usize, isolate: bool) {
        if let Server::ZooKeeperEnsemble(e) = self {
            let member = host % e.len();
            if isolate {
                e.isolate_quorum(member);
            } else {
                e.heal_quorum(member);
            }
        }
    }

    /// Its log file (in the launcher's directory, removed with the server).
    pub(crate) fn log_path(&self) -> PathBuf {
        match self {
            Server::Redis(s) => s.log_path(),
            Server::Etcd(s) => s.log_path(),
            Server::ZooKeeper(s) => s.log_path(),
            Server::ZooKeeperEnsemble(e) => e.member(0).log_path(),
            Server::Postgres(s) => s.log_path(),
        }
    }
}
