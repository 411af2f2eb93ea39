//! Interoperation with the real `etcdctl elect` (etcd 3.4): both sides see the same
//! election under `elector/NAME/`, and each waits for the other.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `etcdctl elect` (or `elect -l`) against `endpoint` with the v3 API.
fn etcdctl(endpoint: &str, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let endpoint = endpoint.trim_start_matches("http://");
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("etcdctl should run (apt-get install etcd-client)");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    within(SOON, "a line from etcdctl", lines.next_line())
        .await
        .expect("read etcdctl output")
        .expect("etcdctl printed a line")
}

/// SIGINT: etcdctl closes its session, revoking its lease (its key goes with it).
async fn interrupt(child: &mut Child) {
    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().await;
    assert!(status.unwrap().success());
    within(SOON, "etcdctl to exit", child.wait()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_elect_listen_prints_our_leaders_node_id() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], timing()).await;
    let ours = elector(&backend, "interop1", "node-a");
    let leadership = ours.campaign().await.unwrap();
    let (mut child, mut lines) = etcdctl(&server.endpoint(), &["elect", "-l", "elector/interop1"]);
    let key = next_line(&mut lines).await;
    let value = next_line(&mut lines).await;
    assert!(key.starts_with("elector/interop1/"), "{key}");
    assert_eq!(value, "node-a");
    leadership.resign().await.unwrap();
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_campaign_waits_for_an_etcdctl_leader_and_follows_it() {
    let server = etcd();
    let (mut etcdctl_leader, mut lines) = etcdctl(
        &server.endpoint(),
        &["elect", "elector/interop2", "etcdctl-node"],
    );
    // etcdctl prints its key and value once elected.
    let key = next_line(&mut lines).await;
    assert!(key.starts_with("elector/interop2/"), "{key}");

    let backend = connect(vec![server.endpoint()], timing()).await;
    let ours = elector(&backend, "interop2", "node-a");
    let leader = ours.leader().await.unwrap().expect("etcdctl leads");
    assert_eq!(leader.node.as_str(), "etcdctl-node");
    assert!(
        ours.try_campaign().await.unwrap().is_none(),
        "etcdctl holds the election"
    );
    let campaign = {
        let ours = ours.clone();
        tokio::spawn(async move { ours.campaign().await })
    };
    // Several of our TTLs pass: etcdctl's lease (60 s) keeps it leader, and we wait.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!campaign.is_finished(), "we must wait while etcdctl leads");
    interrupt(&mut etcdctl_leader).await;
    let ours_now = within(SOON, "our election after etcdctl left", campaign)
        .await
        .unwrap()
        .unwrap();
    assert!(ours_now.epoch() > leader.epoch);
    ours_now.resign().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcdctl_campaigner_waits_for_our_leader_and_is_elected_when_we_resign() {
    let server = etcd();
    let backend = connect(vec![server.endpoint()], timing()).await;
    let ours = elector(&backend, "interop3", "node-a");
    let leadership = ours.campaign().await.unwrap();
    let raw = raw(&server.endpoint()).await;
    let (mut child, mut lines) = etcdctl(
        &server.endpoint(),
        &["elect", "elector/interop3", "etcdctl-node"],
    );
    eventually(SOON, "etcdctl's key is queued behind ours", || async {
        keys_under(&raw, "elector/interop3/").await.len() == 2
    })
    .await;
    // While we lead, etcdctl prints nothing (it prints once elected).
    let early = tokio::time::timeout(Duration::from_millis(1500), lines.next_line()).await;
    assert!(
        early.is_err(),
        "etcdctl claimed leadership while we led: {early:?}"
    );
    assert!(leadership.is_held());
    leadership.resign().await.unwrap();
    let key = next_line(&mut lines).await;
    let value = next_line(&mut lines).await;
    assert!(key.starts_with("elector/interop3/"), "{key}");
    assert_eq!(value, "etcdctl-node");
    let now = ours.leader().await.unwrap().expect("etcdctl leads");
    assert_eq!(now.node.as_str(), "etcdctl-node");
    interrupt(&mut child).await;
}
