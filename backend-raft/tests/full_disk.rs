//! A full disk (a real tmpfs filled to its last byte) under a single-voter raft node: a
//! grant is never delivered at a term the state file does not hold, a write that failed
//! partway never corrupts what follows, and after `kill -9` and a restart the node starts
//! and its epochs only rise (issue 16, item 4).

use std::time::Duration;

use election_core::{Backend as _, Candidate, ElectionName, NodeId};
use election_raft::{RaftConfig, RaftNode};
use election_tests::tmpfs::Tmpfs;
use tokio::time::timeout;

/// Long enough for an uncontested single-voter grant on a loaded machine, many times over.
const GRANT: Duration = Duration::from_secs(5);

fn config(dir: &std::path::Path) -> RaftConfig {
    RaftConfig {
        node_id: Some(NodeId::new("n1").unwrap()),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        secret: Some("a-test-secret-of-32-bytes-length".into()),
        ..RaftConfig::default()
    }
}

fn name(i: usize) -> ElectionName {
    ElectionName::new(format!("job-{i}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_grants_back_and_a_restart_finds_a_whole_file() {
    let fs = match Tmpfs::mount(64 * 1024) {
        Ok(fs) => fs,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = fs.path().join("n1");
    let node = RaftNode::start(config(&dir)).await.unwrap();
    let me = || Candidate::new(NodeId::new("n1").unwrap());
    let mut held = Vec::new();
    // Some elections while there is room: their lines fill part of a page.
    for i in 0..20 {
        let e = node.election(&name(i), me()).unwrap();
        held.push((
            name(i),
            timeout(GRANT, e.campaign()).await.unwrap().unwrap(),
        ));
    }
    let filler = fs.fill().unwrap();
    // Appends fit into the file's last page until one does not: that one fails (maybe
    // partway), and its grant is held back.
    let mut stuck = None;
    for i in 20..400 {
        let e = node.election(&name(i), me()).unwrap();
        let mut campaign = Box::pin(async move { e.campaign().await });
        match timeout(GRANT, &mut campaign).await {
            Ok(granted) => held.push((name(i), granted.unwrap())),
            Err(_) => {
                stuck = Some((i, campaign));
                break;
            }
        }
    }
    let (i, campaign) = stuck.expect("every append fitted: the disk never filled");
    // Space again: the held-back grant arrives (its term is durable now)...
    std::fs::remove_file(&filler).unwrap();
    let late = timeout(GRANT * 4, campaign).await.unwrap().unwrap();
    // ...and the next change is written after it, not after a torn line.
    let next = node.election(&name(i + 1), me()).unwrap();
    held.push((
        name(i + 1),
        timeout(GRANT, next.campaign()).await.unwrap().unwrap(),
    ));
    held.push((name(i), late));
    let epochs: Vec<(ElectionName, u64)> = held
        .iter()
        .map(|(e, l)| (e.clone(), l.epoch().get()))
        .collect();
    // kill -9.
    node.crash();
    std::mem::forget(held);
    let node = RaftNode::start(config(&dir))
        .await
        .expect("the restarted node could not read its state file");
    for (e, before) in epochs {
        let again = timeout(GRANT * 4, node.election(&e, me()).unwrap().campaign())
            .await
            .unwrap()
            .unwrap();
        assert!(
            again.epoch().get() > before,
            "{e}: epoch {} after a restart, {before} before",
            again.epoch()
        );
    }
}
