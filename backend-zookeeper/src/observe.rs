//! Reading the leader (the candidate znode with the lowest sequence) and following it with
//! watches on the election's children, "no leader" included.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use election_core::{ElectionName, Epoch, Error, LeaderInfo, LeaderStream, Result};
use tokio::sync::mpsc;
use zookeeper_client::{self as zk, OneshotWatcher, Stat};

use crate::conn::{Conn, KIND, Session};
use crate::paths::{Child, contender, parse_children};

/// The epoch of a candidate znode: its czxid (the zxid of the transaction that created
/// it). `None` for a value ZooKeeper never hands out (zxids start at 1).
pub(crate) fn epoch_of(stat: &Stat) -> Option<Epoch> {
    u64::try_from(stat.czxid).ok().filter(|&z| z > 0).map(Epoch)
}

/// The wall-clock creation time of a znode (ZooKeeper's `ctime`, for display only).
pub(crate) fn since_of(stat: &Stat) -> SystemTime {
    let ms = u64::try_from(stat.ctime).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The leader described by candidate `child`: its data (the node id) and stat (czxid is
/// the epoch). `Ok(None)` if the znode vanished meanwhile.
pub(crate) async fn leader_of(
    conn: &Conn,
    session: &Session,
    election: &ElectionName,
    dir: &str,
    child: &Child,
) -> Result<Option<LeaderInfo>> {
    let path = child.path(dir);
    let (data, stat) = match conn.timed(session.client.get_data(&path)).await {
        Ok(v) => v,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(conn.error(Some(election), "reading the leader's znode", e)),
    };
    let foreign = |what: &str| {
        Error::protocol(
            KIND,
            &conn.address,
            Some(election),
            format!("znode {path} {what}: it was not written by this backend"),
        )
    };
    // Ours hold our node id; a kazoo contender holds its identifier, whatever it is.
    let node = contender(&data, child.seq);
    let epoch = epoch_of(&stat).ok_or_else(|| foreign("has no valid czxid"))?;
    Ok(Some(LeaderInfo {
        node,
        epoch,
        since: since_of(&stat),
    }))
}

/// The current leader, and if `watch`, a watch that fires on the next change of the
/// election's children (or, when the election's znode does not exist yet, on its
/// creation).
pub(crate) async fn current_leader(
    conn: &Conn,
    session: &Session,
    election: &ElectionName,
    dir: &str,
    watch: bool,
) -> Result<(Option<LeaderInfo>, Option<OneshotWatcher>)> {
    let client = &session.client;
    loop {
        let listed = if watch {
            conn.timed(client.list_and_watch_children(dir))
                .await
                .map(|(names, w)| (names, Some(w)))
        } else {
            conn.timed(client.list_children(dir))
                .await
                .map(|names| (names, None))
        };
        let (names, watcher) = match listed {
            Ok(v) => v,
            Err(zk::Error::NoNode) => {
                if !watch {
                    return Ok((None, None));
                }
                // Nobody ever campaigned: watch for the election's znode to appear.
                match conn.timed(client.check_and_watch_stat(dir)).await {
                    Ok((None, w)) => return Ok((None, Some(w))),
                    Ok((Some(_), _)) => continue,
                    Err(e) => {
                        return Err(conn.error(Some(election), "watching the election", e));
                    }
                }
            }
            Err(e) => return Err(conn.error(Some(election), "reading the candidates", e)),
        };
        let children = parse_children(names);
        let Some(first) = children.first() else {
            return Ok((None, watcher));
        };
        match leader_of(conn, session, election, dir, first).await? {
            Some(info) => return Ok((Some(info), watcher)),
            // The leader left between the two reads: read again.
            None => continue,
        }
    }
}

/// Follows the leader: the current one first, then every change (`None` when no candidate
/// is left). Each change is read again after the watch fires, so the stream reports what
/// ZooKeeper holds. An outage is reported once as an `Err` item; the stream then retries
/// every `retry_interval` (with a new session if the old one expired) and carries on when
/// ZooKeeper answers again. The background task stops when the stream is dropped.
pub(crate) fn observe(conn: Arc<Conn>, election: ElectionName, dir: String) -> LeaderStream {
    let (tx, rx) = mpsc::channel::<Result<Option<LeaderInfo>>>(16);
    tokio::spawn(async move {
        let retry = conn.timing.retry_interval;
        let mut last: Option<Option<LeaderInfo>> = None;
        let mut failing = false;
        loop {
            let read = tokio::select! {
                r = async {
                    let session = conn.session(Some(&election)).await?;
                    current_leader(&conn, &session, &election, &dir, true).await
                } => r,
                () = tx.closed() => return,
            };
            match read {
                Ok((info, watcher)) => {
                    failing = false;
                    if last.as_ref() != Some(&info) {
                        if tx.send(Ok(info.clone())).await.is_err() {
                            return;
                        }
                        last = Some(info);
                    }
                    if let Some(watcher) = watcher {
                        tokio::select! {
                            // Any event (a child change, the znode created or deleted, the
                            // session ending) means: read again.
                            _ = watcher.changed() => continue,
                            () = tx.closed() => return,
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(election = %election, error = %e, "reading the leader failed; retrying");
                    if !failing {
                        failing = true;
                        // Report the leader again once ZooKeeper answers.
                        last = None;
                        if tx.send(Err(e)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = tx.closed() => return,
            }
        }
    });
    LeaderStream::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
