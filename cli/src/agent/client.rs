//! `elector run` (and `status`, `watch`, `resign`) through the local agent, over its Unix
//! socket with hyper: a [`LeaderElector`] over the agent's hold protocol (see
//! [`super::api::HOLD_PROTOCOL`]).
//!
//! The deadline rule is applied here, on the caller's side: the agent names every deadline
//! as an instant on the host's boot clock, the same clock the guard keeps, so a line read
//! late (by a caller that was stopped) still means the same instant, and a dead, stuck or
//! unreachable agent answers nothing, so `lost()` fires at the last deadline all the same.
//! The agent's own deadline already leaves the backend's kill grace before another node
//! can be elected, so the guarded command is dead in time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use election_core::{
    Backend, Candidate, ElectionName, Error, LeaderElector, LeaderInfo, LeaderStream, Leadership,
    LeadershipControl, LeaseKeeper, LeaseTiming, LossReason, Result,
};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::api::{Granted, HOLD_PROTOCOL, HoldEnd, HoldUpdate, LeaderAnswer, Status};
use super::deadline_page::PageReader;
use super::session::lines;
use crate::backend::{BackendConfig, Kind};
use crate::clock;
use crate::config::Loaded;
use crate::exit::{self, Failure};

/// How long one campaign request asks the agent to wait before answering "not yet". A
/// caller that gives up (cron `--wait` running out, a kill) leaves a candidacy behind for
/// at most this long.
const CAMPAIGN_ROUND: Duration = Duration::from_secs(3);
/// Bound on any request that is not a long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The backend `elector run`, `status` and `watch` use for `kind`: the local agent for a
/// backend hosted by it (its settings are the agent's business), the backend itself
/// otherwise, opened from `config` if the caller has loaded it already.
pub(crate) async fn open_for_caller(
    kind: Kind,
    loaded: &Loaded,
    config: Option<&BackendConfig>,
) -> std::result::Result<Arc<dyn Backend>, Failure> {
    if kind.is_hosted_by_agent() {
        return Ok(Arc::new(AgentBackend::hosting(kind, loaded)));
    }
    match config {
        Some(config) => config.open(loaded).await,
        None => BackendConfig::load(loaded)?.open(loaded).await,
    }
}

/// An HTTP/1.1 client of the agent's socket.
#[derive(Clone, Debug)]
struct Client {
    socket: PathBuf,
    kind: &'static str,
}

struct Answer {
    status: u16,
    body: Bytes,
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

impl Client {
    fn address(&self) -> String {
        format!("local agent unix:{}", self.socket.display())
    }

    fn unavailable(
        &self,
        election: Option<&ElectionName>,
        detail: impl std::fmt::Display,
    ) -> Error {
        Error::unavailable(
            self.kind,
            self.address(),
            election,
            format!(
                "{detail} (is `elector agent` running? agent.socket = {})",
                self.socket.display()
            ),
            None,
        )
    }

    fn protocol(&self, election: Option<&ElectionName>, detail: impl std::fmt::Display) -> Error {
        Error::protocol(self.kind, self.address(), election, detail)
    }

    fn answer_error(&self, election: Option<&ElectionName>, a: &Answer) -> Error {
        let text = String::from_utf8_lossy(&a.body);
        if a.status == 503 {
            self.unavailable(election, text.trim())
        } else {
            self.protocol(election, format!("HTTP {}: {}", a.status, text.trim()))
        }
    }

