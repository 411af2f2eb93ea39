//! [`RedisBackend`]: one connection to Redis, shared by every election it hands out.

use std::sync::Arc;

use election_core::{Backend, Candidate, ElectionName, Error, LeaderElector, LeaseTiming, Result};

use crate::config::RedisConfig;
use crate::conn::{Conn, KIND, Tasks};
use crate::elector::RedisElector;
use crate::keys::{Keys, Patterns};
use crate::lease::Lease;
use crate::observe::Listener;

/// A connection to one Redis server (or the master behind Sentinel), handing out one
/// [`LeaderElector`] per election. Cheap to clone; clones share the connection.
///
/// See the [crate documentation](crate) for the model, guarantees and settings.
#[derive(Clone, Debug)]
pub struct RedisBackend {
    conn: Arc<Conn>,
    listener: Arc<Listener>,
    timing: LeaseTiming,
    key_prefix: Arc<str>,
    /// Dropping the backend and every election's handles stops the background tasks
    /// (pub/sub listener, Sentinel follower).
    tasks: Tasks,
}

impl RedisBackend {
    /// Validates `config` against `timing`, connects and checks the credentials with a
    /// PING. The pub/sub listener that wakes waiters connects later, when a campaign first
    /// has to wait or an observer first reads. Must be called inside a tokio runtime.
    ///
    /// Fails with [`Error::Config`] for bad settings (naming the setting),
    /// [`Error::Unavailable`] if the server cannot be reached within the timeouts, and
    /// [`Error::Protocol`] if it refuses the credentials.
    pub async fn connect(config: RedisConfig, timing: LeaseTiming) -> Result<RedisBackend> {
        config.validate(&timing)?;
        let conn = Conn::connect(&config).await?;
        refuse_cluster_nodes(&conn).await?;
        if config.keyspace_notifications {
            enable_expiry_events(&conn).await?;
        }
        warn_if_keys_can_be_evicted(&conn).await;
        let (tasks, stopped) = Tasks::new();
        let patterns = Patterns::new(&config.key_prefix, conn.database);
        if let Some((sentinels, master_name)) = conn.sentinels() {
            tokio::spawn(crate::sentinel::follow(
                conn.clone(),
                sentinels,
                master_name,
                timing.retry_interval,
                stopped.clone(),
            ));
        }
        tracing::debug!(backend = KIND, address = %conn.address(), "connected");
        Ok(RedisBackend {
            listener: Arc::new(Listener::new(conn.clone(), patterns, timing, stopped)),
            conn,
            timing,
            key_prefix: config.key_prefix.into(),
            tasks,
        })
    }

    /// The server's address as shown in messages (no credentials).
    pub fn address(&self) -> String {
        self.conn.address()
    }

    /// Whether change notifications (pub/sub) are live right now; while they are not,
    /// waiters poll every `retry_interval`. Starts the listener if nothing needed it yet,
    /// so waiting for this to turn true is meaningful. Must be called inside a tokio
    /// runtime.
    pub fn notifications_live(&self) -> bool {
        self.listener.ensure_listening();
        self.listener.subscribed()
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        let lease = Lease::new(
            self.conn.clone(),
            self.timing,
            name.clone(),
            Keys::new(&self.key_prefix, name),
            self.tasks.clone(),
        );
        Ok(Arc::new(RedisElector::new(
            lease,
            self.listener.clone(),
            me,
        )))
    }
}

/// Refuses a Redis Cluster node: the lease and epoch keys of an election live in different
/// slots, and redirects (`MOVED`, `ASK`) are not followed, so it would work only by luck.
/// A server that does not answer `INFO cluster` (ACLs) is taken as standalone.
async fn refuse_cluster_nodes(conn: &Arc<Conn>) -> Result<()> {
    let info: Result<String> = conn
        .run(None, "INFO cluster", |mut c| async move {
            redis::cmd("INFO").arg("cluster").query_async(&mut c).await
        })
        .await;
    match info {
        Ok(text) if text.lines().any(|l| l.trim() == "cluster_enabled:1") => Err(Error::config(
            "redis.url",
            format!(
                "{} is a Redis Cluster node; the redis backend needs a standalone server or \
                 Sentinel (cluster redirects are not followed)",
                conn.address()
            ),
        )),
        _ => Ok(()),
    }
}

/// Warns when the server's `maxmemory-policy` may evict the lease key (every policy but
/// `noeviction`: the `volatile-*` ones pick among keys with a TTL, which the lease key
/// has): an evicted key is a lease another node can take at once, while the holder still
/// believes it leads until its deadline. A warning, not a refusal: managed servers often
/// disable `CONFIG`, and a server with `maxmemory 0` never evicts.
async fn warn_if_keys_can_be_evicted(conn: &Arc<Conn>) {
    let answer: Result<Vec<String>> = conn
        .run(None, "CONFIG GET maxmemory", |mut c| async move {
            let mut out: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory")
                .query_async(&mut c)
                .await?;
            let policy: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async(&mut c)
                .await?;
            out.extend(policy);
            Ok(out)
        })
        .await;
    let Ok(values) = answer else {
        return;
    };
    let limit = values.get(1).map(String::as_str).unwrap_or("0");
    let policy = values.get(3).map(String::as_str).unwrap_or("noeviction");
    if limit != "0" && policy != "noeviction" {
        tracing::warn!(
            backend = KIND,
            address = %conn.address(),
            maxmemory = limit,
            policy,
            "the server may evict the lease key when memory runs out (maxmemory-policy {policy}); \
             another node could then be elected while this one's holder still leads until its \
             deadline: use maxmemory-policy noeviction"
        );
    }
}

/// Adds key-expiry events (`K` keyspace channel, `x` expired) to the server's
/// `notify-keyspace-events`, keeping whatever flags are there.
async fn enable_expiry_events(conn: &Arc<Conn>) -> Result<()> {
    let current: Vec<String> = conn
        .run(
            None,
            "CONFIG GET notify-keyspace-events",
            |mut c| async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("notify-keyspace-events")
                    .query_async(&mut c)
                    .await
            },
        )
        .await
        .map_err(|e| keyspace_error(conn, e))?;
    let mut flags = current.get(1).cloned().unwrap_or_default();
    let mut changed = false;
    if !flags.contains('K') {
        flags.push('K');
        changed = true;
    }
    if !flags.contains('x') && !flags.contains('A') {
        flags.push('x');
        changed = true;
    }
    if changed {
        conn.run(None, "CONFIG SET notify-keyspace-events", |mut c| {
            let flags = flags.clone();
            async move {
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("notify-keyspace-events")
                    .arg(flags)
                    .query_async::<()>(&mut c)
                    .await
            }
        })
        .await
        .map_err(|e| keyspace_error(conn, e))?;
    }
    Ok(())
}

fn keyspace_error(conn: &Conn, e: Error) -> Error {
    match e {
        Error::Protocol { detail, .. } => Error::protocol(
            KIND,
            conn.address(),
            None,
            format!(
                "{detail} (redis.keyspace_notifications = true needs the CONFIG command; \
                 set it to false, or enable `notify-keyspace-events Kx` on the server)"
            ),
        ),
        other => other,
    }
}
