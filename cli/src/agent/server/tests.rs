//! The agent and its client over its real Unix socket (and its read-only routes over
//! real HTTP on loopback), on the in-process backend.

use std::net::SocketAddr;
use std::path::PathBuf;

use election_core::{Backend as _, Epoch, Leadership, LeaseTiming, LossReason, MemoryServer};
use election_tests::conformance::SCHEDULING_SLACK;

use super::*;
use crate::agent::client::AgentBackend;

/// A generous bound for what must happen eventually (an uncontested election); it only
/// matters when something is broken.
const DEADLINE: Duration = Duration::from_secs(30);

/// The latest a waiting candidate may be elected after `old` is resigned at `released_at`
/// for the handover to count as "at once": the old leadership's own deadline, or a quarter
/// of a TTL, whichever is later (the conformance rule of decision 013; a TTL-based takeover
/// cannot come before the deadline).
fn handover_limit(old: &Leadership, released_at: Instant) -> Instant {
    old.deadline().max(released_at + timing().ttl / 4)
}

struct Running {
    /// The read-only HTTP API.
    addr: SocketAddr,
    /// The whole API.
    socket: PathBuf,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    agent: Arc<Agent>,
}

async fn start(server: &MemoryServer, node: &str, timing: LeaseTiming) -> Running {
    start_with(server, node, timing, true).await
}

