//! Issue 14, item 2, through the real node (driver, state file, handle): a campaign past
//! `max_elections` fails with `TooManyElections`; resigned elections are forgotten after
//! `forget_after`, in memory, in the published leader entries and in the state file; an
//! election started again afterwards leads at a higher epoch (the persisted floor).

use std::time::Duration;

use election_paxos::PaxosConfig;
use election_peer::test_support::{FloorCheck, bounded_node_forgets_idle_elections};

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
    bounded_node_forgets_idle_elections(config, me, dir.path(), MAX, FloorCheck::AtLeast).await;
}
