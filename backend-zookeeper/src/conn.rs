//! The connection shared by every elector of one backend: one ZooKeeper session at a time
//! (replaced by a new one after it expires), request timeouts and error mapping.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use election_core::{ElectionName, Error, LeaseTiming, Result};
use tokio::sync::Mutex;
use tokio::time::Instant;
use zookeeper_client::{self as zk, Acls, Client, CreateMode, CreateOptions};

use crate::config::ZooKeeperConfig;

/// A client library result.
pub(crate) type ZkResult<T> = std::result::Result<T, zk::Error>;

/// The backend kind, as in errors and `ELECTOR_BACKEND`.
pub(crate) const KIND: &str = "zookeeper";

/// How many answered rounds a session remembers at most (they are dropped once a later
/// one can anchor deadlines; this only bounds a burst).
const MAX_ROUNDS: usize = 1024;

/// One ZooKeeper session, with the timing its negotiated timeout allows.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) client: Client,
    /// The configured timing with `ttl` replaced by the negotiated session timeout: every
    /// deadline of this session is measured with it.
    pub(crate) timing: LeaseTiming,
    /// `zookeeper.follower_lag`: how long before a round started the ZooKeeper leader may
    /// last have heard of this session while the server we talk to still answers.
    pub(crate) follower_lag: Duration,
    /// What this session's answered `sync` rounds proved.
    rounds: Arc<std::sync::Mutex<Rounds>>,
}

/// The answered `sync` rounds of one session, as far as they matter for deadlines.
#[derive(Debug)]
struct Rounds {
    /// The latest instant at which the ZooKeeper leader is known to have counted the
    /// session alive: when establishing it started (the leader created it no earlier),
    /// then the start of the latest round answered `follower_lag` before another round.
    proven: Instant,
    /// Rounds (started, answered), in the order they were answered, not yet that old.
    pending: VecDeque<(Instant, Instant)>,
}

impl Rounds {
    fn new(established_from: Instant) -> Rounds {
        Rounds {
            proven: established_from,
            pending: VecDeque::new(),
        }
    }

    /// Records a round answered with a follower lag of `lag` (not zero) and returns the
    /// anchor it proves: see [`Session::answered`].
    fn answered(&mut self, lag: Duration, started: Instant, answered: Instant) -> Instant {
        // What a round proved stays true (the leader's last touch only moves on), so the
        // proven instant only rises; rounds answered too recently wait in `pending`.
        while let Some(&(s, a)) = self.pending.front() {
            if a + lag > started {
                break;
            }
            self.proven = self.proven.max(s);
            self.pending.pop_front();
        }
        if self.pending.len() >= MAX_ROUNDS {
            self.pending.pop_back();
        }
        self.pending.push_back((started, answered));
        self.proven
    }
}

impl Session {
    /// Records a `sync` round of this session, sent at `started` and answered at
    /// `answered` (any election's: they all share the session), and returns the anchor of
    /// the deadline it proves, which the deadline rule measures from.
    ///
    /// The server we talk to touched the session when the round's first request arrived,
    /// no earlier than `started`, and passes touches on to the ZooKeeper leader with its
    /// next ping reply. An answered `sync` proves that the server was in touch with the
    /// leader after `started`; with a follower lag it proves only that the leader counted
    /// the touches of rounds answered at least `follower_lag` before `started`. So the
    /// anchor is `started` itself when `follower_lag` is zero (a standalone server), else
    /// the start of the latest round answered `follower_lag` or more before `started`, or
    /// when the session was established, whichever is later.
    pub(crate) fn answered(&self, started: Instant, answered: Instant) -> Instant {
        if self.follower_lag.is_zero() {
            return started;
        }
        self.rounds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answered(self.follower_lag, started, answered)
    }

    /// The session id, as ZooKeeper stores it in `ephemeralOwner`.
    pub(crate) fn id(&self) -> i64 {
        self.client.session_id().0
    }

    /// Whether the session can still be used (not expired, closed or refused).
    pub(crate) fn is_alive(&self) -> bool {
        !self.client.state().is_terminated()
    }
}

/// What every elector of one backend shares.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The connect string, as named in errors.
    pub(crate) address: String,
    /// The parent of every election's znode.
    pub(crate) prefix: String,
    /// The timing as configured (`ttl` is the upper bound of the session timeout).
    pub(crate) timing: LeaseTiming,
    /// Timeout of each request: `min(request_timeout, renew_interval)`.
    pub(crate) request_timeout: Duration,
    connect_timeout: Duration,
    /// The session timeout asked of ZooKeeper.
    requested_session_timeout: Duration,
    /// `zookeeper.follower_lag` in force.
    follower_lag: Duration,
    /// `user:password` for digest authentication (never logged).
    digest: Option<String>,
    current: Mutex<Option<Session>>,
    /// Paths of the candidate znodes this backend holds now (see `orphans`).
    live: std::sync::Mutex<HashSet<String>>,
}

