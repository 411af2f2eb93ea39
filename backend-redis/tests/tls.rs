//! `rediss://`: a redis-server serving TLS only, with client certificates required. Our CA
//! and client certificate connect and hand over by pub/sub; a server certificate we do not
//! trust is refused with an error naming the address.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use election_redis::{RedisBackend, RedisConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
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
        .push(DnType::CommonName, "elector redis test CA");
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

/// A redis-server with only a TLS port, requiring client certificates; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    pki: Pki,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    async fn start() -> TlsRedis {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--tls-port")
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&pki.server.0)
            .arg("--tls-key-file")
            .arg(&pki.server.1)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args(["--tls-auth-clients", "yes"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server from the redis-server package");
        let server = TlsRedis {
            child,
            port,
            pki,
            _dir: dir,
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "TLS redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn config(&self) -> RedisConfig {
        RedisConfig {
            tls_ca_file: Some(self.pki.ca.clone()),
            tls_cert_file: Some(self.pki.client.0.clone()),
            tls_key_file: Some(self.pki.client.1.clone()),
            ..config(&format!("rediss://127.0.0.1:{}", self.port))
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_ca_and_client_certificate_connect_and_hand_over_by_push() {
    election_tests::init_tracing();
    let server = TlsRedis::start().await;
    let a = RedisBackend::connect(server.config(), long_ttl())
        .await
        .unwrap();
    let b = RedisBackend::connect(server.config(), long_ttl())
        .await
        .unwrap();
    assert!(a.address().starts_with("rediss://"), "{}", a.address());
    let la = elector(&a, "job", "a").campaign().await.unwrap();
    let eb = elector(&b, "job", "b");
    let waiter = tokio::spawn(async move { eb.campaign().await });
    la.resign().await.unwrap();
    // A 60 s TTL: only the release push over the TLS pub/sub connection elects b this soon.
    let lb = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(lb.info().node, node("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_we_do_not_trust_is_refused_naming_the_address() {
    let server = TlsRedis::start().await;
    let cfg = RedisConfig {
        tls_ca_file: None,
        ..server.config()
    };
    let err = RedisBackend::connect(cfg, long_ttl()).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert_eq!(
        err.kind(),
        election_core::ErrorKind::Protocol,
        "retrying cannot help: {msg}"
    );
    assert!(msg.contains(&format!("127.0.0.1:{}", server.port)), "{msg}");
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
}
