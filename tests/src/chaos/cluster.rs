//! The hosts of a run, their server and the proxies between them.
//!
//! - Lease backends (redis, etcd, ZooKeeper, PostgreSQL): one real server from
//!   [`crate::launch`], one [`FaultProxy`] per host in front of it, and on each host
//!   `elector run --supervise` configured to reach the server through that host's proxy.
//! - Peer backends (raft, bully): on each host an `elector agent` (a member) and
//!   `elector run --supervise` going through it; node i dials node j through proxy (i, j),
//!   one per ordered pair, as `peer/src/test_support.rs` does.
//!
//! So a link fault on a host (blackhole, reset) cuts exactly that host off: its server
//! link, or every peer link from and to it. Link faults on different hosts may share a
//! peer link; a link carries the strongest fault of its two hosts (reset over blackhole
//! over pass), so ending one host's fault never lifts the other's.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use tokio::runtime::Runtime;

use super::config::{self, PeerHost};
use super::error::{Error, Result};
use super::journal::node_of;
use super::options::Options;
use super::process::{Proc, Spec, children};
use super::server::Server;
use crate::proxy::{Direction, Fault, FaultProxy};

/// How many hosts a run has.
pub(crate) const HOSTS: usize = 3;
/// How long an agent may take to answer `/health` after it started.
const AGENT_READY: Duration = Duration::from_secs(30);
/// How long a SIGTERMed process may take to exit at the end of a run.
const EXIT_GRACE: Duration = Duration::from_secs(15);

/// A strong link fault.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkFault {
    /// Bytes held, connections open.
    Blackhole,
    /// Connections reset, new ones too.
    Reset,
}

/// One host: its `elector run` and, for peer backends, its agent.
#[derive(Debug)]
pub(crate) struct Host {
    /// `elector run --supervise`.
    pub(crate) runner: Proc,
    /// `elector agent` (peer backends).
    pub(crate) agent: Option<Proc>,
}

impl Drop for Host {
    fn drop(&mut self) {
        // The guard groups first: a stopped guard would otherwise miss its parent's death.
        if let Some(pid) = self.runner.pid() {
            for g in children(pid) {
                let _ = killpg(g, Signal::SIGKILL);
            }
        }
        self.runner.kill();
        if let Some(a) = self.agent.as_mut() {
            a.kill();
        }
    }
}

/// A started agent and its HTTP API address.
type Agent = (Proc, SocketAddr);

/// One proxied link: host `from` to host `to`, or to the server when `to` is `None`.
#[derive(Debug)]
struct Link {
    from: usize,
    to: Option<usize>,
    proxy: FaultProxy,
}

/// Everything a run runs.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// The hosts, `n1`..`n3`.
    pub(crate) hosts: Vec<Host>,
    /// The server (lease backends).
    pub(crate) server: Option<Arc<Server>>,
    links: Vec<Link>,
    /// Active link faults per host: (blackholes, resets).
    link_faults: Vec<(u32, u32)>,
}

impl Cluster {
    /// Starts the server or the agents, the proxies and the runners; returns once every
    /// agent answers `/health` (the runners then campaign on their own).
    pub(crate) fn start(
        opts: &Options,
        out: &Path,
        fence: SocketAddr,
        rt: &Runtime,
    ) -> Result<Cluster> {
        let mut c = Cluster {
            hosts: Vec::new(),
            server: None,
            links: Vec::new(),
            link_faults: vec![(0, 0); HOSTS],
        };
        let (configs, agents) = if opts.backend.is_peer() {
            c.start_agents(opts, out, rt)?
        } else {
            (c.start_server(opts, out, rt)?, Vec::new())
        };
        let mut agents = agents.into_iter();
        let child_env = super::ChildParams {
            fence,
            write_every: opts.timings.write_every,
            term_work: opts.timings.term_work,
        }
        .env();
        for (i, config) in configs.iter().enumerate() {
            let mut args: Vec<std::ffi::OsString> = vec![
                "--config".into(),
                config.into(),
                "run".into(),
                "-e".into(),
                "chaos".into(),
                "--supervise".into(),
                "--".into(),
                opts.child.program.clone().into(),
            ];
            args.extend(opts.child.args.iter().cloned());
            let mut env: Vec<(String, String)> = child_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            env.push(("RUST_LOG".into(), "info".into()));
            let spec = Spec {
                what: format!("{} elector run", node_of(i)),
                program: opts.elector.clone(),
                args,
                env,
                log: out.join(format!("{}.run.log", node_of(i))),
            };
            let runner = Proc::spawn(spec, "start").map_err(Error::io("starting elector run"))?;
            let agent = agents.next().map(|(agent, _)| agent);
            c.hosts.push(Host { runner, agent });
        }
        Ok(c)
    }

    /// Starts the server and a proxy per host; returns each host's config.
    fn start_server(&mut self, opts: &Options, out: &Path, rt: &Runtime) -> Result<Vec<PathBuf>> {
        let server = Arc::new(Server::start(opts.backend)?);
        let mut configs = Vec::new();
        for i in 0..HOSTS {
            let proxy = rt
                .block_on(FaultProxy::start(server.addr_for(i)))
                .map_err(Error::io("starting a proxy"))?;
            let text = config::lease_host(opts.backend, &node_of(i), proxy.addr(), &opts.timings);
            configs.push(write_config(out, i, &text)?);
            self.links.push(Link {
                from: i,
                to: None,
                proxy,
            });
        }
        self.server = Some(server);
        Ok(configs)
    }

