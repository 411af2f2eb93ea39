//! Frames per second and round-trip time between two transports on loopback.
//!
//! `cargo run --release -p election-transport --example throughput [messages] [payload bytes]`
//!
//! Prints, for a shared secret and for mutual TLS: one-way throughput (node a sends
//! `messages` payloads to b as fast as `send` accepts them) and the median and p99 round
//! trip of a ping-pong (a → b → a, one message in flight).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use election_transport::{Auth, Inbox, NodeId, Secret, TlsFiles, Transport, TransportConfig};

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn pair(
    auth: impl Fn(&str) -> Auth,
    queue: usize,
) -> ((Transport, Inbox), (Transport, Inbox)) {
    let ports = [free_port(), free_port()];
    let peers: BTreeMap<NodeId, String> = [("a", ports[0]), ("b", ports[1])]
        .iter()
        .map(|(n, p)| (id(n), format!("127.0.0.1:{p}")))
        .collect();
    let mk = |n: &str, p: u16| {
        let mut c = TransportConfig::new(
            id(n),
            SocketAddr::from(([127, 0, 0, 1], p)),
            peers.clone(),
            auth(n),
        );
        c.send_queue_len = queue;
        c
    };
    let a = Transport::bind(mk("a", ports[0])).await.unwrap();
    let b = Transport::bind(mk("b", ports[1])).await.unwrap();
    (a, b)
}

fn tls_files(dir: &std::path::Path) -> impl Fn(&str) -> Auth {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let mut files = BTreeMap::new();
    for n in ["a", "b"] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![n.to_owned()]).unwrap();
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let f = TlsFiles {
            ca: ca_path.clone(),
            cert: dir.join(format!("{n}.pem")),
            key: dir.join(format!("{n}.key")),
        };
        std::fs::write(&f.cert, cert.pem()).unwrap();
        std::fs::write(&f.key, key.serialize_pem()).unwrap();
        files.insert(n.to_owned(), f);
    }
    move |n| Auth::MutualTls(files[n].clone())
}

async fn measure(label: &str, auth: impl Fn(&str) -> Auth, messages: usize, size: usize) {
    let ((a, mut a_inbox), (b, mut b_inbox)) = pair(&auth, messages + 16).await;
    // Wait for both connections.
    for (from, to, inbox) in [(&a, "b", &mut b_inbox), (&b, "a", &mut a_inbox)] {
        loop {
            from.send(&id(to), Bytes::from_static(b"warm-up"));
            if tokio::time::timeout(Duration::from_millis(100), inbox.recv())
                .await
                .is_ok()
            {
                break;
            }
        }
        while tokio::time::timeout(Duration::from_millis(100), inbox.recv())
            .await
            .is_ok()
        {}
    }

    let payload = Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    for _ in 0..messages {
        a.send(&id("b"), payload.clone());
    }
    for _ in 0..messages {
        b_inbox.recv().await.unwrap();
    }
    let elapsed = start.elapsed();
    let drops = a.stats().queue_drops;
    println!(
        "{label}: {messages} frames of {size} B in {elapsed:.2?}: {:.0} frames/s, {:.1} MB/s (queue drops {drops})",
        messages as f64 / elapsed.as_secs_f64(),
        (messages * size) as f64 / elapsed.as_secs_f64() / 1e6,
    );

    let mut rtts = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        a.send(&id("b"), Bytes::from_static(b"ping"));
        b_inbox.recv().await.unwrap();
        b.send(&id("a"), Bytes::from_static(b"pong"));
        a_inbox.recv().await.unwrap();
        rtts.push(t.elapsed());
    }
    rtts.sort();
    println!(
        "{label}: ping-pong round trip median {:.1?}, p99 {:.1?}",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().map_or(200_000, |s| s.parse().unwrap());
    let size: usize = args.next().map_or(64, |s| s.parse().unwrap());
    let secret = Secret::new(*b"benchmark-secret-0123").unwrap();
    measure(
        "shared secret",
        |_| Auth::SharedSecret(secret.clone()),
        messages,
        size,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    measure("mutual TLS", tls_files(dir.path()), messages, size).await;
}
