//! One candidate's etcd lease: granted once, kept alive from a background task for the
//! whole candidacy and leadership, revoked when done.

use std::sync::Arc;

use election_core::{ElectionName, Result};
use etcd_client::{LeaseKeepAliveStream, LeaseKeeper as EtcdKeeper};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::conn::Conn;

/// What the keep-alive task knows about the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaseState {
    /// Start of the last round trip (grant or keep-alive) that came back with TTL > 0.
    pub(crate) renewed_at: Instant,
    /// etcd answered TTL 0 or "lease not found": the lease was revoked or expired.
    pub(crate) gone: bool,
}

/// A granted lease. Dropping it stops the keep-alive and revokes it in the background.
#[derive(Debug)]
pub(crate) struct Lease {
    conn: Arc<Conn>,
    election: ElectionName,
    id: i64,
    state: watch::Receiver<LeaseState>,
    keepalive: JoinHandle<()>,
    /// `true` once revoked (or found gone); serializes concurrent revokes.
    revoked: Mutex<bool>,
}

impl Lease {
    /// Grants a lease of `conn.ttl_secs` and starts keeping it alive.
    pub(crate) async fn grant(conn: &Arc<Conn>, election: &ElectionName) -> Result<Lease> {
        let started = Instant::now();
        let ttl = conn.ttl_secs;
        let granted = conn
            .call(Some(election), "granting a lease", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?;
        if granted.ttl() < conn.ttl_secs {
            // Revoke what we were given (best effort) before refusing it.
            let id = granted.id();
            let _ = conn
                .call(Some(election), "revoking a lease", |mut c| async move {
                    c.lease_revoke(id).await
                })
                .await;
            return Err(election_core::Error::protocol(
                crate::conn::KIND,
                &conn.address,
                Some(election),
                format!(
                    "etcd granted a lease of {} s where {} s was asked: the holder's deadline \
                     would outlive the server's lease",
                    granted.ttl(),
                    conn.ttl_secs
                ),
            ));
        }
        if granted.ttl() > conn.ttl_secs {
            tracing::debug!(
                election = %election,
                asked = conn.ttl_secs,
                granted = granted.ttl(),
                "etcd raised the lease TTL to its minimum; crash failover takes that long"
            );
        }
        let (tx, rx) = watch::channel(LeaseState {
            renewed_at: started,
            gone: false,
        });
        let keepalive = tokio::spawn(keep_alive(conn.clone(), granted.id(), tx));
        Ok(Lease {
            conn: conn.clone(),
            election: election.clone(),
            id: granted.id(),
            state: rx,
            keepalive,
            revoked: Mutex::new(false),
        })
    }

    /// The lease id.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// A watch on the keep-alive's view of the lease. Its sender is dropped when the
    /// keep-alive stops.
    pub(crate) fn state(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }

    /// Stops renewing: the lease then ends on the server at its TTL unless revoked sooner.
    pub(crate) fn stop_renewing(&self) {
        self.keepalive.abort();
    }

    /// Stops renewing and revokes the lease, which deletes our key with it. Idempotent;
    /// a lease already gone counts as revoked. Patient: the request may take up to the hold
    /// budget (`ttl - clock_drift - kill_grace`), not just one request timeout, since a
    /// revoke that fails leaves the next candidate waiting for the whole TTL; the
    /// leadership has ended before this is called, so the wait costs no safety.
    pub(crate) async fn revoke(&self) -> Result<()> {
        self.stop_renewing();
        let mut revoked = self.revoked.lock().await;
        if *revoked {
            return Ok(());
        }
        let id = self.id;
        let patience = self
            .conn
            .timing
            .hold_budget()
            .max(self.conn.request_timeout);
        self.conn
            .call_within(
                patience,
                Some(&self.election),
                "revoking the lease",
                |mut c| async move {
                    match c.lease_revoke(id).await {
                        Err(e) if Conn::is_lease_not_found(&e) => Ok(()),
                        r => r.map(drop),
                    }
                },
            )
            .await?;
        *revoked = true;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.keepalive.abort();
        let done = self.revoked.try_lock().map(|r| *r).unwrap_or(false);
        if done {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: the lease expires at its TTL
        };
        let conn = self.conn.clone();
        let id = self.id;
        // Patient: a revoke lost to a reset would leave our candidate key in the queue, in
        // front of our own next campaign, for a whole TTL. After the TTL there is nothing
        // left to revoke.
        rt.spawn(async move {
            let until = tokio::time::Instant::now() + conn.timing.ttl;
            loop {
                let revoked = conn
                    .call(None, "revoking an abandoned lease", |mut c| async move {
                        match c.lease_revoke(id).await {
                            Err(e) if Conn::is_lease_not_found(&e) => Ok(()),
                            r => r.map(drop),
                        }
                    })
                    .await;
                match revoked {
                    Ok(()) => return,
                    Err(e) if !e.is_retryable() || tokio::time::Instant::now() >= until => {
                        tracing::debug!(lease = id, error = %e, "revoking an abandoned lease failed; it expires at its TTL");
                        return;
                    }
                    Err(_) => tokio::time::sleep(conn.timing.retry_interval).await,
                }
            }
        });
    }
}

/// The outcome of one keep-alive round trip.
enum Renewal {
    /// TTL > 0.
    Alive,
    /// TTL 0 or "lease not found".
    Gone,
    /// No answer or a broken stream; try again.
    Failed(String),
}

/// Keeps the lease alive: a round trip every `renew_interval` after the start of the last
/// successful one, a retry every `retry_interval` after a failure. Each round trip has the
/// request timeout; a stream that timed out is dropped, so a late answer is never taken
/// for a newer request's.
async fn keep_alive(conn: Arc<Conn>, id: i64, tx: watch::Sender<LeaseState>) {
    let timing = conn.timing;
    let mut stream: Option<(EtcdKeeper, LeaseKeepAliveStream)> = None;
    let mut next = tx.borrow().renewed_at + timing.renew_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = tx.closed() => return,
        }
        let started = Instant::now();
        let outcome =
            match tokio::time::timeout(conn.request_timeout, round_trip(&conn, id, &mut stream))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Renewal::Failed("no answer within the request timeout".into()),
            };
        match outcome {
            Renewal::Alive => {
                tx.send_modify(|s| s.renewed_at = started);
                next = started + timing.renew_interval;
            }
            Renewal::Gone => {
                tracing::debug!(lease = id, "etcd says the lease is gone");
                tx.send_modify(|s| s.gone = true);
                return;
            }
            Renewal::Failed(why) => {
                tracing::debug!(lease = id, address = %conn.address, %why, "lease keep-alive failed; retrying");
                stream = None;
                next = Instant::now() + timing.retry_interval;
            }
        }
    }
}

async fn round_trip(
    conn: &Conn,
    id: i64,
    stream: &mut Option<(EtcdKeeper, LeaseKeepAliveStream)>,
) -> Renewal {
    let classify = |e: etcd_client::Error| {
        if Conn::is_lease_not_found(&e) {
            Renewal::Gone
        } else {
            Renewal::Failed(e.to_string())
        }
    };
    match stream {
        None => {
            // Opening the stream sends the first keep-alive and waits for its answer.
            let mut client = conn.client.clone();
            match client.lease_keep_alive(id).await {
                Ok(opened) => {
                    *stream = Some(opened);
                    Renewal::Alive
                }
                Err(e) => classify(e),
            }
        }
        Some((keeper, responses)) => {
            if let Err(e) = keeper.keep_alive().await {
                return classify(e);
            }
            match responses.message().await {
                Ok(Some(r)) if r.ttl() > 0 => Renewal::Alive,
                Ok(Some(_)) => Renewal::Gone,
                Ok(None) => Renewal::Failed("the keep-alive stream ended".into()),
                Err(e) => classify(e),
            }
        }
    }
}
