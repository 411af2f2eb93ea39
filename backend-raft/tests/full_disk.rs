//! A full disk (a real tmpfs filled to its last byte) under a single-voter raft node: a
//! grant is never delivered at a term the state file does not hold, a write that failed
//! partway never corrupts what follows, and after `kill -9` (with space freed first, or
//! while the disk is still full) a restart starts and its epochs only rise (issue 16,
//! item 4). The scenarios are the peer crate's, shared with bully and paxos.

use std::path::Path;

use election_core::NodeId;
use election_peer::test_support::{
    FULL_DISK_NODE, a_full_disk_holds_grants_back_until_space_is_freed,
    a_kill_on_a_full_disk_leaves_a_file_the_restart_reads,
};
use election_raft::RaftConfig;

fn one_voter(dir: &Path) -> RaftConfig {
    RaftConfig {
        node_id: Some(NodeId::new(FULL_DISK_NODE).unwrap()),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        secret: Some("a-test-secret-of-32-bytes-length".into()),
        ..RaftConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_grants_back_and_a_restart_finds_a_whole_file() {
    a_full_disk_holds_grants_back_until_space_is_freed(one_voter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_disk_is_full_leaves_a_file_the_restart_reads() {
    a_kill_on_a_full_disk_leaves_a_file_the_restart_reads(one_voter).await;
}
