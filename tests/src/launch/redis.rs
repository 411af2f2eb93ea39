use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Data;
use super::instance::{Instance, Readiness, retry_on_port_clash};
use super::probe;
use super::process::{Spec, find_binary, free_port, loopback, server_dir};

const READY: Readiness = Readiness {
    check: "PING answered +PONG",
    probe: probe::redis_ready,
    within: Duration::from_secs(20),
};

/// A `redis-server` on a free loopback port with its own temporary directory.
///
/// Persistence is an append-only file fsynced on every write (`--appendonly yes
/// --appendfsync always`, no RDB snapshots), so [`restart(Data::Keep)`](Self::restart) keeps
/// every acknowledged write, even after [`kill`](Self::kill). The server's output goes to
/// `server.log` in [`dir`](Self::dir). Dropping it kills the process and removes the
/// directory.
#[derive(Debug)]
pub struct RedisServer {
    inner: Instance,
}

impl RedisServer {
    /// Starts a server and waits (up to 20 s) until it answers `PING`.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] naming the Debian package `redis-server` and
    /// `scripts/install-deps.sh` if the binary is missing; on a readiness timeout the
    /// error carries the end of the server log.
    pub fn start() -> io::Result<RedisServer> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with `extra` arguments for redis-server, such as
    /// `["--cluster-enabled", "yes"]`.
    pub fn start_with(extra: &[&str]) -> io::Result<RedisServer> {
        let program = find_binary("redis-server", "redis-server")?;
        retry_on_port_clash(|| {
            let dir = server_dir("elector-redis-")?;
            let data = dir.path().join("data");
            let addr = loopback(free_port()?);
            let spec = Spec {
                what: format!("redis-server on {addr}"),
                program: program.clone(),
                args: args(addr, &data)
                    .into_iter()
                    .chain(extra.iter().map(Into::into))
                    .collect(),
                log: dir.path().join("server.log"),
            };
            let inner = Instance::spawn(dir, data, addr, spec, READY)?;
            inner.wait_ready()?;
            Ok(RedisServer { inner })
        })
    }

    /// The server's address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The client URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// The pid of the current server process.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The temporary directory (data in `data/`, output in `server.log`).
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.inner.log_path()
    }

    /// Whether the process is running (it may be paused).
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    /// SIGSTOP: connections stay open, requests get no answer.
    pub fn pause(&self) -> io::Result<()> {
        self.inner.pause()
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) -> io::Result<()> {
        self.inner.resume()
    }

    /// SIGKILL and reap (a crash); [`restart`](Self::restart) brings it back.
    pub fn kill(&self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Stops the server (SIGTERM for [`Data::Keep`], SIGKILL and an emptied data directory
    /// for [`Data::Empty`]), starts it again on the same port and waits until it is ready.
    pub fn restart(&self, data: Data) -> io::Result<()> {
        self.inner.restart(data)
    }
}

fn args(addr: SocketAddr, data: &Path) -> Vec<std::ffi::OsString> {
    let port = addr.port().to_string();
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--protected-mode",
        "yes",
    ]
    .iter()
    .map(Into::into)
    .chain(["--dir".into(), data.as_os_str().to_owned()])
    .collect()
}
