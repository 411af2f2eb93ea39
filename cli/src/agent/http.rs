//! The agent's HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use election_core::ElectionName;
use serde::Deserialize;
use serde_json::json;

use super::api::{LeaderAnswer, RenewAnswer};
use super::server::Agent;

/// Longest campaign wait one request may ask for; callers loop for longer waits so that a
/// vanished caller's candidacy ends within this time.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Every route, over `agent`.
pub(super) fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/leader/{election}", get(leader_health))
        .route("/v1/elections/{election}", get(election_leader))
        .route("/v1/elections/{election}/campaign", post(campaign))
        .route("/v1/elections/{election}/resign", post(resign_election))
        .route("/v1/holds/{id}/renew", post(renew))
        .route("/v1/holds/{id}", delete(resign_hold))
        .with_state(agent)
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
    let result = match agent.election(&name) {
        Ok(e) => e.elector.leader().await,
        Err(e) => Err(e),
    };
    match result {
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
) -> Response {
    let name = match name(&election) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    match agent.campaign(&name, wait).await {
        Ok(Some(granted)) => Json(granted).into_response(),
        Ok(None) => {
            let leader = match agent.election(&name) {
                Ok(e) => e.elector.leader().await.ok().flatten(),
                Err(_) => None,
            };
            (StatusCode::CONFLICT, Json(LeaderAnswer { leader })).into_response()
        }
        Err(e) => core_error(e),
    }
}

#[derive(Deserialize)]
struct RenewQuery {
    rtt_us: Option<u64>,
}

async fn renew(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<u64>,
    Query(q): Query<RenewQuery>,
) -> Response {
    match agent.renew(id, q.rtt_us.map(Duration::from_micros)) {
        Some(left) => Json(RenewAnswer {
            lease_left_ms: left,
        })
        .into_response(),
        None => error(StatusCode::GONE, format!("hold {id} has ended")),
    }
}

async fn resign_hold(State(agent): State<Arc<Agent>>, Path(id): Path<u64>) -> Response {
    if agent.release_hold(id).await {
        Json(json!({ "resigned": id })).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no hold {id}"))
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