    /// One request on a connection of its own.
    async fn send(
        &self,
        method: &str,
        path: &str,
        upgrade: bool,
    ) -> std::result::Result<hyper::Response<hyper::body::Incoming>, String> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "agent");
        if upgrade {
            request = request
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, HOLD_PROTOCOL);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        election: Option<&ElectionName>,
        timeout: Duration,
    ) -> Result<Answer> {
        let exchange = async {
            let response = self.send(method, path, false).await?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(Answer { status, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(self.unavailable(election, e)),
            Err(_) => Err(self.unavailable(
                election,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )),
        }
    }
}

/// The local agent, as a [`Backend`].
#[derive(Clone, Debug)]
pub(crate) struct AgentBackend {
    client: Client,
    timing: LeaseTiming,
}

impl AgentBackend {
    /// The agent at socket `socket`, hosting a `kind` backend; `timing` gives the renewal
    /// pace. No margin is subtracted: the agent's own leadership deadline already leaves
    /// the backend's kill grace, and `elector run` refuses a longer grace.
    pub(crate) fn new(socket: PathBuf, kind: &'static str, timing: LeaseTiming) -> Self {
        AgentBackend {
            client: Client { socket, kind },
            timing,
        }
    }

    /// The agent at `agent.socket`, hosting a `kind` backend.
    pub(crate) fn hosting(kind: Kind, loaded: &Loaded) -> Self {
        Self::new(loaded.agent_socket(), kind.as_str(), loaded.settings.timing)
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
        let asked_at = clock::boot_now_ns();
        let opened = async {
            let response = client.send("POST", &path, true).await?;
            match response.status().as_u16() {
                101 => {
                    let io = hyper::upgrade::on(response)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(Ok(TokioIo::new(io)))
                }
                status => {
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    Ok(Err(Answer { status, body }))
                }
            }
        };
        let io = match tokio::time::timeout(wait + REQUEST_TIMEOUT, opened).await {
            Err(_) => return Err(client.unavailable(Some(&self.name), "no answer in time")),
            Ok(Err(e)) => return Err(client.unavailable(Some(&self.name), e)),
            Ok(Ok(Err(a))) if a.status == 409 => return Ok(None),
            Ok(Ok(Err(a))) => return Err(client.answer_error(Some(&self.name), &a)),
            Ok(Ok(Ok(io))) => io,
        };
        self.hold(io, asked_at).await.map(Some)
    }

    /// Takes over the hold connection `io`: reads the grant, checks the agent's clock is
    /// ours, and starts renewing.
    async fn hold(&self, io: Upgraded, asked_at: i64) -> Result<Leadership> {
        let client = &self.backend.client;
        let (read, mut write) = tokio::io::split(io);
        let mut lines = lines(read);
        let first = tokio::time::timeout(REQUEST_TIMEOUT, lines.recv()).await;
        let answered_at = clock::boot_now_ns();
        let granted: Granted = match first {
            Ok(Some(line)) => serde_json::from_str(&line)
                .map_err(|e| client.protocol(Some(&self.name), format!("bad grant: {e}")))?,
            _ => {
                return Err(client.unavailable(Some(&self.name), "the hold connection closed"));
            }
        };
        if granted.now_ns < asked_at || granted.now_ns > answered_at {
            // Another boot clock (another time namespace): its deadlines mean nothing here.
            let _ = write.write_all(b"resign\n").await;
            return Err(client.protocol(
                Some(&self.name),
                "the agent's boot clock is not this process's (another time namespace?), so \
                 its deadlines cannot be kept here; run elector and its agent in one",
            ));
        }
        let page = granted.deadline_page.as_deref().and_then(|path| {
            PageReader::open(path)
                .inspect_err(|e| {
                    tracing::warn!(hold = %granted.hold, page = %path.display(), error = %e, "cannot map the hold's deadline page; renewing at a third of the lease instead");
                })
                .ok()
        });
        tracing::debug!(hold = %granted.hold, page = page.is_some(), "granted through the agent");
        let (resigns, requests) = mpsc::channel(1);
        let control = Arc::new(AgentControl { resigns });
        let deadline = clock::from_boot_ns(granted.deadline_ns);
        let (keeper, leadership, pace) = match page {
            Some(page) => {
                let (keeper, leadership) =
                    LeaseKeeper::grant_with_source(granted.info, deadline, control, Arc::new(page));
                let every = Duration::from_millis(granted.caller_timeout_ms) / 3;
                (keeper, leadership, Pace::Alive(every.max(MIN_RENEW_PACE)))
            }
            None => {
                let (keeper, leadership) = LeaseKeeper::grant(granted.info, deadline, control);
                (keeper, leadership, Pace::Lease(self.backend.timing))
            }
        };
        tokio::spawn(renew(
            Renewal {
                lines,
                write,
                requests,
            },
            keeper,
            pace,
            granted.hold,
        ));
        Ok(leadership)
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
            return Err(client.answer_error(Some(&self.name), &a));
        }
        serde_json::from_slice::<LeaderAnswer>(&a.body)
            .map(|l| l.leader)
            .map_err(|_| client.answer_error(Some(&self.name), &a))
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
                match this.leader().await {
                    Ok(leader) => {
                        tx.send_if_modified(|cur| {
                            let changed = *cur != leader;
                            *cur = leader;
                            changed
                        });
                    }
                    Err(e) => tracing::debug!(error = %e, "asking the agent for the leader failed"),
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

/// The caller's handle on its hold: resigning asks the renewal task to send `resign`.
struct AgentControl {
    resigns: mpsc::Sender<oneshot::Sender<()>>,
}

#[async_trait]
impl LeadershipControl for AgentControl {
    async fn resign(&self) -> Result<()> {
        let (done, resigned) = oneshot::channel();
        if self.resigns.send(done).await.is_err() {
            // The connection is gone: the agent resigns by itself once our deadline and
            // the kill grace have passed.
            return Ok(());
        }
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, resigned).await;
        Ok(())
    }
}

/// The caller's end of a hold connection.
struct Renewal {
    lines: mpsc::Receiver<String>,
    write: tokio::io::WriteHalf<Upgraded>,
    requests: mpsc::Receiver<oneshot::Sender<()>>,
}

/// The shortest pause between two renewals of a hold.
const MIN_RENEW_PACE: Duration = Duration::from_millis(10);

/// How often a caller renews its hold.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// With a deadline page: only to show it is alive, at this interval (a third of the
    /// agent's caller timeout); the page carries the deadlines.
    Alive(Duration),
    /// Without: every third of the lease left (at most `renew_interval`), each answer
    /// extending the deadline.
    Lease(LeaseTiming),
}

impl Pace {
    /// The pause before the next renewal, with the hold's deadline at `deadline`.
    fn after(self, deadline: Instant) -> Duration {
        match self {
            Pace::Alive(every) => every,
            Pace::Lease(timing) => {
                let budget = deadline.saturating_duration_since(Instant::now()) / 3;
                timing.renew_interval.min(budget).max(MIN_RENEW_PACE)
            }
        }
    }
}

/// Renews a hold until it ends, then waits for the holder to resign (after its command is
/// gone) and passes that on. Renewals pause while one is unanswered.
async fn renew(mut hold: Renewal, keeper: LeaseKeeper, pace: Pace, id: String) {
    let watch = keeper.watch();
    let mut renewing = true;
    let mut next = Instant::now() + pace.after(keeper.deadline());
    let mut asked: Option<Instant> = None;
    let mut rtt: Option<Duration> = None;
    // One wait for the whole hold, not one per renewal (each arms a boot-clock timer).
    let lost = watch.lost();
    tokio::pin!(lost);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next), if renewing && asked.is_none() => {
                let line = match rtt {
                    Some(r) => format!("renew {}\n", r.as_micros()),
                    None => "renew\n".to_owned(),
                };
                if hold.write.write_all(line.as_bytes()).await.is_err() {
                    renewing = false;
                }
                asked = Some(Instant::now());
            }
            line = hold.lines.recv() => {
                let Some(line) = line else {
                    // The agent is gone: the deadline lapses on its own.
                    tracing::debug!(hold = %id, "the agent closed the hold connection");
                    wait_for_resign(&mut hold.requests).await;
                    return;
                };
                match serde_json::from_str::<HoldUpdate>(&line) {
                    Ok(HoldUpdate::Extended { deadline_ns, now_ns }) if renewing => {
                        rtt = asked.take().map(|at| at.elapsed());
                        if now_ns > clock::boot_now_ns() {
                            tracing::warn!(hold = %id, "the agent's clock runs ahead of ours; no longer renewing");
                            renewing = false;
                            continue;
                        }
                        let deadline = clock::from_boot_ns(deadline_ns);
                        // With a page the answer only acknowledges: the keeper reads the
                        // page when its deadline comes, and nothing wakes meanwhile.
                        if matches!(pace, Pace::Lease(_)) && !keeper.extend_to(deadline) {
                            // The deadline passed while we waited: never revive it, and
                            // leave the hand-over to the holder's drop (the handover rule).
                            renewing = false;
                            continue;
                        }
                        tracing::trace!(hold = %id, rtt_us = rtt.map(|r| r.as_micros() as u64), "renewed through the agent");
                        next = Instant::now() + pace.after(deadline);
                    }
                    Ok(HoldUpdate::Extended { .. }) => {}
                    Ok(HoldUpdate::Ended { reason }) => {
                        tracing::debug!(hold = %id, ?reason, "the agent ended the hold");
                        keeper.end(LossReason::Revoked);
                        renewing = false;
                        asked = None;
                    }
                    Err(e) => {
                        tracing::warn!(hold = %id, error = %e, "bad line from the agent; no longer renewing");
                        renewing = false;
                    }
                }
            }
            // Lapsed: stop renewing, and nothing more (the handover rule). The holder's
            // resign, once its command is gone, goes out on this connection. (With a page
            // the renewals only show this process is alive, and this wait would wake at
            // every deadline: the holder notices the lapse, the agent stops storing once
            // the holder resigned or stopped.)
            _ = &mut lost, if renewing && matches!(pace, Pace::Lease(_)) => renewing = false,
            request = hold.requests.recv() => {
                let Some(done) = request else {
                    return;
                };
                if hold.write.write_all(b"resign\n").await.is_ok() {
                    // Until the agent confirms (or goes away).
                    let confirmed = async {
                        while let Some(line) = hold.lines.recv().await {
                            if matches!(
                                serde_json::from_str::<HoldUpdate>(&line),
                                Ok(HoldUpdate::Ended { reason: HoldEnd::Resigned })
                            ) {
                                return;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, confirmed).await;
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The connection is gone: answer the holder's resign at once (nothing to send).
async fn wait_for_resign(requests: &mut mpsc::Receiver<oneshot::Sender<()>>) {
    if let Some(done) = requests.recv().await {
        let _ = done.send(());
    }
}

/// A client of the agent's socket for the operator commands.
fn operator(socket: PathBuf) -> Client {
    Client {
        socket,
        kind: "agent",
    }
}

/// `GET /v1/status`.
pub(crate) async fn status(socket: PathBuf) -> std::result::Result<Status, Failure> {
    let client = operator(socket);
    let a = client
        .request("GET", "/v1/status", None, REQUEST_TIMEOUT)
        .await?;
    if a.status != 200 {
        return Err(client.answer_error(None, &a).into());
    }
    serde_json::from_slice(&a.body).map_err(|_| client.answer_error(None, &a).into())
}

/// `POST /v1/elections/{name}/resign`: whether the agent held it.
pub(crate) async fn resign(
    socket: PathBuf,
    name: &ElectionName,
) -> std::result::Result<bool, Failure> {
    let client = operator(socket);
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
            client.answer_error(Some(name), &a).into(),
        )),
    }
}
