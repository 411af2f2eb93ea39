//! The agent and its client over real HTTP on loopback, on the in-process backend.

use std::net::SocketAddr;

use election_core::{Backend as _, Epoch, LeaseTiming, LossReason, MemoryServer};

use super::*;
use crate::agent_client::AgentBackend;

const DEADLINE: Duration = Duration::from_secs(30);

struct Running {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    agent: Arc<Agent>,
}

async fn start(server: &MemoryServer, node: &str, timing: LeaseTiming) -> Running {
    let agent = Agent::new(
        Arc::new(server.connect()),
        "memory",
        NodeId::new(node).unwrap(),
        timing,
        timing.kill_grace,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_on(agent.clone(), listener, std::future::pending()));
    Running {
        addr,
        server,
        agent,
    }
}

fn client(addr: SocketAddr, timing: LeaseTiming) -> Arc<dyn LeaderElector> {
    // The margin is the kill grace; the memory server's own deadline already subtracts it.
    AgentBackend::new(addr, "memory", timing)
        .election(
            &ElectionName::new("job").unwrap(),
            Candidate::new(NodeId::new("ignored").unwrap()),
        )
        .unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn timing() -> LeaseTiming {
    LeaseTiming {
        kill_grace: Duration::from_millis(50),
        ..LeaseTiming::fast_for_tests()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_health_is_200_only_on_the_node_that_leads() {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let b = start(&server, "b", timing()).await;
    let held = client(a.addr, timing()).campaign().await.unwrap();
    assert_eq!(held.info().node.as_str(), "a");
    assert_eq!(get(a.addr, "/v1/leader/job").await.0, 200);
    assert_eq!(get(b.addr, "/v1/leader/job").await.0, 503);
    assert!(
        client(b.addr, timing())
            .try_campaign()
            .await
            .unwrap()
            .is_none()
    );
    let (code, body) = get(a.addr, "/v1/status").await;
    assert_eq!(code, 200);
    let status: Status = serde_json::from_str(&body).unwrap();
    assert!(status.elections[0].is_leader, "{body}");
    assert_eq!(get(a.addr, "/health").await.0, 200);
    let (code, metrics) = get(a.addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("elector_is_leader{election=\"job\"} 1"),
        "{metrics}"
    );
    // Resigning through the client hands over at once.
    held.resign().await.unwrap();
    let next = tokio::time::timeout(DEADLINE, client(b.addr, timing()).campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(next.epoch() > Epoch(1));
    assert_eq!(get(b.addr, "/v1/leader/job").await.0, 200);
    assert_eq!(get(a.addr, "/v1/leader/job").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_agent_still_makes_lost_fire_by_the_callers_deadline() {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let held = client(a.addr, timing()).campaign().await.unwrap();
    // Renewals keep it alive for a while.
    tokio::time::sleep(timing().ttl * 2).await;
    assert!(held.is_held(), "renewals through the agent stopped working");
    a.server.abort();
    let _ = a.server.await;
    let deadline = held.deadline();
    tokio::time::timeout(DEADLINE, held.lost()).await.unwrap();
    assert!(Instant::now() >= deadline.min(Instant::now()));
    assert!(!held.is_held());
    drop(a.agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_resigns_a_hold_whose_caller_stopped_renewing() {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let granted = a
        .agent
        .campaign(&ElectionName::new("job").unwrap(), Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(a.agent.leads(&ElectionName::new("job").unwrap()).is_some());
    // Nobody renews: within a few renew intervals the agent resigns, and another node
    // is elected.
    let other = server
        .connect()
        .election(
            &ElectionName::new("job").unwrap(),
            Candidate::new(NodeId::new("z").unwrap()),
        )
        .unwrap();
    let next = tokio::time::timeout(DEADLINE, other.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(next.epoch() > granted.info.epoch);
    assert!(a.agent.leads(&ElectionName::new("job").unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_runs_through_the_agent_and_resigning_there_stops_the_command() {
    use crate::process::{Exit, Job, Launcher};
    use crate::supervisor::{Mode, Outcome, Plan};
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let plan = Plan {
        job: Job {
            program: "sleep".into(),
            args: vec!["1000".into()],
        },
        launcher: Launcher::direct(),
        node: NodeId::new("a").unwrap(),
        backend: "memory".into(),
        kill_grace: Duration::from_millis(50),
        mode: Mode::Once {
            wait: None,
            min_hold: Duration::ZERO,
        },
    };
    let (_tx, stop) = tokio::sync::watch::channel(None);
    let run = tokio::spawn({
        let e = client(a.addr, timing());
        async move { crate::supervisor::run(e, &plan, stop).await }
    });
    let name = ElectionName::new("job").unwrap();
    let until = Instant::now() + DEADLINE;
    while a.agent.leads(&name).is_none() {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.agent.revoke_election(&name));
    let outcome = run.await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Lost {
                reason: LossReason::Revoked,
                ..
            }
        ),
        "{outcome:?}"
    );
    let _ = Exit::Code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_waits_until_the_caller_stopped_its_command() {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let held = client(a.addr, timing()).campaign().await.unwrap();
    let watch = held.loss_watch();
    let agent = a.agent.clone();
    let drained = tokio::spawn(async move { agent.drain().await });
    // The caller learns of the revocation at its next renewal.
    tokio::time::timeout(DEADLINE, watch.lost()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !drained.is_finished(),
        "drained while the caller still held"
    );
    held.resign().await.unwrap();
    tokio::time::timeout(DEADLINE, drained)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leadership_won_after_a_long_wait_is_counted_from_after_the_wait() {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let other = server
        .connect()
        .election(
            &ElectionName::new("job").unwrap(),
            Candidate::new(NodeId::new("z").unwrap()),
        )
        .unwrap()
        .campaign()
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { client(a.addr, timing()).campaign().await });
    // Wait longer than a whole lease before the other node lets go.
    tokio::time::sleep(timing().ttl * 2).await;
    other.resign().await.unwrap();
    let held = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        held.is_held(),
        "the lease was measured from the start of the wait, so it lapsed at once"
    );
    tokio::time::sleep(timing().renew_interval * 3).await;
    assert!(held.is_held(), "renewals did not keep the leadership");
}
