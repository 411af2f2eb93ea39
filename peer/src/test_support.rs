//! Test support (feature `test-support`): a cluster of peer nodes over real TCP on
//! loopback, in one test process. Every node has its own data dir, and a `FaultProxy` sits
//! on every ordered peer pair (node i dials node j through proxy (i, j)), so partitions can
//! be symmetric or one-way. A backend's tests describe how to configure, start and stop
//! its node with a [`ClusterBackend`] impl on a local marker type and alias
//! `Cluster<ThatType>`.
//!
//! [`codec_tests!`] writes the tests every backend's message codec passes.

mod full_disk;

pub use full_disk::{
    FULL_DISK_NODE, a_full_disk_holds_grants_back_until_space_is_freed,
    a_kill_on_a_full_disk_leaves_a_file_the_restart_reads,
};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use election_core::{Backend, Candidate, ElectionName, LeaderElector, Leadership, NodeId};
use election_tests::proxy::{Direction, Fault, FaultProxy};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Grants reported by [`Cluster::campaign_all`]: (node index, leadership, when).
pub type Grants = mpsc::UnboundedReceiver<(usize, Leadership, Instant)>;

/// The next grant from `rx`.
///
/// # Panics
/// No grant within `within` (the message names `what`), or every campaign ended.
pub async fn next_grant(
    rx: &mut Grants,
    within: Duration,
    what: &str,
) -> (usize, Leadership, Instant) {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no leader within {within:?}: {what}"))
        .expect("campaign tasks ended")
}

/// What a [`ClusterBackend`] needs to configure one member.
#[derive(Clone, Debug)]
pub struct Member {
    /// The member's id (`node-1`, `node-2`, ...).
    pub id: NodeId,
    /// The address it listens on.
    pub listen: SocketAddr,
    /// Every member's id and address (its own listen address, the others through their
    /// proxies).
    pub peers: BTreeMap<NodeId, String>,
    /// Members that never campaign.
    pub voters_only: BTreeSet<NodeId>,
    /// Its data dir.
    pub data_dir: PathBuf,
}

/// How one peer backend's nodes are configured, started and stopped.
pub trait ClusterBackend: 'static {
    /// The node handle (`RaftNode`, `BullyNode`).
    type Node: Backend + Send + Sync + 'static;
    /// Its configuration.
    type Config;
    /// The configuration of `member`, authenticated with a shared secret, before the
    /// cluster's timing function is applied.
    fn configure(member: Member) -> Self::Config;
    /// Starts a node.
    fn start(
        config: Self::Config,
    ) -> impl Future<Output = election_core::Result<Self::Node>> + Send;
    /// Stops a node abruptly (kill -9 analogue).
    fn crash(node: Self::Node);
    /// Stops a node gracefully.
    fn shutdown(node: Self::Node) -> impl Future<Output = ()> + Send;
    /// Stalls a node's driver until the returned handle is dropped (SIGSTOP analogue for
    /// the node's machinery; its leaderships' `lost()` still fire on time).
    fn stall(node: &Self::Node) -> crate::Stall;
}

/// A cluster of `n` nodes of backend `B`; see the module documentation.
pub struct Cluster<B: ClusterBackend> {
    /// Node ids, `node-1` first.
    pub ids: Vec<NodeId>,
    /// Each node's listen address.
    pub listen: Vec<SocketAddr>,
    /// The proxy node i dials node j through, at `(i, j)`.
    pub proxies: BTreeMap<(usize, usize), FaultProxy>,
    /// Running nodes (`None` once crashed or shut down).
    pub nodes: Vec<Option<Arc<B::Node>>>,
    /// Each node's data dir.
    pub dirs: Vec<TempDir>,
    timing: fn(&mut B::Config),
    voters_only: Vec<usize>,
    /// The nodes dial each other directly, not through the proxies (benchmarks).
    direct: bool,
}

