//! systemd's notify protocol (`sd_notify(3)`), written against the protocol itself: one
//! datagram of `KEY=VALUE` lines to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path,
//! or an abstract name when it starts with `@`). Without the variable (not run by systemd
//! with `Type=notify`), every call does nothing. Decision 121.
//!
//! - [`Notifier::ready`] — `READY=1`, once the process serves what its unit promises.
//! - [`Notifier::status`] — `STATUS=…`, one line for `systemctl status`.
//! - [`Notifier::stopping`] — `STOPPING=1`, when shutdown begins.
//! - [`Notifier::watchdog`] — a task that sends `WATCHDOG=1` every half `$WATCHDOG_USEC`,
//!   from the runtime itself: if the event loop stops turning (a hung elector), the pings
//!   stop, and systemd kills the unit; that kill reaches the guard, which kills the command.

use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The variables of the protocol, which the command elector runs does not inherit (it
/// would otherwise notify systemd in elector's name; `sd_notify`'s `unset_environment`).
pub(crate) const ENV: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// This process's notifier, read from the environment once.
pub(crate) fn notifier() -> &'static Notifier {
    static NOTIFIER: OnceLock<Notifier> = OnceLock::new();
    NOTIFIER.get_or_init(Notifier::from_env)
}

/// The notify socket of this process, if systemd gave one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Notifier {
    target: Option<Arc<Target>>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Half of `$WATCHDOG_USEC`, if the watchdog is on for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` / `$WATCHDOG_PID` describe; a
    /// silent one without them, or if the socket cannot be used (logged once).
    pub(crate) fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::default();
        };
        match Target::open(&path, watchdog_from_env()) {
            Ok(target) => Notifier {
                target: Some(Arc::new(target)),
            },
            Err(e) => {
                tracing::warn!(socket = ?path, error = %e, "NOTIFY_SOCKET is set but unusable; not notifying systemd");
                Notifier::default()
            }
        }
    }

    /// Whether systemd listens (`$NOTIFY_SOCKET` was usable).
    pub(crate) fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`, with a status line.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `STATUS=…`.
    pub(crate) fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `STOPPING=1`, with a status line.
    pub(crate) fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// Spawns the watchdog pinger on the current runtime, if systemd asked for one. It
    /// runs until the runtime ends.
    pub(crate) fn watchdog(&self) {
        let Some(target) = self.target.clone() else {
            return;
        };
        let Some(every) = target.watchdog else {
            return;
        };
        tracing::debug!(every = ?every, "sending WATCHDOG=1 to systemd");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                target.send("WATCHDOG=1");
            }
        });
    }

    fn send(&self, message: &str) {
        if let Some(t) = &self.target {
            t.send(message);
        }
    }
}

impl Target {
    fn open(path: &std::ffi::OsStr, watchdog: Option<Duration>) -> io::Result<Target> {
        use std::os::unix::ffi::OsStrExt as _;
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(path)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an abstract name (@…)",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Target {
            socket,
            addr,
            watchdog,
        })
    }

    /// One datagram; never blocks (a full socket buffer drops the message, as
    /// `sd_notify` would fail).
    fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::debug!(error = %e, "notifying systemd failed");
        }
    }
}

/// Half of `$WATCHDOG_USEC` when `$WATCHDOG_PID` is unset or this process's pid, as
/// `sd_watchdog_enabled(3)` does.
fn watchdog_from_env() -> Option<Duration> {
    watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.parse::<u32>().ok()? != me {
            return None;
        }
    }
    let usec: u64 = usec?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

/// A status value on one line (the protocol is line-based).
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening() -> (tempfile::TempDir, UnixDatagram, Target) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let target = Target::open(path.as_os_str(), Some(Duration::from_millis(20))).unwrap();
        (dir, server, target)
    }

    fn recv(server: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_arrive_as_one_datagram_each_in_order() {
        let (_dir, server, target) = listening();
        let n = Notifier {
            target: Some(Arc::new(target)),
        };
        n.ready("following n2");
        n.status("leading job\nat epoch 7");
        n.stopping("stopping");
        assert_eq!(recv(&server), "READY=1\nSTATUS=following n2");
        assert_eq!(recv(&server), "STATUS=leading job at epoch 7");
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn an_abstract_socket_is_reached_by_its_at_name() {
        let name = format!("elector-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let target = Target::open(std::ffi::OsStr::new(&format!("@{name}")), None).unwrap();
        target.send("READY=1");
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn a_relative_notify_socket_is_refused() {
        assert!(Target::open(std::ffi::OsStr::new("notify.sock"), None).is_err());
    }

    /// The pings come from the event loop: while its only thread is blocked, none arrive;
    /// once it turns again, they resume.
    #[test]
    fn a_stalled_runtime_stops_the_watchdog_pings() {
        let (_dir, server, target) = listening();
        let n = Notifier {
            target: Some(Arc::new(target)),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            n.watchdog();
            // Pings flow while the loop turns.
            tokio::task::spawn_blocking({
                let server = server.try_clone().unwrap();
                move || {
                    assert_eq!(recv(&server), "WATCHDOG=1");
                    assert_eq!(recv(&server), "WATCHDOG=1");
                }
            })
            .await
            .unwrap();
            // Drain what queued, then stall the loop's only thread.
            server.set_nonblocking(true).unwrap();
            while server.recv(&mut [0u8; 64]).is_ok() {}
            std::thread::sleep(Duration::from_millis(300));
            let mut stalled = 0;
            while server.recv(&mut [0u8; 64]).is_ok() {
                stalled += 1;
            }
            assert_eq!(stalled, 0, "pings were sent while the runtime was blocked");
            server.set_nonblocking(false).unwrap();
            // The loop turns again: the pings resume.
            tokio::task::spawn_blocking(move || recv(&server))
                .await
                .unwrap()
        });
    }

    #[test]
    fn the_watchdog_pings_at_half_its_timeout_and_only_for_the_named_pid() {
        let half = Some(Duration::from_millis(500));
        assert_eq!(watchdog_interval(Some("1000000"), None, 42), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("42"), 42), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("43"), 42), None);
        assert_eq!(watchdog_interval(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval(Some("x"), None, 42), None);
        assert_eq!(watchdog_interval(None, None, 42), None);
    }
}
