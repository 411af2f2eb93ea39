//! The connection shared by every elector of one backend: building the client from
//! [`RedisConfig`], a `ConnectionManager` with timeouts, Sentinel lookups, mapping Redis
//! errors to [`election_core::Error`], and the guard that keeps the backend's background
//! tasks running.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::{ElectionName, Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ConnectionInfo, RedisError, RedisResult};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{RedisConfig, parse_host_port, parse_url, redact_url};

/// The backend kind, in messages and `ELECTOR_BACKEND`.
pub(crate) const KIND: &str = "redis";

/// How to find the server.
enum Target {
    /// The URL's host, with custom TLS material if configured.
    Direct(Box<(ConnectionInfo, Option<redis::TlsCertificates>)>),
    /// The master of `master_name`, as the sentinels say.
    Sentinel {
        sentinels: Vec<String>,
        master_name: String,
        node: Box<redis::sentinel::SentinelNodeConnectionInfo>,
    },
}

/// One shared command connection (multiplexed) and what is needed to rebuild it.
pub(crate) struct Conn {
    /// How the server was named in the configuration, without credentials.
    configured: String,
    /// The server in use now, for messages (changes after a Sentinel failover).
    address: Mutex<String>,
    /// The database index in use.
    pub(crate) database: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    target: Target,
    current: Mutex<(Client, ConnectionManager)>,
    /// When Sentinel was last asked for the master, to ask at most once per interval.
    last_lookup: Mutex<Option<Instant>>,
    /// Bumped when the server in use changes, so dedicated connections follow.
    switches: watch::Sender<u64>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

fn display_addr(addr: &ConnectionAddr, database: i64) -> String {
    match addr {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{database}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{database}"),
        ConnectionAddr::Unix(path) => format!("unix://{}", path.display()),
        _ => "redis (unknown address kind)".to_owned(),
    }
}

/// Makes sure rustls has a crypto provider (ring, the one the workspace builds) before a
/// TLS connection; a no-op when one is installed already.
fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Conn {
    /// Resolves the configuration, connects and checks that the server answers and
    /// accepts our credentials.
    pub(crate) async fn connect(config: &RedisConfig) -> Result<Arc<Conn>> {
        let parsed = parse_url(&config.url)?;
        // No `CLIENT SETINFO` on connect: one round trip less, and servers before 7.2
        // answer it with an error anyway (decision record 090).
        let mut settings = parsed.redis_settings().clone().set_skip_set_lib_name();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = config.resolve_password()? {
            settings = settings.set_password(password);
        }
        if let Some(db) = config.database {
            settings = settings.set_db(db);
        }
        let database = settings.db();
        let tls = match parsed.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
                redis::TlsMode::Insecure
            } else {
                redis::TlsMode::Secure
            }),
            _ => None,
        };
        if tls.is_some() {
            ensure_tls_provider();
        }
        let (target, address) = match &config.sentinel {
            None => {
                let address = display_addr(parsed.addr(), database);
                (
                    Target::Direct(Box::new((
                        parsed.clone().set_redis_settings(settings),
                        config.tls_certificates()?,
                    ))),
                    address,
                )
            }
            Some(s) => {
                let mut node = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(settings);
                if let Some(mode) = tls {
                    node = node.set_tls_mode(mode);
                }
                let mut sentinels = Vec::new();
                for a in &s.addresses {
                    let (host, port) = parse_host_port(a).map_err(|reason| {
                        Error::config("redis.sentinel.addresses", format!("{a:?}: {reason}"))
                    })?;
                    sentinels.push(if host.contains(':') {
                        format!("redis://[{host}]:{port}")
                    } else {
                        format!("redis://{host}:{port}")
                    });
                }
                let address = format!(
                    "sentinel master {:?} via {}",
                    s.master_name,
                    s.addresses.join(",")
                );
                (
                    Target::Sentinel {
                        sentinels,
                        master_name: s.master_name.clone(),
                        node: Box::new(node),
                    },
                    address,
                )
            }
        };
        let client = resolve(&target, config.connect_timeout, &address).await?;
        let link_address = in_use(&target, &address, &client, database);
        let manager = new_manager(
            client.clone(),
            config.connect_timeout,
            config.command_timeout,
        );
        let manager =
            match tokio::time::timeout(config.connect_timeout + config.command_timeout, manager)
                .await
            {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Err(map_error(&e, &link_address, None, "connecting")),
                Err(_) => {
                    return Err(Error::unavailable(
                        KIND,
                        link_address,
                        None,
                        format!(
                            "no connection within connect_timeout ({})",
                            humantime::format_duration(config.connect_timeout)
                        ),
                        None,
                    ));
                }
            };
        let conn = Arc::new(Conn {
            configured: address,
            address: Mutex::new(link_address),
            database,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            target,
            current: Mutex::new((client, manager)),
            last_lookup: Mutex::new(None),
            switches: watch::channel(0).0,
        });
        let pong: String = conn
            .run(None, "PING", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await?;
        if pong != "PONG" {
            return Err(Error::protocol(
                KIND,
                conn.address(),
                None,
                format!("PING answered {pong:?}, not PONG: is this a Redis server?"),
            ));
        }
        Ok(conn)
    }

    /// The server in use, for messages (no credentials).
    pub(crate) fn address(&self) -> String {
        self.address
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// With Sentinel: the sentinels' URLs and the master's name.
    pub(crate) fn sentinels(&self) -> Option<(Vec<String>, String)> {
        match &self.target {
            Target::Sentinel {
                sentinels,
                master_name,
                ..
            } => Some((sentinels.clone(), master_name.clone())),
            Target::Direct(_) => None,
        }
    }

    /// A sentinel announced a new master: look it up now, whenever the last lookup was.
    pub(crate) fn master_switched(self: &Arc<Self>) {
        *self.last_lookup.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let conn = self.clone();
        tokio::spawn(async move { conn.look_up_master().await });
    }

    /// Changes whenever the server in use changes (a Sentinel failover).
    pub(crate) fn switches(&self) -> watch::Receiver<u64> {
        self.switches.subscribe()
    }

    /// The current client, for dedicated (pub/sub) connections.
    pub(crate) fn client(&self) -> Client {
        self.lock().0.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Client, ConnectionManager)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one command (or script) with the command timeout, mapping errors.
    pub(crate) async fn run<T, F, Fut>(
        self: &Arc<Self>,
        election: Option<&ElectionName>,
        doing: &str,
        op: F,
    ) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.lock().1.clone();
        match tokio::time::timeout(self.command_timeout, op(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let err = map_error(&e, &self.address(), election, doing);
                if err.is_retryable() {
                    self.server_may_have_moved();
                }
                Err(err)
            }
            Err(_) => {
                self.server_may_have_moved();
                Err(Error::unavailable(
                    KIND,
                    self.address(),
                    election,
                    format!(
                        "no answer to {doing} within command_timeout ({})",
                        humantime::format_duration(self.command_timeout)
                    ),
                    None,
                ))
            }
        }
    }

    /// With Sentinel, asks for the master again in the background (at most once per
    /// connect timeout) and switches to it if it changed. Without Sentinel the connection
    /// manager reconnects by itself.
    fn server_may_have_moved(self: &Arc<Self>) {
        if !matches!(self.target, Target::Sentinel { .. }) {
            return;
        }
        {
            let mut last = self.last_lookup.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < self.connect_timeout) {
                return;
            }
            *last = Some(Instant::now());
        }
        let conn = self.clone();
        tokio::spawn(async move { conn.look_up_master().await });
    }

    async fn look_up_master(&self) {
        match resolve(&self.target, self.connect_timeout, &self.configured).await {
            Ok(client) => {
                let same = client.get_connection_info().addr()
                    == self.lock().0.get_connection_info().addr();
                if same {
                    return;
                }
                let cfg = manager_config(self.connect_timeout, self.command_timeout);
                match ConnectionManager::new_lazy_with_config(client.clone(), cfg) {
                    Ok(manager) => {
                        tracing::info!(
                            backend = KIND,
                            address = %self.configured,
                            master = %display_addr(client.get_connection_info().addr(), self.database),
                            "sentinel reports a new master; switching"
                        );
                        let now = in_use(&self.target, &self.configured, &client, self.database);
                        *self.lock() = (client, manager);
                        *self.address.lock().unwrap_or_else(|p| p.into_inner()) = now;
                        self.switches.send_modify(|n| *n += 1);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot use the new master"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "sentinel lookup failed"),
        }
    }
}

/// The address shown in messages: the configured one, plus the master in use with
/// Sentinel.
fn in_use(target: &Target, configured: &str, client: &Client, database: i64) -> String {
    match target {
        Target::Direct(_) => configured.to_owned(),
        Target::Sentinel { .. } => format!(
            "{configured} (now {})",
            display_addr(client.get_connection_info().addr(), database)
        ),
    }
}

fn manager_config(connect_timeout: Duration, command_timeout: Duration) -> ConnectionManagerConfig {
    // One connection attempt per reconnect: the callers' own timeouts and retries decide
    // how long to keep trying, not a backoff hidden in the client.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(command_timeout))
        .set_number_of_retries(0)
}

async fn new_manager(
    client: Client,
    connect_timeout: Duration,
    command_timeout: Duration,
) -> RedisResult<ConnectionManager> {
    ConnectionManager::new_with_config(client, manager_config(connect_timeout, command_timeout))
        .await
}

/// A client for the server to use now.
async fn resolve(target: &Target, connect_timeout: Duration, address: &str) -> Result<Client> {
    match target {
        Target::Direct(direct) => match &direct.1 {
            None => Client::open(direct.0.clone()),
            Some(certs) => Client::build_with_tls(direct.0.clone(), certs.clone()),
        }
        .map_err(|e| Error::config("redis.url", format!("{address}: {e}"))),
        Target::Sentinel {
            sentinels,
            master_name,
            node,
        } => {
            let mut sentinel = redis::sentinel::Sentinel::build(sentinels.clone())
                .map_err(|e| Error::config("redis.sentinel", format!("{address}: {e}")))?;
            let lookup = sentinel.async_master_for(master_name, Some(node));
            match tokio::time::timeout(connect_timeout * 2, lookup).await {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err(map_error(
                    &e,
                    address,
                    None,
                    "asking sentinel for the master",
                )),
                Err(_) => Err(Error::unavailable(
                    KIND,
                    address,
                    None,
                    "no sentinel named the master in time",
                    None,
                )),
            }
        }
    }
}

/// Error codes of a server that is busy, full, loading, read-only or without its replicas:
/// it may answer differently in a moment, so they are "unavailable, retry", never a
/// protocol violation (which would end a leadership as revoked).
const TRANSIENT_CODES: &[&str] = &[
    "BUSY",
    "OOM",
    "NOREPLICAS",
    "MISCONF",
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
];

/// The server's error code, also when a script relayed it (`"OOM": ...`).
fn server_code(e: &RedisError, text: &str) -> String {
    let raw = e
        .code()
        .map(str::to_owned)
        .or_else(|| {
            // A script's error: the code is the first word of the message, maybe quoted.
            let after = text.rsplit_once("answer: ").map_or(text, |(_, t)| t);
            after.split_whitespace().next().map(str::to_owned)
        })
        .unwrap_or_default();
    raw.trim_matches(|c: char| c == '"' || c == ':' || c == '-')
        .to_owned()
}

/// Maps a client error to the caller-actionable kinds of [`Error`].
pub(crate) fn map_error(
    e: &RedisError,
    address: &str,
    election: Option<&ElectionName>,
    doing: &str,
) -> Error {
    use redis::ErrorKind as K;
    use redis::ServerErrorKind as S;
    let code = e.code().unwrap_or("");
    let text = redact_url(&e.to_string());
    if matches!(e.kind(), K::AuthenticationFailed)
        || matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM")
        || matches!(e.kind(), K::Server(S::NoPerm))
    {
        return Error::protocol(
            KIND,
            address,
            election,
            format!(
                "authentication failed while {doing}: {text}; check redis.username and \
                 redis.password (or redis.password_env) and the user's ACL permissions"
            ),
        );
    }
    if code == "WRONGTYPE" {
        return Error::protocol(
            KIND,
            address,
            election,
            format!(
                "{doing}: {}",
                e.detail()
                    .map_or(text.clone(), |d| format!("WRONGTYPE {d}"))
            ),
        );
    }
    if text.contains("certificate") {
        return Error::protocol(
            KIND,
            address,
            election,
            format!(
                "TLS handshake failed while {doing}: {text}; check redis.tls_ca_file (the CA \
                 that signed the server's certificate) and redis.tls_cert_file/tls_key_file"
            ),
        );
    }
    let server_code = server_code(e, &text);
    if TRANSIENT_CODES.contains(&server_code.as_str())
        || TRANSIENT_CODES
            .iter()
            .any(|c| text.contains(&format!("\"{c}\"")) || text.starts_with(c))
    {
        return Error::unavailable(
            KIND,
            address,
            election,
            format!("{doing} failed: the server is not taking writes now: {text}"),
            Some(Box::new(e.clone())),
        );
    }
    match e.kind() {
        K::InvalidClientConfig => Error::config("redis.url", format!("{address}: {text}")),
        K::Io
        | K::Server(S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown | S::ReadOnly)
        | K::MasterNameNotFoundBySentinel
        | K::NoValidReplicasFoundBySentinel => Error::unavailable(
            KIND,
            address,
            election,
            format!("{doing} failed: {text}"),
            Some(Box::new(e.clone())),
        ),
        _ if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Error::unavailable(
            KIND,
            address,
            election,
            format!("{doing} failed: {text}"),
            Some(Box::new(e.clone())),
        ),
        _ => Error::protocol(
            KIND,
            address,
            election,
            format!("{doing}: unexpected answer: {text}"),
        ),
    }
}

/// Keeps the backend's background tasks (the pub/sub listener, the Sentinel follower)
/// running while any clone is alive: the backend and every election's lease handle hold
/// one, and the tasks stop once the last is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Tasks {
    _stop: Arc<watch::Sender<()>>,
}

impl Tasks {
    /// A new guard, and the receiver the tasks select on: its `changed()` fails once every
    /// clone of the guard is dropped.
    pub(crate) fn new() -> (Tasks, watch::Receiver<()>) {
        let (stop, stopped) = watch::channel(());
        (
            Tasks {
                _stop: Arc::new(stop),
            },
            stopped,
        )
    }
}
