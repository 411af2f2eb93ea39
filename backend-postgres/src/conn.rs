//! The backend's command connection: connected on first need and again after any failure
//! or timeout, every statement prepared once per connection, every call cut off at the
//! statement timeout; TLS through rustls; and the mapping of server errors to
//! election-core's kinds.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use election_core::{ElectionName, Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{PostgresConfig, quote_literal};
use crate::sql;

/// The backend kind, as in error messages and `ELECTOR_BACKEND`.
pub(crate) const KIND: &str = "postgres";

/// The statements of one connection, prepared when it opened.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) acquire: Statement,
    pub(crate) renew: Statement,
    pub(crate) release: Statement,
    pub(crate) read: Statement,
}

/// One open connection and its prepared statements.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) client: Client,
    pub(crate) statements: Statements,
    driver: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Closes the socket now, even if the server never answers again.
        self.driver.abort();
    }
}

/// How to open connections, and the command connection.
pub(crate) struct Conn {
    pub(crate) pg: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    pub(crate) address: String,
    pub(crate) table: String,
    pub(crate) channel: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    live: tokio::sync::Mutex<Option<Arc<Live>>>,
    /// Whether this process created the table (for the log, and the tests).
    created: Mutex<bool>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("address", &self.address)
            .field("table", &self.table)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) fn new(config: &PostgresConfig) -> Result<Conn> {
        let pg = config.pg_config()?;
        let tls = match pg.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => None,
            _ => Some(tls_connector(config)?),
        };
        Ok(Conn {
            address: address(&pg),
            pg,
            tls,
            table: config.quoted_table(),
            channel: config.channel(),
            connect_timeout: config.connect_timeout,
            statement_timeout: config.statement_timeout,
            live: tokio::sync::Mutex::new(None),
            created: Mutex::new(false),
        })
    }

    /// `host:port/database as user`, as named in errors.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Opens a connection (TCP, TLS, authentication) within `connect_timeout` and spawns
    /// its driver, which ends when the connection does; `on_message` gets the server's
    /// asynchronous messages (notifications).
    ///
    /// The LISTEN connection (`listen`) adds ` listen` to the application name, so that an
    /// operator can tell the two apart in `pg_stat_activity`.
    pub(crate) async fn open(
        &self,
        listen: bool,
        mut on_message: impl FnMut(tokio_postgres::AsyncMessage) + Send + 'static,
    ) -> Result<(Client, JoinHandle<()>)> {
        let mut pg = self.pg.clone();
        if listen {
            let name = format!("{} listen", pg.get_application_name().unwrap_or("elector"));
            pg.application_name(name);
        }
        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    let (client, mut connection) = pg.connect(tls.clone()).await?;
                    let driver = tokio::spawn(async move {
                        let mut messages =
                            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                        while let Some(Ok(m)) = futures_util::StreamExt::next(&mut messages).await {
                            on_message(m);
                        }
                    });
                    Ok::<_, tokio_postgres::Error>((client, driver))
                }
                None => {
                    let (client, mut connection) = pg.connect(tokio_postgres::NoTls).await?;
                    let driver = tokio::spawn(async move {
                        let mut messages =
                            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                        while let Some(Ok(m)) = futures_util::StreamExt::next(&mut messages).await {
                            on_message(m);
                        }
                    });
                    Ok((client, driver))
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(self.map_error(None, "connecting", e)),
            Err(_) => Err(Error::unavailable(
                KIND,
                &self.address,
                None,
                format!(
                    "connecting: no answer within {} (is PostgreSQL running there, and \
                     does sslmode match the server's ssl setting?)",
                    humantime::format_duration(self.connect_timeout)
                ),
                None,
            )),
        }
    }

    /// Opens the command connection: checks that the server accepts writes, creates the
    /// lease table if it is missing, and prepares the statements.
    async fn connect(&self) -> Result<Arc<Live>> {
        let (client, driver) = self.open(false, |_| {}).await?;
        let setup = async {
            let row = client
                .query_one(
                    "SELECT pg_is_in_recovery(), to_regclass($1::text) IS NULL",
                    &[&self.table],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>((row.get::<_, bool>(0), row.get::<_, bool>(1)))
        };
        let (standby, missing) = self
            .within(self.connect_timeout, None, "checking the server", setup)
            .await
            .inspect_err(|_| driver.abort())?;
        if standby {
            driver.abort();
            return Err(Error::unavailable(
                KIND,
                &self.address,
                None,
                "the server is a read-only standby (in recovery): point postgres.url at the \
                 primary, or list every host with target_session_attrs=read-write",
                None,
            ));
        }
        if missing {
            let create = sql::create_table(&self.table);
            // Two clients that create the table at once race inside PostgreSQL (`IF NOT
            // EXISTS` checks before it inserts into the catalogs): the loser gets a unique
            // violation on `pg_type` or "relation already exists", and the table is there.
            let creating = async {
                match client.batch_execute(&create).await {
                    Err(e)
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                            || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
                    {
                        Ok(())
                    }
                    other => other,
                }
            };
            self.within(
                self.connect_timeout,
                None,
                "creating the lease table",
                creating,
            )
            .await
            .map_err(|e| {
                driver.abort();
                self.hint_privileges(e, "create")
            })?;
            *self.created.lock().unwrap_or_else(|p| p.into_inner()) = true;
            tracing::info!(address = %self.address, table = %self.table, "created the lease table");
        }
        let channel = quote_literal(&self.channel);
        let prepare = async {
            let (acquire, renew, release, read) = futures_util::future::try_join4(
                client.prepare(&sql::acquire(&self.table, &channel)),
                client.prepare(&sql::renew(&self.table)),
                client.prepare(&sql::release(&self.table, &channel)),
                client.prepare(&sql::read(&self.table)),
            )
            .await?;
            Ok(Statements {
                acquire,
                renew,
                release,
                read,
            })
        };
        let statements = self
            .within(self.connect_timeout, None, "preparing statements", prepare)
            .await
            .inspect_err(|_| driver.abort())?;
        Ok(Arc::new(Live {
            client,
            statements,
            driver,
        }))
    }

    /// The command connection, opened (again) if it is not open.
    pub(crate) async fn live(&self) -> Result<Arc<Live>> {
        let mut slot = self.live.lock().await;
        if let Some(live) = slot.as_ref() {
            if !live.client.is_closed() {
                return Ok(live.clone());
            }
        }
        *slot = None;
        let live = self.connect().await?;
        *slot = Some(live.clone());
        Ok(live)
    }

    /// Drops the command connection if it is still `live` (after a timeout: a statement
    /// may be stuck in it, and every later one would queue behind it).
    async fn discard(&self, live: &Arc<Live>) {
        let mut slot = self.live.lock().await;
        if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, live)) {
            *slot = None;
        }
    }

    /// Runs `f` on the command connection, cut off at the statement timeout. A timeout or
    /// a broken connection replaces the connection for the next call.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        election: Option<&ElectionName>,
        what: &str,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Arc<Live>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        let live = self.live().await.map_err(|e| with_election(e, election))?;
        // A little above the server's own limit, so its answer (an error) can arrive.
        let limit = self.statement_timeout + self.statement_timeout / 4;
        let outcome = tokio::time::timeout(limit, f(live.clone())).await;
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if live.client.is_closed() || e.as_db_error().is_none() {
                    self.discard(&live).await;
                }
                Err(self.map_error(election, what, e))
            }
            Err(_) => {
                self.discard(&live).await;
                Err(Error::unavailable(
                    KIND,
                    &self.address,
                    election,
                    format!(
                        "{what}: no answer within {}",
                        humantime::format_duration(limit)
                    ),
                    None,
                ))
            }
        }
    }

    /// `fut` cut off at `limit`, its error mapped.
    pub(crate) async fn within<T>(
        &self,
        limit: Duration,
        election: Option<&ElectionName>,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.map_error(election, what, e)),
            Err(_) => Err(Error::unavailable(
                KIND,
                &self.address,
                election,
                format!(
                    "{what}: no answer within {}",
                    humantime::format_duration(limit)
                ),
                None,
            )),
        }
    }

    /// A refused privilege, with what to grant.
    pub(crate) fn hint_privileges(&self, e: Error, action: &str) -> Error {
        match e {
            Error::Protocol {
                backend,
                address,
                election,
                detail,
            } if detail.contains("permission denied") => Error::Protocol {
                backend,
                address,
                election,
                detail: format!(
                    "{detail}: the user may not {action} the lease table {}; have an owner \
                     create it (the SQL is in the election-postgres docs) and GRANT SELECT, \
                     INSERT, UPDATE ON it to this user, or grant CREATE on its schema",
                    self.table
                ),
            },
            other => other,
        }
    }

    /// A client library error as election-core's: retryable (`Unavailable`) when the server
    /// is unreachable, slow, starting, shutting down, read-only or short of resources;
    /// `Protocol` when it refuses us (credentials, privileges, a missing database) or
    /// answers something unexpected.
    pub(crate) fn map_error(
        &self,
        election: Option<&ElectionName>,
        what: &str,
        e: tokio_postgres::Error,
    ) -> Error {
        map_error(&self.address, election, what, e)
    }
}

