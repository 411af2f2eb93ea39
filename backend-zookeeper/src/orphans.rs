//! Removing a candidate znode whose creation we could not confirm.
//!
//! A `create` that times out or loses its connection may still have been applied. Such a
//! znode belongs to our live session, so ZooKeeper keeps it; once it reached the head of
//! the queue it would lead with nobody holding the leadership, and block the election until
//! the session ends. After such a failure this task deletes every znode of the election
//! owned by our session that no candidacy of this backend holds.

use std::sync::Arc;

use election_core::{ElectionName, NodeId};
use zookeeper_client as zk;

use crate::conn::{Conn, Session, ZkResult, is_transient};
use crate::paths::{node_from_data, parse_children};

/// Spawns the clean-up; it retries until it succeeds or the session ends (which deletes
/// the orphan anyway).
pub(crate) fn remove_later(
    conn: Arc<Conn>,
    session: Session,
    election: ElectionName,
    dir: String,
    me: NodeId,
) {
    tokio::spawn(async move {
        while session.is_alive() {
            match remove(&conn, &session, &dir, &me).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(election = %election, removed = n, "removed candidate znodes left by an unconfirmed create");
                    }
                    return;
                }
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(session.timing.retry_interval).await;
                }
                Err(e) => {
                    tracing::warn!(election = %election, error = %e, "could not look for candidate znodes left by an unconfirmed create");
                    return;
                }
            }
        }
    });
}

async fn remove(conn: &Conn, session: &Session, dir: &str, me: &NodeId) -> ZkResult<usize> {
    let client = &session.client;
    let names = match conn.timed(client.list_children(dir)).await {
        Ok(names) => names,
        Err(zk::Error::NoNode) => return Ok(0),
        Err(e) => return Err(e),
    };
    // Only candidates (ours, and kazoo's, which fail the owner check below).
    let children = parse_children(names);
    let mut removed = 0;
    for child in children {
        let path = child.path(dir);
        if conn.is_live(&path) {
            continue;
        }
        let (data, stat) = match conn.timed(client.get_data(&path)).await {
            Ok(v) => v,
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        };
        if stat.ephemeral_owner != session.id() || node_from_data(&data).as_ref() != Some(me) {
            continue;
        }
        // Checked again right before deleting: a candidacy may have registered meanwhile.
        if conn.is_live(&path) {
            continue;
        }
        match conn.timed(client.delete(&path, Some(stat.version))).await {
            Ok(()) => removed += 1,
            Err(zk::Error::NoNode | zk::Error::BadVersion) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