impl<B: ClusterBackend> Cluster<B> {
    /// Starts `n` candidates, each configured by [`ClusterBackend::configure`] then
    /// `timing`.
    pub async fn start(n: usize, timing: fn(&mut B::Config)) -> Cluster<B> {
        Self::start_with(n, timing, &[]).await
    }

    /// Starts `n` candidates that dial each other directly, without the fault proxies
    /// between them: for benchmarks, whose figures then compare with a deployment's (a
    /// proxy adds a relay, two loopback hops, to every message).
    pub async fn start_direct(n: usize, timing: fn(&mut B::Config)) -> Cluster<B> {
        let mut c = Self::start_inner(n, timing, &[], true).await;
        c.proxies.clear();
        c
    }

    /// Starts `n` nodes; those at `voters_only` never campaign.
    pub async fn start_with(
        n: usize,
        timing: fn(&mut B::Config),
        voters_only: &[usize],
    ) -> Cluster<B> {
        Self::start_inner(n, timing, voters_only, false).await
    }

    async fn start_inner(
        n: usize,
        timing: fn(&mut B::Config),
        voters_only: &[usize],
        direct: bool,
    ) -> Cluster<B> {
        let ids: Vec<NodeId> = (1..=n)
            .map(|i| NodeId::new(format!("node-{i}")).unwrap())
            .collect();
        // Hold each node's port until the node starts, so that the proxies (port 0) cannot
        // be given the same one.
        let reserved: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        let listen: Vec<SocketAddr> = reserved.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut proxies = BTreeMap::new();
        for i in 0..n {
            for (j, &upstream) in listen.iter().enumerate() {
                if i != j {
                    proxies.insert((i, j), FaultProxy::start(upstream).await.unwrap());
                }
            }
        }
        let mut c = Cluster {
            ids,
            listen,
            proxies,
            nodes: (0..n).map(|_| None).collect(),
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            timing,
            voters_only: voters_only.to_vec(),
            direct,
        };
        for (i, port) in reserved.into_iter().enumerate() {
            drop(port);
            c.restart(i).await;
        }
        c
    }

    /// The number of nodes.
    pub fn n(&self) -> usize {
        self.ids.len()
    }

    /// Node `i`'s configuration.
    pub fn config(&self, i: usize) -> B::Config {
        let member = Member {
            id: self.ids[i].clone(),
            listen: self.listen[i],
            peers: (0..self.n())
                .map(|j| {
                    let addr = if i == j || self.direct {
                        self.listen[j]
                    } else {
                        self.proxies[&(i, j)].addr()
                    };
                    (self.ids[j].clone(), addr.to_string())
                })
                .collect(),
            voters_only: self
                .voters_only
                .iter()
                .map(|&v| self.ids[v].clone())
                .collect(),
            data_dir: self.dirs[i].path().to_owned(),
        };
        let mut c = B::configure(member);
        (self.timing)(&mut c);
        c
    }

