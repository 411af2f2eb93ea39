//! A candidacy (our ephemeral sequential znode) and, once elected, the leadership built
//! on it: the renewal loop that extends election-core's `LeaseKeeper` deadline, the
//! watches that revoke it, and resignation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use election_core::{
    ElectionName, Error, LeaderInfo, Leadership, LeadershipControl, LeaseKeeper, LossReason, Result,
};
use tokio::time::Instant;
use zookeeper_client::{self as zk, EventType};

use crate::conn::{Conn, KIND, Session, is_transient};

/// Our znode in one election. Deleting it withdraws the candidacy (or ends the
/// leadership); dropping it without [`release`](Self::release) deletes it in the
/// background.
#[derive(Debug)]
pub(crate) struct Candidacy {
    pub(crate) conn: Arc<Conn>,
    pub(crate) session: Session,
    pub(crate) election: ElectionName,
    /// Full path of our znode, such as `/elector/job/n_0000000007`.
    pub(crate) path: String,
    /// Its sequence number (our place in the queue).
    pub(crate) seq: i64,
    released: AtomicBool,
}

impl Candidacy {
    pub(crate) fn new(
        conn: Arc<Conn>,
        session: Session,
        election: ElectionName,
        path: String,
        seq: i64,
    ) -> Candidacy {
        conn.set_live(&path, true);
        Candidacy {
            conn,
            session,
            election,
            path,
            seq,
            released: AtomicBool::new(false),
        }
    }

    /// Deletes our znode now, retrying transient failures while the session lives (a
    /// session that ended took the znode with it). Idempotent.
    ///
    /// Gives up waiting after the hold budget (`session timeout - margin`) with an
    /// `Unavailable` error, and keeps trying in the background: a resignation during an
    /// outage does not block its caller for the whole session timeout.
    pub(crate) async fn delete(&self) -> Result<()> {
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.conn.set_live(&self.path, false);
        let patience = self.session.timing.hold_budget();
        let deleting = delete_until_gone(&self.conn, &self.session, &self.election, &self.path);
        match tokio::time::timeout(patience, deleting).await {
            Ok(result) => result,
            Err(_) => {
                self.spawn_delete();
                Err(Error::unavailable(
                    KIND,
                    &self.conn.address,
                    Some(&self.election),
                    format!(
                        "deleting our znode {}: no answer within {}; still trying in the \
                         background, and ZooKeeper deletes it when the session expires",
                        self.path,
                        humantime::format_duration(patience)
                    ),
                    None,
                ))
            }
        }
    }

    /// Deletes our znode in the background (see [`delete`](Self::delete)).
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        self.conn.set_live(&self.path, false);
        self.spawn_delete();
    }

    fn spawn_delete(&self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (conn, session, election, path) = (
                self.conn.clone(),
                self.session.clone(),
                self.election.clone(),
                self.path.clone(),
            );
            rt.spawn(async move {
                if let Err(e) = delete_until_gone(&conn, &session, &election, &path).await {
                    tracing::warn!(election = %election, path = %path, error = %e, "could not delete our znode; it goes when the session ends");
                }
            });
        }
    }
}

impl Drop for Candidacy {
    fn drop(&mut self) {
        self.release();
    }
}

async fn delete_until_gone(
    conn: &Conn,
    session: &Session,
    election: &ElectionName,
    path: &str,
) -> Result<()> {
    loop {
        if !session.is_alive() {
            return Ok(());
        }
        match conn.timed(session.client.delete(path, None)).await {
            Ok(()) | Err(zk::Error::NoNode) => {
                tracing::debug!(election = %election, path, "deleted our znode");
                return Ok(());
            }
            Err(zk::Error::SessionExpired | zk::Error::ClientClosed) => return Ok(()),
            Err(e) if is_transient(&e) => {
                tracing::debug!(election = %election, error = %e, "deleting our znode failed; retrying");
                tokio::time::sleep(session.timing.retry_interval).await;
            }
            Err(e) => return Err(conn.error(Some(election), "deleting our znode", e)),
        }
    }
}

/// Resigns by deleting our znode: the next candidate's watch fires at once. The session
/// is shared with the backend's other elections and stays open.
struct ZkControl {
    candidacy: Arc<Candidacy>,
}

#[async_trait]
impl LeadershipControl for ZkControl {
    async fn resign(&self) -> Result<()> {
        self.candidacy.delete().await
    }
}