/// See [`Conn::map_error`].
pub(crate) fn map_error(
    address: &str,
    election: Option<&ElectionName>,
    what: &str,
    e: tokio_postgres::Error,
) -> Error {
    let Some(db) = e.as_db_error() else {
        return Error::unavailable(
            KIND,
            address,
            election,
            format!("{what}: {}", full_text(&e)),
            Some(Box::new(e)),
        );
    };
    let code = db.code();
    let detail = format!("{what}: {} (SQLSTATE {})", db.message(), code.code());
    let retryable = code.code().starts_with("08") // connection exception
        || code.code().starts_with("53") // insufficient resources
        || code.code().starts_with("57") // operator intervention: shutdown, cancel, starting up
        || code.code().starts_with("40") // serialization failure, deadlock
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::LOCK_NOT_AVAILABLE;
    if retryable {
        let hint = if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            " (the server is a read-only standby: point postgres.url at the primary)"
        } else if *code == SqlState::QUERY_CANCELED {
            " (postgres.statement_timeout passed: the server is slow or a row lock is held)"
        } else {
            ""
        };
        Error::unavailable(
            KIND,
            address,
            election,
            format!("{detail}{hint}"),
            Some(Box::new(e)),
        )
    } else {
        let hint = if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            ": check the user and password (postgres.url, postgres.password, \
             postgres.password_env, postgres.password_file or PGPASSWORD) and pg_hba.conf"
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            ": the database does not exist; create it or fix the database in postgres.url"
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            ": permission denied"
        } else {
            ""
        };
        Error::protocol(KIND, address, election, format!("{detail}{hint}"))
    }
}

