use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Data;
use super::instance::{Instance, Readiness, retry_on_port_clash};
use super::probe;
use super::process::{Spec, find_binary, free_port, loopback, require_file, server_dir};

const READY: Readiness = Readiness {
    check: "srvr reported Mode: standalone",
    probe: probe::zookeeper_ready,
    within: Duration::from_secs(60),
};

/// Where Debian's `zookeeperd` (package `zookeeper`) puts the server's jars.
const JARS: [&str; 2] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
];

/// The tick: sessions expire on tick boundaries and the shortest session is
/// `minSessionTimeout`.
const TICK_MS: u32 = 500;

/// A standalone ZooKeeper server (the `ZooKeeperServerMain` class run by `java` directly)
/// on a free loopback port with its own temporary directory and `zoo.cfg`.
///
/// `tickTime=500`, `minSessionTimeout=1000`, `maxSessionTimeout=30000`, the admin server
/// off, four-letter words `ruok,srvr,stat,mntr` allowed. ZooKeeper fsyncs its transaction
/// log before acknowledging, so [`restart(Data::Keep)`](Self::restart) keeps every
/// acknowledged write. The server's output goes to `server.log` in [`dir`](Self::dir).
/// Dropping it kills the JVM and removes the directory.
#[derive(Debug)]
pub struct ZooKeeperServer {
    inner: Instance,
}

impl ZooKeeperServer {
    /// Starts a server and waits (up to 60 s: a JVM on a busy machine) until `srvr`
    /// reports `Mode: standalone`.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] naming the Debian package `zookeeperd` and
    /// `scripts/install-deps.sh` if `java` or the jars are missing; on a readiness timeout
    /// the error carries the end of the server log.
    pub fn start() -> io::Result<ZooKeeperServer> {
        let java = find_binary("java", "zookeeperd")?;
        for jar in JARS {
            require_file(Path::new(jar), "zookeeperd")?;
        }
        retry_on_port_clash(|| {
            let dir = server_dir("elector-zk-")?;
            let data = dir.path().join("data");
            let addr = loopback(free_port()?);
            let config = dir.path().join("zoo.cfg");
            std::fs::write(&config, zoo_cfg(addr, &data))?;
            let mut args: Vec<OsString> = [
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                &JARS.join(":"),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ]
            .iter()
            .map(Into::into)
            .collect();
            args.push(config.into());
            let spec = Spec {
                what: format!("zookeeper on {addr}"),
                program: java.clone(),
                args,
                log: dir.path().join("server.log"),
            };
            let inner = Instance::spawn(dir, data, addr, spec, READY)?;
            inner.wait_ready()?;
            Ok(ZooKeeperServer { inner })
        })
    }

    /// The client address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The connect string, `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// The pid of the current server (JVM) process.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The temporary directory (`zoo.cfg`, data in `data/`, output in `server.log`).
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

    /// SIGSTOP: connections stay open and requests get no answer. Nothing runs while the
    /// JVM is stopped, session expiry included; which sessions expire after
    /// [`resume`](Self::resume) depends on how long the pause lasted.
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
    /// for [`Data::Empty`]), starts it again on the same port and waits until it serves.
    pub fn restart(&self, data: Data) -> io::Result<()> {
        self.inner.restart(data)
    }
}

fn zoo_cfg(addr: SocketAddr, data: &Path) -> String {
    format!(
        "tickTime={TICK_MS}\n\
         minSessionTimeout={}\n\
         maxSessionTimeout=30000\n\
         dataDir={}\n\
         clientPort={}\n\
         clientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr\n",
        TICK_MS * 2,
        data.display(),
        addr.port()
    )
}