    /// Starts node `i` (again), from its data dir.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        // After a crash the old listener closes asynchronously: retry while the port is
        // still taken.
        let deadline = Instant::now() + Duration::from_secs(10);
        let node = loop {
            match B::start(self.config(i)).await {
                Ok(node) => break node,
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("node {i} did not start: {e}"),
            }
        };
        self.nodes[i] = Some(Arc::new(node));
    }

    /// Node `i`, running.
    pub fn node(&self, i: usize) -> &Arc<B::Node> {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// An elector for `e` on node `i`, campaigning as node `i`.
    pub fn elector(&self, i: usize, e: &ElectionName) -> Arc<dyn LeaderElector> {
        self.node(i)
            .election(e, Candidate::new(self.ids[i].clone()))
            .unwrap()
    }

    /// Every node in `who` campaigns for `e`, each in its own task; each grant is reported
    /// as (node index, leadership, when).
    pub fn campaign_all(&self, e: &ElectionName, who: &[usize]) -> Grants {
        let (tx, rx) = mpsc::unbounded_channel();
        for &i in who {
            let elector = self.elector(i, e);
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(l) = elector.campaign().await {
                    let _ = tx.send((i, l, Instant::now()));
                }
            });
        }
        rx
    }

    /// kill -9 analogue.
    pub fn crash(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("running");
        let node = Arc::try_unwrap(node)
            .ok()
            .expect("no other handle on the node");
        B::crash(node);
    }

    /// Graceful stop of node `i`.
    pub async fn shutdown(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("running");
        let node = Arc::try_unwrap(node)
            .ok()
            .expect("no other handle on the node");
        B::shutdown(node).await;
    }

    /// Blackholes every link between `side` and the rest, both ways.
    pub fn partition(&self, side: &[usize]) {
        for (&(i, j), p) in &self.proxies {
            if side.contains(&i) != side.contains(&j) {
                p.set(Direction::Both, Fault::Blackhole);
            }
        }
    }

    /// Blackholes every link of node `i`, both ways.
    pub fn isolate(&self, i: usize) {
        self.partition(&[i]);
    }

    /// Lets every link pass again.
    pub fn heal(&self) {
        for p in self.proxies.values() {
            p.set(Direction::Both, Fault::Pass);
        }
    }

    /// Index of a node id.
    pub fn index(&self, id: &NodeId) -> usize {
        self.ids.iter().position(|x| x == id).unwrap()
    }
}

/// Partitions a 5-node cluster 2 | 3 with the leader in the minority and checks the lease
/// rule over real TCP: the minority leader's `lost()` fires within its lease budget and
/// before the majority elects anyone; the majority elects a higher epoch; the minority
/// elects no one for `quiet`. `lease_budget` and `quiet` read the backend's settings.
///
/// # Panics
/// On any violation, naming it.
pub async fn minority_leader_loses_before_the_majority_elects<B: ClusterBackend>(
    c: &Cluster<B>,
    e: &ElectionName,
    lease_budget: fn(&B::Config) -> Duration,
    quiet: fn(&B::Config) -> Duration,
) {
    let mut grants = c.campaign_all(e, &[0, 1, 2, 3, 4]);
    let (old, lo, _) = next_grant(&mut grants, Duration::from_secs(10), "first election").await;
    let buddy = (old + 1) % 5;
    let budget = lease_budget(&c.config(old));

    let cut_at = Instant::now();
    c.partition(&[old, buddy]);
    let reason = tokio::time::timeout(budget + Duration::from_secs(1), lo.lost())
        .await
        .expect("the minority leader's lost() did not fire within its lease (+1 s slack)");
    let lost_at = Instant::now();
    // The lease deadline passing (Expired) and the core's step-down (QuorumLost) fall on
    // the same instant; either may be reported first.
    assert!(
        matches!(
            reason,
            election_core::LossReason::QuorumLost | election_core::LossReason::Expired
        ),
        "{reason:?}"
    );
    assert!(
        lost_at - cut_at <= budget + Duration::from_millis(500),
        "lost() took {:?}, more than the lease budget {budget:?} (+ slack)",
        lost_at - cut_at
    );
    let (new, ln, granted_at) = next_grant(
        &mut grants,
        Duration::from_secs(10),
        "majority after the partition",
    )
    .await;
    assert!(
        ![old, buddy].contains(&new),
        "node {new} of the minority was elected"
    );
    assert!(
        lost_at <= granted_at,
        "the majority elected node {new} before the old leader's lost() fired"
    );
    assert!(ln.epoch() > lo.epoch());
    // The minority stays without a leader.
    if let Ok(Some((i, l, _))) = tokio::time::timeout(quiet(&c.config(old)), grants.recv()).await {
        panic!(
            "node {i} was elected at epoch {} during the partition",
            l.epoch()
        );
    }
    assert!(
        ln.is_held(),
        "the majority leader lost its lease during the partition"
    );
    drop(lo);
    c.heal();
}

#[doc(hidden)]
pub use {rand as __rand, rand_chacha as __rand_chacha};

