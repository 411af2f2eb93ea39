//! `PostgresBackend`: one command connection (and, on first need, one LISTEN connection)
//! to PostgreSQL, one elector per election name.

use std::sync::Arc;

use election_core::{Backend, Candidate, ElectionName, Error, LeaderElector, LeaseTiming, Result};
use tokio::sync::watch;

use crate::config::PostgresConfig;
use crate::conn::{Conn, KIND};
use crate::elector::PgElector;
use crate::fence::PostgresFence;
use crate::lease::Lease;
use crate::observe::Listener;

/// A connection to PostgreSQL (11 or later) holding the leases of many elections in one
/// table.
///
/// Cheap to clone; clones share the connections. Every election goes over the same
/// command connection (statements are pipelined) and the same LISTEN connection.
#[derive(Clone, Debug)]
pub struct PostgresBackend {
    conn: Arc<Conn>,
    timing: LeaseTiming,
    listener: Arc<Listener>,
    running: Arc<watch::Sender<()>>,
}

impl PostgresBackend {
    /// Connects, checks that the server is a primary that accepts writes, creates the
    /// lease table if it is missing, and checks this user's privileges on it (so an
    /// unreachable server, bad credentials, a standby, a missing database or privilege are
    /// reported here, within `connect_timeout`).
    ///
    /// Fails with [`Error::Config`] for invalid settings or timings (see
    /// [`PostgresConfig::validate`] and [`LeaseTiming::validate`]), [`Error::Unavailable`]
    /// when the server does not answer (or is a standby, or is starting), and
    /// [`Error::Protocol`] when it refuses us.
    pub async fn connect(config: PostgresConfig, timing: LeaseTiming) -> Result<PostgresBackend> {
        timing.validate()?;
        config.validate(&timing)?;
        let conn = Arc::new(Conn::new(&config)?);
        let live = conn.live().await?;
        let table = conn.table.clone();
        let allowed = conn
            .within(
                conn.connect_timeout,
                None,
                "checking privileges",
                live.client.query_one(
                    "SELECT has_table_privilege($1::text, 'SELECT, INSERT, UPDATE') \
                     AND has_table_privilege($1::text, 'SELECT') \
                     AND has_table_privilege($1::text, 'INSERT') \
                     AND has_table_privilege($1::text, 'UPDATE')",
                    &[&table],
                ),
            )
            .await?
            .get::<_, bool>(0);
        if !allowed {
            return Err(conn.hint_privileges(
                Error::protocol(
                    KIND,
                    conn.address(),
                    None,
                    format!("permission denied for table {table}"),
                ),
                "SELECT, INSERT and UPDATE",
            ));
        }
        tracing::debug!(address = %conn.address(), table = %table, "connected to postgres");
        let (running, stopped) = watch::channel(());
        let listener = Arc::new(Listener::new(conn.clone(), timing, stopped));
        Ok(PostgresBackend {
            conn,
            timing,
            listener,
            running: Arc::new(running),
        })
    }

    /// The server's address, `host:port/database as user`, as named in errors.
    pub fn address(&self) -> &str {
        self.conn.address()
    }

    /// The lease table, quoted as in SQL (`"public"."elector_leases"`).
    pub fn table(&self) -> &str {
        &self.conn.table
    }

    /// The fence of election `name`, for writes in this database checked in the writer's
    /// own transaction (see [`PostgresFence`]).
    pub fn fence(&self, name: &ElectionName) -> PostgresFence {
        PostgresFence::new(self.conn.clone(), name.clone())
    }
}

impl Backend for PostgresBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        let lease = Lease {
            conn: self.conn.clone(),
            timing: self.timing,
            name: name.clone(),
        };
        Ok(Arc::new(PgElector::new(
            lease,
            self.listener.clone(),
            me,
            self.running.clone(),
        )))
    }
}
