//! The in-memory backend's own behaviour (the full conformance suite runs in election-tests).

use election_core::{Backend, Candidate, ElectionName, LeaseTiming, MemoryServer, NodeId};

fn candidate(n: &str) -> Candidate {
    Candidate::new(NodeId::new(n).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_holder_loses_before_the_server_lets_another_node_in() {
    let timing = LeaseTiming::default();
    let server = MemoryServer::new(timing).unwrap();
    let (a, b) = (server.connect(), server.connect());
    let name = ElectionName::new("job").unwrap();
    let ea = a.election(&name, candidate("a")).unwrap();
    let eb = b.election(&name, candidate("b")).unwrap();

    let la = ea.campaign().await.unwrap();
    a.cut_off();
    let b_campaign = tokio::spawn(async move { eb.campaign().await.unwrap() });
    la.lost().await;
    let lost_at = tokio::time::Instant::now();
    let lb = b_campaign.await.unwrap();
    let granted_at = tokio::time::Instant::now();
    assert!(
        lost_at < granted_at,
        "a lost at {lost_at:?}, b granted at {granted_at:?}"
    );
    assert!(granted_at - lost_at >= timing.safety_margin());
    assert!(lb.epoch() > la.epoch());
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_client_gets_a_clear_unavailable_error() {
    let server = MemoryServer::new(LeaseTiming::default()).unwrap();
    let a = server.connect();
    a.cut_off();
    let e = a
        .election(&ElectionName::new("job").unwrap(), candidate("a"))
        .unwrap();
    let err = e.try_campaign().await.unwrap_err();
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(msg.contains("memory://") && msg.contains("job"), "{msg}");
}