/// An error's text with its sources (tokio-postgres keeps the cause, such as "connection
/// refused", in the source).
fn full_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if s_text.contains(&text) {
            // The source repeats this text with more detail.
            text = s_text;
        } else if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn with_election(e: Error, election: Option<&ElectionName>) -> Error {
    match e {
        Error::Unavailable {
            backend,
            address,
            election: None,
            detail,
            source,
        } => Error::Unavailable {
            backend,
            address,
            election: election.cloned(),
            detail,
            source,
        },
        Error::Protocol {
            backend,
            address,
            election: None,
            detail,
        } => Error::Protocol {
            backend,
            address,
            election: election.cloned(),
            detail,
        },
        other => other,
    }
}

/// `host:port[,host:port]/database as user`.
fn address(pg: &tokio_postgres::Config) -> String {
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    format!(
        "{}/{} as {}",
        hosts.join(","),
        pg.get_dbname().unwrap_or(""),
        pg.get_user().unwrap_or("")
    )
}

/// The rustls connector: the configured CA (or the system's roots), and a client
/// certificate if one is configured.
fn tls_connector(config: &PostgresConfig) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &config.tls_ca_file {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| {
                Error::config(
                    "postgres.tls_ca_file",
                    format!("cannot read PEM certificates from {}: {e}", ca.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(Error::config(
                "postgres.tls_ca_file",
                format!("{} holds no PEM certificate", ca.display()),
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::config("postgres.tls_ca_file", format!("{}: {e}", ca.display()))
            })?;
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("postgres.url", format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let client = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::config(
                        "postgres.tls_cert_file",
                        format!("cannot read {}: {e}", cert.display()),
                    )
                })?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::config(
                    "postgres.tls_key_file",
                    format!("cannot read a PEM private key from {}: {e}", key.display()),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| Error::config("postgres.tls_cert_file", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(client))
}