    /// Starts the agents behind their proxies; returns each host's config, and its agent
    /// with its API address once it answers `/health`.
    fn start_agents(
        &mut self,
        opts: &Options,
        out: &Path,
        rt: &Runtime,
    ) -> Result<(Vec<PathBuf>, Vec<Agent>)> {
        // Hold each agent's port until the proxies have theirs (port 0), so that no proxy
        // is given an agent's port. Picked outside the ephemeral range, which the chaos
        // runs' many connections churn through (three agents once found theirs taken).
        let reserved: Vec<TcpListener> = (0..HOSTS)
            .map(|_| crate::launch::reserve_port())
            .collect::<std::io::Result<_>>()
            .map_err(Error::io("reserving agent ports"))?;
        let listen: Vec<SocketAddr> = reserved
            .iter()
            .map(TcpListener::local_addr)
            .collect::<std::io::Result<_>>()
            .map_err(Error::io("reserving agent ports"))?;
        let apis: Vec<TcpListener> = (0..HOSTS)
            .map(|_| crate::launch::reserve_port())
            .collect::<std::io::Result<_>>()
            .map_err(Error::io("reserving agent API ports"))?;
        for i in 0..HOSTS {
            for (j, &upstream) in listen.iter().enumerate() {
                if i != j {
                    let proxy = rt
                        .block_on(FaultProxy::start(upstream))
                        .map_err(Error::io("starting a proxy"))?;
                    self.links.push(Link {
                        from: i,
                        to: Some(j),
                        proxy,
                    });
                }
            }
        }
        let mut configs = Vec::new();
        let mut api_addrs = Vec::new();
        for i in 0..HOSTS {
            let peers: Vec<(String, SocketAddr)> = (0..HOSTS)
                .map(|j| {
                    let addr = self
                        .links
                        .iter()
                        .find(|l| l.from == i && l.to == Some(j))
                        .map_or(listen[j], |l| l.proxy.addr());
                    (node_of(j), addr)
                })
                .collect();
            let data_dir = out.join(format!("{}.data", node_of(i)));
            let api = apis[i].local_addr().map_err(Error::io("agent API port"))?;
            let host = PeerHost {
                listen: listen[i],
                peers: &peers,
                data_dir: &data_dir,
                api,
            };
            let text = config::peer_host(opts.backend, &node_of(i), &host, &opts.timings);
            configs.push(write_config(out, i, &text)?);
            api_addrs.push(api);
        }
        drop(reserved);
        drop(apis);
        let mut agents = Vec::new();
        for (i, (config, api)) in configs.iter().zip(api_addrs).enumerate() {
            let spec = Spec {
                what: format!("{} elector agent", node_of(i)),
                program: opts.elector.clone(),
                args: vec!["--config".into(), config.into(), "agent".into()],
                env: vec![("RUST_LOG".into(), "info".into())],
                log: out.join(format!("{}.agent.log", node_of(i))),
            };
            let agent = Proc::spawn(spec, "start").map_err(Error::io("starting elector agent"))?;
            agents.push((agent, api));
        }
        for (_, api) in &agents {
            wait_healthy(*api)?;
        }
        Ok((configs, agents))
    }

    /// Sets or clears a link fault of `host`, then applies every link's strongest fault.
    pub(crate) fn link_fault(&mut self, host: usize, fault: LinkFault, on: bool) {
        let counts = &mut self.link_faults[host];
        let count = match fault {
            LinkFault::Blackhole => &mut counts.0,
            LinkFault::Reset => &mut counts.1,
        };
        *count = if on {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        for l in &self.links {
            let hosts = [Some(l.from), l.to];
            let involved = || hosts.iter().flatten().map(|&h| self.link_faults[h]);
            let fault = if involved().any(|(_, r)| r > 0) {
                Fault::Reset
            } else if involved().any(|(b, _)| b > 0) {
                Fault::Blackhole
            } else {
                Fault::Pass
            };
            if l.proxy.fault(Direction::Both) != fault {
                l.proxy.set(Direction::Both, fault);
            }
        }
    }

    /// Ends the run's processes politely: SIGTERM to every `elector run` (each stops its
    /// child and resigns), then to every agent; SIGKILL whatever has not exited in time.
    pub(crate) fn shut_down(&mut self) {
        let stop = |p: &Proc| {
            let _ = p.signal(Signal::SIGCONT);
            let _ = p.signal(Signal::SIGTERM);
        };
        self.hosts.iter().for_each(|h| stop(&h.runner));
        let deadline = Instant::now() + EXIT_GRACE;
        for h in &mut self.hosts {
            h.runner
                .wait_or_kill(deadline.saturating_duration_since(Instant::now()));
        }
        self.hosts
            .iter()
            .filter_map(|h| h.agent.as_ref())
            .for_each(stop);
        let deadline = Instant::now() + EXIT_GRACE;
        for a in self.hosts.iter_mut().filter_map(|h| h.agent.as_mut()) {
            a.wait_or_kill(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

fn write_config(out: &Path, i: usize, text: &str) -> Result<PathBuf> {
    let path = out.join(format!("{}.toml", node_of(i)));
    std::fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(path)
}

/// Waits until the agent at `api` answers `GET /health` with 200.
fn wait_healthy(api: SocketAddr) -> Result<()> {
    let start = Instant::now();
    while !get_ok(api, "/health") {
        if start.elapsed() > AGENT_READY {
            return Err(Error::Io {
                what: format!("waiting for the agent on {api} to answer /health"),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no 200 within {AGENT_READY:?}"),
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Whether `GET path` on `addr` answers 200 (one short HTTP/1.1 exchange).
fn get_ok(addr: SocketAddr, path: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
