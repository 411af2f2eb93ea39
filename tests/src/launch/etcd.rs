use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Data;
use super::instance::{Instance, Readiness, retry_on_port_clash};
use super::probe;
use super::process::{Spec, find_binary, free_port, loopback, server_dir};

const READY: Readiness = Readiness {
    check: "GET /health answered \"health\":\"true\"",
    probe: probe::etcd_ready,
    within: Duration::from_secs(30),
};

/// Raft timings of a single member, as NOTES-servers.md gives them: it elects itself in
/// about 0.1 s.
const SINGLE_TIMINGS: Timings = Timings {
    heartbeat_ms: 10,
    election_ms: 100,
};

/// Raft timings of a cluster's members: slower than a single member's, so that members on a
/// busy machine do not depose each other's leader for a late heartbeat (see decision 011).
const CLUSTER_TIMINGS: Timings = Timings {
    heartbeat_ms: 50,
    election_ms: 500,
};

#[derive(Clone, Copy, Debug)]
struct Timings {
    heartbeat_ms: u32,
    election_ms: u32,
}

/// An `etcd` member on free loopback ports (client and peer) with its own temporary
/// directory: a single-member cluster from [`EtcdServer::start`], or one member of an
/// [`EtcdCluster`].
///
/// The server's output goes to `server.log` in [`dir`](Self::dir). Dropping it kills the
/// process and removes the directory.
#[derive(Debug)]
pub struct EtcdServer {
    inner: Instance,
    in_cluster: bool,
}

/// What one member needs to know to start.
struct MemberPlan {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
}

impl MemberPlan {
    fn new(index: usize) -> io::Result<MemberPlan> {
        Ok(MemberPlan {
            name: format!("n{}", index + 1),
            client: loopback(free_port()?),
            peer: loopback(free_port()?),
        })
    }

    fn spawn(
        &self,
        program: &Path,
        initial_cluster: &str,
        token: &str,
        timings: Timings,
    ) -> io::Result<Instance> {
        let dir = server_dir(&format!("elector-etcd-{}-", self.name))?;
        let data = dir.path().join("etcd");
        let client = format!("http://{}", self.client);
        let peer = format!("http://{}", self.peer);
        let args: Vec<OsString> = vec![
            "--name".into(),
            self.name.clone().into(),
            "--data-dir".into(),
            data.clone().into(),
            "--listen-client-urls".into(),
            client.clone().into(),
            "--advertise-client-urls".into(),
            client.into(),
            "--listen-peer-urls".into(),
            peer.clone().into(),
            "--initial-advertise-peer-urls".into(),
            peer.into(),
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-token".into(),
            token.into(),
            "--initial-cluster-state".into(),
            "new".into(),
            format!("--heartbeat-interval={}", timings.heartbeat_ms).into(),
            format!("--election-timeout={}", timings.election_ms).into(),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        let spec = Spec {
            what: format!("etcd member {} on {}", self.name, self.client),
            program: program.to_owned(),
            args,
            log: dir.path().join("server.log"),
        };
        Instance::spawn(dir, data, self.client, spec, READY)
    }
}

fn initial_cluster(plans: &[MemberPlan]) -> String {
    plans
        .iter()
        .map(|p| format!("{}=http://{}", p.name, p.peer))
        .collect::<Vec<_>>()
        .join(",")
}

fn etcd_binary() -> io::Result<PathBuf> {
    find_binary("etcd", "etcd-server")
}

impl EtcdServer {
    /// Starts a single-member cluster (heartbeat 10 ms, election timeout 100 ms) and waits
    /// (up to 30 s) until `GET /health` reports it healthy.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] naming the Debian package `etcd-server` and
    /// `scripts/install-deps.sh` if the binary is missing; on a readiness timeout the
    /// error carries the end of the server log.
    pub fn start() -> io::Result<EtcdServer> {
        let program = etcd_binary()?;
        retry_on_port_clash(|| {
            let plan = MemberPlan::new(0)?;
            let cluster = initial_cluster(std::slice::from_ref(&plan));
            let inner = plan.spawn(&program, &cluster, &token(), SINGLE_TIMINGS)?;
            inner.wait_ready()?;
            Ok(EtcdServer {
                inner,
                in_cluster: false,
            })
        })
    }

    /// The client endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The client address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The pid of the current server process.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The temporary directory (data in `etcd/`, output in `server.log`).
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

    /// Stops the member (SIGTERM for [`Data::Keep`], SIGKILL for [`Data::Empty`]), starts
    /// it again on the same ports and waits until it reports healthy.
    ///
    /// [`Data::Empty`] is refused ([`io::ErrorKind::Unsupported`]) for a member of an
    /// [`EtcdCluster`]: a member that lost its data must be removed and re-added through
    /// the membership API, which this launcher does not do.
    pub fn restart(&self, data: Data) -> io::Result<()> {
        if self.in_cluster && data == Data::Empty {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: restarting a cluster member with empty data is not supported \
                     (it would need a membership change); use Data::Keep",
                    self.inner.what()
                ),
            ));
        }
        self.inner.restart(data)
    }
}

/// A unique cluster token, so that members of different test clusters never talk.
fn token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "elector-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An etcd cluster of `n` members on loopback, each an [`EtcdServer`] with its own ports
/// and directory (heartbeat 50 ms, election timeout 500 ms).
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<EtcdServer>,
}

impl EtcdCluster {
    /// Starts `n` members (at least 1) together and waits until each reports healthy.
    pub fn start(n: usize) -> io::Result<EtcdCluster> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an etcd cluster needs at least one member",
            ));
        }
        let program = etcd_binary()?;
        retry_on_port_clash(|| {
            let plans = (0..n)
                .map(MemberPlan::new)
                .collect::<io::Result<Vec<_>>>()?;
            let cluster = initial_cluster(&plans);
            let token = token();
            // All members start before any is waited for: none is healthy without a quorum.
            let members = plans
                .iter()
                .map(|p| {
                    Ok(EtcdServer {
                        inner: p.spawn(&program, &cluster, &token, CLUSTER_TIMINGS)?,
                        in_cluster: true,
                    })
                })
                .collect::<io::Result<Vec<_>>>()?;
            for m in &members {
                m.inner.wait_ready()?;
            }
            Ok(EtcdCluster { members })
        })
    }

    /// Every member's client endpoint, `http://127.0.0.1:PORT`, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdServer::endpoint).collect()
    }

    /// Member `i` (0-based), to kill, pause or restart.
    ///
    /// # Panics
    /// If `i` is not below [`len`](Self::len).
    pub fn member(&self, i: usize) -> &EtcdServer {
        &self.members[i]
    }

    /// How many members the cluster has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}
