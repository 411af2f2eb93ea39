//! The agent's HTTP routes.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use election_core::ElectionName;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq as _;

use super::api::{HOLD_PROTOCOL, LeaderAnswer};
use super::server::{Agent, lock};
use super::session;

/// Longest campaign wait one request may ask for; callers loop for longer waits so that a
/// vanished caller's candidacy ends within this time.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The bearer token that allows `POST /v1/elections/{election}/resign` over TCP.
pub(crate) struct Token(Vec<u8>);

impl Token {
    /// Reads the token from `path`, which only its owner may read (mode 0600 or
    /// stricter); at least 16 characters, surrounding whitespace ignored.
    pub(crate) fn read(path: &FsPath) -> Result<Token, String> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "mode {:o} lets others read the token; chmod 600 it",
                meta.mode() & 0o777
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let token = text.trim();
        if token.len() < 16 {
            return Err("the token is shorter than 16 characters".into());
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Whether `headers` carry this token as `Authorization: Bearer TOKEN`, compared in
    /// constant time.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        bool::from(self.0.as_slice().ct_eq(presented))
    }
}

/// The status page's files, embedded at build time (no CDN: the page works offline).
const PAGE: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/status.js",
        "text/javascript; charset=utf-8",
        include_str!("page/status.js"),
    ),
    (
        "/status.css",
        "text/css; charset=utf-8",
        include_str!("page/status.css"),
    ),
];

/// One file of the status page, with headers that keep it to its own origin.
fn page_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The read-only routes, served everywhere.
fn read_routes() -> Router<Arc<Agent>> {
    let mut router = Router::new();
    for (path, content_type, body) in PAGE {
        router = router.route(
            path,
            get(move || async move { page_file(content_type, body) }),
        );
    }
    router
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/leader/{election}", get(leader_health))
        .route("/v1/elections/{election}", get(election_leader))
}

/// The whole API, for the agent's Unix socket (whoever can connect may change
/// leadership: the socket's mode decides who can).
pub(super) fn socket_router(agent: Arc<Agent>) -> Router {
    read_routes()
        .route("/v1/elections/{election}/campaign", post(campaign))
        .route("/v1/elections/{election}/resign", post(resign_election))
        .with_state(agent)
}

/// State of the TCP-only routes.
#[derive(Clone)]
struct Remote {
    agent: Arc<Agent>,
    token: Option<Arc<Token>>,
}

/// The API on `agent.listen`: the read-only routes; resign only with the bearer token of
/// `agent.token_file`; holds never (their deadlines are on this host's boot clock).
pub(super) fn tcp_router(agent: Arc<Agent>, token: Option<Token>) -> Router {
    let remote = Remote {
        agent: agent.clone(),
        token: token.map(Arc::new),
    };
    let control = Router::new()
        .route("/v1/elections/{election}/resign", post(remote_resign))
        .route("/v1/elections/{election}/campaign", post(remote_campaign))
        .with_state(remote);
    read_routes().with_state(agent).merge(control)
}

fn error(code: StatusCode, message: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": message.to_string() }))).into_response()
}

fn core_error(e: election_core::Error) -> Response {
    let code = if e.is_retryable() || e.kind() == election_core::ErrorKind::Closed {
        StatusCode::SERVICE_UNAVAILABLE
    } else if e.kind() == election_core::ErrorKind::Config {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::BAD_GATEWAY
    };
    error(code, e)
}

fn name(raw: &str) -> election_core::Result<ElectionName> {
    ElectionName::new(raw)
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        agent.metrics.render(),
    )
        .into_response()
}

async fn status(State(agent): State<Arc<Agent>>) -> Response {
    Json(agent.status()).into_response()
}

async fn leader_health(State(agent): State<Arc<Agent>>, Path(election): Path<String>) -> Response {
    let name = match name(&election) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match agent.leads(&name) {
        Some(info) => (StatusCode::OK, Json(LeaderAnswer { leader: Some(info) })).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this node does not lead {name}"),
        ),
    }
}

async fn election_leader(
    State(agent): State<Arc<Agent>>,
    Path(election): Path<String>,
) -> Response {
    let name = match name(&election) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // Reads never create state: only elections the agent keeps are answered.
    let Some(e) = agent.known(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "election {name} is not known to this agent: nobody here campaigns in it and \
                 it is not in agent.elections"
            ),
        );
    };
    match e.elector.leader().await {
        Ok(leader) => Json(LeaderAnswer { leader }).into_response(),
        Err(e) => core_error(e),
    }
}

#[derive(Deserialize)]
struct CampaignQuery {
    wait_ms: Option<u64>,
}

async fn campaign(
    State(agent): State<Arc<Agent>>,
    Path(election): Path<String>,
    Query(q): Query<CampaignQuery>,
    mut request: Request,
) -> Response {
    let name = match name(&election) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let asked = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes() == HOLD_PROTOCOL.as_bytes());
    let upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>();
    let Some(upgrade) = upgrade.filter(|_| asked) else {
        return error(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "a hold is a connection of its own: send Connection: upgrade and Upgrade: {HOLD_PROTOCOL}"
            ),
        );
    };
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    match agent.campaign(&name, wait).await {
        Ok(Some(grant)) => {
            let id = grant.id.clone();
            let (registered, is_registered) = tokio::sync::oneshot::channel::<()>();
            let serving = agent.clone();
            let task_id = id.clone();
            let task = tokio::spawn(async move {
                let _ = is_registered.await;
                match upgrade.await {
                    Ok(io) => session::serve(serving.clone(), grant, TokioIo::new(io)).await,
                    Err(e) => {
                        tracing::debug!(hold = %grant.id, error = %e, "the caller left before its hold began");
                    }
                }
                lock(&serving.sessions).remove(&task_id);
            });
            session::register(&agent, id, task.abort_handle());
            let _ = registered.send(());
            (
                StatusCode::SWITCHING_PROTOCOLS,
                [
                    (header::CONNECTION, "upgrade"),
                    (header::UPGRADE, HOLD_PROTOCOL),
                ],
            )
                .into_response()
        }
        Ok(None) => {
            let leader = match agent.known(&name) {
                Some(e) => e.elector.leader().await.ok().flatten(),
                None => None,
            };
            (StatusCode::CONFLICT, Json(LeaderAnswer { leader })).into_response()
        }
        Err(e) => core_error(e),
    }
}

async fn remote_campaign() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "holds are served only on the agent's Unix socket (agent.socket): their deadlines are \
         on this host's boot clock",
    )
}

async fn remote_resign(
    State(remote): State<Remote>,
    headers: HeaderMap,
    path: Path<String>,
) -> Response {
    match &remote.token {
        None => error(
            StatusCode::FORBIDDEN,
            "changing leadership over TCP is off: use the agent's Unix socket (agent.socket), \
             or set agent.token_file and send Authorization: Bearer TOKEN",
        ),
        Some(token) if !token.admits(&headers) => {
            error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
        }
        Some(_) => resign_election(State(remote.agent), path).await,
    }
}

async fn resign_election(
    State(agent): State<Arc<Agent>>,
    Path(election): Path<String>,
) -> Response {
    let name = match name(&election) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if agent.revoke_election(&name) {
        Json(json!({ "resigning": name })).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("this node does not lead {name}"),
        )
    }
}