/// Writes the tests every peer backend's message codec passes, as `#[test]` functions in
/// the module that invokes it (a `tests` module beside the codec):
///
/// - every message round-trips, and batches split under the payload limit;
/// - garbage and truncations are errors, never panics;
/// - another version is refused by name;
/// - a huge claimed count does not allocate.
///
/// ```ignore
/// election_peer::test_support::codec_tests! {
///     backend: "raft",
///     encode: encode,
///     decode: decode,
///     version: WIRE_VERSION,
///     random_message: random_message, // fn(&mut ChaCha8Rng) -> Message
///     one_message: Message::TimeoutNow { election: name(1), term: 3 },
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __codec_tests {
    (
        backend: $backend:expr,
        encode: $encode:path,
        decode: $decode:path,
        version: $version:expr,
        random_message: $random_message:path,
        one_message: $one_message:expr $(,)?
    ) => {
        #[test]
        fn every_message_round_trips_and_batches_split_under_the_limit() {
            use $crate::test_support::__rand::{Rng, SeedableRng};
            let mut rng = $crate::test_support::__rand_chacha::ChaCha8Rng::seed_from_u64(7);
            for _ in 0..500 {
                let msgs: Vec<_> = (0..rng.random_range(1..20))
                    .map(|_| $random_message(&mut rng))
                    .collect();
                let limit = rng.random_range(64..2048);
                let mut back = Vec::new();
                for p in &$encode(&msgs, limit) {
                    back.extend($decode(p).unwrap());
                }
                assert_eq!(back, msgs);
            }
        }

        #[test]
        fn garbage_and_truncations_are_errors_never_panics() {
            use $crate::test_support::__rand::{Rng, SeedableRng};
            let mut rng = $crate::test_support::__rand_chacha::ChaCha8Rng::seed_from_u64(11);
            for _ in 0..20_000 {
                let len = rng.random_range(0..64);
                let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.5) && !bytes.is_empty() {
                    bytes[0] = $version;
                }
                let _ = $decode(&bytes);
            }
            let good = $encode(
                &[$random_message(&mut rng), $random_message(&mut rng)],
                1 << 20,
            );
            for cut in 0..good[0].len() {
                assert!($decode(&good[0][..cut]).is_err());
            }
        }

        #[test]
        fn another_version_is_refused_by_name() {
            let mut p = $encode(&[$one_message], 1024)[0].to_vec();
            p[0] = 9;
            assert_eq!(
                $decode(&p),
                Err($crate::wire::DecodeError::Version {
                    backend: $backend,
                    found: 9,
                    speaks: $version,
                })
            );
        }

        #[test]
        fn a_huge_claimed_count_does_not_allocate() {
            let mut p = vec![$version];
            p.extend_from_slice(&u32::MAX.to_be_bytes());
            assert_eq!(
                $decode(&p),
                Err($crate::wire::DecodeError::Truncated { backend: $backend })
            );
        }
    };
}

#[doc(inline)]
pub use crate::__codec_tests as codec_tests;

