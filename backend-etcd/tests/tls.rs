//! etcd serving clients over TLS with client-certificate authentication: our CA and client
//! certificate connect and campaign; a missing client certificate or plain http is refused
//! with an error naming the endpoint.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use election_core::ErrorKind;
use election_etcd::{EtcdBackend, EtcdConfig, EtcdTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::*;
use tokio::time::Instant;

struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "elector test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let issue = |name: &str, sans: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    Pki {
        ca: ca_path,
        server: issue("server", vec!["localhost".into(), "127.0.0.1".into()]),
        client: issue("client", vec!["elector-client".into()]),
    }
}

/// An etcd serving https with `--client-cert-auth`; killed on drop.
struct TlsEtcd {
    child: Child,
    endpoint: String,
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    election_tests::launch::free_port().expect("a free loopback port")
}

fn start_tls_etcd(dir: &Path, pki: &Pki) -> TlsEtcd {
    let (client_port, peer_port) = (free_port(), free_port());
    let endpoint = format!("https://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
    let child = Command::new("etcd")
        .args(["--name", "tls1", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &endpoint])
        .args(["--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .arg(format!("--initial-cluster=tls1={peer}"))
        .arg("--cert-file")
        .arg(&pki.server.0)
        .arg("--key-file")
        .arg(&pki.server.1)
        .arg("--trusted-ca-file")
        .arg(&pki.ca)
        .arg("--client-cert-auth")
        .args(["--heartbeat-interval=10", "--election-timeout=100"])
        .args(["--logger=zap", "--log-outputs=stderr"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("etcd should run (apt-get install etcd-server)");
    TlsEtcd { child, endpoint }
}

fn tls_config(endpoint: &str, pki: &Pki, with_client_cert: bool) -> EtcdConfig {
    EtcdConfig {
        tls: Some(EtcdTls {
            ca_file: Some(pki.ca.clone()),
            cert_file: with_client_cert.then(|| pki.client.0.clone()),
            key_file: with_client_cert.then(|| pki.client.1.clone()),
            domain: None,
        }),
        connect_timeout: Duration::from_millis(800),
        ..EtcdConfig::with_endpoints([endpoint])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_a_client_certificate_we_campaign_and_without_one_we_are_refused() {
    election_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = start_tls_etcd(dir.path(), &pki);

    // Connect once the server is up (it elects itself in about 0.1 s).
    let started = Instant::now();
    let backend = loop {
        match EtcdBackend::connect(tls_config(&server.endpoint, &pki, true), timing()).await {
            Ok(b) => break b,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "etcd over TLS never accepted us: {e}; log: {}",
                    std::fs::read_to_string(dir.path().join("etcd.log")).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let a = elector(&backend, "tls1", "node-a");
    let l = a.campaign().await.unwrap();
    assert!(l.is_held());
    l.resign().await.unwrap();

    let err = EtcdBackend::connect(tls_config(&server.endpoint, &pki, false), timing())
        .await
        .unwrap_err();
    eprintln!("no client certificate: {err}");
    assert!(err.to_string().contains(&server.endpoint), "{err}");

    let plain = server.endpoint.replace("https://", "http://");
    let config = EtcdConfig {
        connect_timeout: Duration::from_millis(800),
        ..EtcdConfig::with_endpoints([plain.clone()])
    };
    let err = EtcdBackend::connect(config, timing()).await.unwrap_err();
    eprintln!("plain http to a TLS server: {err}");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&plain), "{err}");
    assert!(err.to_string().contains("https://"), "hints at TLS: {err}");
}
