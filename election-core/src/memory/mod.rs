//! A complete in-process backend: one [`MemoryServer`] plays the part of a lease server
//! (Redis, etcd, ...) and each [`MemoryBackend`] is one client's connection to it.

mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{
    Backend, Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, Result,
};
use server::Grant;
pub use server::MemoryServer;

const KIND: &str = "memory";

/// One client connection to a [`MemoryServer`].
///
/// A connection can be [cut off](MemoryBackend::cut_off) from its server and
/// [healed](MemoryBackend::heal), as a network partition would: while cut off every call
/// fails with [`Error::Unavailable`] and renewals stop, so its leaderships lapse at their
/// deadline while the server keeps the lease until its TTL ends. The server itself can be
/// [stalled](MemoryServer::stall): requests then wait instead of failing.
///
/// A lapsed or revoked leadership is not released by the renewal loop (the handover rule
/// of [`LeadershipControl`]): the lease runs out on the server unless the holder resigns.
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    server: MemoryServer,
    link: Arc<AtomicBool>,
}

impl MemoryBackend {
    /// A connection to a new, private server with `timing`.
    pub fn new(timing: LeaseTiming) -> Result<Self> {
        Ok(MemoryServer::new(timing)?.connect())
    }

    pub(crate) fn on(server: MemoryServer) -> Self {
        MemoryBackend {
            server,
            link: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &MemoryServer {
        &self.server
    }

    /// Cuts this connection off from its server (a partition).
    pub fn cut_off(&self) {
        self.link.store(false, Ordering::SeqCst);
    }

    /// Restores this connection.
    pub fn heal(&self) {
        self.link.store(true, Ordering::SeqCst);
    }

    /// Whether this connection is [cut off](Self::cut_off).
    pub fn is_cut_off(&self) -> bool {
        !self.link.load(Ordering::SeqCst)
    }

    fn check_link(&self, election: &ElectionName) -> Result<()> {
        if self.link.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::unavailable(
                KIND,
                self.server.address(),
                Some(election),
                "the connection is cut off",
                None,
            ))
        }
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        Ok(Arc::new(MemoryElector {
            conn: self.clone(),
            name: name.clone(),
            me,
        }))
    }
}

struct MemoryElector {
    conn: MemoryBackend,
    name: ElectionName,
    me: Candidate,
}

impl MemoryElector {
    /// Acquires if free. Synchronous from the check to the grant, so a dropped `campaign`
    /// future never leaves a lease behind.
    fn try_grant(&self) -> Result<std::result::Result<Leadership, server::Busy>> {
        let started = Instant::now();
        self.conn.check_link(&self.name)?;
        Ok(self
            .conn
            .server
            .try_acquire(&self.name, self.me.node(), started)
            .map(|grant| self.start_holding(grant, started)))
    }

    fn start_holding(&self, grant: Grant, started: Instant) -> Leadership {
        let timing = *self.conn.server.timing();
        let control = Arc::new(MemoryControl {
            conn: self.conn.clone(),
            name: self.name.clone(),
            token: grant.token,
            stop: Notify::new(),
        });
        let (keeper, leadership) =
            LeaseKeeper::grant(grant.info, timing.deadline_after(started), control.clone());
        tokio::spawn(renew(control, keeper, timing));
        leadership
    }
}

#[async_trait]
impl LeaderElector for MemoryElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            self.conn.server.unstalled().await;
            match self.try_grant()? {
                Ok(leadership) => return Ok(leadership),
                Err(busy) => busy.wait().await,
            }
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        self.conn.server.unstalled().await;
        Ok(self.try_grant()?.ok())
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        self.conn.check_link(&self.name)?;
        self.conn.server.unstalled().await;
        Ok(self.conn.server.leader(&self.name))
    }

    fn observe(&self) -> LeaderStream {
        self.conn.server.observe(&self.name)
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}

struct MemoryControl {
    conn: MemoryBackend,
    name: ElectionName,
    token: u64,
    stop: Notify,
}

#[async_trait]
impl LeadershipControl for MemoryControl {
    async fn resign(&self) -> Result<()> {
        self.stop.notify_one();
        self.conn.check_link(&self.name)?;
        self.conn.server.unstalled().await;
        self.conn.server.release(&self.name, self.token);
        Ok(())
    }
}

/// The holder's renewal loop: renew every `renew_interval`, retry every `retry_interval`
/// after a failure, stop when leadership ends. It never releases: a lapsed or revoked lease
/// runs out on the server unless the holder resigns (the handover rule).
async fn renew(control: Arc<MemoryControl>, keeper: LeaseKeeper, timing: LeaseTiming) {
    let watch = keeper.watch();
    let mut wait = timing.renew_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = control.stop.notified() => return,
            _ = watch.lost() => return,
        }
        let started = Instant::now();
        if control.conn.check_link(&control.name).is_err() {
            wait = timing.retry_interval;
            continue;
        }
        let renewing = async {
            control.conn.server.unstalled().await;
            control.conn.server.renew(&control.name, control.token)
        };
        let renewed = tokio::select! {
            renewed = renewing => renewed,
            _ = watch.lost() => return,
        };
        if !renewed {
            keeper.end(LossReason::Revoked);
            return;
        }
        if !keeper.extend_to(timing.deadline_after(started)) {
            // The deadline passed while the renewal waited: never revive a lapsed lease,
            // and leave the server's lease to run out.
            return;
        }
        wait = timing.renew_interval;
    }
}
