use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};

use super::Data;
use super::instance::{Instance, Readiness, retry_on_port_clash};
use super::process::{Spec, free_port, log_tail, loopback, require_file, server_dir};

/// Where the Debian package `postgresql-15` puts its programs. [`postgres_bin`] looks for
/// any other major version too.
pub const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The directory of the server programs: `ELECTOR_POSTGRES_BIN` if set, else
/// [`POSTGRES_BIN`] if it exists, else the newest `/usr/lib/postgresql/N/bin`.
pub fn postgres_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ELECTOR_POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
    let default = PathBuf::from(POSTGRES_BIN);
    if default.is_dir() {
        return default;
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .max_by_key(|(major, _)| *major);
    newest.map_or(default, |(_, bin)| bin)
}

/// The superuser's name and password in every launched cluster.
pub const POSTGRES_USER: &str = "postgres";
/// See [`POSTGRES_USER`].
pub const POSTGRES_PASSWORD: &str = "elector-test-password";

/// The unprivileged user the server runs as when the tests run as root (PostgreSQL refuses
/// to run as root); otherwise it runs as the tests' own user.
const RUN_AS: &str = "nobody";

const READY: Readiness = Readiness {
    check: "a startup message answered with an authentication request",
    probe: postgres_ready,
    within: Duration::from_secs(30),
};

/// A PostgreSQL cluster (`initdb` + `postgres` from the Debian package, see
/// [`postgres_bin`]) on a free
/// loopback port, in its own directory in memory, run as the unprivileged user `nobody`
/// when the tests run as root (PostgreSQL refuses to run as root; `setpriv` drops the
/// privileges), else as the tests' own user.
///
/// The superuser is [`POSTGRES_USER`] with password [`POSTGRES_PASSWORD`]; TCP logins use
/// SCRAM (`pg_hba.conf` as `initdb --auth-host=scram-sha-256` writes it, which also lets
/// replication connections from loopback in). `fsync` stays on, so
/// [`restart(Data::Keep)`](Self::restart) and a restart after [`kill`](Self::kill) keep
/// every committed write (crash recovery replays the WAL).
///
/// The controls act on the postmaster *and* every backend process (each is its own
/// session: PostgreSQL's children call `setsid`), so [`pause`](Self::pause) stops the
/// whole server and [`kill`](Self::kill) leaves no backend behind holding the shared
/// memory. [`start_standby`](Self::start_standby) clones a running primary with
/// `pg_basebackup -R` into a hot standby (asynchronous streaming replication), and
/// [`promote`](Self::promote) makes it a primary. Dropping it kills every process and
/// removes the directory.
#[derive(Debug)]
pub struct PostgresServer {
    inner: Instance,
}

impl PostgresServer {
    /// Starts a fresh cluster and waits (up to 30 s) until it accepts logins.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] naming the Debian package `postgresql` and
    /// `scripts/install-deps.sh` if the programs are missing; on a readiness timeout the
    /// error carries the end of the server log.
    pub fn start() -> io::Result<PostgresServer> {
        Self::launch(None, &[])
    }

    /// [`start`](Self::start) with extra `-c name=value` settings for the server, such as
    /// `["ssl=on", "ssl_cert_file=/…/server.pem"]`.
    pub fn start_with(settings: &[&str]) -> io::Result<PostgresServer> {
        Self::launch(None, settings)
    }

    /// A hot standby of `primary`: a `pg_basebackup -R -X stream` copy that streams the
    /// primary's WAL asynchronously (commits on the primary do not wait for it), on its own
    /// port, accepting read-only logins.
    pub fn start_standby(primary: &PostgresServer) -> io::Result<PostgresServer> {
        Self::launch(Some(primary.addr()), &[])
    }

