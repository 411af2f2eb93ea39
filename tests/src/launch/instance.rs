//! What every launched server has in common: an address, a temp dir, a process, a probe.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use super::Data;
use super::process::{ServerProcess, Spec, is_port_clash};

/// How many times a start is retried when another process took the chosen port first.
const PORT_ATTEMPTS: usize = 4;

/// A readiness check: its description and the probe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readiness {
    pub(crate) check: &'static str,
    pub(crate) probe: fn(SocketAddr) -> bool,
    pub(crate) within: Duration,
}

/// One launched server process with its directory.
#[derive(Debug)]
pub(crate) struct Instance {
    addr: SocketAddr,
    data_dir: PathBuf,
    process: Mutex<ServerProcess>,
    ready: Readiness,
    // Last, so the process is killed before its directory is removed.
    dir: TempDir,
}

impl Instance {
    /// Spawns the server described by `spec` and waits until it is ready.
    pub(crate) fn spawn(
        dir: TempDir,
        data_dir: PathBuf,
        addr: SocketAddr,
        spec: Spec,
        ready: Readiness,
    ) -> io::Result<Instance> {
        std::fs::create_dir_all(&data_dir)?;
        let instance = Instance {
            addr,
            data_dir,
            process: ServerProcess::spawn(spec)?,
            ready,
            dir,
        };
        Ok(instance)
    }

    /// Waits until the server answers its readiness probe.
    pub(crate) fn wait_ready(&self) -> io::Result<()> {
        let addr = self.addr;
        let Readiness {
            check,
            probe,
            within,
        } = self.ready;
        ServerProcess::lock(&self.process).wait_ready(within, check, || probe(addr))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        ServerProcess::lock(&self.process).log().to_owned()
    }

    pub(crate) fn pid(&self) -> u32 {
        ServerProcess::lock(&self.process).pid()
    }

    pub(crate) fn is_running(&self) -> bool {
        ServerProcess::lock(&self.process).is_running()
    }

    pub(crate) fn pause(&self) -> io::Result<()> {
        ServerProcess::lock(&self.process).pause()
    }

    pub(crate) fn resume(&self) -> io::Result<()> {
        ServerProcess::lock(&self.process).resume()
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        ServerProcess::lock(&self.process).kill()
    }

    /// Stops the server (cleanly when keeping data, so it flushes; SIGKILL otherwise),
    /// empties the data directory if asked, starts it again on the same port and waits
    /// until it is ready.
    pub(crate) fn restart(&self, data: Data) -> io::Result<()> {
        {
            let mut process = ServerProcess::lock(&self.process);
            match data {
                Data::Keep => process.stop(Duration::from_secs(10))?,
                Data::Empty => {
                    process.kill()?;
                    if self.data_dir.exists() {
                        std::fs::remove_dir_all(&self.data_dir)?;
                    }
                    std::fs::create_dir_all(&self.data_dir)?;
                }
            }
            process.respawn()?;
        }
        self.wait_ready()
    }

    pub(crate) fn what(&self) -> String {
        ServerProcess::lock(&self.process).what().to_owned()
    }
}

/// Runs `start` again on fresh ports when the chosen port was taken meanwhile by another
/// process (the window between asking the kernel for a free port and the server binding
/// it).
pub(crate) fn retry_on_port_clash<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(e) if attempt < PORT_ATTEMPTS && is_port_clash(&e) => {
                tracing::debug!(error = %e, attempt, "port clash; retrying on a fresh port");
                attempt += 1;
            }
            other => return other,
        }
    }
}
