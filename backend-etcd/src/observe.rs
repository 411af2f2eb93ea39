//! Reading the leader (the candidate key with the lowest create revision) and following
//! it with a watch, "no leader" included.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use election_core::{ElectionName, Epoch, Error, LeaderInfo, LeaderStream, Result};
use etcd_client::{GetOptions, KeyValue, SortOrder, SortTarget, WatchOptions};
use tokio::sync::mpsc;

use crate::conn::{Conn, KIND};
use crate::keys::node_from_value;

/// When this process first saw each leadership, for [`LeaderInfo::since`]: etcd keeps no
/// timestamps, so `since` is our own grant time for our leaderships and the time this
/// elector first read the key for others'.
#[derive(Debug, Default)]
pub(crate) struct SinceCache {
    last: Mutex<Option<(i64, SystemTime)>>,
}

impl SinceCache {
    /// The time recorded for the leadership with create revision `rev`, recording now if
    /// it is new.
    pub(crate) fn since(&self, rev: i64) -> SystemTime {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some((r, t)) if r == rev => t,
            _ => {
                let now = SystemTime::now();
                *last = Some((rev, now));
                now
            }
        }
    }

    /// Records our own grant.
    pub(crate) fn record(&self, rev: i64, at: SystemTime) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((rev, at));
    }
}

/// The leader described by the candidate key `kv`.
pub(crate) fn leader_info(kv: &KeyValue, since: &SinceCache) -> LeaderInfo {
    LeaderInfo {
        node: node_from_value(kv.value()),
        epoch: Epoch(u64::try_from(kv.create_revision()).unwrap_or(0)),
        since: since.since(kv.create_revision()),
    }
}

/// The current leader of the election in `dir`, and the revision it was read at.
pub(crate) async fn current_leader(
    conn: &Conn,
    election: &ElectionName,
    dir: &str,
    since: &SinceCache,
) -> Result<(Option<LeaderInfo>, i64)> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let resp = conn
        .call(Some(election), "reading the leader", |mut c| {
            let options = options.clone();
            async move { c.get(dir, Some(options)).await }
        })
        .await?;
    let rev = resp.header().map_or(0, |h| h.revision());
    Ok((resp.kvs().first().map(|kv| leader_info(kv, since)), rev))
}

/// Resolves at the first change under `dir` after revision `after`.
async fn changed_after(conn: &Conn, election: &ElectionName, dir: &str, after: i64) -> Result<()> {
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(after + 1);
    let mut stream = conn
        .call(Some(election), "watching the election", |mut c| {
            let options = options.clone();
            async move { c.watch(dir, Some(options)).await }
        })
        .await?;
    loop {
        let msg = stream
            .message()
            .await
            .map_err(|e| conn.error(Some(election), "watching the election", e))?;
        match msg {
            None => {
                return Err(Error::unavailable(
                    KIND,
                    &conn.address,
                    Some(election),
                    "the watch stream ended",
                    None,
                ));
            }
            Some(r) if r.canceled() => {
                return Err(Error::unavailable(
                    KIND,
                    &conn.address,
                    Some(election),
                    format!("the watch was cancelled: {}", r.cancel_reason()),
                    None,
                ));
            }
            Some(r) if !r.events().is_empty() => return Ok(()),
            Some(_) => {}
        }
    }
}

/// Follows the leader: the current one first, then every change (`None` when no key is
/// left). Each change is read again after the watch fires, so the stream reports what etcd
/// holds, not a replay of events. An outage is reported once as an `Err` item; the stream
/// then keeps retrying every `retry_interval` and carries on when etcd answers again. The
/// background task stops when the stream is dropped.
pub(crate) fn observe(
    conn: Arc<Conn>,
    election: ElectionName,
    dir: String,
    since: Arc<SinceCache>,
) -> LeaderStream {
    let (tx, rx) = mpsc::channel::<Result<Option<LeaderInfo>>>(16);
    tokio::spawn(async move {
        let retry = conn.timing.retry_interval;
        let mut last: Option<Option<LeaderInfo>> = None;
        let mut failing = false;
        loop {
            let read = tokio::select! {
                r = current_leader(&conn, &election, &dir, &since) => r,
                () = tx.closed() => return,
            };
            match read {
                Ok((info, rev)) => {
                    failing = false;
                    if last.as_ref() != Some(&info) {
                        if tx.send(Ok(info.clone())).await.is_err() {
                            return;
                        }
                        last = Some(info);
                    }
                    let watched = tokio::select! {
                        r = changed_after(&conn, &election, &dir, rev) => r,
                        () = tx.closed() => return,
                    };
                    match watched {
                        Ok(()) => continue,
                        // A broken watch is not an outage yet: read again, after a pause.
                        Err(e) => {
                            tracing::debug!(election = %election, error = %e, "the leader watch broke; reading again")
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(election = %election, error = %e, "reading the leader failed; retrying");
                    if !failing {
                        failing = true;
                        // Report the leader again once etcd answers.
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