    fn launch(primary: Option<SocketAddr>, settings: &[&str]) -> io::Result<PostgresServer> {
        let bin = postgres_bin();
        let bin = bin.as_path();
        for program in ["initdb", "postgres", "pg_basebackup", "pg_ctl"] {
            require_file(&bin.join(program), "postgresql")?;
        }
        let (uid, gid) = run_as()?;
        retry_on_port_clash(|| {
            let dir = server_dir("elector-postgres-")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            let data = dir.path().join("data");
            let password_file = dir.path().join("password");
            std::fs::write(&password_file, POSTGRES_PASSWORD)?;
            std::os::unix::fs::chown(&password_file, Some(uid), Some(gid))?;
            let addr = loopback(free_port()?);
            if let Some(primary) = primary {
                base_backup(primary, &data)?;
            }
            let mut args: Vec<std::ffi::OsString> = vec![
                "-c".into(),
                SCRIPT.into(),
                "elector-postgres".into(),
                data.as_os_str().into(),
                bin.as_os_str().into(),
                addr.port().to_string().into(),
                password_file.as_os_str().into(),
                dir.path().as_os_str().into(),
                uid.to_string().into(),
                gid.to_string().into(),
            ];
            for s in settings {
                args.push("-c".into());
                args.push((*s).into());
            }
            let spec = Spec {
                what: format!(
                    "postgres{} on {addr}",
                    if primary.is_some() { " (standby)" } else { "" }
                ),
                program: PathBuf::from("/bin/sh"),
                args,
                log: dir.path().join("server.log"),
            };
            let inner = Instance::spawn(dir, data, addr, spec, READY)?;
            inner.wait_ready()?;
            Ok(PostgresServer { inner })
        })
    }

    /// The server's address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The superuser's URL: `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`, plain
    /// TCP (`sslmode=disable`).
    pub fn url(&self) -> String {
        self.url_for(self.addr())
    }

    /// [`url`](Self::url) with another address, such as a proxy's in front of this server.
    pub fn url_for(&self, addr: SocketAddr) -> String {
        format!("postgres://{POSTGRES_USER}:{POSTGRES_PASSWORD}@{addr}/postgres?sslmode=disable")
    }

