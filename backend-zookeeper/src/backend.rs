//! `ZooKeeperBackend`: one ZooKeeper session shared by every election, one elector per
//! election name.

use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, LeaseTiming, Result};

use crate::config::ZooKeeperConfig;
use crate::conn::{Conn, KIND};
use crate::elector::ZkElector;
use crate::paths::election_dir;

/// A connection to a ZooKeeper ensemble (3.5 or later).
///
/// Cheap to clone; clones share the session. Hands out one elector per election name, all
/// multiplexed over the same session. When the session expires, the next operation that
/// needs one establishes a new session.
#[derive(Clone, Debug)]
pub struct ZooKeeperBackend {
    conn: Arc<Conn>,
}

impl ZooKeeperBackend {
    /// Connects to `config.connect_string`, establishes a session, creates the prefix
    /// znode if needed and reads it (so an unreachable server, a refused credential or a
    /// missing permission is reported here, within `connect_timeout` plus a request).
    ///
    /// Fails with [`Error::Config`](election_core::Error::Config) for invalid settings or
    /// timings (see [`ZooKeeperConfig::validate`] and [`LeaseTiming::validate`]), also when
    /// the session timeout ZooKeeper negotiates is longer than `timing.ttl`;
    /// [`Error::Unavailable`](election_core::Error::Unavailable) when ZooKeeper does not
    /// answer; and [`Error::Protocol`](election_core::Error::Protocol) when it refuses us.
    pub async fn connect(config: ZooKeeperConfig, timing: LeaseTiming) -> Result<ZooKeeperBackend> {
        timing.validate()?;
        config.validate()?;
        let conn = Arc::new(Conn::new(&config, timing)?);
        let session = conn.session(None).await?;
        let client = &session.client;
        conn.timed(client.mkdir(&conn.prefix, &conn.dir_options()))
            .await
            .map_err(|e| conn.error(None, &format!("creating the prefix {}", conn.prefix), e))?;
        conn.timed(client.list_children(&conn.prefix))
            .await
            .map_err(|e| conn.error(None, &format!("reading the prefix {}", conn.prefix), e))?;
        tracing::debug!(address = %conn.address, prefix = %conn.prefix, "connected to zookeeper");
        Ok(ZooKeeperBackend { conn })
    }

    /// The connect string, as named in errors.
    pub fn address(&self) -> &str {
        &self.conn.address
    }

    /// The session timeout ZooKeeper negotiated for the current session (establishing one
    /// if the last one ended). Every leadership's deadline is measured with it.
    pub async fn session_timeout(&self) -> Result<Duration> {
        Ok(self.conn.session(None).await?.client.session_timeout())
    }

    /// The znode of election `name`: `<prefix>/<name>`; its children are the candidates.
    pub fn election_path(&self, name: &ElectionName) -> String {
        election_dir(&self.conn.prefix, name)
    }
}

impl Backend for ZooKeeperBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        Ok(Arc::new(ZkElector {
            conn: self.conn.clone(),
            name: name.clone(),
            me,
            dir: election_dir(&self.conn.prefix, name),
        }))
    }
}
