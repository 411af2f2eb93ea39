//! One node's elector for one election: etcd's election recipe.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use election_core::{
    Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership, Result,
};
use etcd_client::{
    Compare, CompareOp, GetOptions, GetResponse, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, TxnResponse,
};
use tokio::sync::watch;

use crate::conn::{Conn, KIND};
use crate::holder::{Elected, hold};
use crate::keys::candidate_key;
use crate::lease::{Lease, LeaseState};
use crate::observe::{SinceCache, current_leader, observe};
use crate::watch::deleted_after;

/// The elector handed out by [`EtcdBackend`](crate::EtcdBackend).
pub(crate) struct EtcdElector {
    pub(crate) conn: Arc<Conn>,
    pub(crate) name: ElectionName,
    pub(crate) me: Candidate,
    /// `<prefix><name>/`.
    pub(crate) dir: String,
    pub(crate) since: Arc<SinceCache>,
}

/// Where a candidate stands in the queue.
struct Queued {
    /// Our key's create revision.
    rev: i64,
    /// The key created just before ours, if any, and the revision it was read at.
    predecessor: Option<(Vec<u8>, i64)>,
}

/// How waiting for our turn ended, when it did not fail.
enum Turn {
    /// No earlier key is left: we lead.
    Lead,
    /// Our lease or key disappeared while we waited: start over with a new lease.
    Restart,
}

impl EtcdElector {
    fn key(&self, lease: &Lease) -> String {
        candidate_key(&self.dir, lease.id())
    }

    fn unexpected(&self, detail: impl std::fmt::Display) -> Error {
        Error::protocol(KIND, &self.conn.address, Some(&self.name), detail)
    }

    /// Creates our key under `lease` and reads our place in the queue, in one round trip:
    /// a txn that puts the key if it does not exist ("create revision == 0", as etcd's
    /// `Campaign`) and then reads the two newest keys (ours, and the one before it).
    ///
    /// `None` if our key vanished before we could read our place (our lease expired).
    async fn enqueue(&self, lease: &Lease) -> Result<Option<Queued>> {
        let key = self.key(lease);
        let newest_two = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Descend)
            .with_limit(2);
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([
                TxnOp::put(
                    key.as_str(),
                    self.me.node().as_str(),
                    Some(PutOptions::new().with_lease(lease.id())),
                ),
                TxnOp::get(self.dir.as_str(), Some(newest_two)),
            ]);
        let resp = self.txn(txn, "creating our candidate key").await?;
        if !resp.succeeded() {
            // The key exists, and only we write keys under this lease: an earlier send of
            // this txn was applied but its answer was lost (a reset after it left), and
            // the client sent it again. Take our place from the key itself.
            return match self.own_key(&key, lease).await? {
                Some(rev) => Ok(self.predecessor(&key, rev).await?),
                None => Err(self.unexpected(format!(
                    "candidate key {key} exists under another lease than the one just \
                     granted to us"
                ))),
            };
        }
        let rev = resp.header().map_or(0, |h| h.revision());
        let kvs = txn_get(&resp).ok_or_else(|| self.unexpected("txn answered without its read"))?;
        match kvs.kvs() {
            [ours, rest @ ..] if ours.create_revision() == rev && ours.key() == key.as_bytes() => {
                Ok(Queued {
                    rev,
                    predecessor: rest.first().map(|kv| (kv.key().to_vec(), rev)),
                })
            }
            _ => Err(self.unexpected(format!(
                "our candidate key {key} was not the newest right after its creation"
            ))),
        }
        .map(Some)
    }

    /// The create revision of `key` if it exists under `lease` (so we wrote it), after a
    /// txn answered "not applied" that an earlier, unanswered send of the same txn may have
    /// applied. `None` if the key is absent or belongs to another lease.
    async fn own_key(&self, key: &str, lease: &Lease) -> Result<Option<i64>> {
        let resp = self
            .conn
            .call(
                Some(&self.name),
                "reading our candidate key after a retried txn",
                |mut c| async move { c.get(key, None).await },
            )
            .await?;
        Ok(resp
            .kvs()
            .first()
            .filter(|kv| kv.lease() == lease.id())
            .map(|kv| kv.create_revision()))
    }

    /// Runs a campaign txn, sent again after an ambiguous failure: both campaign txns only
    /// create our key if absent, and their callers recognise a key an earlier send created
    /// ([`own_key`](Self::own_key)).
    async fn txn(&self, txn: Txn, what: &str) -> Result<TxnResponse> {
        self.conn
            .call_resending(Some(&self.name), what, |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
    }

    /// The key created just before ours (create revision `rev`), or `Restart` if our own
    /// key is gone.
    async fn predecessor(&self, key: &str, rev: i64) -> Result<Option<Queued>> {
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Descend)
            .with_max_create_revision(rev)
            .with_limit(2);
        let resp = self
            .conn
            .call(
                Some(&self.name),
                "reading the candidate before ours",
                |mut c| {
                    let options = options.clone();
                    async move { c.get(self.dir.as_str(), Some(options)).await }
                },
            )
            .await?;
        let at = resp.header().map_or(rev, |h| h.revision());
        Ok(match resp.kvs() {
            [ours, rest @ ..] if is_ours(ours, key, rev) => Some(Queued {
                rev,
                predecessor: rest.first().map(|kv| (kv.key().to_vec(), at)),
            }),
            _ => None,
        })
    }

    /// Waits until no key created before ours is left (each wait is a watch on the one key
    /// just before ours: no herd, no polling).
    async fn wait_turn(&self, lease: &Lease, key: &str, mut queued: Queued) -> Result<Turn> {
        let mut state = lease.state();
        loop {
            let Some((pred, at)) = queued.predecessor.take() else {
                return Ok(Turn::Lead);
            };
            let pred = String::from_utf8_lossy(&pred).into_owned();
            tracing::debug!(election = %self.name, waiting_on = %pred, "waiting for the candidate before us");
            let watched = match while_alive(
                &self.conn,
                &self.name,
                &mut state,
                deleted_after(&self.conn, &self.name, &pred, at),
            )
            .await?
            {
                Some(r) => r,
                None => return Ok(Turn::Restart),
            };
            if let Err(e) = watched {
                tracing::debug!(election = %self.name, error = %e, "watch on the candidate before us broke; reading again");
                let pause = tokio::time::sleep(self.conn.timing.retry_interval);
                if while_alive(&self.conn, &self.name, &mut state, pause)
                    .await?
                    .is_none()
                {
                    return Ok(Turn::Restart);
                }
            }
            // Read again: the key before ours may be gone while an older one remains.
            loop {
                match while_alive(
                    &self.conn,
                    &self.name,
                    &mut state,
                    self.predecessor(key, queued.rev),
                )
                .await?
                {
                    None | Some(Ok(None)) => return Ok(Turn::Restart),
                    Some(Ok(Some(q))) => {
                        queued = q;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(election = %self.name, error = %e, "reading the queue failed; retrying");
                        let pause = tokio::time::sleep(self.conn.timing.retry_interval);
                        if while_alive(&self.conn, &self.name, &mut state, pause)
                            .await?
                            .is_none()
                        {
                            return Ok(Turn::Restart);
                        }
                    }
                }
            }
        }
    }

    fn elected(&self, lease: Lease, key: String, rev: i64) -> Leadership {
        let since = SystemTime::now();
        self.since.record(rev, since);
        hold(
            self.conn.clone(),
            self.name.clone(),
            Elected {
                lease,
                key,
                rev,
                node: self.me.node().clone(),
                since,
            },
        )
    }
}

