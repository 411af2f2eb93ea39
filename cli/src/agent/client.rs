//! `elector run` (and `status`, `watch`, `resign`) through the local agent: a
//! [`LeaderElector`] over the agent's hold protocol (see [`super`]).
//!
//! The deadline rule is applied here, on the caller's side: every renewal marks the
//! instant it *sent* the request, and the leadership is guaranteed until that instant plus
//! the `lease_left_ms` of the answer. The agent's own deadline already leaves the
//! backend's kill grace before another node can be elected, so the guarded command is dead
//! in time. A dead, stuck or unreachable agent
//! answers nothing, so `lost()` fires at that deadline all the same.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use election_core::{
    Backend, Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, Result,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::api::{Granted, LeaderAnswer, RenewAnswer, Status};
use crate::backend::{BackendConfig, Kind};
use crate::config::Loaded;
use crate::exit::{self, Failure};

/// How long one campaign request asks the agent to wait before answering "not yet". A
/// caller that gives up (cron `--wait` running out, a kill) leaves a candidacy behind for
/// at most this long.
const CAMPAIGN_ROUND: Duration = Duration::from_secs(3);
/// Bound on any request that is not a long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A tiny HTTP/1.1 client for the agent on loopback.
#[derive(Clone, Debug)]
struct Client {
    addr: SocketAddr,
    kind: &'static str,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Client {
    fn unavailable(
        &self,
        election: Option<&ElectionName>,
        detail: impl std::fmt::Display,
    ) -> Error {
        Error::unavailable(
            self.kind,
            format!("local agent http://{}", self.addr),
            election,
            format!(
                "{detail} (is `elector agent` running? agent.listen = {})",
                self.addr
            ),
            None,
        )
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        election: Option<&ElectionName>,
        timeout: Duration,
    ) -> Result<Answer> {
        match tokio::time::timeout(timeout, self.exchange(method, path)).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(self.unavailable(election, e)),
            Err(_) => Err(self.unavailable(
                election,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )),
        }
    }

    async fn exchange(&self, method: &str, path: &str) -> std::io::Result<Answer> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.addr
        );
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
            .ok_or_else(|| std::io::Error::other("malformed HTTP answer from the agent"))
    }

    fn protocol(&self, election: Option<&ElectionName>, a: &Answer) -> Error {
        Error::protocol(
            self.kind,
            format!("local agent http://{}", self.addr),
            election,
            format!(
                "HTTP {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body).trim()
            ),
        )
    }
}

/// Parses a `Connection: close` HTTP/1.1 answer, plain or chunked.
fn parse_response(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).ok()?.trim(), 16).ok()?;
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Answer { status, body })
}

/// The backend `elector run`, `status` and `watch` use for `kind`: the local agent for a
/// backend hosted by it (its settings are the agent's business), the backend itself
/// otherwise, opened from `config` if the caller has loaded it already.
pub(crate) async fn open_for_caller(
    kind: Kind,
    loaded: &Loaded,
    config: Option<&BackendConfig>,
) -> Result<Arc<dyn Backend>, Failure> {
    if kind.is_hosted_by_agent() {
        return Ok(Arc::new(AgentBackend::hosting(kind, loaded)));
    }
    match config {
        Some(config) => config.open(loaded).await,
        None => BackendConfig::load(loaded)?.open(loaded).await,
    }
}

/// The local agent, as a [`Backend`].
#[derive(Clone, Debug)]
pub(crate) struct AgentBackend {
    client: Client,
    timing: LeaseTiming,
    margin: Duration,
}

impl AgentBackend {
    /// The agent at `addr`, hosting a `kind` backend; `timing` gives the renewal pace.
    ///
    /// No margin is subtracted here: the agent's own leadership deadline already leaves the
    /// backend's kill grace (`timing.kill_grace`, or `backend.raft.kill_grace` / `backend.bully.kill_grace`), and
    /// `elector run` refuses a longer grace.
    pub(crate) fn new(addr: SocketAddr, kind: &'static str, timing: LeaseTiming) -> Self {
        AgentBackend {
            client: Client { addr, kind },
            timing,
            margin: Duration::ZERO,
        }
    }

    /// The agent at `agent.listen`, hosting a `kind` backend.
    pub(crate) fn hosting(kind: Kind, loaded: &Loaded) -> Self {
        Self::new(
            loaded.settings.agent.listen,
            kind.as_str(),
            loaded.settings.timing,
        )
    }
}

