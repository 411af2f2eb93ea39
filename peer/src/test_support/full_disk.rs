//! A full disk (a real tmpfs filled to its last byte) under a one-node peer cluster, the
//! case where a grant needs no peer and only the state file stands between a failed write
//! and a repeated epoch (issue 16, item 4). Each peer backend calls both scenarios with its
//! own configuration (raft with one voter, bully with and without the majority rule, paxos
//! with one acceptor).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use election_core::{Backend as _, Candidate, ElectionName, Leadership, NodeId};
use election_tests::tmpfs::Tmpfs;
use tokio::time::timeout;

use crate::{ElectionCore, PeerNode, PeerNodeConfig};

/// Long enough for an uncontested one-node grant on a loaded machine, many times over.
const GRANT: Duration = Duration::from_secs(5);

/// The id every scenario's node has.
pub const FULL_DISK_NODE: &str = "n1";

type Campaign = Pin<Box<dyn Future<Output = election_core::Result<Leadership>> + Send>>;

fn name(i: usize) -> ElectionName {
    ElectionName::new(format!("job-{i}")).expect("a valid name")
}

fn me() -> Candidate {
    Candidate::new(NodeId::new(FULL_DISK_NODE).expect("a valid id"))
}

/// A tmpfs of 64 KiB, or `None` (skipped) where mounting is not allowed outside CI.
///
/// # Panics
/// Mounting failed under `CI`.
fn small_disk() -> Option<Tmpfs> {
    match Tmpfs::mount(64 * 1024) {
        Ok(fs) => Some(fs),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A node on a small full disk: the leaderships granted while there was room, the
/// filler's path (remove it to free the space), and the campaign the full disk held back,
/// with its index.
struct Full<C: ElectionCore> {
    /// Mounted until the scenario ends (unmounted when dropped).
    _disk: Tmpfs,
    dir: PathBuf,
    node: PeerNode<C>,
    held: Vec<(ElectionName, Leadership)>,
    filler: PathBuf,
    stuck: usize,
    campaign: Campaign,
}

/// Mounts a small disk, starts a node on it, grants elections while there is room, fills
/// the disk, then campaigns until one is held back; `None` where no tmpfs can be mounted
/// outside CI.
async fn fill_under_grants<K, C>(config: &impl Fn(&Path) -> K) -> Option<Full<C>>
where
    K: PeerNodeConfig<Core = C>,
    C: ElectionCore,
{
    let fs = small_disk()?;
    let dir = fs.path().join(FULL_DISK_NODE);
    let node = PeerNode::start(config(&dir))
        .await
        .expect("the node starts");
    let mut held = Vec::new();
    // Some elections while there is room: their lines fill part of a page.
    for i in 0..20 {
        let e = node.election(&name(i), me()).expect("an elector");
        let granted = timeout(GRANT, e.campaign())
            .await
            .expect("no grant with room on the disk")
            .expect("a grant");
        held.push((name(i), granted));
    }
    let filler = fs.fill().expect("filling the tmpfs");
    // Appends fit into the file's last page until one does not: that one fails (maybe
    // partway), and its grant is held back.
    for i in 20..400 {
        let e = node.election(&name(i), me()).expect("an elector");
        let mut campaign: Campaign = Box::pin(async move { e.campaign().await });
        match timeout(GRANT, &mut campaign).await {
            Ok(granted) => held.push((name(i), granted.expect("a grant"))),
            Err(_) => {
                return Some(Full {
                    _disk: fs,
                    dir,
                    node,
                    held,
                    filler,
                    stuck: i,
                    campaign,
                });
            }
        }
    }
    panic!("every append fitted: the disk never filled");
}

fn epochs(held: &[(ElectionName, Leadership)]) -> Vec<(ElectionName, u64)> {
    held.iter()
        .map(|(e, l)| (e.clone(), l.epoch().get()))
        .collect()
}

/// After a restart, every election in `before` is granted again at a higher epoch.
async fn epochs_rose<C: ElectionCore>(node: &PeerNode<C>, before: Vec<(ElectionName, u64)>) {
    for (e, was) in before {
        let again = timeout(
            GRANT * 4,
            node.election(&e, me()).expect("an elector").campaign(),
        )
        .await
        .unwrap_or_else(|_| panic!("{e}: no grant after the restart"))
        .expect("a grant");
        assert!(
            again.epoch().get() > was,
            "{e}: epoch {} after a restart, {was} before",
            again.epoch()
        );
    }
}

/// Grants while there is room; on a full disk the next grant is held back until space is
/// freed (it is never delivered at an epoch the state file does not hold), and the change
/// after it is written after it, not after a torn line; then `kill -9` and a restart: the
/// node starts and every epoch rises.
///
/// # Panics
/// On any broken property (this is a test).
pub async fn a_full_disk_holds_grants_back_until_space_is_freed<K, C>(config: impl Fn(&Path) -> K)
where
    K: PeerNodeConfig<Core = C>,
    C: ElectionCore,
{
    let Some(full) = fill_under_grants(&config).await else {
        return;
    };
    let (node, mut held, i) = (full.node, full.held, full.stuck);
    // Space again: the held-back grant arrives (its epoch is durable now)...
    std::fs::remove_file(&full.filler).expect("freeing the space");
    let late = timeout(GRANT * 4, full.campaign)
        .await
        .expect("the held-back grant never came once space was freed")
        .expect("a grant");
    // ...and the next change is written after it, not after a torn line.
    let next = node.election(&name(i + 1), me()).expect("an elector");
    held.push((
        name(i + 1),
        timeout(GRANT, next.campaign())
            .await
            .expect("no grant after space was freed")
            .expect("a grant"),
    ));
    held.push((name(i), late));
    let before = epochs(&held);
    // kill -9.
    node.crash();
    std::mem::forget(held);
    let node = PeerNode::start(config(&full.dir))
        .await
        .expect("the restarted node could not read its state file");
    epochs_rose(&node, before).await;
}

/// The order: grants, the disk full and a grant held back (its append failed,
/// maybe partway: a torn tail), `kill -9` while the disk is still full, space freed, a
/// restart: the node starts from what the file holds and every epoch rises, the held-back
/// election's included.
///
/// # Panics
/// On any broken property (this is a test).
pub async fn a_kill_on_a_full_disk_leaves_a_file_the_restart_reads<K, C>(
    config: impl Fn(&Path) -> K,
) where
    K: PeerNodeConfig<Core = C>,
    C: ElectionCore,
{
    let Some(full) = fill_under_grants(&config).await else {
        return;
    };
    let before = epochs(&full.held);
    // kill -9 while the disk is full and the grant is held back.
    drop(full.campaign);
    full.node.crash();
    std::mem::forget(full.held);
    std::fs::remove_file(&full.filler).expect("freeing the space");
    let i = full.stuck;
    let node = PeerNode::start(config(&full.dir))
        .await
        .expect("the restarted node could not read the state file a full disk left");
    epochs_rose(&node, before).await;
    // The held-back election was never granted: it can be now, like any other.
    let _granted = timeout(
        GRANT * 4,
        node.election(&name(i), me())
            .expect("an elector")
            .campaign(),
    )
    .await
    .expect("the held-back election is never granted after the restart")
    .expect("a grant");
}