fn is_ours(kv: &KeyValue, key: &str, rev: i64) -> bool {
    kv.key() == key.as_bytes() && kv.create_revision() == rev
}

fn txn_get(resp: &TxnResponse) -> Option<GetResponse> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g),
        _ => None,
    })
}

/// Runs `fut` while the candidacy's lease is usable. `Ok(None)` if the lease is gone
/// (revoked or expired on the server); an error if it could not be renewed for longer than
/// the hold budget, i.e. etcd is unreachable.
async fn while_alive<T>(
    conn: &Conn,
    election: &ElectionName,
    state: &mut watch::Receiver<LeaseState>,
    fut: impl Future<Output = T>,
) -> Result<Option<T>> {
    tokio::pin!(fut);
    loop {
        let s = *state.borrow_and_update();
        if s.gone {
            return Ok(None);
        }
        let stale_at = conn.timing.deadline_after(s.renewed_at);
        tokio::select! {
            v = &mut fut => return Ok(Some(v)),
            changed = state.changed() => {
                if changed.is_err() {
                    // The keep-alive stopped: the lease is gone.
                    return Ok(None);
                }
            }
            () = tokio::time::sleep_until(stale_at) => {
                return Err(Error::unavailable(
                    KIND,
                    &conn.address,
                    Some(election),
                    format!(
                        "the candidacy's lease could not be renewed for {}",
                        humantime::format_duration(conn.timing.hold_budget())
                    ),
                    None,
                ));
            }
        }
    }
}

#[async_trait]
impl LeaderElector for EtcdElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            // Dropping this future drops `lease`, which revokes it (and our key) in the
            // background: the candidacy is withdrawn.
            let lease = Lease::grant(&self.conn, &self.name).await?;
            let key = self.key(&lease);
            let Some(queued) = self.enqueue(&lease).await? else {
                tracing::debug!(election = %self.name, "our candidate key vanished as it was created; campaigning again");
                continue;
            };
            let rev = queued.rev;
            match self.wait_turn(&lease, &key, queued).await? {
                Turn::Lead => return Ok(self.elected(lease, key, rev)),
                Turn::Restart => {
                    tracing::debug!(election = %self.name, "our candidacy's lease or key vanished; campaigning again");
                }
            }
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        let lease = Lease::grant(&self.conn, &self.name).await?;
        let key = self.key(&lease);
        // Put our key only if the election has no key at all; otherwise leave it alone.
        let txn = Txn::new()
            .when([Compare::create_revision(self.dir.as_str(), CompareOp::Equal, 0).with_prefix()])
            .and_then([TxnOp::put(
                key.as_str(),
                self.me.node().as_str(),
                Some(PutOptions::new().with_lease(lease.id())),
            )]);
        let resp = self.txn(txn, "trying to take the election").await?;
        let rev = if resp.succeeded() {
            resp.header().map_or(0, |h| h.revision())
        } else {
            // Someone holds a key, perhaps us: an earlier, unanswered send of this txn may
            // have been applied (a reset after it left). Then our key is the only one and
            // we lead; otherwise no key of ours was written.
            match self.own_key(&key, &lease).await? {
                Some(rev)
                    if self
                        .predecessor(&key, rev)
                        .await?
                        .is_some_and(|q| q.predecessor.is_none()) =>
                {
                    rev
                }
                _ => {
                    // Dropping the lease revokes it (and any key of ours) in the background.
                    lease.stop_renewing();
                    return Ok(None);
                }
            }
        };
        Ok(Some(self.elected(lease, key, rev)))
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        Ok(
            current_leader(&self.conn, &self.name, &self.dir, &self.since)
                .await?
                .0,
        )
    }

    fn observe(&self) -> LeaderStream {
        observe(
            self.conn.clone(),
            self.name.clone(),
            self.dir.clone(),
            self.since.clone(),
        )
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}