/// An agent with deadline pages (as `elector agent` runs) or without (the fallback: its
/// callers renew at a third of the lease and take deadlines from the answers).
async fn start_with(
    server: &MemoryServer,
    node: &str,
    timing: LeaseTiming,
    pages: bool,
) -> Running {
    let agent = Agent::new(
        Arc::new(server.connect()),
        None,
        NodeId::new(node).unwrap(),
        timing,
        timing.kill_grace,
        Limits::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let control = super::socket::bind(&socket, None).unwrap();
    if pages {
        let pages = deadline_page::dir_for(&socket);
        deadline_page::prepare_dir(&pages, None).unwrap();
        let _ = agent.pages.set(PageDir {
            dir: pages,
            group: None,
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_on(
        agent.clone(),
        control,
        Some(listener),
        None,
        std::future::pending(),
    ));
    Running {
        addr,
        socket,
        _dir: dir,
        server,
        agent,
    }
}

fn client(agent: &Running, timing: LeaseTiming) -> Arc<dyn LeaderElector> {
    // The margin is the kill grace; the memory server's own deadline already subtracts it.
    AgentBackend::new(agent.socket.clone(), "memory", timing)
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
    let held = client(&a, timing()).campaign().await.unwrap();
    assert_eq!(held.info().node.as_str(), "a");
    assert_eq!(get(a.addr, "/v1/leader/job").await.0, 200);
    assert_eq!(get(b.addr, "/v1/leader/job").await.0, 503);
    assert!(client(&b, timing()).try_campaign().await.unwrap().is_none());
    let (code, body) = get(a.addr, "/v1/status").await;
    assert_eq!(code, 200);
    let status: Status = serde_json::from_str(&body).unwrap();
    assert!(status.elections[0].is_leader, "{body}");
    assert!(
        !body.contains("\"members\""),
        "a lease backend has no members: {body}"
    );
    assert_eq!(get(a.addr, "/health").await.0, 200);
    let (code, metrics) = get(a.addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("elector_is_leader{election=\"job\"} 1"),
        "{metrics}"
    );
    // Resigning through the client hands over at once.
    let released_at = Instant::now();
    let limit = handover_limit(&held, released_at);
    held.resign().await.unwrap();
    let next = tokio::time::timeout(DEADLINE, client(&b, timing()).campaign())
        .await
        .unwrap()
        .unwrap();
    let elected_at = Instant::now();
    assert!(
        elected_at <= limit,
        "b was elected {:?} after a resigned, later than the old deadline and ttl/4",
        elected_at - released_at
    );
    assert!(next.epoch() > Epoch(1));
    assert_eq!(get(b.addr, "/v1/leader/job").await.0, 200);
    assert_eq!(get(a.addr, "/v1/leader/job").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_agent_still_makes_lost_fire_by_the_callers_deadline() {
    a_vanished_agent_makes_lost_fire_by_the_callers_deadline(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_deadline_page_a_vanished_agent_still_makes_lost_fire_in_time() {
    a_vanished_agent_makes_lost_fire_by_the_callers_deadline(false).await;
}

async fn a_vanished_agent_makes_lost_fire_by_the_callers_deadline(pages: bool) {
    let server = MemoryServer::new(timing()).unwrap();
    let a = start_with(&server, "a", timing(), pages).await;
    let held = client(&a, timing()).campaign().await.unwrap();
    assert_eq!(
        held.loss_watch().deadline_source().is_some(),
        pages,
        "the caller did not take the deadline page it was offered (or took one it was not)"
    );
    // Renewals through the agent keep it for longer than a lease.
    assert!(
        tokio::time::timeout(timing().ttl * 2, held.lost())
            .await
            .is_err(),
        "renewals through the agent stopped working: {:?}",
        held.loss_watch().loss()
    );
    a.server.abort();
    let _ = a.server.await;
    let vanished_at = Instant::now();
    let reason = tokio::time::timeout(DEADLINE, held.lost()).await.unwrap();
    let lost_at = Instant::now();
    assert!(!held.is_held());
    // The caller's deadline comes from a renewal that started before the agent vanished,
    // so it is at most the hold budget after that; lost() fires by that deadline, however
    // long the agent stays silent (one late timer of slack).
    let deadline = held.deadline();
    assert!(
        deadline <= vanished_at + timing().hold_budget(),
        "the caller's deadline is {:?} after the agent vanished, beyond the hold budget {:?}",
        deadline - vanished_at,
        timing().hold_budget()
    );
    assert!(
        lost_at <= deadline + SCHEDULING_SLACK,
        "lost() ({reason}) fired {:?} after the caller's deadline",
        lost_at - deadline
    );
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
    // Nobody renews. The caller's deadline is the grant's; the agent resigns once that
    // deadline plus the kill grace and the clock drift has passed (the caller's command is
    // surely dead by then), not before, and another node is elected right then: the
    // agent's own lease is still renewed, so nothing else lets the other node in.
    let grace = timing().kill_grace + timing().clock_drift;
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
    let elected_at = Instant::now();
    assert!(
        elected_at >= granted.deadline + grace,
        "another node was elected {:?} before the silent caller's deadline + kill grace + \
         clock drift",
        (granted.deadline + grace) - elected_at
    );
    assert!(
        elected_at <= granted.deadline + grace + SCHEDULING_SLACK,
        "another node was elected {:?} after the silent caller's deadline + kill grace + \
         clock drift",
        elected_at - (granted.deadline + grace)
    );
    assert!(next.epoch() > granted.info.epoch);
    assert!(a.agent.leads(&ElectionName::new("job").unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_runs_through_the_agent_and_resigning_there_stops_the_command() {
    use crate::run::{Exit, Job, Launcher, Mode, Outcome, Plan};
    let server = MemoryServer::new(timing()).unwrap();
    let a = start(&server, "a", timing()).await;
    let plan = Plan {
        job: Job {
            program: "sleep".into(),
            args: vec!["1000".into()],
        },
        launcher: Launcher::direct(),
        node: NodeId::new("a").unwrap(),
        backend: "memory",
        kill_grace: Duration::from_millis(50),
        mode: Mode::Once {
            wait: None,
            min_hold: Duration::ZERO,
        },
    };
    let (_tx, stop) = tokio::sync::watch::channel(None);
    let run = tokio::spawn({
        let e = client(&a, timing());
        async move { crate::run::supervise(e, &plan, stop).await }
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
    let held = client(&a, timing()).campaign().await.unwrap();
    let watch = held.loss_watch();
    let agent = a.agent.clone();
    let revoked_at = Instant::now();
    let drained = tokio::spawn(async move {
        agent.drain().await;
        Instant::now()
    });
    // The caller learns of the revocation at its next renewal, at most a renew interval
    // away (plus a late timer and a loopback round trip).
    tokio::time::timeout(DEADLINE, watch.lost()).await.unwrap();
    let learned = revoked_at.elapsed();
    assert!(
        learned <= timing().renew_interval + SCHEDULING_SLACK,
        "the caller learned of the revocation {learned:?} after it, more than a renew \
         interval"
    );
    // The caller's command is stopped now; only then does it let go, and only that ends
    // the drain (its deadline + kill grace is still ahead, so nothing else may).
    let released_at = Instant::now();
    assert!(
        released_at < held.deadline() + timing().kill_grace,
        "the test let go too late to tell a resign from the deadline"
    );
    held.resign().await.unwrap();
    let resigned_at = Instant::now();
    let drained_at = tokio::time::timeout(DEADLINE, drained)
        .await
        .unwrap()
        .unwrap();
    assert!(
        drained_at >= released_at,
        "drained {:?} before the caller let go",
        released_at - drained_at
    );
    assert!(
        drained_at <= resigned_at + SCHEDULING_SLACK,
        "drained {:?} after the caller let go",
        drained_at - resigned_at
    );
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
    let mut waiting = tokio::spawn(async move { client(&a, timing()).campaign().await });
    // The caller waits longer than a whole lease before the other node lets go.
    assert!(
        tokio::time::timeout(timing().ttl * 2, &mut waiting)
            .await
            .is_err(),
        "the waiting caller was elected while the other node led"
    );
    let released_at = Instant::now();
    let limit = handover_limit(&other, released_at);
    other.resign().await.unwrap();
    let held = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        Instant::now() <= limit,
        "the waiting caller was elected {:?} after the other node resigned",
        released_at.elapsed()
    );
    assert!(
        held.is_held(),
        "the lease was measured from the start of the wait, so it lapsed at once"
    );
    // Renewals keep it for longer than a lease.
    assert!(
        tokio::time::timeout(timing().ttl, held.lost())
            .await
            .is_err(),
        "renewals did not keep the leadership: {:?}",
        held.loss_watch().loss()
    );
}

#[tokio::test(start_paused = true)]
async fn elections_stay_bounded_and_idle_ones_are_forgotten() {
    let server = MemoryServer::new(timing()).unwrap();
    let limits = Limits {
        max_elections: 1_000,
        forget_after: Duration::from_secs(60),
        configured: [ElectionName::new("kept").unwrap()].into(),
    };
    let agent = Agent::new(
        Arc::new(server.connect()),
        None,
        NodeId::new("a").unwrap(),
        timing(),
        timing().kill_grace,
        limits,
    );
    agent.election(&ElectionName::new("kept").unwrap()).unwrap();
    // 100,000 distinct names through the one path that creates elections.
    let mut refused = 0;
    for i in 0..100_000 {
        if agent
            .election(&ElectionName::new(format!("e{i}")).unwrap())
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(lock(&agent.elections).len(), 1_000);
    assert_eq!(refused, 100_000 - 999);
    // Nothing is forgotten before its time, and everything idle is after it, except
    // the configured election.
    assert_eq!(agent.forget_idle(), 0);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(agent.forget_idle(), 999);
    let left: Vec<String> = lock(&agent.elections)
        .keys()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(left, ["kept"]);
    // Room again for new ones.
    agent.election(&ElectionName::new("new").unwrap()).unwrap();
}
