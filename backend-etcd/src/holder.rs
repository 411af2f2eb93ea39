//! A granted leadership: the bridge from the lease's keep-alive and our key's watch to
//! election-core's `LeaseKeeper`, and resignation.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use election_core::{
    ElectionName, Epoch, LeaderInfo, Leadership, LeadershipControl, LeaseKeeper, LossReason,
    NodeId, Result,
};
use etcd_client::GetOptions;

use crate::conn::Conn;
use crate::lease::Lease;
use crate::watch::deleted_after;

/// Resigns by revoking the lease, which deletes our key in the same step: the next
/// candidate's watch fires at once.
struct EtcdControl {
    lease: Arc<Lease>,
}

#[async_trait]
impl LeadershipControl for EtcdControl {
    async fn resign(&self) -> Result<()> {
        self.lease.revoke().await
    }
}

/// Everything known about a candidacy that has just been elected.
pub(crate) struct Elected {
    pub(crate) lease: Lease,
    pub(crate) key: String,
    /// The key's create revision: the epoch.
    pub(crate) rev: i64,
    pub(crate) node: NodeId,
    pub(crate) since: SystemTime,
}

/// Turns an elected candidacy into a [`Leadership`] and starts watching over it.
///
/// The deadline is the start of the lease's last successful round trip (the grant or a
/// keep-alive) plus `ttl - clock_drift - kill_grace`; every later successful keep-alive
/// moves it. TTL 0 from etcd, or our key's deletion, ends the leadership at once as
/// [`LossReason::Revoked`]. A loss stops the keep-alive and nothing more: the lease is
/// revoked only by the holder's resign or drop.
pub(crate) fn hold(conn: Arc<Conn>, election: ElectionName, elected: Elected) -> Leadership {
    let Elected {
        lease,
        key,
        rev,
        node,
        since,
    } = elected;
    let lease = Arc::new(lease);
    let state = *lease.state().borrow();
    let info = LeaderInfo {
        node,
        epoch: Epoch(u64::try_from(rev).unwrap_or(0)),
        since,
    };
    let control = Arc::new(EtcdControl {
        lease: lease.clone(),
    });
    let (keeper, leadership) =
        LeaseKeeper::grant(info, conn.timing.deadline_after(state.renewed_at), control);
    if state.gone {
        keeper.end(LossReason::Revoked);
    }
    tracing::info!(election = %election, epoch = rev, lease = format_args!("{:x}", lease.id()), "became leader");
    tokio::spawn(monitor(conn, election, lease, key, rev, keeper));
    leadership
}

async fn monitor(
    conn: Arc<Conn>,
    election: ElectionName,
    lease: Arc<Lease>,
    key: String,
    rev: i64,
    keeper: LeaseKeeper,
) {
    let loss = keeper.watch();
    let mut state = lease.state();
    let key_deleted = own_key_deleted(&conn, &election, &key, rev);
    tokio::pin!(key_deleted);
    let reason = loop {
        tokio::select! {
            reason = loss.lost() => break reason,
            changed = state.changed() => {
                if changed.is_err() {
                    // The keep-alive stopped (it only does when the lease is gone or being
                    // revoked); the deadline ends the leadership at the latest.
                    break loss.lost().await;
                }
                let s = *state.borrow_and_update();
                if s.gone {
                    keeper.end(LossReason::Revoked);
                    break loss.lost().await;
                }
                // `false` means the deadline had already passed: `lost()` resolves next.
                keeper.extend_to(conn.timing.deadline_after(s.renewed_at));
            }
            () = &mut key_deleted => {
                keeper.end(LossReason::Revoked);
                break loss.lost().await;
            }
        }
    };
    tracing::info!(election = %election, epoch = rev, %reason, "leadership ended");
    if reason != LossReason::Resigned {
        // Stop renewing at once, but do not revoke (the handover rule): the lease runs out
        // a TTL after the last keep-alive reached etcd, after the holder's deadline plus
        // its kill grace. A revoke sent now would wait in the socket of a stalled etcd and
        // let the next candidate in during the old child's grace. The holder's resign or
        // drop (after its work stopped) revokes through its control.
        lease.stop_renewing();
    }
}

/// Resolves when our key is gone: deleted by anyone, or its lease revoked or expired.
/// Survives broken watches by reading the key again.
async fn own_key_deleted(conn: &Conn, election: &ElectionName, key: &str, rev: i64) {
    let mut after = rev;
    loop {
        match deleted_after(conn, election, key, after).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(election = %election, error = %e, "watch on our key broke; checking the key")
            }
        }
        tokio::time::sleep(conn.timing.retry_interval).await;
        let read = conn
            .call(Some(election), "reading our key", |mut c| async move {
                c.get(key, Some(GetOptions::new())).await
            })
            .await;
        if let Ok(resp) = read {
            if !resp.kvs().iter().any(|kv| kv.create_revision() == rev) {
                return;
            }
            after = resp.header().map_or(after, |h| h.revision());
        }
    }
}
