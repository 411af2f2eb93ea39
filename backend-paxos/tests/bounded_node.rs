//! Issue 14, item 2, through the real node (driver, state file, handle): a campaign past
//! `max_elections` fails with `TooManyElections`; resigned elections are forgotten after
//! `forget_after`, in memory, in the published leader entries and in the state file; an
//! election started again afterwards leads at a higher epoch (the persisted floor).

use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, Error, ErrorKind};
use election_paxos::{PaxosConfig, PaxosNode};
use tokio::time::Instant;

fn name(i: usize) -> ElectionName {
    ElectionName::new(format!("job-{i}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_elections_campaigns_are_refused_and_idle_ones_leave_the_state_file() {
    const MAX: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let me = election_core::NodeId::new("solo").unwrap();
    let config = PaxosConfig {
        node_id: Some(me.clone()),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        secret: Some("paxos-tests-shared-secret".into()),
        max_elections: MAX,
        forget_after: Duration::from_secs(2),
        // Slowed down as in the cluster tests: a starved driver must not let leases lapse
        // (a lapsed, idle election could be forgotten before the limit is tested).
        lease: Duration::from_millis(600),
        renew: Duration::from_millis(50),
        round_timeout: Duration::from_millis(150),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
        ..PaxosConfig::default()
    };
    let node = PaxosNode::start(config.clone()).await.unwrap();
    let campaigns: Vec<_> = (0..MAX)
        .map(|i| {
            let el = node.election(&name(i), Candidate::new(me.clone())).unwrap();
            tokio::spawn(async move { el.campaign().await })
        })
        .collect();
    let mut held = Vec::new();
    for c in campaigns {
        held.push(c.await.unwrap().unwrap());
    }
    let first_epoch = held[0].epoch();
    assert!(
        held.iter().all(|l| l.is_held()),
        "a lease lapsed: the machine is too slow even for these timings"
    );
    let extra = node
        .election(&name(MAX), Candidate::new(me.clone()))
        .unwrap();
    let err = extra.campaign().await.unwrap_err();
    assert!(
        matches!(err, Error::TooManyElections { limit: MAX, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    println!("refused: {err}");
    drop(extra);
    assert_eq!(node.stats().elections, MAX as u64);
    let text = std::fs::read_to_string(dir.path().join("paxos-state")).unwrap();
    assert_eq!(text.lines().count(), MAX + 1, "{text}");
    for l in held {
        l.resign().await.unwrap();
    }
    // Resigned: quiet for one lease time, then idle; forgotten once idle for
    // forget_after (checked every eighth of it). Generous deadline for a busy machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.stats().elections > 0 {
        assert!(
            Instant::now() < deadline,
            "{} still held",
            node.stats().elections
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node.observed_elections(), 0);
    let text = std::fs::read_to_string(dir.path().join("paxos-state")).unwrap();
    // Only the floor is left: at least every epoch granted (renewal ballots raise it).
    let floor: u64 = text
        .strip_prefix("elector-paxos-state v1\n#floor ")
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        floor >= first_epoch.0,
        "floor {floor} below {first_epoch:?}"
    );
    // Room again; the epoch rises above the forgotten one, also after a restart.
    node.shutdown().await;
    let node = PaxosNode::start(config).await.unwrap();
    let el = node.election(&name(0), Candidate::new(me.clone())).unwrap();
    let l = el.campaign().await.unwrap();
    assert!(
        l.epoch() > first_epoch,
        "{:?} after {first_epoch:?}",
        l.epoch()
    );
    l.resign().await.unwrap();
    node.shutdown().await;
}