impl Backend for AgentBackend {
    fn kind(&self) -> &'static str {
        self.client.kind
    }

    fn election(&self, name: &ElectionName, _me: Candidate) -> Result<Arc<dyn LeaderElector>> {
        Ok(Arc::new(AgentElector {
            backend: self.clone(),
            name: name.clone(),
        }))
    }
}

struct AgentElector {
    backend: AgentBackend,
    name: ElectionName,
}

impl AgentElector {
    async fn attempt(&self, wait: Duration) -> Result<Option<Leadership>> {
        let client = &self.backend.client;
        let path = format!(
            "/v1/elections/{}/campaign?wait_ms={}",
            self.name,
            wait.as_millis()
        );
        let a = client
            .request("POST", &path, Some(&self.name), wait + REQUEST_TIMEOUT)
            .await?;
        match a.status {
            200 => {
                let mut g: Granted = serde_json::from_slice(&a.body)
                    .map_err(|_| client.protocol(Some(&self.name), &a))?;
                // The campaign was a long poll: its start says nothing about when the lease
                // was measured. Renew once, from now, to get a deadline that is safe.
                let control = AgentControl {
                    client: client.clone(),
                    hold: g.hold,
                };
                let started = Instant::now();
                match control.renew_once(None).await {
                    Ok(Some(left)) => {
                        g.lease_left_ms = left;
                        Ok(Some(self.hold(g, started)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => {
                        let _ = control.resign().await;
                        Err(e)
                    }
                }
            }
            409 => Ok(None),
            503 => {
                Err(client.unavailable(Some(&self.name), String::from_utf8_lossy(&a.body).trim()))
            }
            _ => Err(client.protocol(Some(&self.name), &a)),
        }
    }

    fn hold(&self, g: Granted, started: Instant) -> Leadership {
        let margin = self.backend.margin;
        let deadline = (started + Duration::from_millis(g.lease_left_ms))
            .checked_sub(margin)
            .unwrap_or(started);
        let control = Arc::new(AgentControl {
            client: self.backend.client.clone(),
            hold: g.hold,
        });
        tracing::debug!(
            hold = g.hold,
            left_ms = g.lease_left_ms,
            "granted through the agent"
        );
        let (keeper, leadership) = LeaseKeeper::grant(g.info, deadline, control.clone());
        tokio::spawn(renew(
            control,
            keeper,
            self.backend.timing,
            margin,
            g.lease_left_ms,
        ));
        leadership
    }
}

#[async_trait]
impl LeaderElector for AgentElector {
    async fn campaign(&self) -> Result<Leadership> {
        loop {
            if let Some(l) = self.attempt(CAMPAIGN_ROUND).await? {
                return Ok(l);
            }
        }
    }

    async fn try_campaign(&self) -> Result<Option<Leadership>> {
        self.attempt(Duration::ZERO).await
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let client = &self.backend.client;
        let a = client
            .request(
                "GET",
                &format!("/v1/elections/{}", self.name),
                Some(&self.name),
                REQUEST_TIMEOUT,
            )
            .await?;
        if a.status != 200 {
            return Err(if a.status == 503 {
                client.unavailable(Some(&self.name), String::from_utf8_lossy(&a.body).trim())
            } else {
                client.protocol(Some(&self.name), &a)
            });
        }
        serde_json::from_slice::<LeaderAnswer>(&a.body)
            .map(|l| l.leader)
            .map_err(|_| client.protocol(Some(&self.name), &a))
    }

    fn observe(&self) -> LeaderStream {
        // The agent follows the leader itself; poll it and report changes.
        let this = AgentElector {
            backend: self.backend.clone(),
            name: self.name.clone(),
        };
        let interval = self.backend.timing.retry_interval;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            loop {
                if let Ok(leader) = this.leader().await {
                    tx.send_if_modified(|cur| {
                        let changed = *cur != leader;
                        *cur = leader;
                        changed
                    });
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        });
        LeaderStream::from_watch(rx)
    }

    fn name(&self) -> &ElectionName {
        &self.name
    }
}

struct AgentControl {
    client: Client,
    hold: u64,
}

impl AgentControl {
    /// One renewal: `Some(lease left in ms)`, or `None` once the hold has ended.
    async fn renew_once(&self, rtt: Option<Duration>) -> Result<Option<u64>> {
        let path = match rtt {
            Some(r) => format!("/v1/holds/{}/renew?rtt_us={}", self.hold, r.as_micros()),
            None => format!("/v1/holds/{}/renew", self.hold),
        };
        let a = self
            .client
            .request("POST", &path, None, REQUEST_TIMEOUT)
            .await?;
        match a.status {
            200 => serde_json::from_slice::<RenewAnswer>(&a.body)
                .map(|r| Some(r.lease_left_ms))
                .map_err(|_| self.client.protocol(None, &a)),
            404 | 410 => Ok(None),
            _ => Err(self.client.protocol(None, &a)),
        }
    }
}

#[async_trait]
impl LeadershipControl for AgentControl {
    async fn resign(&self) -> Result<()> {
        let a = self
            .client
            .request(
                "DELETE",
                &format!("/v1/holds/{}", self.hold),
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        match a.status {
            200 | 404 => Ok(()),
            _ => Err(self.client.protocol(None, &a)),
        }
    }
}

/// Renews a hold until it ends; the deadline is always measured from the request's start.
async fn renew(
    control: Arc<AgentControl>,
    keeper: LeaseKeeper,
    timing: LeaseTiming,
    margin: Duration,
    first_left_ms: u64,
) {
    let watch = keeper.watch();
    let pace = |left_ms: u64| {
        let budget = Duration::from_millis(left_ms).saturating_sub(margin) / 3;
        timing
            .renew_interval
            .min(budget)
            .max(Duration::from_millis(10))
    };
    let mut wait = pace(first_left_ms);
    let mut rtt: Option<Duration> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // Lapsed or revoked: stop renewing, and nothing more (the handover rule). A
            // DELETE sent now would wait in the socket of a stopped agent and let it hand
            // over while our command is still in its kill grace; the holder's drop, once
            // the command is gone, resigns the hold.
            _ = watch.lost() => return,
        }
        let started = Instant::now();
        let path = match rtt {
            Some(r) => format!("/v1/holds/{}/renew?rtt_us={}", control.hold, r.as_micros()),
            None => format!("/v1/holds/{}/renew", control.hold),
        };
        let budget = keeper
            .deadline()
            .saturating_duration_since(started)
            .max(Duration::from_millis(1));
        match control.client.request("POST", &path, None, budget).await {
            Ok(a) if a.status == 200 => {
                rtt = Some(started.elapsed());
                let Ok(r) = serde_json::from_slice::<RenewAnswer>(&a.body) else {
                    wait = timing.retry_interval;
                    continue;
                };
                let deadline = (started + Duration::from_millis(r.lease_left_ms))
                    .checked_sub(margin)
                    .unwrap_or(started);
                tracing::debug!(
                    hold = control.hold,
                    left_ms = r.lease_left_ms,
                    rtt_ms = started.elapsed().as_millis() as u64,
                    "renewed through the agent"
                );
                if !keeper.extend_to(deadline) {
                    // The deadline passed while we waited: never revive it, and leave the
                    // hand-over to the holder's drop (as above).
                    return;
                }
                wait = pace(r.lease_left_ms);
            }
            Ok(a) if a.status == 410 || a.status == 404 => {
                keeper.end(LossReason::Revoked);
                return;
            }
            other => {
                tracing::debug!(hold = control.hold, answer = ?other.as_ref().map(|a| a.status), "renewal through the agent failed");
                wait = timing.retry_interval.min(wait);
            }
        }
    }
}

/// `GET /v1/status`.
pub(crate) async fn status(addr: SocketAddr) -> Result<Status, Failure> {
    let client = Client {
        addr,
        kind: "agent",
    };
    let a = client
        .request("GET", "/v1/status", None, REQUEST_TIMEOUT)
        .await?;
    if a.status != 200 {
        return Err(client.protocol(None, &a).into());
    }
    serde_json::from_slice(&a.body).map_err(|_| client.protocol(None, &a).into())
}

/// `POST /v1/elections/{name}/resign`: whether the agent held it.
pub(crate) async fn resign(addr: SocketAddr, name: &ElectionName) -> Result<bool, Failure> {
    let client = Client {
        addr,
        kind: "agent",
    };
    let a = client
        .request(
            "POST",
            &format!("/v1/elections/{name}/resign"),
            Some(name),
            REQUEST_TIMEOUT,
        )
        .await?;
    match a.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(Failure::new(
            exit::PROTOCOL,
            client.protocol(Some(name), &a).into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_answers_parse_and_garbage_is_refused() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let a = parse_response(plain).unwrap();
        assert_eq!((a.status, &a.body[..]), (200, &b"{}"[..]));
        let chunked =
            b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let a = parse_response(chunked).unwrap();
        assert_eq!((a.status, &a.body[..]), (410, &b"abcde"[..]));
        for bad in [
            &b""[..],
            b"garbage",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
        ] {
            assert!(
                parse_response(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
