//! Fenced writes in the same database: the check that makes a data write succeed only while
//! the writer's epoch is the election's current one, inside the writer's own transaction.

use std::sync::Arc;

use election_core::{ElectionName, Epoch, Error, LossReason, Result};
use tokio_postgres::GenericClient;

use crate::conn::{Conn, KIND, map_error};
use crate::sql;

/// The fence of one election, for writes in the same PostgreSQL database as the lease
/// table. Cheap to clone; from [`PostgresBackend::fence`](crate::PostgresBackend::fence).
///
/// [`check`](Self::check) runs in the caller's transaction: it succeeds only if `epoch` is
/// the election's current epoch and its lease has not run out by the server's clock, and it
/// locks the election's row (`FOR SHARE`) until that transaction ends, so no new leadership
/// can be granted in between: a write made after a successful check commits before any
/// newer leader exists, or not at all. Keep fenced transactions short: while one is open,
/// renewals and acquisitions of that election wait for it (up to the statement timeout).
#[derive(Clone, Debug)]
pub struct PostgresFence {
    conn: Arc<Conn>,
    name: ElectionName,
    sql: Arc<str>,
}

impl PostgresFence {
    pub(crate) fn new(conn: Arc<Conn>, name: ElectionName) -> PostgresFence {
        let sql = sql::fence(&conn.table).into();
        PostgresFence { conn, name, sql }
    }

    /// The check as SQL, for writers that do not use this crate: `$1` is the election
    /// name; it returns the current epoch and whether the lease is live, and locks the row
    /// until the transaction ends. The write may go ahead only if the epoch equals the
    /// writer's and the lease is live.
    pub fn check_sql(&self) -> &str {
        &self.sql
    }

    /// Checks `epoch` in `client`'s transaction (pass a
    /// [`Transaction`](tokio_postgres::Transaction); on a bare
    /// [`Client`](tokio_postgres::Client) the lock ends with the statement, which checks
    /// nothing for later statements). Fails with [`Error::StaleEpoch`] when a newer
    /// leadership exists, [`Error::Lost`] when `epoch` is still the latest but its lease
    /// ran out (by the server's clock) or was released, and a `Protocol` error when the
    /// election has no row or a lower epoch than `epoch` (the table was reset).
    pub async fn check<C: GenericClient + Sync>(&self, client: &C, epoch: Epoch) -> Result<()> {
        let address = self.conn.address();
        let row = client
            .query_opt(&*self.sql, &[&self.name.as_str()])
            .await
            .map_err(|e| map_error(address, Some(&self.name), "checking the fence", e))?;
        let Some(row) = row else {
            return Err(Error::protocol(
                KIND,
                address,
                Some(&self.name),
                format!(
                    "the fence found no row for this election in {}",
                    self.conn.table
                ),
            ));
        };
        let current = Epoch(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
        let live: bool = row.get(1);
        if current > epoch {
            Err(Error::StaleEpoch {
                epoch,
                highest: current,
            })
        } else if current < epoch {
            Err(Error::protocol(
                KIND,
                address,
                Some(&self.name),
                format!(
                    "the fence holds epoch {current}, below the writer's {epoch}: the lease \
                     table was reset or another server answers"
                ),
            ))
        } else if !live {
            Err(Error::Lost {
                election: self.name.clone(),
                epoch,
                reason: LossReason::Expired,
            })
        } else {
            Ok(())
        }
    }
}
