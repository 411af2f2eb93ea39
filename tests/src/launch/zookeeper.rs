use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Data;
use super::instance::{Instance, Readiness, retry_on_port_clash};
use super::probe;
use super::process::{Spec, find_binary, free_port, log_tail, loopback, require_file, server_dir};
use crate::proxy::{Direction, Fault, FaultProxy};

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
            let args = jvm_args("org.apache.zookeeper.server.ZooKeeperServerMain", config);
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

/// The ensemble's tick, the shortest that keeps a busy 2-core machine in its quorum: the
/// leader pings every half tick, and a follower cut off from it stops serving after
/// `syncLimit` ticks.
pub const ENSEMBLE_TICK: Duration = Duration::from_millis(200);

/// How many ticks a follower may lag (or be silent) before it leaves the quorum:
/// `syncLimit`. [`ENSEMBLE_TICK`] × this is the follower lag of the ensemble (2 s).
pub const ENSEMBLE_SYNC_LIMIT: u32 = 10;

/// How many ticks a member has to connect to the leader and sync with it (`initLimit`):
/// 5 s, for JVMs that start slowly under load.
const ENSEMBLE_INIT_LIMIT: u32 = 25;

const MEMBER_READY: Readiness = Readiness {
    check: "srvr reported Mode: leader or Mode: follower",
    probe: probe::zookeeper_member_ready,
    within: Duration::from_secs(90),
};

/// What `srvr` says a member is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The ensemble's leader: it orders every write and expires sessions.
    Leader,
    /// A follower: it answers reads from its own copy and forwards writes (and session
    /// touches, on its ping replies) to the leader.
    Follower,
}

/// One member of a [`ZooKeeperEnsemble`]: a `QuorumPeerMain` JVM with its client port, its
/// quorum port (where followers connect to it when it leads) and its election port.
#[derive(Debug)]
pub struct ZooKeeperMember {
    /// ZooKeeper's server id (`myid`), 1-based.
    id: usize,
    quorum_port: u16,
    election_port: u16,
    inner: Instance,
}

impl ZooKeeperMember {
    /// ZooKeeper's id of this member (`server.ID` in `zoo.cfg`, `myid`): member `i` of the
    /// ensemble has id `i + 1`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The client address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The connect string of this member alone, `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// The port the member listens on for followers when it leads.
    pub fn quorum_port(&self) -> u16 {
        self.quorum_port
    }

    /// The port of leader election among the members.
    pub fn election_port(&self) -> u16 {
        self.election_port
    }

    /// What `srvr` reports now: `None` while the member is down, paused, looking for a
    /// leader or syncing.
    pub fn mode(&self) -> Option<Mode> {
        match probe::zookeeper_mode(self.addr()).as_deref() {
            Some("leader") => Some(Mode::Leader),
            Some("follower") => Some(Mode::Follower),
            _ => None,
        }
    }

    /// How many client connections the member serves now (`srvr`'s `Connections`, less
    /// the one asking), or `None` while it does not serve.
    pub fn client_connections(&self) -> Option<u32> {
        probe::zookeeper_srvr(self.addr(), "Connections")?
            .parse::<u32>()
            .ok()
            .map(|n| n.saturating_sub(1))
    }

    /// The pid of the current JVM.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The member's directory (`zoo.cfg`, data with `myid` in `data/`, `server.log`).
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The member's log file.
    pub fn log_path(&self) -> PathBuf {
        self.inner.log_path()
    }

    /// Whether the process is running (it may be paused).
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    /// SIGSTOP: its clients' requests and its peers' packets get no answer.
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

    /// Stops the member (SIGTERM), starts it again on the same ports with its data and
    /// waits until it has joined a quorum again. [`Data::Empty`] is refused
    /// ([`io::ErrorKind::Unsupported`]): the data directory holds the member's `myid`.
    pub fn restart(&self, data: Data) -> io::Result<()> {
        if data == Data::Empty {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: restarting an ensemble member with empty data is not supported; \
                     use Data::Keep",
                    self.inner.what()
                ),
            ));
        }
        self.inner.restart(data)
    }
}

