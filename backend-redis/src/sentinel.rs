//! Following Sentinel: switch to a new master as soon as a sentinel announces it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::conn::Conn;

/// Listens for `+switch-master` on the first sentinel that answers (trying each in turn,
/// again after `retry`) until the sender of `stop` is dropped, and makes `conn` look the
/// master up at once when `master_name` moves. The connection is checked with a PING
/// every second.
pub(crate) async fn follow(
    conn: Arc<Conn>,
    sentinels: Vec<String>,
    master_name: String,
    retry: Duration,
    mut stop: watch::Receiver<()>,
) {
    loop {
        for url in &sentinels {
            let session = listen(&conn, url, &master_name);
            tokio::select! {
                _ = stop.changed() => return,
                outcome = session => {
                    tracing::debug!(backend = "redis", sentinel = %url, %outcome,
                        "sentinel subscription ended");
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// One subscription's life; returns why it ended.
async fn listen(conn: &Arc<Conn>, url: &str, master_name: &str) -> String {
    let client = match redis::Client::open(url) {
        Ok(c) => c,
        Err(e) => return format!("bad sentinel address: {e}"),
    };
    let pubsub = match tokio::time::timeout(conn.connect_timeout, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return format!("connect failed: {e}"),
        Err(_) => return "connect timed out".into(),
    };
    let (mut sink, mut stream) = pubsub.split();
    match tokio::time::timeout(conn.command_timeout, sink.subscribe("+switch-master")).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return format!("subscribe failed: {e}"),
        Err(_) => return "subscribe timed out".into(),
    }
    // A switch may have happened while nobody listened.
    conn.master_switched();
    let mut ping = tokio::time::interval(Duration::from_secs(1));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    // "<master name> <old ip> <old port> <new ip> <new port>"
                    let payload: String = msg.get_payload().unwrap_or_default();
                    if payload.split(' ').next() == Some(master_name) {
                        tracing::info!(backend = "redis", sentinel = %url, %payload,
                            "sentinel announced a new master");
                        conn.master_switched();
                    }
                }
                None => return "the sentinel closed the connection".into(),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(conn.command_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return format!("ping failed: {e}"),
                    Err(_) => return "ping timed out".into(),
                }
            }
        }
    }
}