/// Writes the two tests of a peer backend's state file: a saved state survives a reopen
/// (and the file starts with the format's header), and a corrupt line is refused naming
/// the line and the data-dir setting, never reset.
///
/// ```ignore
/// election_peer::test_support::state_file_tests! {
///     hard_state: HardState,
///     sample: HardState { epoch: 7, leader: Some(NodeId::new("n2").unwrap()) },
///     corrupt_line: "backup seven -",
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __state_file_tests {
    (hard_state: $hard:ty, sample: $sample:expr, corrupt_line: $line:expr $(,)?) => {
        #[test]
        fn saved_state_survives_a_reopen() {
            use $crate::PersistedState as _;
            let format = <$hard>::FORMAT;
            let dir = tempfile::tempdir().unwrap();
            let mut f = $crate::StateFile::<$hard>::open(dir.path()).unwrap();
            let e = $crate::__private::election_core::ElectionName::new("backup").unwrap();
            let sample: $hard = $sample;
            f.save(vec![(e.clone(), sample.clone())]).unwrap();
            let again = $crate::StateFile::<$hard>::open(dir.path()).unwrap();
            assert_eq!(again.state()[&e], sample);
            let text = std::fs::read_to_string(dir.path().join(format.file)).unwrap();
            assert!(text.starts_with(&format!("{}\n", format.header)), "{text}");
        }

        #[test]
        fn a_corrupt_file_is_refused_not_reset() {
            use $crate::PersistedState as _;
            let format = <$hard>::FORMAT;
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join(format.file),
                format!("{}\n{}\n", format.header, $line),
            )
            .unwrap();
            let err = $crate::StateFile::<$hard>::open(dir.path())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("corrupt") && err.contains("line 2") && err.contains(format.setting),
                "{err}"
            );
        }
    };
}

#[doc(inline)]
pub use crate::__state_file_tests as state_file_tests;

/// How [`bounded_node_forgets_idle_elections`] checks the state file once everything was
/// forgotten.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FloorCheck {
    /// The floor is exactly the first leadership's epoch (raft's term, bully's epoch).
    Exact,
    /// The floor is at least it (paxos: renewal ballots raise it).
    AtLeast,
}

/// Issue 14, item 2, through the real node (driver, state file, handle), for any peer
/// backend: `max` campaigns lead; one more fails with `TooManyElections`; once resigned,
/// the elections are forgotten after `forget_after` (set in `config`, as `max_elections`
/// = `max`), in memory, in the published leader entries and in the state file, which keeps
/// only the floor; started again, even after a restart, an election leads at a higher
/// epoch. `config` is a one-node cluster named `me`, with its data in a directory of its own
/// (`data_dir`).
pub async fn bounded_node_forgets_idle_elections<K>(
    config: K,
    me: NodeId,
    data_dir: &std::path::Path,
    max: usize,
    floor_check: FloorCheck,
) where
    K: crate::PeerNodeConfig + Clone,
{
    use crate::PersistedState as _;
    let format = <<K::Core as crate::ElectionCore>::HardState>::FORMAT;
    let name = |i: usize| ElectionName::new(format!("job-{i}")).unwrap();
    let node = crate::PeerNode::start(config.clone()).await.unwrap();
    let campaigns: Vec<_> = (0..max)
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
        held.iter().all(Leadership::is_held),
        "a lease lapsed: the machine is too slow even for these timings"
    );
    let extra = node
        .election(&name(max), Candidate::new(me.clone()))
        .unwrap();
    let err = extra.campaign().await.unwrap_err();
    assert!(
        matches!(err, election_core::Error::TooManyElections { limit, .. } if limit == max),
        "{err}"
    );
    assert_eq!(err.kind(), election_core::ErrorKind::Unavailable);
    println!("refused: {err}");
    drop(extra);
    assert_eq!(node.stats().elections, max as u64);
    let text = std::fs::read_to_string(data_dir.join(format.file)).unwrap();
    assert_eq!(text.lines().count(), max + 1, "{text}");
    for l in held {
        l.resign().await.unwrap();
    }
    // Resigned: quiet for a while, then idle; forgotten once idle for forget_after
    // (checked every eighth of it). Generous deadline for a busy machine.
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
    let text = std::fs::read_to_string(data_dir.join(format.file)).unwrap();
    let floor: u64 = text
        .strip_prefix(&format!("{}\n#floor ", format.header))
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("only the floor should be left: {text}"));
    match floor_check {
        FloorCheck::Exact => assert_eq!(floor, first_epoch.0, "{text}"),
        FloorCheck::AtLeast => assert!(floor >= first_epoch.0, "{text}"),
    }
    // Room again; the epoch rises above the forgotten one, also after a restart.
    node.shutdown().await;
    let node = crate::PeerNode::start(config).await.unwrap();
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