/// A ZooKeeper ensemble of `n` members on loopback (`QuorumPeerMain` JVMs, each with its own
/// ports, `zoo.cfg` and directory in `/dev/shm`), with a [`FaultProxy`] on every quorum link.
///
/// `tickTime=200` ([`ENSEMBLE_TICK`]), `syncLimit=10` ([`ENSEMBLE_SYNC_LIMIT`]),
/// `initLimit=25`, `minSessionTimeout=400`, `maxSessionTimeout=30000`, the admin server off,
/// four-letter words `ruok,srvr,stat,mntr` allowed.
///
/// Each member's `zoo.cfg` lists its own quorum port, and for every other member `j` the
/// address of the proxy [`link(i, j)`](Self::link) in front of `j`'s quorum port: a follower
/// reaches its leader only through the proxy of that pair, so
/// [`isolate_quorum`](Self::isolate_quorum) can cut one member off from the others while its
/// clients still reach it. Election ports are not proxied (ZooKeeper answers an election
/// connection by connecting back to the address the peer announces, which would bypass a
/// proxy); a member cut off from the quorum links still talks election, finds the leader
/// and fails to sync with it, so it keeps refusing clients until it is healed.
///
/// The proxies run on a runtime of the ensemble's own (one thread), so they keep passing
/// bytes while a test's runtime is blocked. Dropping the ensemble kills every JVM, stops
/// the proxies and removes the directories.
#[derive(Debug)]
pub struct ZooKeeperEnsemble {
    members: Vec<ZooKeeperMember>,
    /// `links[i][j]`: member `i`'s connection to member `j`'s quorum port (none for i == j).
    links: Vec<Vec<Option<FaultProxy>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ZooKeeperEnsemble {
    /// Starts `n` members (at least 1; 3 or 5 for a quorum that survives a failure), all
    /// before any is waited for, and waits (up to 90 s each: JVMs on a busy machine) until
    /// each reports `Mode: leader` or `Mode: follower`.
    pub fn start(n: usize) -> io::Result<ZooKeeperEnsemble> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a ZooKeeper ensemble needs at least one member",
            ));
        }
        let java = find_binary("java", "zookeeperd")?;
        for jar in JARS {
            require_file(Path::new(jar), "zookeeperd")?;
        }
        retry_on_port_clash(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("elector-zk-ensemble-proxies")
                .enable_all()
                .build()?;
            let ports = (0..n)
                .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
                .collect::<io::Result<Vec<(u16, u16, u16)>>>()?;
            let mut links = Vec::with_capacity(n);
            for i in 0..n {
                let mut row = Vec::with_capacity(n);
                for (j, &(_, quorum, _)) in ports.iter().enumerate() {
                    row.push(if i == j {
                        None
                    } else {
                        Some(start_proxy(&runtime, loopback(quorum))?)
                    });
                }
                links.push(row);
            }
            let mut members = Vec::with_capacity(n);
            for (i, &(client, quorum, election)) in ports.iter().enumerate() {
                let dir = server_dir(&format!("elector-zk{}-", i + 1))?;
                let data = dir.path().join("data");
                std::fs::create_dir_all(&data)?;
                std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
                let mut servers = String::new();
                for (j, &(_, quorum_j, election_j)) in ports.iter().enumerate() {
                    let quorum_j = match &links[i][j] {
                        Some(proxy) => proxy.addr().port(),
                        None => quorum_j,
                    };
                    servers.push_str(&format!(
                        "server.{}=127.0.0.1:{quorum_j}:{election_j}\n",
                        j + 1
                    ));
                }
                let config = dir.path().join("zoo.cfg");
                std::fs::write(&config, ensemble_cfg(client, &data, &servers))?;
                let addr = loopback(client);
                let spec = Spec {
                    what: format!("zookeeper member {} on {addr}", i + 1),
                    program: java.clone(),
                    args: jvm_args("org.apache.zookeeper.server.quorum.QuorumPeerMain", config),
                    log: dir.path().join("server.log"),
                };
                members.push(ZooKeeperMember {
                    id: i + 1,
                    quorum_port: quorum,
                    election_port: election,
                    inner: Instance::spawn(dir, data, addr, spec, MEMBER_READY)?,
                });
            }
            let ensemble = ZooKeeperEnsemble {
                members,
                links,
                runtime: Some(runtime),
            };
            for m in &ensemble.members {
                m.inner.wait_ready()?;
            }
            Ok(ensemble)
        })
    }

    /// Every member's client address, comma-separated in member order: the connect string
    /// of the whole ensemble.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(ZooKeeperMember::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i` (0-based), to kill, pause or restart.
    ///
    /// # Panics
    /// If `i` is not below [`len`](Self::len).
    pub fn member(&self, i: usize) -> &ZooKeeperMember {
        &self.members[i]
    }

    /// Every member, in order.
    pub fn members(&self) -> &[ZooKeeperMember] {
        &self.members
    }

    /// How many members the ensemble has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: an ensemble has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The proxy on member `from`'s link to member `to`'s quorum port.
    ///
    /// # Panics
    /// If `from == to` or either is not below [`len`](Self::len).
    pub fn link(&self, from: usize, to: usize) -> &FaultProxy {
        self.links[from][to]
            .as_ref()
            .expect("a member has no quorum link to itself")
    }

    /// Sets `fault` on every quorum link into and out of member `i`, both directions.
    pub fn set_quorum_links(&self, i: usize, fault: Fault) {
        for j in 0..self.len() {
            if j != i {
                self.link(i, j).set(Direction::Both, fault);
                self.link(j, i).set(Direction::Both, fault);
            }
        }
    }

    /// Blackholes every quorum link of member `i`: it stops hearing from the leader (or, if
    /// it leads, from its followers) while its clients still reach it. A follower answers
    /// reads from its own copy until it gives up on the leader, `syncLimit` ticks later,
    /// then refuses clients until [`heal_quorum`](Self::heal_quorum).
    pub fn isolate_quorum(&self, i: usize) {
        self.set_quorum_links(i, Fault::Blackhole);
    }

    /// Lifts [`isolate_quorum`](Self::isolate_quorum).
    pub fn heal_quorum(&self, i: usize) {
        self.set_quorum_links(i, Fault::Pass);
    }

    /// The index of the member that reports `Mode: leader` while every other running member
    /// reports `Mode: follower`, waiting up to `within` for the ensemble to settle.
    pub fn leader(&self, within: Duration) -> io::Result<usize> {
        let start = std::time::Instant::now();
        loop {
            let modes: Vec<Option<Mode>> = self.members.iter().map(|m| m.mode()).collect();
            let leaders: Vec<usize> = (0..modes.len())
                .filter(|&i| modes[i] == Some(Mode::Leader))
                .collect();
            if let [leader] = leaders[..] {
                return Ok(leader);
            }
            if start.elapsed() >= within {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no single ZooKeeper leader after {within:?}: modes {modes:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts every member in turn ([`ZooKeeperMember::restart`] with
    /// [`Data::Keep`]), each rejoining the quorum of the others before the next goes: a
    /// rolling restart, which also moves the leadership (a new ZooKeeper epoch).
    pub fn rolling_restart(&self) -> io::Result<()> {
        for m in &self.members {
            m.restart(Data::Keep)?;
        }
        Ok(())
    }
}

impl Drop for ZooKeeperEnsemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failing test: what the members said goes with their directories, so show it.
            for m in &self.members {
                eprintln!(
                    "zookeeper member {} (client {}): {}",
                    m.id,
                    m.addr(),
                    log_tail(&m.log_path())
                );
            }
        }
        // The proxies first (their tasks abort), then their runtime, without waiting: the
        // ensemble may be dropped inside a test's runtime, where blocking is not allowed.
        self.links.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Starts a [`FaultProxy`] on `runtime`, from any thread (a test's runtime included).
fn start_proxy(runtime: &tokio::runtime::Runtime, upstream: SocketAddr) -> io::Result<FaultProxy> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(FaultProxy::start(upstream).await);
    });
    rx.recv()
        .map_err(|_| io::Error::other("the ensemble's proxy runtime is gone"))?
}

/// The JVM's arguments to run `main` with `config`.
fn jvm_args(main: &str, config: PathBuf) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-cp",
        &JARS.join(":"),
        main,
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(config.into());
    args
}

fn ensemble_cfg(client_port: u16, data: &Path, servers: &str) -> String {
    let tick = ENSEMBLE_TICK.as_millis();
    format!(
        "tickTime={tick}\n\
         initLimit={ENSEMBLE_INIT_LIMIT}\n\
         syncLimit={ENSEMBLE_SYNC_LIMIT}\n\
         minSessionTimeout={}\n\
         maxSessionTimeout=30000\n\
         dataDir={}\n\
         clientPort={client_port}\n\
         clientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr\n\
         reconfigEnabled=false\n\
         standaloneEnabled=false\n\
         {servers}",
        tick * 2,
        data.display(),
    )
}
