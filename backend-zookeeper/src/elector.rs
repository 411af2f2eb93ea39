//! One node's elector for one election: ZooKeeper's leader-election recipe.

use std::sync::Arc;

use async_trait::async_trait;
use election_core::{
    Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership, Result,
};
use tokio::time::Instant;
use zookeeper_client::{self as zk, CreateMode};

use crate::conn::{Conn, KIND, Session, is_transient};
use crate::holder::{Candidacy, confirm, hold};
use crate::observe::{current_leader, epoch_of, observe, since_of};
use crate::paths::{candidate_base, parse_children};

/// The elector handed out by [`ZooKeeperBackend`](crate::ZooKeeperBackend).
pub(crate) struct ZkElector {
    pub(crate) conn: Arc<Conn>,
    pub(crate) name: ElectionName,
    pub(crate) me: Candidate,
    /// `<prefix>/<name>`.
    pub(crate) dir: String,
}

/// How waiting for our turn ended, when it did not fail.
enum Turn {
    /// No earlier candidate is left (as the server we talk to sees it): confirm, then lead.
    Lead,
    /// Our znode or our session is gone: start over.
    Restart,
}

impl ZkElector {
    fn unexpected(&self, detail: impl std::fmt::Display) -> Error {
        Error::protocol(KIND, &self.conn.address, Some(&self.name), detail)
    }

    fn error(&self, doing: &str, e: zk::Error) -> Error {
        self.conn.error(Some(&self.name), doing, e)
    }

    /// Creates our EPHEMERAL_SEQUENTIAL znode `<dir>/n_` holding our node id (creating the
    /// election's znode and its parents first if needed).
    async fn enqueue(&self, session: &Session) -> Result<(Candidacy, zk::Stat)> {
        let client = &session.client;
        let options = CreateMode::EphemeralSequential.with_acls(self.conn.acls());
        let base = candidate_base(&self.dir);
        let data = self.me.node().as_str().as_bytes();
        let mut created_dir = false;
        loop {
            match self.conn.timed(client.create(&base, data, &options)).await {
                Ok((stat, seq)) => {
                    let path = format!("{base}{seq}");
                    let c = Candidacy::new(
                        self.conn.clone(),
                        session.clone(),
                        self.name.clone(),
                        path,
                        seq.into_i64(),
                    );
                    let stat = if stat.is_invalid() {
                        // A 3.4 server answers `create` without a stat.
                        match self.conn.timed(client.check_stat(&c.path)).await {
                            Ok(Some(stat)) => stat,
                            Ok(None) => {
                                return Err(self.unexpected(format!(
                                    "our znode {} vanished right after its creation",
                                    c.path
                                )));
                            }
                            Err(e) => return Err(self.error("reading our znode", e)),
                        }
                    } else {
                        stat
                    };
                    tracing::debug!(election = %self.name, path = %c.path, czxid = stat.czxid, "candidate znode created");
                    return Ok((c, stat));
                }
                Err(zk::Error::NoNode) if !created_dir => {
                    created_dir = true;
                    self.conn
                        .timed(client.mkdir(&self.dir, &self.conn.dir_options()))
                        .await
                        .map_err(|e| self.error("creating the election's znode", e))?;
                }
                Err(zk::Error::NoChildrenForEphemerals) => {
                    return Err(self.unexpected(format!(
                        "{} is an ephemeral znode, so it cannot hold candidates: something else \
                         writes under zookeeper.prefix",
                        self.dir
                    )));
                }
                Err(e) => {
                    if is_transient(&e) {
                        // The create may have reached the server: a znode of ours that
                        // nobody holds would lead forever. Remove it once we can.
                        crate::orphans::remove_later(
                            self.conn.clone(),
                            session.clone(),
                            self.name.clone(),
                            self.dir.clone(),
                            self.me.node().clone(),
                        );
                    }
                    return Err(self.error("creating our candidate znode", e));
                }
            }
        }
    }

    /// Waits until no candidate with a lower sequence is left. Each wait is a watch on the
    /// one candidate just before ours (no herd effect, no polling).
    async fn wait_turn(&self, c: &Candidacy) -> Result<Turn> {
        let session = &c.session;
        let client = &session.client;
        loop {
            if !session.is_alive() {
                return Ok(Turn::Restart);
            }
            let names = match self.conn.timed(client.list_children(&self.dir)).await {
                Ok(names) => names,
                Err(zk::Error::NoNode) => return Ok(Turn::Restart),
                Err(e) if is_transient(&e) => {
                    tracing::debug!(election = %self.name, error = %e, "reading the queue failed; retrying");
                    tokio::time::sleep(session.timing.retry_interval).await;
                    continue;
                }
                Err(e) => return Err(self.error("reading the candidates", e)),
            };
            let children = parse_children(names);
            let Some(pos) = children.iter().position(|ch| ch.seq == c.seq) else {
                tracing::debug!(election = %self.name, path = %c.path, "our znode is gone; campaigning again");
                return Ok(Turn::Restart);
            };
            let Some(pred) = pos.checked_sub(1).map(|i| &children[i]) else {
                return Ok(Turn::Lead);
            };
            let pred = pred.path(&self.dir);
            tracing::debug!(election = %self.name, waiting_on = %pred, "waiting for the candidate before us");
            match self.conn.timed(client.check_and_watch_stat(&pred)).await {
                // Gone already: read the queue again.
                Ok((None, _)) => {}
                // Fires on its deletion (or a data change, or our session ending): read again.
                Ok((Some(_), watcher)) => {
                    if pos == 1 && !session.follower_lag.is_zero() {
                        // Next in line: keep proving the session at the quorum while we
                        // wait, so that our lead is confirmed at once when our turn comes
                        // rather than one follower lag later.
                        tokio::select! {
                            _ = watcher.changed() => {}
                            () = keep_proven(&self.conn, session, &c.path) => {}
                        }
                    } else {
                        watcher.changed().await;
                    }
                }
                Err(e) if is_transient(&e) => {
                    tracing::debug!(election = %self.name, error = %e, "watching the candidate before us failed; retrying");
                    tokio::time::sleep(session.timing.retry_interval).await;
                }
                Err(e) => return Err(self.error("watching the candidate before us", e)),
            }
        }
    }

