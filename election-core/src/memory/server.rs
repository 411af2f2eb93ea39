use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::time::Instant;

use super::MemoryBackend;
use crate::{ElectionName, Epoch, LeaderInfo, LeaderStream, LeaseTiming, NodeId, Result};

static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

/// An in-process lease server: many elections, each with at most one holder whose lease
/// lasts `ttl` after its last renewal, and a per-election epoch counter that only rises.
///
/// Cheap to clone; clones share state. Use [`MemoryServer::connect`] to get a client.
#[derive(Clone, Debug)]
pub struct MemoryServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    timing: LeaseTiming,
    next_token: AtomicU64,
    elections: Mutex<HashMap<ElectionName, Slot>>,
    /// `true` while the server is stalled: requests wait, time runs on.
    stalled: watch::Sender<bool>,
}

#[derive(Debug)]
struct Slot {
    holder: Option<Holder>,
    last_epoch: Epoch,
    leader: watch::Sender<Option<LeaderInfo>>,
}

#[derive(Debug)]
struct Holder {
    info: LeaderInfo,
    token: u64,
    expires_at: Instant,
}

impl Slot {
    fn new() -> Self {
        Slot {
            holder: None,
            last_epoch: Epoch::ZERO,
            leader: watch::channel(None).0,
        }
    }

    /// Drops a holder whose lease has run out, telling observers.
    fn expire(&mut self, now: Instant) {
        if self.holder.as_ref().is_some_and(|h| h.expires_at <= now) {
            self.set_holder(None);
        }
    }

    fn set_holder(&mut self, holder: Option<Holder>) {
        let info = holder.as_ref().map(|h| h.info.clone());
        self.holder = holder;
        self.leader.send_replace(info);
    }
}

/// A granted lease.
pub(super) struct Grant {
    pub(super) info: LeaderInfo,
    pub(super) token: u64,
}

/// The election is held; wait on this for a change.
pub(super) struct Busy {
    changed: watch::Receiver<Option<LeaderInfo>>,
    expires_at: Instant,
}

impl Busy {
    /// Resolves when the holder changes or its lease may have run out.
    pub(super) async fn wait(mut self) {
        tokio::select! {
            _ = self.changed.changed() => {}
            () = tokio::time::sleep_until(self.expires_at) => {}
        }
    }
}

impl MemoryServer {
    /// A new server whose leases follow `timing` (validated).
    pub fn new(timing: LeaseTiming) -> Result<Self> {
        timing.validate()?;
        Ok(MemoryServer {
            inner: Arc::new(Inner {
                id: NEXT_SERVER.fetch_add(1, Ordering::Relaxed),
                timing,
                next_token: AtomicU64::new(1),
                elections: Mutex::new(HashMap::new()),
                stalled: watch::channel(false).0,
            }),
        })
    }

    /// A new client connection.
    pub fn connect(&self) -> MemoryBackend {
        MemoryBackend::on(self.clone())
    }

    /// The lease timing.
    pub fn timing(&self) -> &LeaseTiming {
        &self.inner.timing
    }

    /// Stalls the server, as a SIGSTOP would: every request (acquire, renew, release,
    /// leader) waits until [`resume`](Self::resume), and is then carried out in the order
    /// it came; leases keep running out meanwhile. For tests of what a server that wakes up
    /// finds queued.
    pub fn stall(&self) {
        self.inner.stalled.send_replace(true);
    }

    /// Loses every lease and every epoch counter, as a server that lost its disk would
    /// (epochs then start again at 1: this backend does not survive it, which is what the
    /// tests that use this show).
    pub fn wipe(&self) {
        let mut elections = self
            .inner
            .elections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for slot in elections.values_mut() {
            slot.set_holder(None);
            slot.last_epoch = Epoch::ZERO;
        }
    }

    /// Ends a [`stall`](Self::stall).
    pub fn resume(&self) {
        self.inner.stalled.send_replace(false);
    }

    /// Resolves once the server is not stalled.
    pub(super) async fn unstalled(&self) {
        let mut rx = self.inner.stalled.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|stalled| !stalled).await;
    }

    /// A display address, `memory://N`.
    pub fn address(&self) -> String {
        format!("memory://{}", self.inner.id)
    }

    fn slot<R>(&self, name: &ElectionName, f: impl FnOnce(&mut Slot) -> R) -> R {
        let mut elections: MutexGuard<'_, _> = self
            .inner
            .elections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let slot = elections.entry(name.clone()).or_insert_with(Slot::new);
        slot.expire(Instant::now());
        f(slot)
    }

    /// Acquires `name` for `node` if free; the lease runs `ttl` from `started`.
    pub(super) fn try_acquire(
        &self,
        name: &ElectionName,
        node: &NodeId,
        started: Instant,
    ) -> std::result::Result<Grant, Busy> {
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let ttl = self.inner.timing.ttl;
        self.slot(name, |slot| {
            if let Some(h) = &slot.holder {
                return Err(Busy {
                    changed: slot.leader.subscribe(),
                    expires_at: h.expires_at,
                });
            }
            slot.last_epoch = slot.last_epoch.next();
            let info = LeaderInfo {
                node: node.clone(),
                epoch: slot.last_epoch,
                since: SystemTime::now(),
            };
            slot.set_holder(Some(Holder {
                info: info.clone(),
                token,
                expires_at: started + ttl,
            }));
            Ok(Grant { info, token })
        })
    }

    /// Extends the lease of `token` to a TTL from now (the server's time of handling,
    /// which is never before the holder started the renewal); `false` if it no longer
    /// holds.
    pub(super) fn renew(&self, name: &ElectionName, token: u64) -> bool {
        let ttl = self.inner.timing.ttl;
        self.slot(name, |slot| match &mut slot.holder {
            Some(h) if h.token == token => {
                h.expires_at = Instant::now() + ttl;
                true
            }
            _ => false,
        })
    }

    /// Releases the lease of `token`, if it still holds.
    pub(super) fn release(&self, name: &ElectionName, token: u64) {
        self.slot(name, |slot| {
            if slot.holder.as_ref().is_some_and(|h| h.token == token) {
                slot.set_holder(None);
            }
        });
    }

    /// The current holder.
    pub(super) fn leader(&self, name: &ElectionName) -> Option<LeaderInfo> {
        self.slot(name, |slot| slot.holder.as_ref().map(|h| h.info.clone()))
    }

    /// Leader changes of `name`, noticing expiries when they happen.
    pub(super) fn observe(&self, name: &ElectionName) -> LeaderStream {
        let server = self.clone();
        let name = name.clone();
        let (rx, _) = self.slot(&name, |slot| (slot.leader.subscribe(), ()));
        let stream = futures_util::stream::unfold(
            (server, name, rx, None::<Option<LeaderInfo>>),
            |(server, name, mut rx, last)| async move {
                loop {
                    let (current, expires_at) = server.slot(&name, |slot| {
                        (
                            slot.holder.as_ref().map(|h| h.info.clone()),
                            slot.holder.as_ref().map(|h| h.expires_at),
                        )
                    });
                    rx.borrow_and_update();
                    if last.as_ref() != Some(&current) {
                        return Some((Ok(current.clone()), (server, name, rx, Some(current))));
                    }
                    match expires_at {
                        Some(at) => tokio::select! {
                            _ = rx.changed() => {}
                            () = tokio::time::sleep_until(at) => {}
                        },
                        None => {
                            let _ = rx.changed().await;
                        }
                    }
                }
            },
        );
        LeaderStream::new(stream)
    }
}
