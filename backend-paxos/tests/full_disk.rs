//! A full disk (a real tmpfs filled to its last byte) under a one-acceptor paxos cluster:
//! the acceptors keep no disk, but the ballot floor that epochs start above does
//! (decision 115): a grant is never delivered at a ballot the file does not cover, a write
//! that failed partway never corrupts what follows, and after `kill -9` (with space freed
//! first, or while the disk is still full) a restart starts and its epochs only rise
//! (issue 16, item 4). The scenarios are the peer crate's.

use std::path::Path;

use election_core::NodeId;
use election_paxos::PaxosConfig;
use election_peer::test_support::{
    FULL_DISK_NODE, a_kill_on_a_full_disk_leaves_a_file_the_restart_reads,
};

fn single(dir: &Path) -> PaxosConfig {
    PaxosConfig {
        node_id: Some(NodeId::new(FULL_DISK_NODE).unwrap()),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        secret: Some("a-test-secret-of-32-bytes-length".into()),
        ..PaxosConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_grants_back_until_space_is_freed() {
    election_peer::test_support::a_full_disk_holds_grants_back_until_space_is_freed(single).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_disk_is_full_leaves_a_file_the_restart_reads() {
    a_kill_on_a_full_disk_leaves_a_file_the_restart_reads(single).await;
}
