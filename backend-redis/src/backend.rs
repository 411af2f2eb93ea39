//! [`RedisBackend`]: one connection to Redis, shared by every election it hands out.

use std::sync::{Arc, OnceLock};

use election_core::{Backend, Candidate, ElectionName, Error, LeaderElector, LeaseTiming, Result};
use tokio::sync::watch;

use crate::config::RedisConfig;
use crate::elector::RedisElector;
use crate::keys::{Keys, Patterns};
use crate::link::{KIND, Link};
use crate::notify::{self, Notifier};

/// What every elector of one backend shares. Dropping the last one stops the background
/// tasks (pub/sub listener, Sentinel follower).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) link: Arc<Link>,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) timing: LeaseTiming,
    pub(crate) key_prefix: String,
    /// What the pub/sub listener subscribes to; it starts on first need (see
    /// [`Shared::ensure_listening`]).
    patterns: Patterns,
    listening: OnceLock<()>,
    stopped: watch::Receiver<()>,
    _stop_tasks: watch::Sender<()>,
}

impl Shared {
    /// Starts the pub/sub listener unless it runs already. Only waiters and observers need
    /// pushes, so a one-shot attempt (`try_campaign`, `leader`) never pays for a second
    /// connection. Starting late loses nothing: until the subscription is live waiters poll,
    /// and going live wakes every waiter to check again (decision record 090). Must be
    /// called inside a tokio runtime.
    pub(crate) fn ensure_listening(&self) {
        self.listening.get_or_init(|| {
            tokio::spawn(notify::listen(
                self.link.clone(),
                self.notifier.clone(),
                self.patterns.clone(),
                self.timing.retry_interval,
                self.timing
                    .renew_interval
                    .max(std::time::Duration::from_millis(100)),
                self.stopped.clone(),
            ));
        });
    }
}

/// A connection to one Redis server (or the master behind Sentinel), handing out one
/// [`LeaderElector`] per election. Cheap to clone; clones share the connection.
///
/// See the [crate documentation](crate) for the model, guarantees and settings.
#[derive(Clone, Debug)]
pub struct RedisBackend {
    shared: Arc<Shared>,
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
        let link = Link::connect(&config).await?;
        if config.keyspace_notifications {
            enable_expiry_events(&link).await?;
        }
        let notifier = Arc::new(Notifier::new());
        let (stop, stopped) = watch::channel(());
        let patterns = Patterns::new(&config.key_prefix, link.database);
        if let Some((sentinels, master_name)) = link.sentinels() {
            tokio::spawn(crate::sentinel::follow(
                link.clone(),
                sentinels,
                master_name,
                timing.retry_interval,
                stopped.clone(),
            ));
        }
        tracing::debug!(backend = KIND, address = %link.address(), "connected");
        Ok(RedisBackend {
            shared: Arc::new(Shared {
                link,
                notifier,
                timing,
                key_prefix: config.key_prefix,
                patterns,
                listening: OnceLock::new(),
                stopped,
                _stop_tasks: stop,
            }),
        })
    }

    /// The server's address as shown in messages (no credentials).
    pub fn address(&self) -> String {
        self.shared.link.address()
    }

    /// Whether change notifications (pub/sub) are live right now; while they are not,
    /// waiters poll every `retry_interval`. Starts the listener if nothing needed it yet,
    /// so waiting for this to turn true is meaningful. Must be called inside a tokio
    /// runtime.
    pub fn notifications_live(&self) -> bool {
        self.shared.ensure_listening();
        self.shared.notifier.subscribed()
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn election(&self, name: &ElectionName, me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        let keys = Keys::new(&self.shared.key_prefix, name);
        Ok(Arc::new(RedisElector::new(
            self.shared.clone(),
            name.clone(),
            me,
            keys,
        )))
    }
}

/// Adds key-expiry events (`K` keyspace channel, `x` expired) to the server's
/// `notify-keyspace-events`, keeping whatever flags are there.
async fn enable_expiry_events(link: &Arc<Link>) -> Result<()> {
    let current: Vec<String> = link
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
        .map_err(|e| keyspace_error(link, e))?;
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
        link.run(None, "CONFIG SET notify-keyspace-events", |mut c| {
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
        .map_err(|e| keyspace_error(link, e))?;
    }
    Ok(())
}

fn keyspace_error(link: &Link, e: Error) -> Error {
    match e {
        Error::Protocol { detail, .. } => Error::protocol(
            KIND,
            link.address(),
            None,
            format!(
                "{detail} (redis.keyspace_notifications = true needs the CONFIG command; \
                 set it to false, or enable `notify-keyspace-events Kx` on the server)"
            ),
        ),
        other => other,
    }
}