impl Conn {
    pub(crate) fn new(config: &ZooKeeperConfig, timing: LeaseTiming) -> Result<Conn> {
        let requested = config.session_timeout.unwrap_or(timing.ttl);
        if requested > timing.ttl {
            return Err(Error::config(
                "zookeeper.session_timeout",
                format!(
                    "{} exceeds timing.ttl ({}): the session could outlive the holder's \
                     deadline",
                    humantime::format_duration(requested),
                    humantime::format_duration(timing.ttl)
                ),
            ));
        }
        let follower_lag = config.effective_follower_lag();
        check_follower_lag(&timing, follower_lag, "timing.ttl")?;
        Ok(Conn {
            address: config.connect_string.clone(),
            prefix: config.prefix.clone(),
            timing,
            request_timeout: config.request_timeout.min(timing.renew_interval),
            connect_timeout: config.connect_timeout,
            requested_session_timeout: requested,
            follower_lag,
            digest: config.digest()?,
            current: Mutex::new(None),
            live: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Records that a candidacy holds `path` (`true`) or let go of it (`false`).
    pub(crate) fn set_live(&self, path: &str, live: bool) {
        let mut set = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live {
            set.insert(path.to_owned());
        } else {
            set.remove(path);
        }
    }

    /// Whether a candidacy of this backend holds `path`.
    pub(crate) fn is_live(&self, path: &str) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(path)
    }

    /// The ACL of every znode we create: the authenticated user's only when digest
    /// credentials are configured, else open to anyone.
    pub(crate) fn acls(&self) -> Acls<'static> {
        if self.digest.is_some() {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        }
    }

    /// Options to create a persistent directory znode.
    pub(crate) fn dir_options(&self) -> CreateOptions<'static> {
        CreateMode::Persistent.with_acls(self.acls())
    }

    /// The live session, establishing a new one if there is none or it ended (expired,
    /// closed). Fails with `Unavailable` if ZooKeeper cannot be reached within
    /// `connect_timeout`, and with `Config` if the negotiated session timeout breaks the
    /// timing rules.
    pub(crate) async fn session(&self, election: Option<&ElectionName>) -> Result<Session> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref().filter(|s| s.is_alive()) {
            return Ok(s.clone());
        }
        let session = self.connect_session(election).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    async fn connect_session(&self, election: Option<&ElectionName>) -> Result<Session> {
        let established_from = Instant::now();
        let mut connector = Client::connector()
            .with_session_timeout(self.requested_session_timeout)
            .with_fail_eagerly();
        if let Some(digest) = &self.digest {
            connector = connector.with_auth("digest", digest.as_bytes());
        }
        let client = match tokio::time::timeout(
            self.connect_timeout,
            connector.connect(&self.address),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(self.error(election, "establishing a session", e));
            }
            Err(_) => {
                return Err(Error::unavailable(
                    KIND,
                    &self.address,
                    election,
                    format!(
                        "establishing a session: no answer within {} (is ZooKeeper \
                             running there?)",
                        humantime::format_duration(self.connect_timeout)
                    ),
                    None,
                ));
            }
        };
        let negotiated = client.session_timeout();
        if negotiated > self.timing.ttl {
            return Err(Error::config(
                "timing.ttl",
                format!(
                    "ZooKeeper at {} negotiated a session timeout of {}, longer than \
                     timing.ttl ({}): its minSessionTimeout is above the ttl, so a crashed \
                     leader's znode would outlive its deadline by more than the margin; raise \
                     timing.ttl or lower the server's minSessionTimeout",
                    self.address,
                    humantime::format_duration(negotiated),
                    humantime::format_duration(self.timing.ttl)
                ),
            ));
        }
        let timing = LeaseTiming {
            ttl: negotiated,
            ..self.timing
        };
        timing.validate().map_err(|e| {
            Error::config(
                "timing.ttl",
                format!(
                    "ZooKeeper at {} negotiated a session timeout of {} (below the requested \
                     {}, capped by its maxSessionTimeout), and with it: {e}",
                    self.address,
                    humantime::format_duration(negotiated),
                    humantime::format_duration(self.requested_session_timeout)
                ),
            )
        })?;
        check_follower_lag(&timing, self.follower_lag, "negotiated session timeout")?;
        tracing::debug!(
            address = %self.address,
            session = %client.session_id(),
            negotiated = %humantime::format_duration(negotiated),
            "zookeeper session established"
        );
        Ok(Session {
            client,
            timing,
            follower_lag: self.follower_lag,
            rounds: Arc::new(std::sync::Mutex::new(Rounds::new(established_from))),
        })
    }

    /// Awaits one request for at most the request timeout; a timeout is
    /// [`zk::Error::Timeout`].
    pub(crate) async fn timed<T>(&self, fut: impl Future<Output = ZkResult<T>>) -> ZkResult<T> {
        tokio::time::timeout(self.request_timeout, fut)
            .await
            .unwrap_or(Err(zk::Error::Timeout))
    }

    /// Maps a client error to ours, naming the address, the election and what was being
    /// done.
    pub(crate) fn error(
        &self,
        election: Option<&ElectionName>,
        doing: &str,
        e: zk::Error,
    ) -> Error {
        map_error(&self.address, &self.prefix, election, doing, e)
    }
}

