//! Mutual TLS between members: a 3-node cluster whose certificates name the node ids elects
//! and fails over; an impostor with the highest id but a certificate from another CA never
//! gets a message through, so its VICTORY changes nothing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use election_bully::{BullyConfig, BullyNode, TlsConfig};
use election_core::{Backend, Candidate, ElectionName, LeaderElector, Leadership, NodeId};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// CA, certificate and key files in `dir` for node `san`.
    fn issue(&self, dir: &Path, san: &str) -> TlsConfig {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let files = TlsConfig {
            ca: dir.join(format!("ca-{san}.pem")),
            cert: dir.join(format!("{san}.pem")),
            key: dir.join(format!("{san}.key")),
        };
        std::fs::write(&files.ca, &self.pem).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap()
}

fn config(
    me: &NodeId,
    listen: SocketAddr,
    peers: &BTreeMap<NodeId, String>,
    tls: TlsConfig,
    dir: &Path,
) -> BullyConfig {
    BullyConfig {
        node_id: Some(me.clone()),
        listen,
        peers: peers.clone(),
        data_dir: dir.join(format!("data-{me}")),
        heartbeat: Duration::from_millis(50),
        failure_timeout: Duration::from_millis(600),
        answer_timeout: Duration::from_millis(200),
        clock_drift: Duration::from_millis(50),
        kill_grace: Duration::from_millis(100),
        tls: Some(tls),
        ..BullyConfig::default()
    }
}

fn elector(node: &BullyNode, e: &ElectionName) -> std::sync::Arc<dyn LeaderElector> {
    node.election(e, Candidate::new(node.id().clone())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_members_elect_fail_over_and_shut_out_an_impostor() {
    election_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("bully-test-ca");
    let ids: Vec<NodeId> = (1..=3)
        .map(|i| NodeId::new(format!("node-{i}")).unwrap())
        .collect();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peers: BTreeMap<NodeId, String> = ids
        .iter()
        .zip(&addrs)
        .map(|(i, a)| (i.clone(), a.to_string()))
        .collect();
    let mut nodes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let tls = ca.issue(dir.path(), id.as_str());
        let node = BullyNode::start(config(id, addrs[i], &peers, tls, dir.path()))
            .await
            .unwrap();
        nodes.push(Some(node));
    }
    let e = ElectionName::new("tls").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Leadership, Instant)>();
    for (i, n) in nodes.iter().enumerate() {
        let el = elector(n.as_ref().unwrap(), &e);
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Ok(l) = el.campaign().await {
                let _ = tx.send((i, l, Instant::now()));
                std::future::pending::<()>().await;
            }
        });
    }
    let within = Duration::from_secs(10);
    let (first, l1, _) = timeout(within, rx.recv()).await.unwrap().unwrap();
    assert_eq!(first, 2, "the highest node leads");
    nodes[2].take().unwrap().crash();
    let (second, l2, _) = timeout(within, rx.recv()).await.unwrap().unwrap();
    assert_eq!(second, 1, "the next highest takes over after the crash");
    assert!(l2.epoch() > l1.epoch());

    // An impostor claims the crashed node's id (the highest) with a certificate from
    // another CA, and campaigns.
    let rogue = Ca::new("rogue-ca");
    let rogue_dir = dir.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).unwrap();
    let tls = rogue.issue(&rogue_dir, ids[2].as_str());
    let impostor = BullyNode::start(config(&ids[2], addrs[2], &peers, tls, &rogue_dir))
        .await
        .unwrap();
    let imp = elector(&impostor, &e);
    let imp_task = tokio::spawn(async move { imp.campaign().await.map(|l| l.epoch()) });
    let before = nodes[0].as_ref().unwrap().stats().transport.auth_failures;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes[0].as_ref().unwrap().stats().transport.auth_failures == before
        && impostor.stats().transport.auth_failures == 0
    {
        assert!(Instant::now() < deadline, "no TLS failure was noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(l2.is_held(), "the impostor deposed the leader");
    let seen = elector(nodes[0].as_ref().unwrap(), &e)
        .leader()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.node, seen.epoch), (ids[1].clone(), l2.epoch()));
    assert!(
        !imp_task.is_finished(),
        "the impostor was granted leadership"
    );
    imp_task.abort();
    impostor.crash();
    drop((l1, l2));
}
