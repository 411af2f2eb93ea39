//! Waiting for one key's deletion with an etcd watch (no polling).

use election_core::{ElectionName, Error, Result};
use etcd_client::{EventType, WatchFilterType, WatchOptions};

use crate::conn::{Conn, KIND};

/// Resolves when `key` is deleted after revision `after` (a watch from `after + 1`, so a
/// deletion between the caller's read at `after` and this watch is not missed). Fails when
/// the watch cannot be opened or breaks (connection lost, history compacted); the caller
/// then re-reads and watches again.
pub(crate) async fn deleted_after(
    conn: &Conn,
    election: &ElectionName,
    key: &str,
    after: i64,
) -> Result<()> {
    let options = WatchOptions::new()
        .with_start_revision(after + 1)
        .with_filters([WatchFilterType::NoPut]);
    let mut stream = conn
        .call(Some(election), "watching a candidate key", |mut c| {
            let options = options.clone();
            async move { c.watch(key, Some(options)).await }
        })
        .await?;
    loop {
        let response = stream
            .message()
            .await
            .map_err(|e| conn.error(Some(election), "watching a candidate key", e))?;
        let Some(response) = response else {
            return Err(broken(conn, election, "the watch stream ended"));
        };
        if response.canceled() {
            return Err(broken(
                conn,
                election,
                format!(
                    "the watch was cancelled (compacted at revision {}): {}",
                    response.compact_revision(),
                    response.cancel_reason()
                ),
            ));
        }
        if response
            .events()
            .iter()
            .any(|e| e.event_type() == EventType::Delete)
        {
            return Ok(());
        }
    }
}

fn broken(conn: &Conn, election: &ElectionName, detail: impl std::fmt::Display) -> Error {
    Error::unavailable(KIND, &conn.address, Some(election), detail, None)
}