    /// The pid of the postmaster.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The cluster's directory (data in `data/`, output in `server.log`).
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.inner.log_path()
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// Whether the postmaster is running (it may be paused).
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    /// SIGSTOP to the postmaster and every backend: connections stay open, statements
    /// get no answer, new connections are accepted by the kernel and then wait. Returns
    /// once every process is stopped.
    pub fn pause(&self) -> io::Result<()> {
        let postmaster = self.pid();
        // The postmaster first, so that it forks no backend we would miss.
        signal(postmaster, Signal::SIGSTOP)?;
        let mut all = vec![postmaster];
        for child in children(postmaster) {
            let _ = signal(child, Signal::SIGSTOP);
            all.push(child);
        }
        let start = Instant::now();
        while !all.iter().all(|&p| stopped_or_gone(p)) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{}: not stopped 10 s after SIGSTOP", self.inner.what()),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT to every backend and then the postmaster, after [`pause`](Self::pause).
    pub fn resume(&self) -> io::Result<()> {
        let postmaster = self.pid();
        for child in children(postmaster) {
            let _ = signal(child, Signal::SIGCONT);
        }
        signal(postmaster, Signal::SIGCONT)
    }

    /// SIGKILL to every backend and the postmaster, reaped (a crash); the next start
    /// runs crash recovery. [`restart`](Self::restart) brings it back.
    pub fn kill(&self) -> io::Result<()> {
        self.kill_children();
        self.inner.kill()
    }

    fn kill_children(&self) {
        for child in children(self.pid()) {
            let _ = signal(child, Signal::SIGKILL);
        }
    }

    /// Stops the server (a fast shutdown, SIGINT, for [`Data::Keep`]: sessions are ended
    /// and the data is checkpointed; SIGKILL and an emptied data directory, which the start
    /// fills with a fresh `initdb`, for [`Data::Empty`]), starts it again on the same port
    /// and waits until it accepts logins.
    pub fn restart(&self, data: Data) -> io::Result<()> {
        match data {
            Data::Keep => {
                let postmaster = self.pid();
                let _ = self.resume();
                if signal(postmaster, Signal::SIGINT).is_ok() {
                    let start = Instant::now();
                    while !exited(postmaster) && start.elapsed() < Duration::from_secs(10) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                self.kill_children();
            }
            Data::Empty => {
                let _ = self.resume();
                self.kill_children();
            }
        }
        self.inner.restart(data)
    }

    /// Promotes a standby to a primary (`pg_ctl promote -w`) and waits until it accepts
    /// logins as one.
    pub fn promote(&self) -> io::Result<()> {
        let out = as_server_user(postgres_bin().join("pg_ctl"))?
            .args(["promote", "-w", "-t", "30", "-D"])
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "pg_ctl promote failed ({}): {}{}; {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            )));
        }
        self.inner.wait_ready()
    }

    /// Stops a standby's replication (its WAL receiver): `primary_conninfo` is emptied and
    /// the configuration reloaded, and this returns once no WAL receiver runs. Commits on
    /// the primary from then on never reach this standby, as with an asynchronous standby
    /// that lagged when its primary died.
    pub fn stop_replication(&self) -> io::Result<()> {
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.auto.conf"))?;
        writeln!(conf, "primary_conninfo = ''")?;
        signal(self.pid(), Signal::SIGHUP)?;
        let start = Instant::now();
        loop {
            let out = self.psql(&["-c", "SELECT count(*) FROM pg_stat_wal_receiver"])?;
            if out.trim() == "0" {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: the WAL receiver still runs 20 s after reload",
                        self.inner.what()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `psql` as the superuser with `args` (for example `["-c", "SELECT 1"]`) and
    /// returns its standard output; fails with its standard error.
    pub fn psql(&self, args: &[&str]) -> io::Result<String> {
        let out = Command::new(postgres_bin().join("psql"))
            .arg(self.url())
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(io::Error::other(format!(
                "psql {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.resume();
        self.kill_children();
        // `Instance` kills the postmaster and removes the directory.
    }
}

/// The start script: `initdb` when the data directory is empty, then `exec` the server
/// with the privileges dropped, so the launcher's pid is the postmaster's. Arguments: the
/// data dir, the bin dir, the port, the password file, the socket dir, uid, gid, then
/// extra `-c` settings.
const SCRIPT: &str = r#"set -e
data="$1"; bin="$2"; port="$3"; pwfile="$4"; sock="$5"; uid="$6"; gid="$7"
shift 7
mkdir -p "$data"
chown "$uid:$gid" "$data"
chmod 700 "$data"
drop="setpriv --reuid=$uid --regid=$gid --clear-groups"
if [ "$(id -u)" = "$uid" ]; then drop=""; fi
if [ ! -f "$data/PG_VERSION" ]; then
  $drop "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --no-locale --no-sync --no-instructions
fi
exec $drop "$bin/postgres" -D "$data" -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$sock" -c max_connections=200 -c log_min_messages=warning "$@"
"#;

/// `pg_basebackup` of `primary` into `data` (owned by the server's user), with `-R`: a
/// `standby.signal` and the `primary_conninfo` to stream from.
fn base_backup(primary: SocketAddr, data: &Path) -> io::Result<()> {
    let out = as_server_user(postgres_bin().join("pg_basebackup"))?
        .args(["-h", "127.0.0.1", "-p", &primary.port().to_string()])
        .args([
            "-U",
            POSTGRES_USER,
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "-D",
        ])
        .arg(data)
        .env("PGPASSWORD", POSTGRES_PASSWORD)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "pg_basebackup from {primary} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A command for `program` run as the server's user: through `setpriv` when we are root.
fn as_server_user(program: PathBuf) -> io::Result<Command> {
    let (uid, gid) = run_as()?;
    if uid == nix::unistd::geteuid().as_raw() {
        return Ok(Command::new(program));
    }
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
    ])
    .arg(program);
    Ok(c)
}

/// The uid and gid of [`RUN_AS`] when we are root, else our own.
fn run_as() -> io::Result<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return Ok((
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ));
    }
    let user = User::from_name(RUN_AS)
        .map_err(io::Error::other)?
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no user {RUN_AS:?} to run PostgreSQL as (it refuses to run as root)"),
            )
        })?;
    Ok((user.uid.as_raw(), user.gid.as_raw()))
}

fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(io::Error::other)?;
    kill(Pid::from_raw(pid), sig).map_err(|e| io::Error::other(format!("{sig} to {pid}: {e}")))
}

/// The pids whose parent is `pid`, from `/proc`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(_, ppid)| ppid == pid))
        .collect()
}

/// `(state, ppid)` of `pid` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn stopped_or_gone(pid: u32) -> bool {
    stat(pid).is_none_or(|(s, _)| matches!(s, 'T' | 't' | 'Z' | 'X'))
}

/// Exited (a zombie not yet reaped, or gone).
fn exited(pid: u32) -> bool {
    stat(pid).is_none_or(|(s, _)| matches!(s, 'Z' | 'X'))
}

/// PostgreSQL: a startup message is answered with an authentication request (`R`) once
/// the server accepts logins; while it starts, recovers or shuts down it answers an error
/// (`E`).
fn postgres_ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for s in ["user", POSTGRES_USER, "database", "postgres", ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    let len = u32::try_from(body.len() + 4).unwrap_or(0);
    let mut msg = len.to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    if stream.write_all(&msg).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(stream.read_exact(&mut first), Ok(()) if first[0] == b'R')
}