/// The follower lag must leave each renewal room to be retried: a renewal's deadline is
/// measured from a round that started up to `follower_lag + renew_interval` earlier, so
/// the hold budget must cover that and one more renewal interval.
fn check_follower_lag(timing: &LeaseTiming, lag: Duration, ttl_is: &str) -> Result<()> {
    if lag.is_zero() || timing.hold_budget() >= lag + timing.renew_interval * 2 {
        return Ok(());
    }
    let h = humantime::format_duration;
    Err(Error::config(
        "zookeeper.follower_lag",
        format!(
            "follower_lag ({}) + 2 × renew_interval ({}) exceeds the {ttl_is} ({}) less \
             clock_drift + kill_grace ({}): every renewal would end its leadership before the \
             next; raise timing.ttl (and the servers' maxSessionTimeout) or lower the lag",
            h(lag),
            h(timing.renew_interval * 2),
            h(timing.ttl),
            h(timing.safety_margin())
        ),
    ))
}

/// Whether `e` means "try again later" rather than "you were refused". The client
/// library reports a broken or silent connection (and socket errors) as `Custom`.
pub(crate) fn is_transient(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::Custom(_)
            | zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::NoHosts
            | zk::Error::SessionExpired
            | zk::Error::SessionMoved
            | zk::Error::ClientClosed
            | zk::Error::Throttled
    )
}

pub(crate) fn map_error(
    address: &str,
    prefix: &str,
    election: Option<&ElectionName>,
    doing: &str,
    e: zk::Error,
) -> Error {
    match e {
        zk::Error::Timeout => Error::unavailable(
            KIND,
            address,
            election,
            format!("{doing}: no answer in time"),
            Some(Box::new(e)),
        ),
        e if is_transient(&e) => Error::unavailable(
            KIND,
            address,
            election,
            format!("{doing}: {e}"),
            Some(Box::new(e)),
        ),
        zk::Error::NoAuth | zk::Error::AuthFailed | zk::Error::InvalidAcl => Error::protocol(
            KIND,
            address,
            election,
            format!(
                "{doing}: ZooKeeper refused us ({e}): check zookeeper.digest_auth and the ACLs \
                 of {prefix}"
            ),
        ),
        e => Error::protocol(KIND, address, election, format!("{doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_anchors_at_the_latest_round_answered_one_follower_lag_before_it() {
        let t0 = Instant::now();
        let mut r = Rounds::new(t0);
        // Nothing older than the session: the anchor is when establishing it started.
        assert_eq!(r.answered(LAG, t0 + ms(100), t0 + ms(120)), t0);
        assert_eq!(r.answered(LAG, t0 + ms(400), t0 + ms(420)), t0);
        // 2.1 s: the round answered at 120 ms is 1.98 s old, not yet a full lag.
        assert_eq!(r.answered(LAG, t0 + ms(2100), t0 + ms(2110)), t0);
        // 2.12 s: it is now, so its start anchors; the one answered at 420 ms is not yet.
        assert_eq!(r.answered(LAG, t0 + ms(2120), t0 + ms(2130)), t0 + ms(100));
        // Much later, every earlier round qualifies: the latest of them anchors.
        assert_eq!(r.answered(LAG, t0 + ms(9000), t0 + ms(9010)), t0 + ms(2120));
    }

    #[tokio::test(start_paused = true)]
    async fn the_anchor_never_goes_back_for_a_round_that_started_earlier() {
        let t0 = Instant::now();
        let mut r = Rounds::new(t0);
        r.answered(LAG, t0 + ms(100), t0 + ms(200));
        assert_eq!(r.answered(LAG, t0 + ms(3000), t0 + ms(3100)), t0 + ms(100));
        // A slow round of another election, started before the last one: what was proven
        // stays proven.
        assert_eq!(r.answered(LAG, t0 + ms(2500), t0 + ms(3200)), t0 + ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pending_rounds_stay_bounded() {
        let t0 = Instant::now();
        let mut r = Rounds::new(t0);
        for i in 0..(MAX_ROUNDS as u64 * 2) {
            r.answered(Duration::from_secs(3600), t0 + ms(i), t0 + ms(i));
        }
        assert!(r.pending.len() <= MAX_ROUNDS);
    }
}
