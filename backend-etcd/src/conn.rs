//! The connection shared by every elector of one backend: the client, the timings, and the
//! one place where requests get their timeout and errors get their context.

use std::future::Future;
use std::time::Duration;

use election_core::{ElectionName, Error, LeaseTiming, Result};
use etcd_client::Client;
use tokio::time::Instant;

/// The backend kind, as reported by `Backend::kind` and named in errors.
pub(crate) const KIND: &str = "etcd";

/// gRPC status codes (the client library's `tonic::Code` as numbers).
mod code {
    pub(super) const UNKNOWN: i32 = 2;
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const NOT_FOUND: i32 = 5;
    pub(super) const ALREADY_EXISTS: i32 = 6;
    pub(super) const PERMISSION_DENIED: i32 = 7;
    pub(super) const FAILED_PRECONDITION: i32 = 9;
    pub(super) const OUT_OF_RANGE: i32 = 11;
    pub(super) const UNIMPLEMENTED: i32 = 12;
    pub(super) const UNAVAILABLE: i32 = 14;
    pub(super) const UNAUTHENTICATED: i32 = 16;
}

/// One connection to etcd and everything a request needs to know.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) timing: LeaseTiming,
    /// The lease TTL asked of etcd, in whole seconds.
    pub(crate) ttl_secs: i64,
    /// Timeout of every request: `min(request_timeout, renew_interval)`.
    pub(crate) request_timeout: Duration,
    /// The endpoints, for messages.
    pub(crate) address: String,
    /// The key prefix.
    pub(crate) prefix: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Runs one request with the request timeout; errors name the operation, the endpoints
    /// and the election. `request` makes the request on the client it is given; it is
    /// made again when an attempt could not even connect (a dead member among several
    /// endpoints: the request never left, so repeating it is safe).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        election: Option<&ElectionName>,
        what: &str,
        request: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_within(self.request_timeout, election, what, request)
            .await
    }

    /// [`call`](Self::call) for a request that is safe to apply twice: it is sent again
    /// also after an ambiguous failure (the connection reset after the request left, so it
    /// may have been applied), not only after a refused connection. The caller must cope
    /// with finding its own earlier effect (a create-if-absent txn that answers "not
    /// applied" because its first send was).
    pub(crate) async fn call_resending<T, F, Fut>(
        &self,
        election: Option<&ElectionName>,
        what: &str,
        request: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_retrying(
            self.request_timeout,
            is_unavailable,
            election,
            what,
            request,
        )
        .await
    }

    /// [`call`](Self::call) with another timeout.
    pub(crate) async fn call_within<T, F, Fut>(
        &self,
        timeout: Duration,
        election: Option<&ElectionName>,
        what: &str,
        request: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_retrying(timeout, is_connect_error, election, what, request)
            .await
    }

    /// Sends `request` until it answers, fails in a way `retry` does not accept, or
    /// `timeout` passes.
    async fn call_retrying<T, F, Fut>(
        &self,
        timeout: Duration,
        retry: fn(&etcd_client::Error) -> bool,
        election: Option<&ElectionName>,
        what: &str,
        mut request: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        /// Pause before trying another endpoint after a refused connection.
        const RECONNECT_PAUSE: Duration = Duration::from_millis(5);
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            match tokio::time::timeout_at(deadline, request(self.client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if retry(&e) && Instant::now() + RECONNECT_PAUSE < deadline => {
                    last = Some(e);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
                Ok(Err(e)) => return Err(self.error(election, what, e)),
                Err(_) => {
                    return Err(match last {
                        Some(e) => self.error(election, what, e),
                        None => self.timed_out_after(timeout, election, what),
                    });
                }
            }
        }
    }

    /// The error for a request that did not answer within `timeout`.
    fn timed_out_after(
        &self,
        timeout: Duration,
        election: Option<&ElectionName>,
        what: &str,
    ) -> Error {
        Error::unavailable(
            KIND,
            &self.address,
            election,
            format!(
                "{what}: no answer within {}",
                humantime::format_duration(timeout)
            ),
            None,
        )
    }

    /// Maps a client error to the kind a caller can act on.
    pub(crate) fn error(
        &self,
        election: Option<&ElectionName>,
        what: &str,
        e: etcd_client::Error,
    ) -> Error {
        map_error(&self.address, &self.prefix, election, what, e)
    }

    /// Whether `e` is etcd saying the lease does not exist (any more).
    pub(crate) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
        match e {
            etcd_client::Error::GRpcStatus(s) => {
                i32::from(s.code()) == code::NOT_FOUND || s.message().contains("lease not found")
            }
            etcd_client::Error::LeaseKeepAliveError(m) => m.contains("lease not found"),
            _ => false,
        }
    }
}

/// Maps a client error to the kind a caller can act on: refused credentials and
/// malformed requests are `Protocol`, bad arguments `Config`, everything else (transport,
/// timeouts, no leader) `Unavailable`.
pub(crate) fn map_error(
    address: &str,
    prefix: &str,
    election: Option<&ElectionName>,
    what: &str,
    e: etcd_client::Error,
) -> Error {
    use etcd_client::Error as E;
    let refused = |message: &str| {
        Error::protocol(
            KIND,
            address,
            election,
            format!(
                "{what}: refused: {message} (check etcd.username and the password, and that \
                 the user's role may read and write keys under {prefix:?})"
            ),
        )
    };
    match &e {
        E::GRpcStatus(status) => match i32::from(status.code()) {
            code::UNAUTHENTICATED | code::PERMISSION_DENIED => refused(status.message()),
            // etcd 3.4 answers a wrong password with InvalidArgument.
            _ if status.message().contains("authentication failed") => refused(status.message()),
            code::INVALID_ARGUMENT
            | code::FAILED_PRECONDITION
            | code::OUT_OF_RANGE
            | code::UNIMPLEMENTED
            | code::ALREADY_EXISTS
            | code::NOT_FOUND => Error::protocol(
                KIND,
                address,
                election,
                format!("{what}: {}", status.message()),
            ),
            _ => Error::unavailable(
                KIND,
                address,
                election,
                format!("{what}: {}", status.message()),
                Some(Box::new(e)),
            ),
        },
        E::InvalidArgs(msg) => Error::config("etcd", format!("{what}: {msg}")),
        E::InvalidUri(u) => Error::config("etcd.endpoints", format!("{u}")),
        _ => Error::unavailable(
            KIND,
            address,
            election,
            format!("{what}: {e}"),
            Some(Box::new(e)),
        ),
    }
}

/// Whether the request failed before it was sent: the chosen endpoint refused or could not
/// be connected to.
fn is_connect_error(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            i32::from(s.code()) == code::UNAVAILABLE && s.message().contains("connect")
        }
        _ => false,
    }
}

/// Whether the request failed for want of a server, before or after it was sent: a refused
/// connection, gRPC `UNAVAILABLE`, or a connection that broke while the request was in
/// flight (tonic reports that as `UNKNOWN` "transport error" caused by an I/O error, such
/// as a broken pipe after a reset).
fn is_unavailable(e: &etcd_client::Error) -> bool {
    let etcd_client::Error::GRpcStatus(s) = e else {
        return is_connect_error(e);
    };
    match i32::from(s.code()) {
        code::UNAVAILABLE => true,
        code::UNKNOWN => caused_by_io(s),
        _ => false,
    }
}

/// Whether an I/O error is among the causes of `e`.
fn caused_by_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}