/// One renewal round on our znode: `sync`, then `exists`, within one request timeout.
///
/// A plain read is answered by whichever server the session talks to from its own copy,
/// also by a follower cut off from the ZooKeeper leader, which has meanwhile expired our
/// session. `sync` is answered only once that server has heard back from the leader, and
/// the `exists` after it (same session, so in order) sees at least what the leader had
/// committed then: an answer shows our znode as the leader had it, and proves the session
/// alive at the quorum. Returns the stat, if the znode exists, and the anchor of the
/// deadline the round proves ([`Session::answered`]).
pub(crate) async fn confirm(
    conn: &Conn,
    session: &Session,
    path: &str,
) -> Result<(Option<zk::Stat>, Instant), zk::Error> {
    let started = Instant::now();
    let client = &session.client;
    let stat = conn
        .timed(async {
            client.sync(path).await?;
            client.check_stat(path).await
        })
        .await?;
    Ok((stat, session.answered(started, Instant::now())))
}

/// Turns an elected candidacy into a [`Leadership`] and starts watching over it.
///
/// `anchor` comes from a [`confirm`] round that found our znode leading; the deadline is
/// that plus `negotiated timeout - clock_drift - kill_grace`, and every later answered
/// renewal moves it.
pub(crate) fn hold(candidacy: Candidacy, info: LeaderInfo, anchor: Instant) -> Leadership {
    let candidacy = Arc::new(candidacy);
    let timing = candidacy.session.timing;
    let control = Arc::new(ZkControl {
        candidacy: candidacy.clone(),
    });
    tracing::info!(election = %candidacy.election, epoch = %info.epoch, path = %candidacy.path, "became leader");
    let (keeper, leadership) = LeaseKeeper::grant(info, timing.deadline_after(anchor), control);
    tokio::spawn(monitor(candidacy, keeper));
    leadership
}

async fn monitor(c: Arc<Candidacy>, keeper: LeaseKeeper) {
    let loss = keeper.watch();
    let reason = tokio::select! {
        reason = loss.lost() => reason,
        () = renew(&c, &keeper) => {
            keeper.end(LossReason::Revoked);
            loss.lost().await
        }
        () = deleted(&c) => {
            keeper.end(LossReason::Revoked);
            loss.lost().await
        }
    };
    tracing::info!(election = %c.election, path = %c.path, %reason, "leadership ended");
    if reason != LossReason::Resigned {
        // The handover rule: not now, while the holder's child may be in its kill grace (a
        // delete sent now would wait in the socket of a stalled server and land inside that
        // window). The session, shared with other elections, may well outlive this
        // leadership, so the znode is deleted once the window has passed: at the deadline
        // plus clock_drift + kill_grace, when the server would have expired the session
        // from the last renewal. The holder's resign or drop deletes it sooner, once its
        // work has stopped.
        let margin = c.session.timing.safety_margin();
        tokio::time::sleep_until(keeper.deadline() + margin).await;
        c.release();
    }
}

/// Renews every `renew_interval` with a [`confirm`] round (`sync`, then `exists` on our
/// znode), and moves the deadline to the anchor it proves plus the hold budget. Returns
/// when the znode is gone or no longer ours, or the session ended: the leadership is
/// revoked.
async fn renew(c: &Candidacy, keeper: &LeaseKeeper) {
    let timing = c.session.timing;
    loop {
        let started = Instant::now();
        match confirm(&c.conn, &c.session, &c.path).await {
            Ok((Some(stat), anchor)) if stat.ephemeral_owner == c.session.id() => {
                // `false` means the deadline had already passed: `lost()` resolves next.
                keeper.extend_to(timing.deadline_after(anchor));
                tokio::time::sleep_until(started + timing.renew_interval).await;
            }
            Ok(_) => {
                tracing::info!(election = %c.election, path = %c.path, "our znode is gone");
                return;
            }
            Err(zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed) => {
                tracing::info!(election = %c.election, "our ZooKeeper session ended");
                return;
            }
            Err(e) => {
                tracing::debug!(election = %c.election, error = %e, "renewal failed; retrying");
                tokio::time::sleep_until(started + timing.retry_interval).await;
            }
        }
    }
}

/// Resolves when our znode is deleted or the session ends (a watch, so at once rather than
/// at the next renewal). A watch that cannot be set leaves the renewal loop to notice.
async fn deleted(c: &Candidacy) {
    let client = &c.session.client;
    loop {
        match c.conn.timed(client.check_and_watch_stat(&c.path)).await {
            Ok((None, _)) => return,
            Ok((Some(_), watcher)) => {
                let event = watcher.changed().await;
                if matches!(
                    event.event_type,
                    EventType::NodeDeleted | EventType::Session
                ) {
                    return;
                }
            }
            Err(e) => {
                if !c.session.is_alive() {
                    return;
                }
                tracing::debug!(election = %c.election, error = %e, "watch on our znode failed; retrying");
                tokio::time::sleep(c.session.timing.retry_interval).await;
            }
        }
    }
}