    /// Confirms that our znode, seen at the head of the queue, is still ours at the quorum
    /// (a [`confirm`] round: the server we talk to may be a follower behind the leader),
    /// and returns the anchor of the leadership's first deadline; `None` if the znode is
    /// gone or not ours (campaign again).
    ///
    /// With a follower lag, a round anchors the deadline at an earlier round (see
    /// `Session::answered`); a session that has been idle has none recent enough, and its
    /// first round would leave less than a renewal interval to lead. Then a second round,
    /// one follower lag later, anchors at the first.
    async fn confirm_lead(&self, c: &Candidacy) -> Result<Option<Instant>> {
        let session = &c.session;
        let timing = session.timing;
        loop {
            match confirm(&self.conn, session, &c.path).await {
                Ok((Some(stat), anchor)) if stat.ephemeral_owner == session.id() => {
                    if timing.deadline_after(anchor) > Instant::now() + timing.renew_interval {
                        return Ok(Some(anchor));
                    }
                    tracing::debug!(election = %self.name, "confirming our lead again, one follower lag later");
                    tokio::time::sleep(session.follower_lag).await;
                }
                Ok(_) => return Ok(None),
                Err(e) if is_transient(&e) => {
                    if !session.is_alive() {
                        return Ok(None);
                    }
                    tracing::debug!(election = %self.name, error = %e, "confirming our lead failed; retrying");
                    tokio::time::sleep(timing.retry_interval).await;
                }
                Err(e) => return Err(self.error("confirming our lead", e)),
            }
        }
    }

    fn elected(&self, c: Candidacy, stat: &zk::Stat, anchor: Instant) -> Result<Leadership> {
        let epoch = epoch_of(stat)
            .ok_or_else(|| self.unexpected(format!("our znode {} has no valid czxid", c.path)))?;
        let info = LeaderInfo {
            node: self.me.node().clone(),
            epoch,
            since: since_of(stat),
        };
        Ok(hold(c, info, anchor))
    }
}

/// Runs a [`confirm`] round on our znode every `renew_interval`, for the anchors they prove
/// (`Session::answered`); never returns. A failed round is left to the watch and the next
/// read of the queue to notice.
async fn keep_proven(conn: &Conn, session: &Session, path: &str) {
    loop {
        let started = Instant::now();
        if let Err(e) = confirm(conn, session, path).await {
            tracing::debug!(path, error = %e, "a round while next in line failed");
        }
        tokio::time::sleep_until(started + session.timing.renew_interval).await;
    }
}

#[async_trait]
impl LeaderElector for ZkElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            let session = self.conn.session(Some(&self.name)).await?;
            // Dropping this future drops `candidacy`, which deletes our znode in the
            // background: the candidacy is withdrawn.
            let (candidacy, stat) = self.enqueue(&session).await?;
            if let Turn::Lead = self.wait_turn(&candidacy).await? {
                if let Some(anchor) = self.confirm_lead(&candidacy).await? {
                    return self.elected(candidacy, &stat, anchor);
                }
            }
            tracing::debug!(election = %self.name, "our znode or session vanished; campaigning again");
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        let session = self.conn.session(Some(&self.name)).await?;
        let client = &session.client;
        // Leave the election alone if anyone is queued already.
        match self.conn.timed(client.list_children(&self.dir)).await {
            Ok(names) => {
                if !parse_children(names).is_empty() {
                    return Ok(None);
                }
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(self.error("reading the candidates", e)),
        }
        let (candidacy, stat) = self.enqueue(&session).await?;
        let names = self
            .conn
            .timed(client.list_children(&self.dir))
            .await
            .map_err(|e| self.error("reading the candidates", e))?;
        let children = parse_children(names);
        if children.first().is_some_and(|ch| ch.seq == candidacy.seq) {
            return match self.confirm_lead(&candidacy).await? {
                Some(anchor) => self.elected(candidacy, &stat, anchor).map(Some),
                None => Err(Error::unavailable(
                    KIND,
                    &self.conn.address,
                    Some(&self.name),
                    format!(
                        "our znode {} vanished (our session ended) before we could lead",
                        candidacy.path
                    ),
                    None,
                )),
            };
        }
        // Someone queued in the meantime and is ahead of us: withdraw.
        candidacy.delete().await?;
        Ok(None)
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let session = self.conn.session(Some(&self.name)).await?;
        Ok(
            current_leader(&self.conn, &session, &self.name, &self.dir, false)
                .await?
                .0,
        )
    }

    fn observe(&self) -> LeaderStream {
        observe(self.conn.clone(), self.name.clone(), self.dir.clone())
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}
